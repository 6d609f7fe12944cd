//! [`TlsConnector`]: TLS 1.3 over any [`Connector`], with the record
//! buffers, the options and the RNG held by the connector and lent to one
//! connection at a time.

use core::fmt;

use super::{ConnectError, CryptoRngCore, NoClock, TlsClock, TlsOptions, TlsStream};
use crate::connect::{Connector, HostName};

/// Opens a TLS 1.3 stream over each transport its inner connector opens
/// (TCP by host name, for example), running [`connect`](super::connect)
/// with the record buffers, options and RNG it holds. Each stream borrows
/// the connector, so the record buffers are lent to one connection at a
/// time and reused by the next: the user writes no lifetime workaround
/// and keeps no stream across reconnects.
///
/// The server name (SNI and certificate verification) is the inner
/// connector's [`HostName`] unless the options name one
/// ([`TlsOptions::with_server_name`]); build options without a name with
/// [`TlsOptions::for_host`].
///
/// ```
/// # async fn demo<T: embedded_nal_async::TcpConnect, D: embedded_nal_async::Dns>(
/// #     tcp_client: T, dns_socket: D, rng: impl umqtt::tls::CryptoRngCore,
/// # ) {
/// use umqtt::connect::{Connector, TcpConnector};
/// use umqtt::tls::{self, TlsConnector, TlsOptions};
///
/// # let ca_der = [0u8; 0];
/// // On firmware these come from static_cell::StaticCell.
/// let mut read_record = [0u8; tls::READ_RECORD_BUFFER];
/// let mut write_record = [0u8; 2 * (1024 + tls::TLS_RECORD_OVERHEAD)];
/// let tcp = TcpConnector::new(tcp_client, dns_socket, "broker.example.com", 8883);
/// // Verified against the CA, as "broker.example.com".
/// let options = TlsOptions::for_host(&ca_der);
/// let mut connector = TlsConnector::new(tcp, options, &mut read_record, &mut write_record, rng);
/// if let Ok(stream) = connector.connect().await {
///     // umqtt::Client::new(stream, &mut rx, &mut tx, handler); when the
///     // connection ends, drop it and call connector.connect() again.
///     # drop(stream);
/// }
/// # }
/// ```
///
/// **Cancel safety**: dropping the future of [`connect`](Connector::connect)
/// drops the inner transport and the half-done handshake; the record
/// buffers hold nothing the next handshake needs.
pub struct TlsConnector<'b, K, R, C: TlsClock = NoClock> {
    inner: K,
    options: TlsOptions<'b, C>,
    read_record: &'b mut [u8],
    write_record: &'b mut [u8],
    rng: R,
}

impl<'b, K, R, C> TlsConnector<'b, K, R, C>
where
    K: Connector + HostName,
    R: CryptoRngCore,
    C: TlsClock,
{
    /// TLS over `inner` with `options`; `read_record` and `write_record`
    /// are sized as for [`connect`](super::connect)
    /// ([`TlsOptions::read_record_buffer_len`],
    /// [`TlsOptions::min_write_record_buffer_len`] at least); `rng` must be
    /// a cryptographically secure RNG.
    pub fn new(
        inner: K,
        options: TlsOptions<'b, C>,
        read_record: &'b mut [u8],
        write_record: &'b mut [u8],
        rng: R,
    ) -> Self {
        Self { inner, options, read_record, write_record, rng }
    }

    /// The inner connector.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    /// The inner connector, to change it between connections.
    pub fn inner_mut(&mut self) -> &mut K {
        &mut self.inner
    }
}

impl<K: HostName, R, C: TlsClock> HostName for TlsConnector<'_, K, R, C> {
    /// The server name the broker's certificate is checked against.
    fn host(&self) -> &str {
        match self.options.server_name() {
            "" => self.inner.host(),
            name => name,
        }
    }
}

impl<K, R, C> Connector for TlsConnector<'_, K, R, C>
where
    K: Connector + HostName,
    R: CryptoRngCore,
    C: TlsClock,
{
    type Transport<'c>
        = TlsStream<'c, K::Transport<'c>>
    where
        Self: 'c;
    type Error = TlsConnectorError<K::Error>;

    async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
        // The transport borrows the inner connector, so its host name is
        // copied out first (a server name is at most 64 bytes).
        let mut name = [0u8; 64];
        let host = self.host().as_bytes();
        let copy = name.get_mut(..host.len()).ok_or(ConnectError::InvalidServerName)?;
        copy.copy_from_slice(host);
        let name = core::str::from_utf8(copy).map_err(|_| ConnectError::InvalidServerName)?;
        let options = self.options.named(name);
        let socket = self.inner.connect().await.map_err(TlsConnectorError::Transport)?;
        let stream =
            super::connect(socket, self.read_record, self.write_record, &options, &mut self.rng)
                .await?;
        Ok(stream)
    }
}

/// Why a [`TlsConnector`] could not connect.
#[derive(Debug, Clone, Copy)]
pub enum TlsConnectorError<E> {
    /// The inner connector failed (name resolution, TCP).
    Transport(E),
    /// The TLS handshake failed, or was refused; see
    /// [`ConnectError::is_certificate_error`].
    Tls(ConnectError),
}

impl<E> TlsConnectorError<E> {
    /// Whether the broker's identity was refused (certificate or proof of
    /// key): retrying will not help until the configuration is fixed.
    pub fn is_certificate_error(&self) -> bool {
        matches!(self, Self::Tls(e) if e.is_certificate_error())
    }
}

impl<E> From<ConnectError> for TlsConnectorError<E> {
    fn from(error: ConnectError) -> Self {
        Self::Tls(error)
    }
}

impl<E: fmt::Debug> fmt::Display for TlsConnectorError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "connection failed before TLS: {e:?}"),
            Self::Tls(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for TlsConnectorError<E> {}

#[cfg(feature = "defmt")]
impl<E: fmt::Debug> defmt::Format for TlsConnectorError<E> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}
