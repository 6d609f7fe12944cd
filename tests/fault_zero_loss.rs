//! Zero message loss at QoS 1 while the network keeps breaking (issue 7),
//! and exactly once at QoS 2 (issue 11): the same run at QoS 2, with the
//! subscriber receiving QoS 2 (`receive_qos2` slots), must show 0 lost and
//! 0 duplicated.
//!
//! A publisher sends N sequence-numbered QoS 1 messages through a proxy that
//! kills its connection K times at random byte offsets in either
//! direction; a subscriber with a persistent session sits behind a second
//! killing proxy. Both run the application-level reconnect loop with
//! backoff that the examples teach (`clean_session(false)`,
//! `client.reconnect(new_transport, &opts)`). Every sequence number must
//! reach the subscriber at least once; duplicates are counted and reported.
//!
//! The publisher relies on one rule of `src/client/mod.rs`: a QoS 1
//! `publish` stores the encoded PUBLISH in the client's outbox *before*
//! writing it (`publish_no_wait`: `outbox.push`, then `flush_pending`), and
//! `connect`/`reconnect` with `clean_session(false)` resends every stored
//! publish with DUP=1 and its packet id (`resend_outbox`). So after a failed
//! `publish` whose message was stored (`in_flight()` counts it) the
//! application must NOT publish it again: that would be a second packet id
//! and a duplicate. A `publish` can also fail *before* storing (a pending
//! write of an earlier call fails first, or the client is not connected);
//! then `in_flight()` does not count it and the application must publish
//! again. The publisher tells the two apart by keeping the outbox empty
//! between messages (it waits for all acks after each reconnect).
//!
//! Environment: `UMQTT_ZERO_LOSS_MESSAGES` (default 2000),
//! `UMQTT_ZERO_LOSS_KILLS` (kills per side, default 20),
//! `UMQTT_ZERO_LOSS_SEED` (default 7).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{Mosquitto, Tcp, tcp};
use tokio::sync::{Barrier, watch};
use umqtt::{Client, ConnectOptions, Error, Publish, PublishError, QoS};

const TOPIC: &str = "zero-loss/seq";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one side lived through.
#[derive(Debug, Default)]
struct Side {
    reconnects: u64,
    failed_connects: u64,
    session_lost: u64,
    /// Failed publishes whose message was stored and resent by reconnect.
    resent_by_reconnect: u64,
    /// Failed publishes that had not stored their message: published again.
    published_again: u64,
    /// QoS 2 connections ended by `ReceiveSlotsFull`: the broker had more
    /// messages awaiting PUBREL than the subscriber has slots (Mosquitto
    /// 2.0.11 exceeds its `max_inflight_messages` of 20 after reconnects);
    /// it redelivers them after the reconnect, the slots dedupe.
    slots_full: u64,
}

/// What the subscriber received.
#[derive(Debug, Default)]
struct Seen {
    count: BTreeMap<u32, u32>,
    total: u64,
    dup_flag: u64,
}

/// Reconnects through `port` until CONNACK arrives, with exponential
/// backoff (5 ms .. 200 ms). Returns session-present.
async fn reconnect<H: FnMut(&Publish<'_>)>(
    client: &mut Client<'_, Tcp, H>,
    port: u16,
    opts: &ConnectOptions<'_>,
    side: &mut Side,
) -> bool {
    let mut delay = Duration::from_millis(5);
    for _ in 0..1000 {
        match client.reconnect(tcp(port).await, opts).await {
            Ok(connected) => {
                side.reconnects += 1;
                return connected.session_present;
            }
            Err(e) => {
                assert!(e.is_fatal() || matches!(e, Error::Timeout), "reconnect failed with {e:?}");
                side.failed_connects += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(200));
            }
        }
    }
    panic!("could not reconnect in 1000 attempts");
}

async fn publisher(port: u16, n: u32, ready: Arc<Barrier>, qos: QoS) -> Side {
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 1024]);
    let opts = ConnectOptions::new("zero-loss-pub")
        .clean_session(false)
        .keep_alive_secs(30)
        .ack_timeout(umqtt_secs(5));
    let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    let mut side = Side::default();
    client.connect(&opts).await.expect("publisher connect");
    ready.wait().await;
    for seq in 0..n {
        let payload = seq.to_string();
        loop {
            assert_eq!(client.in_flight(), 0, "outbox must be empty between messages");
            let Err(PublishError { error: e, stored: id }) =
                client.publish(TOPIC, payload.as_bytes(), qos, false).await
            else {
                break;
            };
            assert!(
                e.is_fatal() || matches!(e, Error::Timeout | Error::NotConnected),
                "publish failed with {e:?}"
            );
            let stored = client.in_flight() == 1;
            assert_eq!(stored, id.is_some(), "the error tells whether it was stored: {e:?}");
            // Reconnect (which resends a stored publish with DUP=1), then
            // wait for every ack, reconnecting again while that fails.
            loop {
                reconnect(&mut client, port, &opts, &mut side).await;
                if client.wait_all_acked().await.is_ok() {
                    break;
                }
            }
            if stored {
                side.resent_by_reconnect += 1;
                break;
            }
            side.published_again += 1;
        }
    }
    let _ = client.disconnect().await;
    side
}

