//! What the application sees of the always-connected client: events,
//! the link state, why a connection ended, counters.

use core::fmt;

use embassy_time::Duration;

use crate::packet::ConnectReturnCode;
use crate::store::StoreError;
use crate::{Error as ClientError, ProtocolError};

/// Something the [`Runner`](super::Runner) did, in the order it happened,
/// handed to [`Hooks::on_event`](super::Hooks::on_event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event {
    /// The broker accepted the connection (CONNACK 0).
    Connected {
        /// Whether the broker resumed the stored session; if not, the
        /// remembered subscriptions are being sent again.
        session_present: bool,
    },
    /// After [`Connected`](Self::Connected): every remembered
    /// subscription is active again (the ones the broker had lost were
    /// sent and acknowledged), and the stored messages are being resent.
    Resubscribed {
        /// Subscriptions sent again (0 when the broker kept the session).
        count: u16,
    },
    /// A connection, or an attempt at one, ended.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// The runner waits `delay` before the next connection attempt.
    ReconnectAttempt {
        /// The wait, from the [`Backoff`](super::Backoff) schedule.
        delay: Duration,
    },
}

/// Why a connection (or an attempt at one) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The connector could not open a transport (name resolution, TCP,
    /// TLS).
    ConnectFailed,
    /// No transport, or no CONNACK, within the connect timeout.
    ConnectTimeout,
    /// The transport failed.
    Io(embedded_io::ErrorKind),
    /// The transport reached end of stream (the broker closed).
    Closed,
    /// A write did not finish within the ack timeout (the broker stopped
    /// reading).
    WriteTimeout,
    /// No packet from the broker within 1.5 × keepalive.
    KeepAliveTimeout,
    /// The broker broke the protocol.
    Protocol(ProtocolError),
    /// The broker refused CONNECT with this return code.
    Refused(ConnectReturnCode),
    /// A QoS 2 message arrived with every receive slot taken (it is
    /// redelivered after the reconnect).
    ReceiveSlotsFull,
    /// CONNECT, or a stored message, does not fit the transmit buffer.
    BufferTooSmall,
    /// The store could not record a step of the session (an
    /// acknowledgment or a received QoS 2 identifier): the wire waits for
    /// it, so the connection ends and the record is tried again first on
    /// the next one.
    Store(StoreError),
    /// [`Client::close`](super::Client::close) asked the runner to stop.
    Requested,
}

impl DisconnectReason {
    /// The reason for an error of the engine.
    pub(crate) fn from_engine(e: ClientError<core::convert::Infallible>) -> Self {
        match e {
            ClientError::ConnectionClosed => Self::Closed,
            ClientError::Protocol(p) => Self::Protocol(p),
            ClientError::Refused(code) => Self::Refused(code),
            ClientError::KeepAliveTimeout => Self::KeepAliveTimeout,
            ClientError::ReceiveSlotsFull => Self::ReceiveSlotsFull,
            ClientError::Timeout => Self::ConnectTimeout,
            _ => Self::BufferTooSmall,
        }
    }

    /// Whether the broker refused the credentials (CONNACK 4 or 5):
    /// retrying soon cannot help.
    pub fn is_auth_refusal(&self) -> bool {
        matches!(
            self,
            Self::Refused(
                ConnectReturnCode::BadUserNameOrPassword | ConnectReturnCode::NotAuthorized
            )
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectFailed => f.write_str("could not open a transport"),
            Self::ConnectTimeout => {
                f.write_str("no transport or CONNACK within the connect timeout")
            }
            Self::Io(kind) => write!(f, "transport error: {kind:?}"),
            Self::Closed => f.write_str("the broker closed the connection"),
            Self::WriteTimeout => f.write_str("a write did not finish within the ack timeout"),
            Self::KeepAliveTimeout => {
                f.write_str("no packet from the broker within 1.5 x keepalive")
            }
            Self::Protocol(p) => write!(f, "protocol error: {p}"),
            Self::Refused(code) => write!(f, "CONNECT refused: {code:?}"),
            Self::ReceiveSlotsFull => f.write_str("every QoS 2 receive slot is taken"),
            Self::BufferTooSmall => f.write_str("a packet does not fit the transmit buffer"),
            Self::Store(e) => write!(f, "the session could not be stored: {e}"),
            Self::Requested => f.write_str("closed by the application"),
        }
    }
}

impl core::error::Error for DisconnectReason {}

/// Where the always-connected client is, like QuecPython's `get_mqttsta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkState {
    /// Opening a transport or awaiting CONNACK.
    Connecting,
    /// Connected; handle commands go out.
    Connected,
    /// Waiting for the next attempt (see [`Event::ReconnectAttempt`]).
    Disconnected,
    /// The runner has stopped: closed, or refused with
    /// [`Config::stop_on_auth_refusal`](super::Config::stop_on_auth_refusal).
    Failed,
}

/// Counters a firmware author logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Connections the broker accepted, the first one included.
    pub connects: u32,
    /// Connection attempts, successful or not.
    pub attempts: u32,
    /// Connections accepted after the first: `connects − 1`, or 0.
    pub reconnects: u32,
    /// Why the last connection or attempt ended.
    pub last_error: Option<DisconnectReason>,
}
