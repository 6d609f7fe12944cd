//! SUBSCRIBE (3.8), SUBACK (3.9) and UNSUBSCRIBE (3.10).

use super::list::{List, sealed::Wire};
use super::wire::{Reader, Writer, str_len};
use super::{Malformed, PacketId, QoS};
use crate::topic::TopicFilter;

/// One topic filter and its requested QoS in SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubscribeTopic<'a> {
    /// The topic filter, wildcards allowed.
    pub filter: &'a str,
    /// Maximum QoS the client wants for it.
    pub qos: QoS,
}

impl<'a> Wire<'a> for SubscribeTopic<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Malformed> {
        let filter = <&str>::read(r)?;
        let requested = r.u8()?;
        if requested & 0xfc != 0 {
            return Err(Malformed::SubscribeReservedBits); // [MQTT-3-8.3-4]
        }
        Ok(Self { filter, qos: QoS::from_bits(requested)? })
    }

    fn wire_len(&self) -> Result<usize, Malformed> {
        Ok(self.filter.wire_len()? + 1)
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.str(self.filter)?;
        w.u8(self.qos as u8)
    }
}

/// A topic filter in UNSUBSCRIBE (and in SUBSCRIBE, with its QoS).
impl<'a> Wire<'a> for &'a str {
    fn read(r: &mut Reader<'a>) -> Result<Self, Malformed> {
        let filter = r.str()?;
        TopicFilter::new(filter)?;
        Ok(filter)
    }

    fn wire_len(&self) -> Result<usize, Malformed> {
        TopicFilter::new(self)?;
        str_len(self)
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.str(self)
    }
}

/// A SUBACK return code (3.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SubscribeReturnCode {
    /// Subscribed with this maximum QoS.
    Success(QoS),
    /// 0x80: the server refused the subscription.
    Failure,
}

impl Wire<'_> for SubscribeReturnCode {
    fn read(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        match r.u8()? {
            0x80 => Ok(Self::Failure),
            code @ 0..=2 => Ok(Self::Success(QoS::from_bits(code)?)),
            _ => Err(Malformed::InvalidSubAckReturnCode), // [MQTT-3.9.3-2]
        }
    }

    fn wire_len(&self) -> Result<usize, Malformed> {
        Ok(1)
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.u8(match self {
            Self::Success(qos) => *qos as u8,
            Self::Failure => 0x80,
        })
    }
}

/// SUBSCRIBE (3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Subscribe<'a> {
    /// Packet identifier, echoed in SUBACK.
    pub packet_id: PacketId,
    /// At least one topic filter `[MQTT-3.8.3-3]`.
    pub topics: List<'a, SubscribeTopic<'a>>,
}

impl<'a> Subscribe<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Malformed> {
        let packet_id = r.packet_id()?;
        Ok(Self { packet_id, topics: List::read(r, Malformed::NoTopicFilters)? })
    }

    pub(crate) fn body_len(&self) -> Result<usize, Malformed> {
        Ok(2 + self.topics.body_len(Malformed::NoTopicFilters)?)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.u16(self.packet_id.get())?;
        self.topics.write(w)
    }
}

/// SUBACK (3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubAck<'a> {
    /// Packet identifier of the SUBSCRIBE it answers.
    pub packet_id: PacketId,
    /// One return code per requested topic filter, in order.
    pub return_codes: List<'a, SubscribeReturnCode>,
}

impl<'a> SubAck<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Malformed> {
        let packet_id = r.packet_id()?;
        Ok(Self { packet_id, return_codes: List::read(r, Malformed::InvalidSubAckReturnCode)? })
    }

    pub(crate) fn body_len(&self) -> Result<usize, Malformed> {
        Ok(2 + self.return_codes.body_len(Malformed::InvalidSubAckReturnCode)?)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.u16(self.packet_id.get())?;
        self.return_codes.write(w)
    }
}

/// UNSUBSCRIBE (3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Unsubscribe<'a> {
    /// Packet identifier, echoed in UNSUBACK.
    pub packet_id: PacketId,
    /// At least one topic filter `[MQTT-3.10.3-2]`.
    pub filters: List<'a, &'a str>,
}

impl<'a> Unsubscribe<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Malformed> {
        let packet_id = r.packet_id()?;
        Ok(Self { packet_id, filters: List::read(r, Malformed::NoTopicFilters)? })
    }

    pub(crate) fn body_len(&self) -> Result<usize, Malformed> {
        Ok(2 + self.filters.body_len(Malformed::NoTopicFilters)?)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.u16(self.packet_id.get())?;
        self.filters.write(w)
    }
}