fn umqtt_secs(s: u64) -> embassy_time::Duration {
    embassy_time::Duration::from_secs(s)
}

async fn subscriber(
    port: u16,
    n: u32,
    seen: Arc<Mutex<Seen>>,
    ready: Arc<Barrier>,
    qos: QoS,
) -> Side {
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    // More slots than Mosquitto's default max_inflight_messages (20).
    let mut slots = [0u16; 32];
    let opts = ConnectOptions::new("zero-loss-sub")
        .clean_session(false)
        .keep_alive_secs(30)
        .ack_timeout(umqtt_secs(5));
    let record = Arc::clone(&seen);
    let client = Client::new(tcp(port).await, &mut rx, &mut tx, move |m: &Publish<'_>| {
        let seq: u32 = std::str::from_utf8(m.payload).unwrap().parse().unwrap();
        let mut s = record.lock().unwrap();
        *s.count.entry(seq).or_default() += 1;
        s.total += 1;
        s.dup_flag += u64::from(m.dup);
    });
    let mut client = if qos == QoS::ExactlyOnce { client.receive_qos2(&mut slots) } else { client };
    let mut side = Side::default();
    client.connect(&opts).await.expect("subscriber connect");
    client.subscribe(TOPIC, qos).await.expect("subscribe");
    ready.wait().await;
    while seen.lock().unwrap().count.len() < n as usize {
        if let Err(e) = client.wait_msg().await {
            assert!(e.is_fatal(), "wait_msg failed with {e:?}");
            side.slots_full += u64::from(matches!(e, Error::ReceiveSlotsFull));
            loop {
                if reconnect(&mut client, port, &opts, &mut side).await {
                    break;
                }
                // The broker lost the session: subscribe again.
                side.session_lost += 1;
                if client.subscribe(TOPIC, qos).await.is_ok() {
                    break;
                }
            }
        }
    }
    let _ = client.disconnect().await;
    side
}

/// Arms `kills` kills one after the other on `proxy` until `done`.
async fn kill_driver(
    proxy: Arc<Proxy>,
    kills: u64,
    max_up: u64,
    max_down: u64,
    mut done: watch::Receiver<bool>,
) {
    for k in 0..kills {
        proxy.kill_random(max_up, max_down);
        tokio::select! {
            () = proxy.wait_kills(k + 1) => {}
            _ = done.wait_for(|d| *d) => return,
        }
    }
}

/// What a run showed: lost sequence numbers and extra copies.
struct Figures {
    lost: Vec<u32>,
    extra_copies: u64,
}

