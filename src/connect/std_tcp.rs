//! [`StdConnector`]: TCP by host name for the blocking client, over
//! `std::net` (feature `std`).

extern crate std;

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use embedded_io_adapters::std::FromStd;

use super::{HostName, blocking::Connector};

/// Opens a blocking TCP connection to `host:port` with `std::net`,
/// resolving `host` with the system resolver on every connect and trying
/// each address in turn, each for at most the connect timeout if one is
/// set. TCP_NODELAY is on. The transport is the blocking client's
/// [`Transport`](crate::blocking::Transport) for `FromStd<TcpStream>`.
///
/// ```no_run
/// use std::time::Duration;
/// use umqtt::connect::StdConnector;
/// use umqtt::connect::blocking::Connector;
///
/// let mut connector =
///     StdConnector::new("localhost", 1883).connect_timeout(Duration::from_secs(5));
/// let socket = connector.connect()?; // FromStd<TcpStream>
/// // umqtt::blocking::Client::new(socket, &mut rx, &mut tx, handler, StdClock::new())
/// # drop(socket);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct StdConnector<H> {
    host: H,
    port: u16,
    timeout: Option<Duration>,
}

impl<H: AsRef<str>> StdConnector<H> {
    /// A connector to `host` (a host name or an IP address literal) on
    /// `port`, with no connect timeout of its own (the system's applies).
    pub fn new(host: H, port: u16) -> Self {
        Self { host, port, timeout: None }
    }

    /// Give up on each address after `timeout` (a blocking connect cannot
    /// be bounded from outside).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The port connected to.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl<H: AsRef<str>> HostName for StdConnector<H> {
    fn host(&self) -> &str {
        self.host.as_ref()
    }
}

impl<H: AsRef<str>> Connector for StdConnector<H> {
    type Transport<'c>
        = FromStd<TcpStream>
    where
        Self: 'c;
    type Error = io::Error;

    fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
        let mut last = None;
        for address in (self.host.as_ref(), self.port).to_socket_addrs()? {
            let attempt = match self.timeout {
                Some(timeout) => TcpStream::connect_timeout(&address, timeout),
                None => TcpStream::connect(address),
            };
            match attempt {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(FromStd::new(stream));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address")
        }))
    }
}
