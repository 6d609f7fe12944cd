//! One verified round trip (or refusal) against a Mosquitto TLS 1.3
//! listener serving a chain from `tls_common::rsa_pki`. Included with
//! `#[path]` by the tests that use it (it needs `mod common`).

use std::time::{Duration, Instant};

use crate::common::{Mosquitto, free_port, tcp};
use umqtt::tls::{self, ConnectError, MaxFragmentLength, TLS_RECORD_OVERHEAD, TlsOptions};
use umqtt::{Client, ConnectOptions, Publish, QoS};

use crate::tls_common::{OsRng, SystemClock, have_openssl, rsa_pki, server_listener};

const WAIT: Duration = Duration::from_secs(20);

/// What [`round_trip`] saw.
#[allow(dead_code, reason = "not every test binary reads the handshake time")]
pub enum Outcome {
    /// openssl or Mosquitto missing (and not required): skipped.
    Skipped,
    /// Verified; a QoS 1 publish came back through the broker. The
    /// handshake time (TCP connect included).
    Delivered(Duration),
    /// The handshake failed.
    Refused(ConnectError),
}

/// Serves `<chain>.pem`/`.key`, trusts `<anchor>.pem`, connects by `host`
/// (system clock on), then publishes and receives one message.
pub async fn round_trip(test: &str, chain: &str, anchor: &str, host: &str) -> Outcome {
    round_trip_with(test, chain, anchor, host, None).await
}

/// [`round_trip`] asking for records of at most `max_fragment_length`,
/// with the record buffers that needs.
pub async fn round_trip_with(
    test: &str,
    chain: &str,
    anchor: &str,
    host: &str,
    max_fragment_length: Option<MaxFragmentLength>,
) -> Outcome {
    if !have_openssl(test) {
        return Outcome::Skipped;
    }
    let pki = rsa_pki();
    let port = free_port();
    let Some(_broker) = Mosquitto::start(test, &server_listener(pki, port, chain)) else {
        return Outcome::Skipped;
    };
    let ca = pki.cert_der(&format!("{anchor}.pem"));
    let mut options = TlsOptions::new(host, &ca).clock::<SystemClock>();
    if let Some(length) = max_fragment_length {
        options = options.max_fragment_length(length);
    }
    let mut read = vec![0u8; options.read_record_buffer_len()];
    let mut write = vec![0u8; 2 * (1024 + TLS_RECORD_OVERHEAD)];
    let started = Instant::now();
    let handshake = tls::connect(tcp(port).await, &mut read, &mut write, &options, OsRng);
    let stream = match tokio::time::timeout(WAIT, handshake).await.expect("handshake in time") {
        Ok(stream) => stream,
        Err(e) => return Outcome::Refused(e),
    };
    let took = started.elapsed();
    let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::<Vec<u8>>::new()));
    let sink = got.clone();
    let (mut rx, mut tx) = (vec![0u8; 1024], vec![0u8; 1024]);
    let mut client = Client::new(stream, &mut rx, &mut tx, move |m: &Publish<'_>| {
        sink.borrow_mut().push(m.payload.to_vec())
    });
    client.connect(&ConnectOptions::new(test)).await.expect("MQTT connect over TLS");
    client.subscribe("chain/echo", QoS::AtLeastOnce).await.unwrap();
    client.publish("chain/echo", chain.as_bytes(), QoS::AtLeastOnce, false).await.unwrap();
    while got.borrow().is_empty() {
        tokio::time::timeout(WAIT, client.wait_msg()).await.expect("echo in time").unwrap();
    }
    assert_eq!(got.borrow()[0], chain.as_bytes());
    client.disconnect().await.unwrap();
    Outcome::Delivered(took)
}
