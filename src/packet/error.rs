//! Codec errors: what can go wrong decoding or encoding a control packet.

use core::fmt;

/// A rule of the MQTT 3.1.1 specification that a packet breaks.
///
/// Each variant names the statement it enforces. The same reasons are used
/// when decoding (the peer sent it) and when encoding (the caller asked for
/// it): the codec never reads nor writes an invalid packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Malformed {
    /// Packet type 0 or 15 is reserved (section 2.2.1).
    ReservedPacketType,
    /// Fixed-header flag bits differ from the values the packet type
    /// requires `[MQTT-2.2.2-1]`, `[MQTT-2.2.2-2]`.
    InvalidFlags,
    /// A QoS field holds 3 `[MQTT-3.3.1-4]`, `[MQTT-3.1.2-14]`.
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH `[MQTT-3.3.1-2]`.
    DupWithQoS0,
    /// The remaining length continues past four bytes (section 2.2.3).
    RemainingLengthTooLong,
    /// The remaining length uses more bytes than its value needs.
    RemainingLengthNotMinimal,
    /// A packet would exceed the largest remaining length, 268,435,455.
    PacketTooLarge,
    /// A field runs past the end given by the remaining length.
    Truncated,
    /// Bytes are left over after the last field the packet can hold.
    TrailingBytes,
    /// A string is not well-formed UTF-8 `[MQTT-1.5.3-1]`.
    InvalidUtf8,
    /// A string contains U+0000 `[MQTT-1.5.3-2]`.
    NullCharacter,
    /// A string or binary field is longer than 65,535 bytes (section 1.5.3).
    StringTooLong,
    /// Packet identifier 0 `[MQTT-2.3.1-1]`.
    ZeroPacketId,
    /// A QoS 0 PUBLISH carries a packet identifier, or a QoS 1/2 one lacks
    /// it `[MQTT-2.3.1-5]`.
    PacketIdMismatch,
    /// The protocol name is neither `MQTT` (level 4) nor `MQIsdp` (level 3)
    /// `[MQTT-3.1.2-1]`.
    InvalidProtocolName,
    /// Protocol level other than 3 with `MQIsdp` or 4 with `MQTT`
    /// `[MQTT-3.1.2-2]`.
    UnsupportedProtocolLevel,
    /// CONNECT reserved flag set `[MQTT-3.1.2-3]`.
    ConnectReservedFlag,
    /// Will QoS or Will Retain set without the Will Flag
    /// `[MQTT-3.1.2-11]`, `[MQTT-3.1.2-13]`, `[MQTT-3.1.2-15]`.
    WillFlagsWithoutWill,
    /// Password flag set without the user name flag `[MQTT-3.1.2-22]`.
    PasswordWithoutUsername,
    /// An empty client identifier with CleanSession 0 `[MQTT-3.1.3-7]`.
    EmptyClientIdWithSession,
    /// CONNACK reserved flag bits set (section 3.2.2.1).
    ConnAckReservedFlags,
    /// CONNACK return code above 5 (section 3.2.2.3).
    InvalidConnectReturnCode,
    /// Session Present set with a non-zero return code `[MQTT-3.2.2-4]`.
    SessionPresentWithRefusal,
    /// A topic name is empty `[MQTT-4.7.3-1]`.
    EmptyTopic,
    /// A topic name contains `+` or `#` `[MQTT-3.3.2-2]`, `[MQTT-4.7.1-1]`.
    WildcardInTopicName,
    /// A topic filter places `#` or `+` where they are not allowed
    /// `[MQTT-4.7.1-2]`, `[MQTT-4.7.1-3]`.
    InvalidTopicFilter,
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter
    /// `[MQTT-3.8.3-3]`, `[MQTT-3.10.3-2]`.
    NoTopicFilters,
    /// SUBSCRIBE requested-QoS byte with reserved bits set `[MQTT-3-8.3-4]`.
    SubscribeReservedBits,
    /// SUBACK without return codes, or a code other than 0x00, 0x01, 0x02
    /// or 0x80 `[MQTT-3.9.3-2]`.
    InvalidSubAckReturnCode,
}

impl Malformed {
    /// The reason in a few words, for `Display` and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReservedPacketType => "reserved packet type",
            Self::InvalidFlags => "invalid fixed header flags",
            Self::InvalidQoS => "QoS 3",
            Self::DupWithQoS0 => "DUP set on QoS 0 PUBLISH",
            Self::RemainingLengthTooLong => "remaining length longer than 4 bytes",
            Self::RemainingLengthNotMinimal => "remaining length not minimally encoded",
            Self::PacketTooLarge => "packet larger than 268,435,455 bytes",
            Self::Truncated => "field runs past the remaining length",
            Self::TrailingBytes => "bytes after the last field",
            Self::InvalidUtf8 => "string is not UTF-8",
            Self::NullCharacter => "string contains U+0000",
            Self::StringTooLong => "string longer than 65,535 bytes",
            Self::ZeroPacketId => "packet identifier 0",
            Self::PacketIdMismatch => "packet identifier presence does not match QoS",
            Self::InvalidProtocolName => "unknown protocol name",
            Self::UnsupportedProtocolLevel => "unsupported protocol level",
            Self::ConnectReservedFlag => "CONNECT reserved flag set",
            Self::WillFlagsWithoutWill => "will QoS or retain without will flag",
            Self::PasswordWithoutUsername => "password without user name",
            Self::EmptyClientIdWithSession => "empty client id with persistent session",
            Self::ConnAckReservedFlags => "CONNACK reserved flags set",
            Self::InvalidConnectReturnCode => "CONNACK return code above 5",
            Self::SessionPresentWithRefusal => "session present with a refusal",
            Self::EmptyTopic => "empty topic",
            Self::WildcardInTopicName => "wildcard in topic name",
            Self::InvalidTopicFilter => "invalid topic filter",
            Self::NoTopicFilters => "no topic filters",
            Self::SubscribeReservedBits => "SUBSCRIBE QoS reserved bits set",
            Self::InvalidSubAckReturnCode => "invalid SUBACK return code",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`decode`](super::decode) returned no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// The bytes are a valid beginning but the packet is not complete:
    /// at least `needed` more bytes are required. Not an error of the peer.
    Incomplete {
        /// Lower bound on the number of bytes still missing.
        needed: usize,
    },
    /// The bytes can never become a valid packet.
    Malformed(Malformed),
}

impl From<Malformed> for DecodeError {
    fn from(m: Malformed) -> Self {
        Self::Malformed(m)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete { needed } => {
                write!(f, "incomplete packet, {needed} more bytes needed")
            }
            Self::Malformed(m) => write!(f, "malformed packet: {m}"),
        }
    }
}

/// Why [`encode`](super::encode) wrote no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The output buffer holds fewer than `needed` bytes.
    BufferTooSmall {
        /// Length of the encoded packet.
        needed: usize,
    },
    /// The packet would break the specification; nothing was written.
    Invalid(Malformed),
}

impl From<Malformed> for EncodeError {
    fn from(m: Malformed) -> Self {
        Self::Invalid(m)
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => write!(f, "buffer too small, {needed} bytes needed"),
            Self::Invalid(m) => write!(f, "invalid packet: {m}"),
        }
    }
}

impl core::error::Error for Malformed {}
impl core::error::Error for DecodeError {}
impl core::error::Error for EncodeError {}
