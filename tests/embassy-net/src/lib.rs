//! umqtt over embassy-net: see tests/.
