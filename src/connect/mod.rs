//! Connectors: how an always-connected client opens a new transport.
//!
//! A [`Connector`] opens one transport to the broker per call: a TCP
//! connection, a TLS stream over one, a WebSocket. The transport may borrow
//! the connector (its socket buffers, its TLS record buffers, its network
//! stack), so a connector owns everything one connection needs and the
//! always-connected client keeps each transport only for as long as its
//! connection lasts. [`blocking::Connector`] is the twin for the blocking
//! client.
//!
//! Ready connectors, each cancel-safe and each knowing the [`HostName`]
//! it connects to (the TLS connector checks the broker's certificate
//! against it by default):
//!
//! - `TcpConnector` (feature `nal`): by host name or IP over
//!   embedded-nal-async `TcpConnect` and `Dns`, so over embassy-net's
//!   `TcpClient` and `DnsSocket`;
//! - `TokioConnector` (feature `tokio`): by host name on the host;
//! - `StdConnector` (feature `std`): a [`blocking::Connector`] over
//!   `std::net` for the blocking client;
//! - `umqtt::tls::TlsConnector` (feature `tls`): TLS over any of them,
//!   owning the record buffers it lends to each connection.
//!
//! None of them bounds the time a connect takes (a caller wraps
//! `connect()` in a timeout); every one is cancel-safe: dropping its
//! `connect()` future leaks nothing and leaves nothing half open.

#[cfg(feature = "nal")]
mod nal;
#[cfg(feature = "std")]
mod std_tcp;
#[cfg(feature = "tokio")]
mod tokio_tcp;

#[cfg(feature = "nal")]
pub use nal::{NalError, TcpConnector};
#[cfg(feature = "std")]
pub use std_tcp::StdConnector;
#[cfg(feature = "tokio")]
pub use tokio_tcp::TokioConnector;

/// The host name (or IP address literal) a connector connects to: the
/// default server name the TLS connector sends as SNI and checks the
/// broker's certificate against.
pub trait HostName {
    /// The host name or IP address literal, as given to the connector.
    fn host(&self) -> &str;
}

/// Opens a new transport to the broker, once per connection attempt.
///
/// The transport borrows the connector for as long as it is open, so the
/// connector can own the memory a connection needs (socket buffers, TLS
/// record buffers) and lend it to each connection in turn, with no lifetime
/// for its user to spell out.
#[allow(async_fn_in_trait)]
pub trait Connector {
    /// The transport of one connection.
    type Transport<'c>: embedded_io_async::Read + embedded_io_async::Write
    where
        Self: 'c;
    /// Why a transport could not be opened (name resolution, TCP, TLS).
    type Error: core::fmt::Debug;

    /// Opens a new transport to the broker. A transport that failed is
    /// dropped before the next call.
    async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error>;
}

/// A connector lent by reference, so its owner keeps it.
impl<K: Connector> Connector for &mut K {
    type Transport<'c>
        = K::Transport<'c>
    where
        Self: 'c;
    type Error = K::Error;

    async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
        K::connect(self).await
    }
}

impl<K: HostName + ?Sized> HostName for &K {
    fn host(&self) -> &str {
        K::host(self)
    }
}

impl<K: HostName + ?Sized> HostName for &mut K {
    fn host(&self) -> &str {
        K::host(self)
    }
}

/// The blocking twin of [`Connector`].
pub mod blocking {
    /// Opens a new transport to the broker, once per connection attempt;
    /// see [`Connector`](super::Connector).
    pub trait Connector {
        /// The transport of one connection.
        type Transport<'c>: crate::blocking::Transport
        where
            Self: 'c;
        /// Why a transport could not be opened.
        type Error: core::fmt::Debug;

        /// Opens a new transport to the broker.
        fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error>;
    }

    /// A connector lent by reference, so its owner keeps it.
    impl<K: Connector> Connector for &mut K {
        type Transport<'c>
            = K::Transport<'c>
        where
            Self: 'c;
        type Error = K::Error;

        fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
            K::connect(self)
        }
    }
}
