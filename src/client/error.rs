//! The client's [`Error`] and connection [`State`].

use core::convert::Infallible;
use core::fmt;

use crate::packet::{ConnectReturnCode, EncodeError, Malformed, PacketId, PacketType};

/// Connection state, like QuecPython's `get_mqttsta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum State {
    /// Never connected, or closed by `disconnect`.
    Disconnected,
    /// CONNECT sent, CONNACK not yet received.
    Connecting,
    /// CONNACK accepted the connection.
    Connected,
    /// The connection broke (transport error, end of stream, protocol
    /// violation, keepalive expiry, refusal). Call `reconnect` with a new
    /// transport.
    Failed,
}

/// What the server did that the specification forbids. The client closes
/// the connection (its state becomes [`State::Failed`]), as section 4.8
/// requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolError {
    /// A packet that can never be valid.
    Malformed(Malformed),
    /// A packet a server must not send to a client, or not now: CONNECT,
    /// SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, a second CONNACK,
    /// anything before CONNACK `[MQTT-3.2.0-1]`, or an acknowledgment of
    /// the wrong kind (a PUBACK for a QoS 2 message, a PUBCOMP before its
    /// PUBREC, a PUBREC for a QoS 1 message).
    UnexpectedPacket(PacketType),
    /// A QoS 2 PUBLISH, though the client cannot receive QoS 2 (it has no
    /// slots for it) and so never subscribes above QoS 1 `[MQTT-3.8.4-6]`.
    QoS2Publish,
    /// A SUBACK with a different number of return codes than the
    /// SUBSCRIBE had topic filters `[MQTT-3.8.4-5]`.
    SubAckCountMismatch,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "malformed packet: {m}"),
            Self::UnexpectedPacket(t) => write!(f, "unexpected {t:?} packet"),
            Self::QoS2Publish => f.write_str("QoS 2 PUBLISH without a QoS 2 subscription"),
            Self::SubAckCountMismatch => {
                f.write_str("SUBACK return code count differs from SUBSCRIBE")
            }
        }
    }
}

impl core::error::Error for ProtocolError {}

/// An inbound packet larger than the receive buffer: drained from the
/// transport (a QoS 1 PUBLISH acknowledged with PUBACK, a QoS 2 one with
/// PUBREC), the connection kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Oversize {
    /// Packet type.
    pub packet_type: PacketType,
    /// Total packet length in bytes.
    pub size: usize,
    /// Topic length of a PUBLISH, when the buffer could hold its start.
    pub topic_len: Option<u16>,
    /// Whether it was acknowledged (PUBACK or PUBREC).
    pub acknowledged: bool,
}

/// Everything a client call can fail with. `E` is the transport's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed. Fatal.
    Transport(E),
    /// The transport reached end of stream (the broker closed). Fatal.
    ConnectionClosed,
    /// The server broke the protocol. Fatal.
    Protocol(ProtocolError),
    /// The broker refused CONNECT with this return code. Fatal.
    Refused(ConnectReturnCode),
    /// No PINGRESP or other packet within 1.5 × keepalive. Fatal.
    KeepAliveTimeout,
    /// The acknowledgment did not arrive within the ack timeout. The
    /// connection stays up (except when CONNACK is late: then the state is
    /// [`State::Failed`]); an unacknowledged QoS 1 or 2 PUBLISH stays
    /// stored and is resent by a reconnect that keeps the session.
    Timeout,
    /// The broker answered SUBSCRIBE with 0x80 (failure).
    SubscribeRefused,
    /// An inbound packet did not fit the receive buffer; it was drained and
    /// acknowledged, the connection kept.
    PacketTooLarge(Oversize),
    /// The outgoing packet does not fit the transmit buffer (or more than
    /// [`MAX_SUBSCRIBE_TOPICS`](crate::MAX_SUBSCRIBE_TOPICS) filters were
    /// given).
    BufferTooSmall {
        /// Bytes the packet (plus stored messages) needs.
        needed: usize,
    },
    /// The arguments would make an invalid packet (a wildcard in a topic
    /// name, an empty topic, QoS 2, ...). Nothing was sent.
    InvalidArgument(Malformed),
    /// The call needs a connected client.
    NotConnected,
    /// All 65,535 packet identifiers are in use by unfinished messages
    /// and the pending SUBSCRIBE or UNSUBSCRIBE. Nothing was sent.
    NoPacketId,
    /// A QoS 2 message arrived while every receive slot holds one awaiting
    /// its PUBREL. Fatal: the message was neither delivered nor
    /// acknowledged, so the broker sends it again after the reconnect.
    ReceiveSlotsFull,
    /// [`queue_publish`](crate::Client::queue_publish) could not queue now:
    /// the in-flight window or `tx` is full, or another packet is being
    /// written. Nothing was queued; an awaiting call (`publish_no_wait`,
    /// `flush`) makes room.
    WouldBlock,
    /// The session store failed (see [`crate::store`]). For a publish
    /// ([`StoreError::Full`](crate::store::StoreError::Full) included) the
    /// message was neither sent nor kept; any other record is tried again
    /// by the next call, before anything else is written.
    Store(crate::store::StoreError),
}

