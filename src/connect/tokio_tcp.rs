//! [`TokioConnector`]: TCP by host name on the host, over tokio (feature
//! `tokio`).

extern crate std;

use std::io;

use embedded_io_adapters::tokio_1::FromTokio;
use tokio::net::TcpStream;

use super::{Connector, HostName};

/// Opens a TCP connection to `host:port` with tokio, resolving `host`
/// through tokio's resolver (the system's, so `localhost`, `/etc/hosts`
/// and DNS all work) on every connect and trying each address in turn.
/// TCP_NODELAY is on: MQTT packets are small and each one is awaited.
///
/// ```no_run
/// use umqtt::connect::{Connector, TokioConnector};
///
/// # async fn demo() -> std::io::Result<()> {
/// let mut connector = TokioConnector::new("localhost", 1883);
/// let socket = connector.connect().await?; // FromTokio<TcpStream>
/// // umqtt::Client::new(socket, &mut rx, &mut tx, handler)
/// # drop(socket);
/// # Ok(())
/// # }
/// ```
///
/// `H` is anything that holds the host name: `&str`, `String`.
///
/// **Cancel safety**: dropping the future of [`connect`](Connector::connect)
/// closes the socket being connected; nothing is left behind.
#[derive(Debug, Clone)]
pub struct TokioConnector<H> {
    host: H,
    port: u16,
}

impl<H: AsRef<str>> TokioConnector<H> {
    /// A connector to `host` (a host name or an IP address literal) on
    /// `port`.
    pub fn new(host: H, port: u16) -> Self {
        Self { host, port }
    }

    /// The port connected to.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl<H: AsRef<str>> HostName for TokioConnector<H> {
    fn host(&self) -> &str {
        self.host.as_ref()
    }
}

impl<H: AsRef<str>> Connector for TokioConnector<H> {
    type Transport<'c>
        = FromTokio<TcpStream>
    where
        Self: 'c;
    type Error = io::Error;

    async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
        let stream = TcpStream::connect((self.host.as_ref(), self.port)).await?;
        stream.set_nodelay(true)?;
        Ok(FromTokio::new(stream))
    }
}
