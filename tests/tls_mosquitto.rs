//! The client over `umqtt::tls` against a private Mosquitto with TLS 1.3
//! listeners, using a PKI generated at run time with `openssl`: verified
//! round trips, every way verification must fail (wrong CA, wrong name,
//! expired, a leaf posing as a CA), mutual TLS, protocol mix-ups, the
//! explicit opt-out, and max fragment length. Prints the handshake time
//! and the connection's size.
#![cfg(feature = "tls")]

mod common;
mod tls_common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{Mosquitto, Tcp, free_port, tcp};
use tls_common::{OsRng, SystemClock, have_openssl, pki};
use umqtt::tls::{
    self, ConnectError, MaxFragmentLength, READ_RECORD_BUFFER, TLS_RECORD_OVERHEAD, TlsClock,
    TlsOptions, TlsStream,
};
use umqtt::{Client, ConnectOptions, Publish, QoS};

const WAIT: Duration = Duration::from_secs(10);
const WRITE_RECORD: usize = 1024 + TLS_RECORD_OVERHEAD;

/// A received message: topic, payload, QoS.
type Received = (String, Vec<u8>, QoS);

/// Messages a client's handler has received.
#[derive(Clone, Default)]
struct Inbox(Rc<RefCell<Vec<Received>>>);

