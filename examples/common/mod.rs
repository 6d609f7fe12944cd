//! Code shared by the host examples.

pub mod broker;
