//! How the `cli` example opens each connection, as a
//! `umqtt::connect::Connector`: TCP by host name (`TokioConnector`), TLS
//! over it (`umqtt::tls::TlsConnector`, feature `tls`), a WebSocket over
//! either ([`WsConnector`], feature `ws`), and [`Reporting`] around the
//! whole, which keeps the last failure as one line for the user (the
//! always-connected runner only reports that the connector failed) and
//! makes each transport [`Graceful`].

use std::cell::RefCell;
use std::rc::Rc;

use embedded_io_async::{ErrorType, Read, Write};
use umqtt::connect::Connector;

/// A connector error described for the user, with the address tried.
pub trait Describe {
    /// One line: what failed, at `addr` (`host:port`).
    fn describe(&self, addr: &str) -> String;
}

impl Describe for std::io::Error {
    fn describe(&self, addr: &str) -> String {
        format!("cannot connect to {addr}: {self}")
    }
}

#[cfg(feature = "tls")]
impl<E: Describe> Describe for umqtt::tls::TlsConnectorError<E> {
    fn describe(&self, addr: &str) -> String {
        match self {
            Self::Transport(e) => e.describe(addr),
            Self::Tls(e) => format!("TLS with {addr}: {e}"),
        }
    }
}

/// The last failure of a [`Reporting`] connector, shared with whoever
/// tells the user.
pub type LastFailure = Rc<RefCell<Option<String>>>;

/// `inner`, keeping the description of its last failure in a
/// [`LastFailure`].
pub struct Reporting<K> {
    inner: K,
    addr: String,
    last: LastFailure,
}

impl<K> Reporting<K> {
    /// Wraps `inner`, which connects to `addr` (`host:port`).
    pub fn new(inner: K, addr: String, last: LastFailure) -> Self {
        Self { inner, addr, last }
    }
}

impl<K: Connector> Connector for Reporting<K>
where
    K::Error: Describe,
{
    type Transport<'c>
        = Graceful<K::Transport<'c>>
    where
        Self: 'c;
    type Error = K::Error;

    async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
        match self.inner.connect().await {
            Ok(inner) => Ok(Graceful { inner, scan: Scan::Start, last: 0, disconnected: false }),
            Err(e) => {
                *self.last.borrow_mut() = Some(e.describe(&self.addr));
                Err(e)
            }
        }
    }
}

/// A transport that ends gracefully: once the client has written and
/// flushed DISCONNECT, the flush also reads (and drops) what the broker
/// still sends, until it closes the connection. Closing a socket with
/// unread bytes makes the kernel reset the connection, and a broker that
/// sees the reset before it read the DISCONNECT drops it, with the last
/// acknowledgments, and publishes the Will. The client's flush is bounded
/// by its ack timeout, so a broker that does not close costs that long.
pub struct Graceful<T> {
    inner: T,
    /// Where the written bytes are in their packet.
    scan: Scan,
    /// The first byte of the packet being written.
    last: u8,
    /// The last whole packet written was DISCONNECT.
    disconnected: bool,
}

/// Where a byte written is in its MQTT packet.
#[derive(Clone, Copy)]
enum Scan {
    /// Its first byte (type and flags).
    Start,
    /// The remaining length, this much so far, at this bit.
    Length(usize, u32),
    /// The body, this many bytes still to come.
    Body(usize),
}

impl<T> Graceful<T> {
    /// Follows the packets in `written`.
    fn scan(&mut self, written: &[u8]) {
        for &byte in written {
            self.scan = match self.scan {
                Scan::Start => {
                    self.last = byte;
                    Scan::Length(0, 0)
                }
                Scan::Length(len, shift) => {
                    let len = len | usize::from(byte & 0x7f) << shift;
                    match (byte & 0x80 != 0, len) {
                        (true, _) => Scan::Length(len, shift + 7),
                        (false, 0) => self.complete(),
                        (false, len) => Scan::Body(len),
                    }
                }
                Scan::Body(1) => self.complete(),
                Scan::Body(left) => Scan::Body(left - 1),
            };
        }
    }

    /// A whole packet was written.
    fn complete(&mut self) -> Scan {
        self.disconnected = self.last == 0xe0;
        Scan::Start
    }
}

impl<T: ErrorType> ErrorType for Graceful<T> {
    type Error = T::Error;
}

impl<T: Read> Read for Graceful<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.inner.read(buf).await
    }
}

impl<T: Read + Write> Write for Graceful<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = self.inner.write(buf).await?;
        self.scan(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await?;
        if self.disconnected {
            let mut drop = [0u8; 512];
            while let Ok(1..) = self.inner.read(&mut drop).await {}
        }
        Ok(())
    }
}

#[cfg(feature = "ws")]
pub use websocket::WsConnector;

#[cfg(feature = "ws")]
mod websocket {
    use umqtt::connect::Connector;
    use umqtt::ws::{self, FRAME_OVERHEAD, WsOptions, WsStream};

    use super::Describe;
    use crate::tls_open::OsRng;

    /// MQTT over a WebSocket opened on each transport `inner` opens; the
    /// stream borrows the connector's frame buffer.
    pub struct WsConnector<K> {
        inner: K,
        /// The `Host` header: `host:port`.
        host: String,
        path: String,
        tx: Vec<u8>,
    }

    impl<K> WsConnector<K> {
        /// A WebSocket on `path` of `host` (`host:port`) over `inner`.
        pub fn new(inner: K, host: String, path: String) -> Self {
            Self { inner, host, path, tx: vec![0u8; 4096 + FRAME_OVERHEAD] }
        }
    }

    /// Why a [`WsConnector`] could not connect.
    #[derive(Debug)]
    pub enum WsConnectError<E> {
        /// The inner connector failed.
        Connect(E),
        /// The opening handshake failed: described.
        Handshake(String),
    }

    impl<E: Describe> Describe for WsConnectError<E> {
        fn describe(&self, addr: &str) -> String {
            match self {
                Self::Connect(e) => e.describe(addr),
                Self::Handshake(what) => what.clone(),
            }
        }
    }

    impl<K: Connector> Connector for WsConnector<K> {
        type Transport<'c>
            = WsStream<'c, K::Transport<'c>, OsRng>
        where
            Self: 'c;
        type Error = WsConnectError<K::Error>;

        async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
            let transport = self.inner.connect().await.map_err(WsConnectError::Connect)?;
            let options = WsOptions::new(&self.host, &self.path);
            let (host, path) = (&self.host, &self.path);
            ws::connect(transport, &mut self.tx, &options, OsRng)
                .await
                .map_err(|e| WsConnectError::Handshake(format!("WebSocket {host}{path}: {e}")))
        }
    }
}