impl Inbox {
    fn handler(&self) -> impl FnMut(&Publish<'_>) + use<> {
        let inbox = self.0.clone();
        move |m: &Publish<'_>| inbox.borrow_mut().push((m.topic.into(), m.payload.into(), m.qos))
    }
    fn len(&self) -> usize {
        self.0.borrow().len()
    }
    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

/// Record buffers on the heap (16 KiB is large for a test's stack).
struct Buffers {
    read: Vec<u8>,
    write: Vec<u8>,
}

impl Buffers {
    fn new() -> Self {
        Self { read: vec![0; READ_RECORD_BUFFER], write: vec![0; WRITE_RECORD] }
    }
}

/// Waits until `inbox` holds `count` messages (a QoS 1 publish to a topic
/// the client subscribed may deliver its echo before its PUBACK returns).
async fn wait_for<T, H>(client: &mut Client<'_, T, H>, inbox: &Inbox, count: usize)
where
    T: embedded_io_async::Read + embedded_io_async::Write,
    T::Error: std::fmt::Debug,
    H: FnMut(&Publish<'_>),
{
    while inbox.len() < count {
        tokio::time::timeout(WAIT, client.wait_msg()).await.expect("message in time").unwrap();
    }
}

/// TCP connect + TLS handshake, bounded by [`WAIT`].
async fn open<'b, C: TlsClock>(
    port: u16,
    options: &TlsOptions<'_, C>,
    buffers: &'b mut Buffers,
) -> Result<TlsStream<'b, Tcp>, ConnectError> {
    let handshake =
        tls::connect(tcp(port).await, &mut buffers.read, &mut buffers.write, options, OsRng);
    tokio::time::timeout(WAIT, handshake).await.expect("handshake finished in time (no hang)")
}

/// Starts Mosquitto with one TLS listener serving `cert`/`key`.
fn broker(
    test: &str,
    cert: &str,
    key: &str,
    require_certificate: bool,
) -> Option<(Mosquitto, u16)> {
    if !have_openssl(test) {
        return None;
    }
    let port = free_port();
    let conf = pki().listener(port, cert, key, require_certificate);
    Mosquitto::start(test, &conf).map(|b| (b, port))
}

/// The broker logged a CONNECT from `client_id`.
fn broker_saw_client(broker: &Mosquitto, client_id: &str) -> bool {
    broker.log().contains(&format!(" as {client_id} "))
}

fn expect_certificate_error<T>(result: Result<T, ConnectError>, what: &str) {
    match result {
        Err(ConnectError::Rejected(_)) => {}
        Err(other) => panic!("{what}: expected Rejected(_), got {other:?}"),
        Ok(_) => panic!("{what}: handshake succeeded, expected a certificate error"),
    }
}

#[tokio::test]
async fn tls_verified_connection_carries_qos0_qos1_ping_and_disconnect() {
    let Some((broker, port)) = broker("tls_verified", "server.pem", "server.key", false) else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let options = TlsOptions::new("localhost", &ca).clock::<SystemClock>();
    let mut buffers = Buffers::new();
    let started = Instant::now();
    let stream = open(port, &options, &mut buffers).await.expect("verified handshake");
    let handshake = started.elapsed();
    println!(
        "TLS 1.3 handshake on loopback (ECDHE P-256, ECDSA P-256 chain, {} build): {handshake:?}",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!(
        "size_of TlsStream<tokio TCP> = {} bytes (+ {} read and {} write record buffers)",
        std::mem::size_of_val(&stream),
        READ_RECORD_BUFFER,
        WRITE_RECORD
    );

    let inbox = Inbox::default();
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let mut client = Client::new(stream, &mut rx, &mut tx, inbox.handler());
    assert!(!client.connect(&ConnectOptions::new("tls-rt")).await.unwrap().session_present);
    assert_eq!(client.subscribe("tls/+", QoS::AtLeastOnce).await.unwrap(), QoS::AtLeastOnce);
    client.publish("tls/0", b"qos zero", QoS::AtMostOnce, false).await.unwrap();
    wait_for(&mut client, &inbox, 1).await;
    client.publish("tls/1", b"qos one", QoS::AtLeastOnce, false).await.unwrap();
    wait_for(&mut client, &inbox, 2).await;
    client.ping().await.unwrap();
    client.disconnect().await.unwrap();
    assert_eq!(
        inbox.take(),
        vec![
            ("tls/0".into(), b"qos zero".to_vec(), QoS::AtMostOnce),
            ("tls/1".into(), b"qos one".to_vec(), QoS::AtLeastOnce),
        ]
    );
    assert!(broker_saw_client(&broker, "tls-rt"), "log: {}", broker.log());
}

#[tokio::test]
async fn tls_wrong_ca_fails_with_certificate_error_before_any_mqtt() {
    let Some((broker, port)) = broker("tls_wrong_ca", "server.pem", "server.key", false) else {
        return;
    };
    let other_ca = pki().cert_der("other-ca.pem");
    let options = TlsOptions::new("localhost", &other_ca);
    let mut buffers = Buffers::new();
    let result = open(port, &options, &mut buffers).await;
    assert!(result.as_ref().err().is_some_and(ConnectError::is_certificate_error));
    expect_certificate_error(result, "server cert from another CA");
    // connect() returned no stream, so no CONNECT (no credentials) was
    // sent: the only client the broker saw is the harness's readiness probe.
    let log = broker.log();
    let clients: Vec<&str> = log.lines().filter(|l| l.contains("New client connected")).collect();
    assert!(clients.iter().all(|l| l.contains(" as ready ")), "log: {log}");
}

#[tokio::test]
async fn tls_wrong_server_name_fails() {
    let Some((_broker, port)) = broker("tls_wrong_name", "server.pem", "server.key", false) else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let mut buffers = Buffers::new();
    let options = TlsOptions::new("broker.example.com", &ca);
    expect_certificate_error(open(port, &options, &mut buffers).await, "name not in certificate");
    // An IP address is checked against the IP address SANs only: the
    // certificate's IP:127.0.0.1 makes "127.0.0.1" verify, "127.0.0.2" not.
    let options = TlsOptions::new("127.0.0.2", &ca);
    expect_certificate_error(open(port, &options, &mut buffers).await, "other IP address");
    let options = TlsOptions::new("127.0.0.1", &ca);
    open(port, &options, &mut buffers).await.expect("the IP address SAN verifies");
    let options = TlsOptions::new("localhost", &ca);
    open(port, &options, &mut buffers).await.expect("the right name verifies");
}

#[tokio::test]
async fn tls_expired_certificate_fails_when_a_clock_is_supplied() {
    let Some((_broker, port)) = broker("tls_expired", "expired.pem", "expired.key", false) else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let mut buffers = Buffers::new();
    let with_clock = TlsOptions::new("localhost", &ca).clock::<SystemClock>();
    expect_certificate_error(open(port, &with_clock, &mut buffers).await, "expired, with clock");
    // Without a clock embedded-tls cannot check validity periods (documented).
    let without_clock = TlsOptions::new("localhost", &ca);
    open(port, &without_clock, &mut buffers).await.expect("no clock: validity unchecked");
}

#[tokio::test]
async fn tls_leaf_certificate_posing_as_intermediate_ca_is_refused() {
    // `evil` (CN/SAN localhost) is signed with the *client* certificate's
    // key; the chain evil → client → ca verifies signature by signature,
    // but `client` is not a CA (basicConstraints CA:FALSE).
    let Some((_broker, port)) = broker("tls_leaf_ca", "evil-chain.pem", "evil.key", false) else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let mut buffers = Buffers::new();
    let options = TlsOptions::new("localhost", &ca).clock::<SystemClock>();
    expect_certificate_error(open(port, &options, &mut buffers).await, "leaf used as a CA");
}

#[tokio::test]
async fn tls_mutual_accepts_client_certificate_and_refuses_client_without_one() {
    let Some((broker, port)) = broker("tls_mutual", "server.pem", "server.key", true) else {
        return;
    };
    let pki = pki();
    let ca = pki.cert_der("ca.pem");
    let client_cert = pki.cert_der("client.pem");
    let mut key_buf = [0u8; 512];
    let key = tls::pem::private_key(&pki.read("client.key"), &mut key_buf).unwrap();

    // With the certificate: TLS and MQTT connect.
    let options = TlsOptions::new("localhost", &ca).client_certificate(&client_cert, key);
    let mut buffers = Buffers::new();
    let stream = open(port, &options, &mut buffers).await.expect("mutual TLS handshake");
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(stream, &mut rx, &mut tx, |_: &Publish<'_>| {});
    client.connect(&ConnectOptions::new("tls-mutual")).await.expect("MQTT over mutual TLS");
    client.ping().await.unwrap();
    client.disconnect().await.unwrap();

    // Without: TLS 1.3 lets the client finish its side of the handshake,
    // then the server refuses (certificate_required alert or close), so the
    // refusal surfaces at the latest as the MQTT connect error.
    let options = TlsOptions::new("localhost", &ca);
    let mut buffers = Buffers::new();
    let refused = match open(port, &options, &mut buffers).await {
        Err(e) => format!("handshake: {e:?}"),
        Ok(stream) => {
            let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
            let mut client = Client::new(stream, &mut rx, &mut tx, |_: &Publish<'_>| {});
            let opts = ConnectOptions::new("tls-no-cert");
            let connect = client.connect(&opts);
            match tokio::time::timeout(WAIT, connect).await.expect("refusal in time") {
                Ok(_) => panic!("broker accepted a client without a certificate"),
                Err(e) => format!("MQTT connect: {e:?}"),
            }
        }
    };
    println!("client without certificate refused: {refused}");
    assert!(!broker_saw_client(&broker, "tls-no-cert"), "log: {}", broker.log());
}

#[tokio::test]
async fn tls_client_on_plaintext_port_gets_typed_error_without_hang() {
    let Some((broker, _)) = broker("tls_on_plain", "server.pem", "server.key", false) else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let options = TlsOptions::new("localhost", &ca);
    let mut buffers = Buffers::new();
    match open(broker.port, &options, &mut buffers).await {
        Err(e @ (ConnectError::Io(_) | ConnectError::Protocol(_))) => {
            println!("TLS client on plaintext port: {e}");
        }
        Err(other) => panic!("unexpected error kind {other:?}"),
        Ok(_) => panic!("handshake with a plaintext MQTT port succeeded"),
    }
}

#[tokio::test]
async fn plaintext_client_on_tls_port_gets_typed_error_without_hang() {
    let Some((_broker, port)) = broker("plain_on_tls", "server.pem", "server.key", false) else {
        return;
    };
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    let opts = ConnectOptions::new("plain-on-tls");
    let connect = client.connect(&opts);
    match tokio::time::timeout(WAIT, connect).await.expect("answer in time (no hang)") {
        Ok(_) => panic!("plaintext MQTT connect to a TLS port succeeded"),
        Err(e) => println!("plaintext client on TLS port: {e:?}"),
    }
}

#[tokio::test]
async fn tls_danger_opt_out_is_the_only_way_to_a_wrong_ca_server() {
    let Some((_broker, port)) = broker("tls_danger", "rogue.pem", "rogue.key", false) else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let mut buffers = Buffers::new();
    for name in ["localhost", "127.0.0.1"] {
        let options = TlsOptions::new(name, &ca);
        expect_certificate_error(open(port, &options, &mut buffers).await, "rogue, no clock");
        let options = TlsOptions::new(name, &ca).clock::<SystemClock>();
        expect_certificate_error(open(port, &options, &mut buffers).await, "rogue, clock");
    }
    let options = TlsOptions::danger_accept_invalid_certificates("localhost");
    assert!(!options.verifies_server());
    let stream = open(port, &options, &mut buffers).await.expect("opt-out connects");
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(stream, &mut rx, &mut tx, |_: &Publish<'_>| {});
    client.connect(&ConnectOptions::new("tls-danger")).await.unwrap();
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn tls_max_fragment_length_4096_carries_a_10k_publish_with_small_buffers() {
    let Some((_broker, port)) = broker("tls_mfl", "server.pem", "server.key", false) else {
        return;
    };
    let ca = pki().cert_der("ca.pem");
    let options = TlsOptions::new("localhost", &ca).max_fragment_length(MaxFragmentLength::Bits12);
    assert_eq!(options.read_record_buffer_len(), 2 * (4096 + 256) + 5);
    let mut buffers = Buffers {
        read: vec![0; options.read_record_buffer_len()],
        write: vec![0; 4096 + TLS_RECORD_OVERHEAD],
    };
    let stream = open(port, &options, &mut buffers).await.expect("handshake with MFL");
    let inbox = Inbox::default();
    let (mut rx, mut tx) = (vec![0u8; 12 * 1024], vec![0u8; 12 * 1024]);
    let mut client = Client::new(stream, &mut rx, &mut tx, inbox.handler());
    client.connect(&ConnectOptions::new("tls-mfl")).await.unwrap();
    client.subscribe("mfl/big", QoS::AtLeastOnce).await.unwrap();
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    client.publish("mfl/big", &payload, QoS::AtLeastOnce, false).await.unwrap();
    wait_for(&mut client, &inbox, 1).await;
    assert_eq!(inbox.take(), vec![("mfl/big".into(), payload, QoS::AtLeastOnce)]);
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn tls_record_buffers_below_the_minimum_are_refused_before_connecting() {
    if !have_openssl("tls_buffers") {
        return;
    }
    let ca = pki().cert_der("ca.pem");
    let options = TlsOptions::new("localhost", &ca);
    // A listener that is never reached: the check happens first.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut small = Buffers { read: vec![0; 4096], write: vec![0; WRITE_RECORD] };
    assert!(matches!(
        open(port, &options, &mut small).await,
        Err(ConnectError::BufferTooSmall { read: true, needed: READ_RECORD_BUFFER })
    ));
    let mut small = Buffers { read: vec![0; READ_RECORD_BUFFER], write: vec![0; 100] };
    assert!(matches!(
        open(port, &options, &mut small).await,
        Err(ConnectError::BufferTooSmall { read: false, .. })
    ));
    let long_name = "a".repeat(65);
    let options = TlsOptions::new(&long_name, &ca);
    let mut buffers = Buffers::new();
    assert!(matches!(
        open(port, &options, &mut buffers).await,
        Err(ConnectError::InvalidServerName)
    ));
}

/// Unacknowledged QoS 1 publishes survive the loss of a TLS connection:
/// the client is ended with `into_session`, a new TLS stream is built on
/// the same record buffers (a stream borrows them for its whole life, so
/// `reconnect` cannot swap one in), and a new client continues the session
/// with `with_session`; its `connect` (clean_session false) resends them
/// with DUP=1 and the same packet identifiers `[MQTT-4.4.0-1]`. The first
/// copies never reach the broker (the proxy black-holes them), so what the
/// subscriber receives came from the resend.
#[tokio::test]
async fn mqtt_4_4_0_1_tls_unacked_publishes_resent_on_a_new_stream_over_the_same_buffers() {
    if !have_openssl("tls_handover") {
        return;
    }
    let tls_port = free_port();
    let conf = pki().listener(tls_port, "server.pem", "server.key", false) + "log_type all\n";
    let Some(broker) = Mosquitto::start("tls_handover", &conf) else {
        return;
    };
    let proxy = Proxy::start(tls_port, 1).await;
    let ca = pki().cert_der("ca.pem");
    let options = TlsOptions::new("localhost", &ca);
    let opts = ConnectOptions::new("tls-handover").clean_session(false);

    // A plain subscriber on the broker's other listener.
    let seen = Inbox::default();
    let (mut sub_rx, mut sub_tx) = ([0u8; 512], [0u8; 512]);
    let mut subscriber =
        Client::new(tcp(broker.port).await, &mut sub_rx, &mut sub_tx, seen.handler());
    subscriber.connect(&ConnectOptions::new("tls-handover-sub")).await.unwrap();
    subscriber.subscribe("handover/+", QoS::AtLeastOnce).await.unwrap();

    // The same record buffers and MQTT buffers serve both connections.
    let mut buffers = Buffers::new();
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let payloads: [&[u8]; 3] = [b"first", b"second", b"third"];

    // Connection 1, through the proxy: connected, then the path goes dark
    // and three QoS 1 publishes are written into it without waiting.
    let stream = open(proxy.port, &options, &mut buffers).await.expect("TLS handshake");
    let mut client = Client::new(stream, &mut rx, &mut tx, |_: &Publish<'_>| {});
    assert!(!client.connect(&opts).await.unwrap().session_present, "fresh persistent session");
    proxy.set_black_hole(true);
    let mut ids = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        ids.push(
            client
                .publish_no_wait(&format!("handover/{i}"), payload, QoS::AtLeastOnce, false)
                .await
                .unwrap(),
        );
    }
    assert_eq!(client.in_flight(), 3);
    let session = client.into_session(); // drops the TLS stream and its TCP connection
    assert_eq!(session.in_flight(), 3);
    proxy.kill_now();
    proxy.set_black_hole(false);

    // Connection 2: a new TLS stream on the same buffers, a new client
    // continuing the session.
    let stream = open(tls_port, &options, &mut buffers).await.expect("TLS handshake again");
    let mut client = Client::with_session(stream, &mut rx, &mut tx, |_: &Publish<'_>| {}, session);
    assert_eq!(client.in_flight(), 3);
    assert!(client.connect(&opts).await.unwrap().session_present, "broker kept the session");
    tokio::time::timeout(WAIT, client.wait_all_acked()).await.expect("acks in time").unwrap();
    assert!(ids.iter().all(|&id| !client.is_in_flight(id)));
    client.disconnect().await.unwrap();

    while seen.len() < payloads.len() {
        tokio::time::timeout(WAIT, subscriber.wait_msg()).await.expect("delivery in time").unwrap();
    }
    let expected: Vec<Received> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("handover/{i}"), p.to_vec(), QoS::AtLeastOnce))
        .collect();
    assert_eq!(seen.take(), expected, "each publish delivered once, in order");
    subscriber.disconnect().await.unwrap();

    // The broker received each publish only as a resend: DUP=1, original ids.
    let log = broker.log();
    let received: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Received PUBLISH from tls-handover ") && l.contains("handover/"))
        .collect();
    assert_eq!(received.len(), 3, "log: {log}");
    for (line, id) in received.iter().zip(&ids) {
        let id = id.get();
        assert!(line.contains(&format!("(d1, q1, r0, m{id},")), "not a DUP resend of {id}: {line}");
    }
}
