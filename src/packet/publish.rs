//! PUBLISH (3.3).

use super::wire::{Reader, Writer, binary_len};
use super::{Malformed, PacketId, QoS};
use crate::topic::TopicName;

/// PUBLISH: an application message, in either direction (3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Publish<'a> {
    /// Redelivery of an earlier attempt; always `false` at QoS 0.
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Retained by the server for future subscribers.
    pub retain: bool,
    /// Topic name: no wildcards, not empty.
    pub topic: &'a str,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// Application payload, any bytes.
    pub payload: &'a [u8],
}

impl<'a> Publish<'a> {
    /// Reads the variable header and payload; `flags` were checked by
    /// [`FixedHeader::parse`](super::FixedHeader::parse).
    #[inline] // builds the fields in place in the caller's `Packet`
    pub(crate) fn read(flags: u8, r: &mut Reader<'a>) -> Result<Self, Malformed> {
        let qos = QoS::from_bits((flags >> 1) & 0b11)?;
        let topic = r.str()?;
        TopicName::new(topic)?; // [MQTT-3.3.2-2]
        let packet_id = if qos == QoS::AtMostOnce { None } else { Some(r.packet_id()?) };
        Ok(Self {
            dup: flags & 0b1000 != 0,
            qos,
            retain: flags & 0b0001 != 0,
            topic,
            packet_id,
            payload: r.rest(),
        })
    }

    /// The low nibble of the fixed header: DUP, QoS, RETAIN.
    pub(crate) fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    pub(crate) fn body_len(&self) -> Result<usize, Malformed> {
        TopicName::new(self.topic)?; // checks U+0000 and the length too
        let topic_len = binary_len(self.topic.as_bytes())?;
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) if self.dup => Err(Malformed::DupWithQoS0),
            (QoS::AtMostOnce, None) => Ok(topic_len + self.payload.len()),
            (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(_)) => {
                Ok(topic_len + 2 + self.payload.len())
            }
            _ => Err(Malformed::PacketIdMismatch),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        w.str(self.topic)?;
        if let Some(id) = self.packet_id {
            w.u16(id.get())?;
        }
        w.bytes(self.payload)
    }
}
