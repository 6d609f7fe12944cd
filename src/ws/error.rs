//! What the WebSocket layer fails with.

use core::fmt;

use embedded_io_async::ErrorKind;

/// The opening handshake failed (RFC 6455 §4.1). The connection is not
/// usable: close the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HandshakeError {
    /// The host, path or an extra header holds a CR, LF or other control
    /// character (or a space in the host or path, a colon in a header
    /// name), or the path does not start with `/`.
    InvalidRequest,
    /// The request, or the server's response head, needs a larger write
    /// buffer: `needed` bytes for the request; for the response, one more
    /// than the buffer has.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The server closed the connection before the end of its response.
    ConnectionClosed,
    /// The response is not HTTP/1.1 with a 3-digit status and
    /// `name: value` header lines.
    MalformedResponse,
    /// The server answered with this status instead of 101 Switching
    /// Protocols (400 bad request, 401 unauthorised, 404 wrong path...).
    Status(u16),
    /// No `Upgrade: websocket` or no `Connection: Upgrade` header.
    NotUpgraded,
    /// `Sec-WebSocket-Accept` missing or not the one for the key sent.
    AcceptMismatch,
    /// No `Sec-WebSocket-Protocol` header: the server did not agree to
    /// `mqtt` (MQTT 3.1.1 §6 requires it).
    SubprotocolMissing,
    /// A `Sec-WebSocket-Protocol` other than `mqtt`.
    SubprotocolMismatch,
    /// A `Sec-WebSocket-Extensions` header, though none was requested.
    UnrequestedExtension,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRequest => f.write_str("host, path or header not allowed in a request"),
            Self::BufferTooSmall { needed } => {
                write!(f, "WebSocket handshake needs a {needed}-byte buffer")
            }
            Self::ConnectionClosed => f.write_str("server closed during the WebSocket handshake"),
            Self::MalformedResponse => f.write_str("malformed HTTP response to the upgrade"),
            Self::Status(code) => write!(f, "server refused the WebSocket upgrade: HTTP {code}"),
            Self::NotUpgraded => {
                f.write_str("response lacks Upgrade: websocket / Connection: Upgrade")
            }
            Self::AcceptMismatch => f.write_str("wrong or missing Sec-WebSocket-Accept"),
            Self::SubprotocolMissing => f.write_str("server did not select subprotocol mqtt"),
            Self::SubprotocolMismatch => {
                f.write_str("server selected a subprotocol other than mqtt")
            }
            Self::UnrequestedExtension => f.write_str("server enabled an extension not requested"),
        }
    }
}

impl core::error::Error for HandshakeError {}

/// A frame from the server that RFC 6455 §5 (or MQTT 3.1.1 §6) forbids.
/// Fatal: close the socket (RFC 6455 §7.1.7 "fails the connection").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FrameError {
    /// A masked frame: a server must not mask (§5.1).
    MaskedFrame,
    /// A reserved bit (RSV1-3) set, though no extension was negotiated.
    ReservedBits,
    /// A reserved opcode (3-7, 0xB-0xF).
    ReservedOpcode(u8),
    /// A text frame: MQTT is carried in binary frames only
    /// `[MQTT-6.0.0-1]`.
    TextFrame,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlTooLong,
    /// A control frame without FIN (§5.5).
    FragmentedControl,
    /// A continuation frame with no fragmented message to continue.
    UnexpectedContinuation,
    /// A new binary message while the previous one is unfinished (§5.4).
    UnfinishedMessage,
    /// A 16- or 64-bit payload length that a shorter form could hold.
    NonMinimalLength,
    /// A 64-bit payload length with its most significant bit set.
    LengthTooLarge,
    /// A close frame with a 1-byte payload (a status code is 2 bytes).
    BadClosePayload,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaskedFrame => f.write_str("masked frame from the server"),
            Self::ReservedBits => f.write_str("frame with reserved bits set"),
            Self::ReservedOpcode(op) => write!(f, "frame with reserved opcode {op:#x}"),
            Self::TextFrame => f.write_str("text frame (MQTT needs binary frames)"),
            Self::ControlTooLong => f.write_str("control frame longer than 125 bytes"),
            Self::FragmentedControl => f.write_str("fragmented control frame"),
            Self::UnexpectedContinuation => f.write_str("continuation frame without a message"),
            Self::UnfinishedMessage => f.write_str("new message before the last one's final frame"),
            Self::NonMinimalLength => f.write_str("payload length not in its minimal form"),
            Self::LengthTooLarge => f.write_str("64-bit payload length with the top bit set"),
            Self::BadClosePayload => f.write_str("close frame with a 1-byte payload"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Everything a [`WsStream`](super::WsStream) or [`connect`](super::connect)
/// can fail with. `E` is the transport's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed.
    Transport(E),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// The server sent a frame it must not.
    Frame(FrameError),
    /// The connection ended inside a frame.
    Truncated,
    /// The transport accepted no byte of a write.
    WriteZero,
    /// The server sent a close frame (answered with one), with this
    /// status code if it gave one (1000 normal, 1001 going away...); or
    /// the stream was closed by [`close`](super::WsStream::close).
    Closed {
        /// The server's status code.
        code: Option<u16>,
    },
}

impl<E> From<HandshakeError> for Error<E> {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl<E> From<FrameError> for Error<E> {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "transport error: {e:?}"),
            Self::Handshake(e) => e.fmt(f),
            Self::Frame(e) => write!(f, "WebSocket protocol error: {e}"),
            Self::Truncated => f.write_str("connection ended inside a WebSocket frame"),
            Self::WriteZero => f.write_str("transport accepted no bytes"),
            Self::Closed { code: Some(code) } => write!(f, "WebSocket closed with status {code}"),
            Self::Closed { code: None } => f.write_str("WebSocket closed without status"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

impl<E: embedded_io_async::Error> embedded_io_async::Error for Error<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Transport(e) => e.kind(),
            Self::Handshake(_) | Self::Frame(_) => ErrorKind::InvalidData,
            Self::Truncated => ErrorKind::ConnectionReset,
            Self::WriteZero => ErrorKind::WriteZero,
            Self::Closed { .. } => ErrorKind::ConnectionAborted,
        }
    }
}
