//! `umqtt::connect::TcpConnector` over embedded-nal-async `TcpConnect` +
//! `Dns` backed by the system resolver (`connect_support::SystemNal`),
//! against a private Mosquitto: by host name `localhost` (IPv4, the default, and
//! either address kind), twice in a row through the same connector (a
//! reconnect resolves again), by IP literal without any look-up, and the
//! typed errors of a failed look-up and a refused connection.

mod broker_support;
mod common;
mod connect_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{Mosquitto, free_port};
use connect_support::{SystemNal, round_trip};
use embedded_nal_async::{AddrType, Dns};
use umqtt::connect::{Connector, HostName, NalError, TcpConnector};

#[tokio::test]
async fn connects_by_host_name_localhost_twice_through_one_connector() {
    let Some(broker) = Mosquitto::start("connect_nal_localhost", "") else {
        return;
    };
    let nal = SystemNal::default();
    let mut connector = TcpConnector::new(&nal, &nal, "localhost", broker.port);
    assert_eq!(connector.host(), "localhost");
    for n in 1..=2u8 {
        let socket = connector.connect().await.expect("connect by name");
        round_trip(socket, "nal-localhost", "connect/nal/name", &[n]).await;
        assert_eq!(nal.lookups(), usize::from(n), "every connect resolves the name again");
    }
}

#[tokio::test]
async fn connects_by_host_name_to_either_address_kind_when_allowed() {
    let Some(broker) = Mosquitto::start("connect_nal_either", "") else {
        return;
    };
    let nal = SystemNal::default();
    let mut connector =
        TcpConnector::new(&nal, &nal, "localhost", broker.port).addr_type(AddrType::Either);
    assert_eq!(connector.resolve().await.unwrap(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let socket = connector.connect().await.expect("connect over IPv4");
    round_trip(socket, "nal-ipv4", "connect/nal/ipv4", b"v4").await;
}

#[tokio::test]
async fn an_ip_literal_connects_without_a_look_up() {
    let Some(broker) = Mosquitto::start("connect_nal_literal", "") else {
        return;
    };
    let nal = SystemNal::default();
    let mut connector = TcpConnector::new(&nal, &nal, "127.0.0.1", broker.port);
    for n in 1..=2u8 {
        let socket = connector.connect().await.expect("connect by IP");
        round_trip(socket, "nal-literal", "connect/nal/ip", &[n]).await;
    }
    let v6 = TcpConnector::new(&nal, &nal, "::1", broker.port).addr_type(AddrType::Either);
    assert_eq!(v6.resolve().await.unwrap(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(nal.lookups(), 0, "an IP literal is never looked up");
}

#[tokio::test]
async fn an_ipv6_literal_is_refused_over_ipv4_only_before_any_connect() {
    let nal = SystemNal::default();
    let mut connector = TcpConnector::new(&nal, &nal, "::1", 1883);
    match connector.connect().await {
        Err(NalError::AddressKind(ip)) => assert_eq!(ip, IpAddr::V6(Ipv6Addr::LOCALHOST)),
        Err(other) => panic!("expected NalError::AddressKind, got {other:?}"),
        Ok(_) => panic!("an IPv6 address reached an IPv4-only connector's stack"),
    }
}

/// A resolver that knows no name.
struct NoNames;

impl Dns for NoNames {
    type Error = &'static str;

    async fn get_host_by_name(&self, _: &str, _: AddrType) -> Result<IpAddr, Self::Error> {
        Err("NXDOMAIN")
    }

    async fn get_host_by_address(&self, _: IpAddr, _: &mut [u8]) -> Result<usize, Self::Error> {
        Err("NXDOMAIN")
    }
}

#[tokio::test]
async fn a_failed_look_up_is_a_typed_dns_error() {
    let nal = SystemNal::default();
    let mut connector = TcpConnector::new(&nal, NoNames, "broker.invalid", 1883);
    match connector.connect().await {
        Err(NalError::Dns("NXDOMAIN")) => {}
        Err(other) => panic!("expected NalError::Dns, got {other:?}"),
        Ok(_) => panic!("connected without a resolvable name"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_typed_tcp_error() {
    let nal = SystemNal::default();
    let mut connector = TcpConnector::new(&nal, &nal, "localhost", free_port());
    match connector.connect().await {
        Err(NalError::Tcp(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        Err(other) => panic!("expected NalError::Tcp, got {other:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}
