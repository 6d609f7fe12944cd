//! The zero-copy MQTT 3.1.1 codec: all 14 control packets, both directions.
//!
//! [`decode`] borrows a [`Packet`] from the input bytes and tells how many
//! bytes it used; [`encode`] writes one into a caller buffer. Both check
//! every rule of the specification that a codec can check and never panic.
//!
//! ```
//! use umqtt::packet::{self, Packet, Publish, QoS, PacketId};
//!
//! let publish = Publish {
//!     dup: false,
//!     qos: QoS::AtLeastOnce,
//!     retain: false,
//!     topic: "sensors/01/temp",
//!     packet_id: PacketId::new(7),
//!     payload: b"21.5",
//! };
//! let mut buf = [0u8; 64];
//! let len = packet::encode(&Packet::Publish(publish), &mut buf)?;
//! let decoded = packet::decode(&buf[..len])?;
//! assert_eq!(decoded.len, len);
//! assert_eq!(decoded.packet, Packet::Publish(publish));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod connect;
mod error;
mod header;
mod list;
mod publish;
mod subscribe;
pub(crate) mod wire;

pub use connect::{ConnAck, Connect, ConnectReturnCode, LastWill, ProtocolLevel};
pub use error::{DecodeError, EncodeError, Malformed};
pub use header::{FixedHeader, PacketType};
pub use list::{Iter, List, ListItem};
pub use publish::Publish;
pub use subscribe::{SubAck, Subscribe, SubscribeReturnCode, SubscribeTopic, Unsubscribe};
pub use wire::MAX_REMAINING_LEN;

use core::num::NonZeroU16;
use wire::{Reader, Writer};

/// Quality of service of a PUBLISH or a subscription (section 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum QoS {
    /// At most once delivery: fire and forget.
    AtMostOnce = 0,
    /// At least once delivery: acknowledged by PUBACK.
    AtLeastOnce = 1,
    /// Exactly once delivery: PUBREC, PUBREL, PUBCOMP. The codec handles it;
    /// the client publishes and subscribes with QoS 0 and 1.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for the two-bit value `bits`; 3 is invalid `[MQTT-3.3.1-4]`.
    pub const fn from_bits(bits: u8) -> Result<Self, Malformed> {
        match bits {
            0 => Ok(Self::AtMostOnce),
            1 => Ok(Self::AtLeastOnce),
            2 => Ok(Self::ExactlyOnce),
            _ => Err(Malformed::InvalidQoS),
        }
    }
}

/// A packet identifier: never 0 `[MQTT-2.3.1-1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The largest identifier, 65535.
    pub const MAX: Self = Self(NonZeroU16::MAX);

    /// The identifier `id`, or `None` for 0.
    pub const fn new(id: u16) -> Option<Self> {
        match NonZeroU16::new(id) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The identifier as a number in 1..=65535.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The identifier after this one, wrapping from 65535 to 1.
    pub const fn next(self) -> Self {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(id) => Self(id),
            None => Self(NonZeroU16::MIN),
        }
    }
}

/// One MQTT 3.1.1 control packet, borrowing its strings and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Packet<'a> {
    /// Client request to connect (3.1).
    Connect(Connect<'a>),
    /// Connect acknowledgment (3.2).
    ConnAck(ConnAck),
    /// Application message (3.3).
    Publish(Publish<'a>),
    /// QoS 1 publish acknowledgment (3.4).
    PubAck(PacketId),
    /// QoS 2 publish received, part 1 (3.5).
    PubRec(PacketId),
    /// QoS 2 publish release, part 2 (3.6).
    PubRel(PacketId),
    /// QoS 2 publish complete, part 3 (3.7).
    PubComp(PacketId),
    /// Subscribe to topic filters (3.8).
    Subscribe(Subscribe<'a>),
    /// Subscribe acknowledgment (3.9).
    SubAck(SubAck<'a>),
    /// Unsubscribe from topic filters (3.10).
    Unsubscribe(Unsubscribe<'a>),
    /// Unsubscribe acknowledgment (3.11).
    UnsubAck(PacketId),
    /// Ping request (3.12).
    PingReq,
    /// Ping response (3.13).
    PingResp,
    /// Client is disconnecting (3.14).
    Disconnect,
}

impl Packet<'_> {
    /// The control packet type.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect => PacketType::Disconnect,
        }
    }
}

/// A packet decoded from the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Decoded<'a> {
    /// The packet, borrowing from the input.
    pub packet: Packet<'a>,
    /// Bytes of input it occupied (fixed header included).
    pub len: usize,
}

/// Decodes the packet at the front of `buf`.
///
/// Returns [`DecodeError::Incomplete`] while `buf` holds a valid beginning
/// of a packet and [`DecodeError::Malformed`] as soon as the bytes can
/// never be valid. Bytes after the packet are ignored: call again from
/// `buf[decoded.len..]`.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let header = FixedHeader::parse(buf)?;
    let len = header.packet_len();
    let body = buf
        .get(header.header_len..len)
        // Lazily: with bytes after the packet, `len - buf.len()` underflows.
        .ok_or_else(|| DecodeError::Incomplete { needed: len - buf.len() })?;
    let packet = decode_body(&header, body)?;
    Ok(Decoded { packet, len })
}

