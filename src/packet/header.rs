//! The fixed header (section 2.2): packet type, flags, remaining length.

use super::{DecodeError, Malformed, QoS};

/// Control packet type: the high nibble of the first byte (section 2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
#[allow(missing_docs)] // the names are the specification's
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
}

impl PacketType {
    /// The type for the high nibble `nibble`; 0 and 15 are reserved.
    pub const fn from_nibble(nibble: u8) -> Result<Self, Malformed> {
        Ok(match nibble {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            _ => return Err(Malformed::ReservedPacketType),
        })
    }

    /// The flags every packet of this type must carry (table 2.2), or
    /// `None` for PUBLISH, whose flags are DUP, QoS and RETAIN.
    pub const fn required_flags(self) -> Option<u8> {
        match self {
            Self::Publish => None,
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

/// A parsed fixed header.
///
/// Known as soon as its at most five bytes have arrived, so a receiver
/// learns the packet's total length before the rest arrives (and can drain
/// a packet larger than its buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FixedHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// The low nibble of the first byte, already checked against the type.
    pub flags: u8,
    /// Bytes taken by the fixed header itself: 2 to 5.
    pub header_len: usize,
    /// Bytes of variable header and payload that follow.
    pub remaining_len: usize,
}

impl FixedHeader {
    /// Parses the fixed header at the front of `buf`.
    ///
    /// Checks the packet type, the flags `[MQTT-2.2.2-1]`, `[MQTT-2.2.2-2]`,
    /// `[MQTT-3.3.1-4]` and the remaining length encoding (at most four
    /// bytes, minimal) as soon as the bytes that carry them are present.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let Some((&first, rest)) = buf.split_first() else {
            return Err(DecodeError::Incomplete { needed: 2 });
        };
        let packet_type = PacketType::from_nibble(first >> 4)?;
        let flags = first & 0x0f;
        match packet_type.required_flags() {
            Some(required) if flags != required => return Err(Malformed::InvalidFlags.into()),
            Some(_) => {}
            None => {
                let qos = QoS::from_bits((flags >> 1) & 0b11)?;
                if qos == QoS::AtMostOnce && flags & 0b1000 != 0 {
                    return Err(Malformed::DupWithQoS0.into());
                }
            }
        }
        let mut remaining_len = 0usize;
        for (i, &byte) in rest.iter().take(4).enumerate() {
            remaining_len |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(Malformed::RemainingLengthNotMinimal.into());
                }
                return Ok(Self { packet_type, flags, header_len: 2 + i, remaining_len });
            }
        }
        if rest.len() >= 4 {
            Err(Malformed::RemainingLengthTooLong.into())
        } else {
            Err(DecodeError::Incomplete { needed: 1 })
        }
    }

    /// Total bytes of the packet: fixed header plus remaining length.
    pub const fn packet_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}
