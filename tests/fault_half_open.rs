//! Half-open connections: the proxy keeps both sockets open and passes
//! nothing (a dead Wi-Fi link, a NAT that forgot the flow). The client
//! must notice by itself, through keepalive, within 1.5 × keepalive of the
//! last byte it received, and must not give up earlier than the keepalive
//! interval. Real time (embassy-time's std driver): these tests measure a
//! bound, they do not wait for a race to settle.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{Dir, Proxy};
use common::{Mosquitto, tcp};
use umqtt::{Client, ConnectOptions, Error, Publish, PublishError, QoS, State};

const KEEP_ALIVE_SECS: u16 = 2;
/// Scheduling slack on top of 1.5 × keepalive (timer wake-up, two threads).
const SLACK: Duration = Duration::from_millis(250);

fn bound() -> Duration {
    Duration::from_millis(u64::from(KEEP_ALIVE_SECS) * 1500)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_3_1_2_24_half_open_detected_by_wait_msg_within_one_and_a_half_keepalive() {
    let Some(broker) = Mosquitto::start("half-open-wait", "") else { return };
    let proxy = Proxy::start(broker.port, 1).await;
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let opts = ConnectOptions::new("half-open-wait").keep_alive_secs(KEEP_ALIVE_SECS);
    let mut client = Client::new(tcp(proxy.port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    client.connect(&opts).await.unwrap();
    // The CONNACK, the last byte received, arrived before this instant.
    let since = Instant::now();
    proxy.set_black_hole(true);

    let result = tokio::time::timeout(Duration::from_secs(10), client.wait_msg())
        .await
        .expect("wait_msg hung");
    let detected = since.elapsed();
    println!(
        "half-open (wait_msg): KeepAliveTimeout after {:.3} s, keepalive {KEEP_ALIVE_SECS} s, bound {:.1} s",
        detected.as_secs_f64(),
        bound().as_secs_f64()
    );
    assert!(matches!(result, Err(Error::KeepAliveTimeout)), "got {result:?}");
    assert_eq!(client.state(), State::Failed);
    assert!(detected <= bound() + SLACK, "detected after {detected:?}, over 1.5 × keepalive");
    assert!(
        detected >= Duration::from_secs(u64::from(KEEP_ALIVE_SECS)),
        "gave up before one keepalive interval: {detected:?}"
    );
    // The client did try: its PINGREQ (2 bytes) went into the black hole.
    assert_eq!(proxy.black_holed(Dir::Up), 2, "exactly one PINGREQ expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_detected_by_check_msg_polling_loop() {
    let Some(broker) = Mosquitto::start("half-open-check", "") else { return };
    let proxy = Proxy::start(broker.port, 2).await;
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let opts = ConnectOptions::new("half-open-check").keep_alive_secs(KEEP_ALIVE_SECS);
    let mut client = Client::new(tcp(proxy.port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    client.connect(&opts).await.unwrap();
    let since = Instant::now();
    proxy.set_black_hole(true);

    // The application's own loop: check_msg every 20 ms (tick, not sync).
    let result = loop {
        match client.check_msg().await {
            Ok(_) if since.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => break other,
        }
    };
    let detected = since.elapsed();
    println!(
        "half-open (check_msg loop, 20 ms tick): KeepAliveTimeout after {:.3} s",
        detected.as_secs_f64()
    );
    assert!(matches!(result, Err(Error::KeepAliveTimeout)), "got {result:?}");
    assert!(detected <= bound() + SLACK, "detected after {detected:?}");
    assert!(detected >= Duration::from_secs(u64::from(KEEP_ALIVE_SECS)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_during_qos1_publish_times_out_then_resends_after_reconnect() {
    let Some(broker) = Mosquitto::start("half-open-publish", "") else { return };
    let proxy = Proxy::start(broker.port, 3).await;

    // A witness subscribed directly to the broker.
    let (mut wrx, mut wtx) = ([0u8; 256], [0u8; 256]);
    let mut got = Vec::new();
    let mut witness = Client::new(tcp(broker.port).await, &mut wrx, &mut wtx, |m: &Publish<'_>| {
        got.push((m.payload.to_vec(), m.dup))
    });
    witness.connect(&ConnectOptions::new("half-open-witness")).await.unwrap();
    witness.subscribe("half-open/t", QoS::AtLeastOnce).await.unwrap();

    let (mut rx, mut tx) = ([0u8; 256], [0u8; 512]);
    let opts = ConnectOptions::new("half-open-pub")
        .keep_alive_secs(KEEP_ALIVE_SECS)
        .clean_session(false)
        .ack_timeout(embassy_time::Duration::from_millis(500));
    let mut client = Client::new(tcp(proxy.port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    client.connect(&opts).await.unwrap();
    proxy.set_black_hole(true);

    let started = Instant::now();
    let result = client.publish("half-open/t", b"m1", QoS::AtLeastOnce, false).await;
    let waited = started.elapsed();
    println!(
        "half-open (publish QoS 1): {result:?} after {:.3} s (ack timeout 0.5 s)",
        waited.as_secs_f64()
    );
    assert!(
        matches!(result, Err(PublishError { error: Error::Timeout, stored: Some(_) })),
        "got {result:?}"
    );
    assert!(waited >= Duration::from_millis(500) && waited <= Duration::from_millis(500) + SLACK);
    assert_eq!(client.in_flight(), 1, "the unacknowledged publish stays stored");
    // Keepalive then declares the link dead.
    let dead = tokio::time::timeout(Duration::from_secs(10), client.wait_msg())
        .await
        .expect("wait_msg hung");
    assert!(matches!(dead, Err(Error::KeepAliveTimeout)), "got {dead:?}");

    // The network comes back: a new connection resends it (with DUP=1).
    proxy.kill_now();
    proxy.set_black_hole(false);
    client.reconnect(tcp(proxy.port).await, &opts).await.unwrap();
    client.wait_all_acked().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), witness.wait_msg())
        .await
        .expect("witness got nothing")
        .unwrap();
    drop(witness);
    // The broker never saw the first copy; it does not forward DUP to
    // subscribers [MQTT-3.3.1-3].
    assert_eq!(got, vec![(b"m1".to_vec(), false)], "delivered exactly once");
}
