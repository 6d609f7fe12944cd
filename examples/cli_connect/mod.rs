//! How the `cli` example opens each connection, as a
//! `umqtt::connect::Connector`: TCP by host name (`TokioConnector`), TLS
//! over it (`umqtt::tls::TlsConnector`, feature `tls`), a WebSocket over
//! either ([`WsConnector`], feature `ws`), and [`Reporting`] around the
//! whole, which keeps the last failure as one line for the user (the
//! always-connected runner only reports that the connector failed).

use std::cell::RefCell;
use std::rc::Rc;

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
        = K::Transport<'c>
    where
        Self: 'c;
    type Error = K::Error;

    async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
        match self.inner.connect().await {
            Ok(transport) => Ok(transport),
            Err(e) => {
                *self.last.borrow_mut() = Some(e.describe(&self.addr));
                Err(e)
            }
        }
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
