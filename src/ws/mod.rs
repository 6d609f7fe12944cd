//! MQTT over WebSocket (feature `ws`): the client side of RFC 6455 as a
//! transport, for brokers reachable only through an HTTP port or path
//! (`ws://`, and `wss://` over [`tls`](crate::tls)). No heap.
//!
//! [`connect`] performs the HTTP/1.1 Upgrade handshake with
//! `Sec-WebSocket-Protocol: mqtt` (MQTT 3.1.1 §6) and checks the
//! server's `Sec-WebSocket-Accept`; the [`WsStream`] it returns
//! implements embedded-io-async `Read` + `Write`, so
//! [`Client`](crate::Client) runs over it unchanged.
//!
//! ```
//! use embedded_io_async::{Read, Write};
//! use umqtt::ws::{self, RngCore, WsOptions};
//!
//! async fn open<S: Read + Write>(
//!     socket: S,        // a connected TCP socket (or a umqtt::tls stream for wss)
//!     rng: impl RngCore, // the HAL RNG: masking keys and the handshake key
//!     ws_tx: &mut [u8], // outgoing frames: the client's tx size + ws::FRAME_OVERHEAD
//! ) -> Result<(), ws::Error<S::Error>> {
//!     let options = WsOptions::new("broker.example.com:8083", "/mqtt")
//!         .headers(&[("Authorization", "Bearer token")]);
//!     let stream = ws::connect(socket, ws_tx, &options, rng).await?;
//!     // umqtt::Client::new(stream, &mut rx, &mut tx, on_message)
//!     # drop(stream);
//!     Ok(())
//! }
//! ```
//!
//! Written here rather than taken from the `embedded-websocket` crate,
//! whose async framer runs over `futures` `Stream`/`Sink` rather than
//! embedded-io-async, buffers whole frames, keeps read state in its
//! futures (not cancel-safe) and can panic on a close frame without a
//! status code.

mod error;
mod frame;
mod handshake;
mod sha1;
mod stream;

use embedded_io_async::{Read, Write};

pub use error::{Error, FrameError, HandshakeError};
pub use rand_core::RngCore;
pub use stream::WsStream;

/// Bytes a client frame adds to its payload at most: the header with a
/// 64-bit length and the masking key. A write buffer of the client's
/// `tx` size plus this carries each packet in one frame.
pub const FRAME_OVERHEAD: usize = frame::MAX_CLIENT_HEADER;

/// Where to open the WebSocket: the `Host` header, the request path and
/// any extra headers (an `Authorization` or a cookie a broker or gateway
/// wants).
#[derive(Debug, Clone, Copy)]
pub struct WsOptions<'a> {
    host: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
}

impl<'a> WsOptions<'a> {
    /// A request for `path` (e.g. `/mqtt` for Mosquitto and EMQX, `/ws`
    /// for RabbitMQ) on `host`, with the port when it is not 80 or 443
    /// (`broker.example.com:8083`).
    pub fn new(host: &'a str, path: &'a str) -> Self {
        Self { host, path, headers: &[] }
    }

    /// Extra headers sent with the request, as `(name, value)` pairs.
    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }
}

/// Opens a WebSocket over `transport` (RFC 6455 §4.1): sends the Upgrade
/// request with a `Sec-WebSocket-Key` made from `rng`, reads the response
/// head (never past its blank line) and checks it: status 101, `Upgrade`
/// and `Connection`, the `Sec-WebSocket-Accept` for the key, the `mqtt`
/// subprotocol, no extension.
///
/// `tx` holds the request, then the response head, then the outgoing
/// frames of the stream: 512 bytes take a typical handshake; see
/// [`FRAME_OVERHEAD`]. `rng` stays with the stream for the masking keys.
///
/// Not cancel-safe: a dropped handshake leaves the connection unusable.
pub async fn connect<'b, T, R>(
    mut transport: T,
    tx: &'b mut [u8],
    options: &WsOptions<'_>,
    mut rng: R,
) -> Result<WsStream<'b, T, R>, Error<T::Error>>
where
    T: Read + Write,
    R: RngCore,
{
    let mut nonce = [0; 16];
    rng.fill_bytes(&mut nonce);
    let key = handshake::key(&nonce);
    let len = handshake::write_request(options, &key, tx)?;
    stream::write_out(&mut transport, tx, &mut stream::Pending { start: 0, end: len }).await?;
    transport.flush().await.map_err(Error::Transport)?;
    let mut received = 0;
    loop {
        let want = handshake::head_remaining(tx.get(..received).unwrap_or_default());
        if want == 0 {
            break;
        }
        let end = received.saturating_add(want).min(tx.len());
        let into = tx.get_mut(received..end).unwrap_or_default();
        if into.is_empty() {
            return Err(HandshakeError::BufferTooSmall { needed: tx.len() + 1 }.into());
        }
        match transport.read(into).await.map_err(Error::Transport)? {
            0 => return Err(HandshakeError::ConnectionClosed.into()),
            n => received += n.min(end - received),
        }
    }
    handshake::check_response(tx.get(..received).unwrap_or_default(), &key)?;
    Ok(WsStream::new(transport, tx, rng))
}
