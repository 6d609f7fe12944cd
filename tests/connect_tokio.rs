//! `umqtt::connect::TokioConnector` against a private Mosquitto: by host
//! name `localhost` and by IP literal, twice in a row through the same
//! connector, with TCP_NODELAY on; a refused connection is an I/O error.

mod broker_support;
mod common;
mod connect_support;

use common::{Mosquitto, free_port};
use connect_support::round_trip;
use umqtt::connect::{Connector, HostName, TokioConnector};

#[tokio::test]
async fn connects_by_host_name_localhost_twice_through_one_connector() {
    let Some(broker) = Mosquitto::start("connect_tokio_localhost", "") else {
        return;
    };
    let mut connector = TokioConnector::new("localhost", broker.port);
    assert_eq!(connector.host(), "localhost");
    for n in 1..=2u8 {
        let socket = connector.connect().await.expect("connect by name");
        assert!(socket.inner().nodelay().unwrap(), "TCP_NODELAY is on");
        round_trip(socket, "tokio-localhost", "connect/tokio/name", &[n]).await;
    }
}

#[tokio::test]
async fn connects_by_ip_literal_with_an_owned_host_name() {
    let Some(broker) = Mosquitto::start("connect_tokio_literal", "") else {
        return;
    };
    let mut connector = TokioConnector::new(String::from("127.0.0.1"), broker.port);
    for n in 1..=2u8 {
        let socket = connector.connect().await.expect("connect by IP");
        round_trip(socket, "tokio-literal", "connect/tokio/ip", &[n]).await;
    }
}

#[tokio::test]
async fn a_refused_connection_is_an_io_error() {
    let mut connector = TokioConnector::new("localhost", free_port());
    let error = connector.connect().await.err().expect("nothing listens there");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}