impl<E> Error<E> {
    /// Whether this error ended the connection (the state is now
    /// [`State::Failed`]).
    pub const fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Transport(_)
                | Self::ConnectionClosed
                | Self::Protocol(_)
                | Self::Refused(_)
                | Self::KeepAliveTimeout
                | Self::ReceiveSlotsFull
        )
    }

    /// Whether the connection is over and only a (re)connect helps: a
    /// fatal error, or [`NotConnected`](Self::NotConnected), which every
    /// call returns once the connection has failed. The predicate for an
    /// "on error, reconnect" loop.
    pub const fn needs_reconnect(&self) -> bool {
        self.is_fatal() || matches!(self, Self::NotConnected)
    }
}

impl Error<Infallible> {
    /// The same error for a client whose transport fails with `E`.
    pub(crate) fn widen<E>(self) -> Error<E> {
        match self {
            Self::Transport(never) => match never {},
            Self::ConnectionClosed => Error::ConnectionClosed,
            Self::Protocol(p) => Error::Protocol(p),
            Self::Refused(code) => Error::Refused(code),
            Self::KeepAliveTimeout => Error::KeepAliveTimeout,
            Self::Timeout => Error::Timeout,
            Self::SubscribeRefused => Error::SubscribeRefused,
            Self::PacketTooLarge(o) => Error::PacketTooLarge(o),
            Self::BufferTooSmall { needed } => Error::BufferTooSmall { needed },
            Self::InvalidArgument(m) => Error::InvalidArgument(m),
            Self::NotConnected => Error::NotConnected,
            Self::WouldBlock => Error::WouldBlock,
            Self::NoPacketId => Error::NoPacketId,
            Self::ReceiveSlotsFull => Error::ReceiveSlotsFull,
            Self::Store(e) => Error::Store(e),
        }
    }
}

/// A failed QoS 0, 1 or 2 publish: the error, and whether the message
/// was kept for resend. With `stored: Some(id)` the message is in the
/// outbox under packet identifier `id`: it is resent after a reconnect that
/// keeps the session (or counted as discarded by one that does not), and
/// [`wait_acked`](crate::Client::wait_acked) can still wait for it. With
/// `None` it was not kept: publish it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PublishError<E> {
    /// What went wrong.
    pub error: Error<E>,
    /// The packet identifier of the stored message, if it was stored.
    pub stored: Option<PacketId>,
}

impl<E> From<PublishError<E>> for Error<E> {
    fn from(e: PublishError<E>) -> Self {
        e.error
    }
}

impl<E> From<Error<E>> for PublishError<E> {
    /// An error before the message was stored.
    fn from(error: Error<E>) -> Self {
        Self { error, stored: None }
    }
}

impl<E: fmt::Debug> fmt::Display for PublishError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stored {
            Some(id) => write!(f, "{} (message stored as packet id {})", self.error, id.get()),
            None => write!(f, "{} (message not stored)", self.error),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for PublishError<E> {}

/// What [`connect`](crate::Client::connect) established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Connected {
    /// Whether the broker resumed a stored session (CONNACK's flag). When
    /// false, subscriptions must be made again.
    pub session_present: bool,
    /// Unfinished QoS 1 and QoS 2 messages this connect discarded because
    /// it started a clean session `[MQTT-3.1.2-6]`: they will not be
    /// delivered by this client. Always 0 with `clean_session(false)`.
    pub discarded: u16,
}

impl<E> From<EncodeError> for Error<E> {
    fn from(e: EncodeError) -> Self {
        match e {
            EncodeError::BufferTooSmall { needed } => Self::BufferTooSmall { needed },
            EncodeError::Invalid(m) => Self::InvalidArgument(m),
        }
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "transport error: {e:?}"),
            Self::ConnectionClosed => f.write_str("connection closed by peer"),
            Self::Protocol(p) => write!(f, "protocol violation: {p}"),
            Self::Refused(code) => write!(f, "connection refused: {code}"),
            Self::KeepAliveTimeout => f.write_str("keepalive timeout: broker not answering"),
            Self::Timeout => f.write_str("acknowledgment timeout"),
            Self::SubscribeRefused => f.write_str("subscription refused by broker (0x80)"),
            Self::PacketTooLarge(o) => match o.topic_len {
                Some(t) => write!(
                    f,
                    "inbound {:?} of {} bytes (topic {t} bytes) exceeds the receive buffer",
                    o.packet_type, o.size
                ),
                None => write!(
                    f,
                    "inbound {:?} of {} bytes exceeds the receive buffer",
                    o.packet_type, o.size
                ),
            },
            Self::BufferTooSmall { needed } => {
                write!(f, "transmit buffer too small, {needed} bytes needed")
            }
            Self::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Self::NotConnected => f.write_str("not connected"),
            Self::WouldBlock => f.write_str("cannot queue now: window or transmit buffer full"),
            Self::NoPacketId => f.write_str("every packet identifier is in use"),
            Self::ReceiveSlotsFull => f.write_str("every QoS 2 receive slot awaits a PUBREL"),
            Self::Store(e) => write!(f, "session store: {e}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}
