//! [`TcpConnector`]: TCP by host name or IP address over embedded-nal-async
//! 0.9 `TcpConnect` + `Dns` (feature `nal`).

use core::fmt;
use core::net::{IpAddr, SocketAddr};

use embedded_nal_async::{AddrType, Dns, TcpConnect};

use super::{Connector, HostName};

/// Opens a TCP connection to `host:port` through an embedded-nal-async
/// stack: `host` is an IP address literal (no name resolution) or a host
/// name resolved through `dns` on every connect, so a broker whose address
/// changed is found again on the next reconnect.
///
/// embassy-net's `TcpClient` implements `TcpConnect` and its `DnsSocket`
/// implements `Dns`, so on firmware:
///
/// ```
/// # async fn demo<T: embedded_nal_async::TcpConnect, D: embedded_nal_async::Dns>(
/// #     tcp_client: T, dns_socket: D,
/// # ) {
/// use umqtt::connect::{Connector, TcpConnector};
///
/// // tcp_client: embassy_net::tcp::client::TcpClient<'_, 1, 1024, 1024>
/// // dns_socket: embassy_net::dns::DnsSocket<'_>
/// let mut connector = TcpConnector::new(tcp_client, dns_socket, "broker.local", 1883);
/// match connector.connect().await {
///     Ok(socket) => { /* umqtt::Client::new(socket, &mut rx, &mut tx, handler) */ }
///     Err(e) => { /* name resolution or TCP failed: back off, retry */ let _ = e; }
/// }
/// # }
/// ```
///
/// `T` and `D` may be references (`&TcpClient`, `&DnsSocket`): the traits
/// are implemented for them. The connection borrows the connector, which is
/// how `TcpClient` lends its socket buffers to one connection at a time.
///
/// **Cancel safety**: dropping the future of [`connect`](Connector::connect)
/// drops the resolution or the half-open socket with it; the stack's
/// `TcpClient` returns the socket to its pool on drop, so nothing is
/// leaked and the next attempt starts afresh.
pub struct TcpConnector<'h, T, D> {
    tcp: T,
    dns: D,
    host: &'h str,
    port: u16,
    addr_type: AddrType,
}

impl<'h, T: TcpConnect, D: Dns> TcpConnector<'h, T, D> {
    /// A connector to `host` (a host name, or an IPv4 address literal such
    /// as `192.168.1.10`) on `port`, over IPv4 only: host names are
    /// resolved to an IPv4 address, and an IPv6 literal is refused with
    /// [`NalError::AddressKind`]. On a dual-stack network stack, allow
    /// IPv6 with [`addr_type`](Self::addr_type).
    ///
    /// IPv4 is the default because embassy-net's `TcpClient` *panics* when
    /// given an IPv6 address without its `proto-ipv6` feature (and its
    /// `DnsSocket` falls back to an IPv6 answer when asked for either): on
    /// the IPv4-only stacks of most boards, a DNS answer must not be able
    /// to reach that panic.
    pub fn new(tcp: T, dns: D, host: &'h str, port: u16) -> Self {
        Self { tcp, dns, host, port, addr_type: AddrType::IPv4 }
    }

    /// Which addresses to connect to: `AddrType::Either` (IPv6 and IPv4)
    /// or `AddrType::IPv6` on a stack with IPv6. Names are resolved to that
    /// kind, and a literal of another kind is refused.
    pub fn addr_type(mut self, addr_type: AddrType) -> Self {
        self.addr_type = addr_type;
        self
    }

    /// The port connected to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address `host` stands for: the literal itself, or the answer of
    /// `dns`; either must be of the kind [`addr_type`](Self::addr_type)
    /// allows.
    pub async fn resolve(&self) -> Result<IpAddr, NalError<T::Error, D::Error>> {
        let ip = match self.host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => self
                .dns
                .get_host_by_name(self.host, self.addr_type.clone())
                .await
                .map_err(NalError::Dns)?,
        };
        let allowed = match self.addr_type {
            AddrType::IPv4 => ip.is_ipv4(),
            AddrType::IPv6 => ip.is_ipv6(),
            AddrType::Either => true,
        };
        if allowed { Ok(ip) } else { Err(NalError::AddressKind(ip)) }
    }
}

impl<T, D> HostName for TcpConnector<'_, T, D> {
    fn host(&self) -> &str {
        self.host
    }
}

impl<T: TcpConnect, D: Dns> Connector for TcpConnector<'_, T, D> {
    type Transport<'c>
        = T::Connection<'c>
    where
        Self: 'c;
    type Error = NalError<T::Error, D::Error>;

    async fn connect(&mut self) -> Result<Self::Transport<'_>, Self::Error> {
        let ip = self.resolve().await?;
        self.tcp.connect(SocketAddr::new(ip, self.port)).await.map_err(NalError::Tcp)
    }
}

/// Why a [`TcpConnector`] could not connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalError<T, D> {
    /// The host name could not be resolved.
    Dns(D),
    /// The TCP connection failed (refused, unreachable, out of sockets).
    Tcp(T),
    /// The host's address (its literal, or the resolver's answer) is not of
    /// the kind the connector allows (an IPv6 address over IPv4 only).
    AddressKind(IpAddr),
}

impl<T: fmt::Debug, D: fmt::Debug> fmt::Display for NalError<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(e) => write!(f, "host name not resolved: {e:?}"),
            Self::Tcp(e) => write!(f, "TCP connection failed: {e:?}"),
            Self::AddressKind(ip) => write!(f, "address {ip} is not of the allowed kind"),
        }
    }
}

impl<T: fmt::Debug, D: fmt::Debug> core::error::Error for NalError<T, D> {}

#[cfg(feature = "defmt")]
impl<T: fmt::Debug, D: fmt::Debug> defmt::Format for NalError<T, D> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}
