//! Connector test support: [`SystemNal`], embedded-nal-async `TcpConnect`
//! and `Dns` over tokio and the system resolver (what embassy-net's
//! `TcpClient` and `DnsSocket` are on a board), counting its look-ups; and
//! one client round trip over any transport.
#![allow(dead_code)]

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_nal_async::{AddrType, Dns, TcpConnect};
use umqtt::{Client, ConnectOptions, QoS};

use crate::broker_support::{Inbox, next};

/// TCP over tokio and names through tokio's resolver (the system's:
/// `/etc/hosts`, then DNS), behind the embedded-nal-async traits.
#[derive(Default)]
pub struct SystemNal {
    lookups: Cell<usize>,
}

impl SystemNal {
    /// How many names were resolved.
    pub fn lookups(&self) -> usize {
        self.lookups.get()
    }
}

impl TcpConnect for SystemNal {
    type Error = std::io::Error;
    type Connection<'a> = FromTokio<tokio::net::TcpStream>;

    async fn connect<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Result<Self::Connection<'a>, Self::Error> {
        let stream = tokio::net::TcpStream::connect(remote).await?;
        stream.set_nodelay(true)?;
        Ok(FromTokio::new(stream))
    }
}

impl Dns for SystemNal {
    type Error = std::io::Error;

    /// The first address of the wanted kind (`Either`: IPv4 first, as an
    /// IPv4-only board stack would).
    async fn get_host_by_name(&self, host: &str, kind: AddrType) -> std::io::Result<IpAddr> {
        self.lookups.set(self.lookups.get() + 1);
        let addresses: Vec<IpAddr> =
            tokio::net::lookup_host((host, 0)).await?.map(|a| a.ip()).collect();
        let v4 = addresses.iter().find(|a| a.is_ipv4());
        let v6 = addresses.iter().find(|a| a.is_ipv6());
        let found = match kind {
            AddrType::IPv4 => v4,
            AddrType::IPv6 => v6,
            AddrType::Either => v4.or(v6),
        };
        found.copied().ok_or_else(|| std::io::Error::other(format!("{host}: no {kind:?} address")))
    }

    async fn get_host_by_address(&self, _: IpAddr, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("reverse look-up not supported"))
    }
}

/// One client over `transport`: connects as `id`, subscribes to `topic` at
/// QoS 1, publishes `payload` to it at QoS 1 and waits for it to come
/// back, then disconnects.
pub async fn round_trip<T>(transport: T, id: &str, topic: &str, payload: &[u8])
where
    T: embedded_io_async::Read + embedded_io_async::Write,
    T::Error: std::fmt::Debug,
{
    let inbox = Inbox::default();
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(transport, &mut rx, &mut tx, inbox.handler());
    let connected = client.connect(&ConnectOptions::new(id)).await.expect("CONNACK");
    assert!(!connected.session_present, "a clean session has no session present");
    assert_eq!(client.subscribe(topic, QoS::AtLeastOnce).await.unwrap(), QoS::AtLeastOnce);
    client.publish(topic, payload, QoS::AtLeastOnce, false).await.expect("PUBACK");
    while inbox.is_empty() {
        next(&mut client).await;
    }
    assert_eq!(inbox.take(), vec![(topic.to_owned(), payload.to_vec(), QoS::AtLeastOnce, false)]);
    client.disconnect().await.unwrap();
}