/// Decodes a packet's variable header and payload (`body`, exactly
/// `header.remaining_len` bytes) once its fixed header is known.
pub fn decode_body<'a>(header: &FixedHeader, body: &'a [u8]) -> Result<Packet<'a>, Malformed> {
    let mut r = Reader::new(body);
    let packet = match header.packet_type {
        PacketType::Connect => Packet::Connect(Connect::read(&mut r)?),
        PacketType::Subscribe => Packet::Subscribe(Subscribe::read(&mut r)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::read(&mut r)?),
        // Never `None`: those three types are decoded above.
        _ => return decode_to_client(header, body)?.ok_or(Malformed::ReservedPacketType),
    };
    r.finish()?;
    Ok(packet)
}

/// [`decode_body`] for a client: `None` for the packets only a client
/// sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE), whose bodies are not read, so
/// a firmware that only receives from a server links none of their
/// decoders.
pub(crate) fn decode_to_client<'a>(
    header: &FixedHeader,
    body: &'a [u8],
) -> Result<Option<Packet<'a>>, Malformed> {
    let mut r = Reader::new(body);
    let packet = match header.packet_type {
        PacketType::Connect | PacketType::Subscribe | PacketType::Unsubscribe => return Ok(None),
        PacketType::ConnAck => Packet::ConnAck(ConnAck::read(&mut r)?),
        PacketType::Publish => Packet::Publish(Publish::read(header.flags, &mut r)?),
        PacketType::PubAck => Packet::PubAck(r.packet_id()?),
        PacketType::PubRec => Packet::PubRec(r.packet_id()?),
        PacketType::PubRel => Packet::PubRel(r.packet_id()?),
        PacketType::PubComp => Packet::PubComp(r.packet_id()?),
        PacketType::SubAck => Packet::SubAck(SubAck::read(&mut r)?),
        PacketType::UnsubAck => Packet::UnsubAck(r.packet_id()?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect,
    };
    r.finish()?;
    Ok(Some(packet))
}

/// Checks `packet` and returns its remaining length. With `TO_SERVER`,
/// only the packets a client sends are accepted (CONNACK and SUBACK are
/// `Invalid`), so a client links neither writer.
fn remaining_len<const TO_SERVER: bool>(packet: &Packet<'_>) -> Result<usize, Malformed> {
    let len = match packet {
        Packet::ConnAck(_) | Packet::SubAck(_) if TO_SERVER => {
            return Err(Malformed::ReservedPacketType);
        }
        Packet::Connect(c) => c.body_len()?,
        Packet::ConnAck(c) => c.body_len()?,
        Packet::Publish(p) => p.body_len()?,
        Packet::Subscribe(s) => s.body_len()?,
        Packet::SubAck(s) => s.body_len()?,
        Packet::Unsubscribe(u) => u.body_len()?,
        Packet::PubAck(_)
        | Packet::PubRec(_)
        | Packet::PubRel(_)
        | Packet::PubComp(_)
        | Packet::UnsubAck(_) => 2,
        Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
    };
    if len > MAX_REMAINING_LEN { Err(Malformed::PacketTooLarge) } else { Ok(len) }
}

/// Checks `packet` and returns the number of bytes [`encode`] will write.
pub fn encoded_len(packet: &Packet<'_>) -> Result<usize, EncodeError> {
    let remaining = remaining_len::<false>(packet)?;
    Ok(1 + wire::var_int_len(remaining) + remaining)
}

/// Encodes `packet` into the front of `buf` and returns its length.
///
/// Nothing is written when the packet breaks the specification
/// ([`EncodeError::Invalid`]) or does not fit ([`EncodeError::BufferTooSmall`]).
pub fn encode(packet: &Packet<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    encode_as::<false>(packet, buf)
}

/// [`encode`] for a client: the packets a server sends (CONNACK, SUBACK)
/// are refused unwritten, so a client links neither writer.
pub(crate) fn encode_to_server(packet: &Packet<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    encode_as::<true>(packet, buf)
}

fn encode_as<const TO_SERVER: bool>(
    packet: &Packet<'_>,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let remaining = remaining_len::<TO_SERVER>(packet)?;
    let needed = 1 + wire::var_int_len(remaining) + remaining;
    let out = buf.get_mut(..needed).ok_or(EncodeError::BufferTooSmall { needed })?;
    let mut w = Writer::new(out);
    w.fixed_header(first_byte(packet), remaining)?;
    match packet {
        Packet::ConnAck(_) | Packet::SubAck(_) if TO_SERVER => {}
        Packet::Connect(c) => c.write(&mut w)?,
        Packet::ConnAck(c) => c.write(&mut w)?,
        Packet::Publish(p) => p.write(&mut w)?,
        Packet::Subscribe(s) => s.write(&mut w)?,
        Packet::SubAck(s) => s.write(&mut w)?,
        Packet::Unsubscribe(u) => u.write(&mut w)?,
        Packet::PubAck(id)
        | Packet::PubRec(id)
        | Packet::PubRel(id)
        | Packet::PubComp(id)
        | Packet::UnsubAck(id) => w.u16(id.get())?,
        Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
    }
    debug_assert_eq!(w.position(), needed);
    Ok(needed)
}

/// Packet type and flags: the first byte of the fixed header.
fn first_byte(packet: &Packet<'_>) -> u8 {
    let flags = match packet {
        Packet::Publish(p) => p.flags(),
        other => other.packet_type().required_flags().unwrap_or(0),
    };
    ((packet.packet_type() as u8) << 4) | flags
}
