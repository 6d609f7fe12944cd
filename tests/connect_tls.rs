//! `umqtt::tls::TlsConnector` over the tokio and the embedded-nal-async
//! connectors, against a private Mosquitto TLS 1.3 listener with a PKI the
//! test generates (`tls_common`): connect, round trip, drop, connect again
//! through the same connector (its record buffers reused), round trip
//! again; the server name defaults to the inner connector's host name; a
//! wrong server name is a typed certificate error; a failed TCP connect is
//! a typed transport error; a handshake dropped half-way (cancelled)
//! leaves the connector reusable.
#![cfg(feature = "tls")]

mod broker_support;
mod common;
mod connect_support;
mod tls_common;

use std::time::Duration;

use common::Tcp;
use embedded_io_adapters::tokio_1::FromTokio;
use tokio::io::AsyncReadExt;

use common::{Mosquitto, free_port};
use connect_support::{SystemNal, round_trip};
use tls_common::{OsRng, SystemClock, have_openssl, pki};
use umqtt::connect::{Connector, HostName, TcpConnector, TokioConnector};
use umqtt::tls::{
    CertificateError, ConnectError, READ_RECORD_BUFFER, TLS_RECORD_OVERHEAD, TlsConnector,
    TlsConnectorError, TlsOptions,
};

const WAIT: Duration = Duration::from_secs(10);

/// Record buffers on the heap (33 KiB is large for a test's stack).
fn buffers() -> (Vec<u8>, Vec<u8>) {
    (vec![0; READ_RECORD_BUFFER], vec![0; 2 * (1024 + TLS_RECORD_OVERHEAD)])
}

/// A Mosquitto with one TLS listener serving the `localhost` + `127.0.0.1`
/// certificate issued by the test CA; its port.
fn broker(test: &str) -> Option<(Mosquitto, u16)> {
    if !have_openssl(test) {
        return None;
    }
    let port = free_port();
    let conf = pki().listener(port, "server.pem", "server.key", false);
    Mosquitto::start(test, &conf).map(|b| (b, port))
}

/// Connects through `connector`, bounded by [`WAIT`].
async fn open<K: Connector>(connector: &mut K) -> Result<K::Transport<'_>, K::Error> {
    tokio::time::timeout(WAIT, connector.connect()).await.expect("connected in time (no hang)")
}

#[tokio::test]
async fn tls_connector_reconnects_by_host_name_reusing_its_record_buffers() {
    let Some((_broker, port)) = broker("connect_tls_reconnect") else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let (mut read, mut write) = buffers();
    let options = TlsOptions::for_host(&ca).clock::<SystemClock>();
    let tcp = TokioConnector::new("localhost", port);
    let mut connector = TlsConnector::new(tcp, options, &mut read, &mut write, OsRng);
    assert_eq!(connector.host(), "localhost", "the server name is the TCP host name");
    for n in 1..=2u8 {
        let stream = open(&mut connector).await.expect("verified handshake as localhost");
        round_trip(stream, "tls-connector", "connect/tls", &[n]).await;
    }
}

#[tokio::test]
async fn tls_connector_over_the_nal_connector_verifies_an_ip_address() {
    let Some((_broker, port)) = broker("connect_tls_nal_ip") else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let (mut read, mut write) = buffers();
    let nal = SystemNal::default();
    let tcp = TcpConnector::new(&nal, &nal, "127.0.0.1", port);
    let options = TlsOptions::for_host(&ca);
    let mut connector = TlsConnector::new(tcp, options, &mut read, &mut write, OsRng);
    for n in 1..=2u8 {
        let stream = open(&mut connector).await.expect("verified handshake as 127.0.0.1");
        round_trip(stream, "tls-nal", "connect/tls/nal", &[n]).await;
    }
}

/// TCP to `localhost` on each of `ports` in turn (the last one again
/// after that).
struct Ports {
    ports: Vec<u16>,
    next: usize,
}

impl HostName for Ports {
    fn host(&self) -> &str {
        "localhost"
    }
}

impl Connector for Ports {
    type Transport<'c> = Tcp;
    type Error = std::io::Error;

    async fn connect(&mut self) -> std::io::Result<Tcp> {
        let port = self.ports[self.next.min(self.ports.len() - 1)];
        self.next += 1;
        Ok(FromTokio::new(tokio::net::TcpStream::connect(("127.0.0.1", port)).await?))
    }
}

#[tokio::test]
async fn a_handshake_dropped_half_way_leaves_the_connector_reusable() {
    let Some((_broker, port)) = broker("connect_tls_dropped") else {
        return;
    };
    // A server that accepts and reads the ClientHello, then says nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ports = Ports { ports: vec![silent.local_addr().unwrap().port(), port], next: 0 };
    let ca = pki().cert_der("ca.pem");
    let (mut read, mut write) = buffers();
    let mut connector =
        TlsConnector::new(ports, TlsOptions::for_host(&ca), &mut read, &mut write, OsRng);
    let mut record_header = [0u8; 5];
    let _held = tokio::select! {
        result = connector.connect() => panic!("handshake ended without a server: {:?}", result.err()),
        held = async {
            let (mut held, _) = silent.accept().await.unwrap();
            held.read_exact(&mut record_header).await.unwrap();
            held
        } => held, // the handshake future is dropped here, mid-handshake
    };
    assert_eq!(record_header[0], 22, "a TLS handshake record (the ClientHello) was sent");
    let stream = open(&mut connector).await.expect("a fresh handshake after the dropped one");
    round_trip(stream, "tls-dropped", "connect/tls/dropped", b"again").await;
}

#[tokio::test]
async fn a_wrong_server_name_is_a_typed_certificate_error() {
    let Some((_broker, port)) = broker("connect_tls_wrong_name") else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let (mut read, mut write) = buffers();
    let options = TlsOptions::for_host(&ca).with_server_name("broker.example.com");
    let tcp = TokioConnector::new("localhost", port);
    let mut connector = TlsConnector::new(tcp, options, &mut read, &mut write, OsRng);
    assert_eq!(connector.host(), "broker.example.com", "the options' name overrides the host");
    for _ in 0..2 {
        match open(&mut connector).await {
            Err(
                e @ TlsConnectorError::Tls(ConnectError::Rejected(CertificateError::NameMismatch)),
            ) => {
                assert!(e.is_certificate_error());
            }
            Err(other) => panic!("expected Rejected(NameMismatch), got {other:?}"),
            Ok(_) => panic!("a certificate for localhost was accepted as broker.example.com"),
        }
    }
}

#[tokio::test]
async fn a_failed_tcp_connect_is_a_typed_transport_error() {
    let ca = [0u8; 0];
    let (mut read, mut write) = buffers();
    let tcp = TokioConnector::new("localhost", free_port());
    let mut connector =
        TlsConnector::new(tcp, TlsOptions::for_host(&ca), &mut read, &mut write, OsRng);
    match open(&mut connector).await {
        Err(e @ TlsConnectorError::Transport(_)) => assert!(!e.is_certificate_error()),
        Err(other) => panic!("expected Transport(_), got {other:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

#[tokio::test]
async fn a_host_name_longer_than_64_bytes_is_an_invalid_server_name() {
    let ca = [0u8; 0];
    let (mut read, mut write) = buffers();
    let tcp = TokioConnector::new("a".repeat(65), free_port());
    let mut connector =
        TlsConnector::new(tcp, TlsOptions::for_host(&ca), &mut read, &mut write, OsRng);
    assert!(matches!(
        open(&mut connector).await,
        Err(TlsConnectorError::Tls(ConnectError::InvalidServerName))
    ));
}
