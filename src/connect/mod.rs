//! Connectors: how an always-connected client opens a new transport.
//!
//! A [`Connector`] opens one transport to the broker per call: a TCP
//! connection, a TLS stream over one, a WebSocket. The transport may borrow
//! the connector (its socket buffers, its TLS record buffers, its network
//! stack), so a connector owns everything one connection needs and the
//! always-connected client keeps each transport only for as long as its
//! connection lasts. [`blocking::Connector`] is the twin for the blocking
//! client.

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
}