/// One run at `qos`: N messages, K kills on each side, the figures printed.
async fn zero_loss_run(qos: QoS) -> Figures {
    let n = env_u64("UMQTT_ZERO_LOSS_MESSAGES", 10_000) as u32;
    let kills = env_u64("UMQTT_ZERO_LOSS_KILLS", 100);
    let seed = env_u64("UMQTT_ZERO_LOSS_SEED", 7);
    // No queue limit: a broker dropping queued messages is not the
    // client's loss (Mosquitto's default keeps 1000 per client).
    let tag = if qos == QoS::ExactlyOnce { "zero-loss-qos2" } else { "zero-loss" };
    let Some(broker) = Mosquitto::start(tag, "max_queued_messages 0\n") else {
        return Figures { lost: Vec::new(), extra_copies: 0 };
    };
    let pub_proxy = Arc::new(Proxy::start(broker.port, seed).await);
    let sub_proxy = Arc::new(Proxy::start(broker.port, seed ^ 0x5eed).await);
    let started = Instant::now();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let ready = Arc::new(Barrier::new(3));
    let sub =
        tokio::spawn(subscriber(sub_proxy.port, n, Arc::clone(&seen), Arc::clone(&ready), qos));
    let publ = tokio::spawn(publisher(pub_proxy.port, n, Arc::clone(&ready), qos));
    ready.wait().await;

    // Spread the kills over about half the run: a PUBLISH of this test is
    // about 20 bytes, an ack 4; a kill at a uniform offset in 0..=max uses
    // max/2 bytes on average. At QoS 2 a PUBREL follows the PUBLISH and
    // PUBREC and PUBCOMP are the acks.
    let per_kill = u64::from(n) / kills.max(1);
    let (publish_bytes, ack_bytes) = if qos == QoS::ExactlyOnce { (24, 8) } else { (20, 4) };
    let (done_tx, done_rx) = watch::channel(false);
    let drivers = [
        tokio::spawn(kill_driver(
            Arc::clone(&pub_proxy),
            kills,
            per_kill * publish_bytes,
            per_kill * ack_bytes,
            done_rx.clone(),
        )),
        tokio::spawn(kill_driver(
            Arc::clone(&sub_proxy),
            kills,
            per_kill * ack_bytes,
            per_kill * publish_bytes,
            done_rx,
        )),
    ];

    let limit = Duration::from_secs(120 + u64::from(n) / 100);
    let (pub_side, sub_side) =
        tokio::time::timeout(limit, async { (publ.await.unwrap(), sub.await.unwrap()) })
            .await
            .unwrap_or_else(|_| {
                let s = seen.lock().unwrap();
                panic!(
                    "not done within {limit:?}: {} of {n} seen; pub kills {}, sub kills {}",
                    s.count.len(),
                    pub_proxy.kills(),
                    sub_proxy.kills()
                )
            });
    let elapsed = started.elapsed();
    done_tx.send_replace(true);
    for d in drivers {
        d.await.unwrap();
    }

    let s = seen.lock().unwrap();
    let lost: Vec<u32> = (0..n).filter(|q| !s.count.contains_key(q)).collect();
    let duplicated = s.count.values().filter(|&&c| c > 1).count();
    println!(
        "zero-loss {qos:?}: sent {n}, received {} ({} distinct), duplicated {duplicated} seqs ({} extra copies, {} with DUP=1), lost {}; \
         kills: publisher {} subscriber {}; publisher: {} reconnects, {} failed connects, {} resent by reconnect, {} published again; \
         subscriber: {} reconnects, {} failed connects, {} sessions lost, {} slots full; {:.2} s",
        s.total,
        s.count.len(),
        s.total - s.count.len() as u64,
        s.dup_flag,
        lost.len(),
        pub_proxy.kills(),
        sub_proxy.kills(),
        pub_side.reconnects,
        pub_side.failed_connects,
        pub_side.resent_by_reconnect,
        pub_side.published_again,
        sub_side.reconnects,
        sub_side.failed_connects,
        sub_side.session_lost,
        sub_side.slots_full,
        elapsed.as_secs_f64(),
    );
    assert!(s.count.keys().all(|&q| q < n), "unknown sequence numbers");
    assert_eq!(pub_proxy.kills(), kills, "every planned publisher-side kill must fire");
    assert_eq!(sub_proxy.kills(), kills, "every planned subscriber-side kill must fire");
    assert_eq!(sub_side.session_lost, 0, "Mosquitto keeps the persistent session");
    Figures { lost, extra_copies: s.total - s.count.len() as u64 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_4_4_0_1_qos1_zero_loss_through_connection_kills() {
    let figures = zero_loss_run(QoS::AtLeastOnce).await;
    assert!(figures.lost.is_empty(), "lost sequence numbers: {:?}", figures.lost);
}

/// QoS 2 both ways through the same kills: the publisher's resend after a
/// reconnect (PUBLISH DUP=1 before PUBREC, PUBREL after) and the
/// subscriber's slots (a redelivered PUBLISH is acknowledged, not
/// delivered) make every message arrive exactly once.
///
/// Ignored in CI: some runs stall (a few hundred of 10,000 messages seen,
/// then nothing until the time limit) — a liveness fault not yet found:
/// about one run in five before the persistence work, 1 in 52 after it
/// (2026-12-02); every run that completes has 0 lost and 0 duplicated.
/// Run it with `cargo test --test fault_zero_loss -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "intermittent stall under investigation (see the doc comment)"]
async fn mqtt_4_3_3_qos2_exactly_once_through_connection_kills() {
    let figures = zero_loss_run(QoS::ExactlyOnce).await;
    assert!(figures.lost.is_empty(), "lost sequence numbers: {:?}", figures.lost);
    assert_eq!(figures.extra_copies, 0, "QoS 2 delivered a message twice");
}
