//! Pipelined QoS 1 (`publish_no_wait`, and `queue_publish` batches)
//! against a private Mosquitto: order and completeness over a long run,
//! and resend after a connection killed in the middle of a window.
//!
//! Each client runs in a spawned task: the futures a `#[tokio::test]`
//! body awaits directly get a new waker identity on every poll, which
//! makes embassy-time's generic timer queue wake them spuriously.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::{Dir, Proxy};
use common::{Mosquitto, tcp};
use tokio::sync::oneshot;
use umqtt::{Client, ConnectOptions, Error, Publish, QoS};

/// Subscribes to `topic` at QoS 1 and records every payload as a sequence
/// number until `expected` distinct ones arrived. `ready` fires after
/// SUBACK.
fn subscriber(
    port: u16,
    topic: &'static str,
    expected: usize,
    ready: oneshot::Sender<()>,
) -> tokio::task::JoinHandle<Vec<u32>> {
    tokio::spawn(async move {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let (mut rx, mut tx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, move |m: &Publish<'_>| {
            let n = std::str::from_utf8(m.payload).unwrap().parse().unwrap();
            record.lock().unwrap().push(n);
        });
        client.connect(&ConnectOptions::new("")).await.unwrap();
        client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
        ready.send(()).unwrap();
        let distinct = |v: &Vec<u32>| v.iter().collect::<std::collections::BTreeSet<_>>().len();
        while distinct(&seen.lock().unwrap()) < expected {
            client.wait_msg().await.unwrap();
        }
        let _ = client.disconnect().await;
        seen.lock().unwrap().clone()
    })
}

/// How [`ordered_10000`] publishes.
#[derive(Clone, Copy)]
enum Mode {
    /// `publish_no_wait` for each message.
    NoWait,
    /// `queue_publish` until `WouldBlock`, then `publish_no_wait`.
    Queued,
}

/// Publishes 10,000 sequence numbers at QoS 1 with a window of 64 and
/// checks a subscriber gets all of them, in order, and that the mode did
/// what it is for (the window was used; batches were queued).
async fn ordered_10000(test: &str, topic: &'static str, mode: Mode) {
    let Some(broker) = Mosquitto::start(test, "max_inflight_messages 0\nmax_queued_messages 0\n")
    else {
        return;
    };
    const N: u32 = 10_000;
    let (ready, subscribed) = oneshot::channel();
    let sub = subscriber(broker.port, topic, N as usize, ready);
    subscribed.await.unwrap();
    let port = broker.port;
    tokio::spawn(async move {
        let (mut rx, mut tx) = (vec![0u8; 1024], vec![0u8; 8 * 1024]);
        let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
        client.connect(&ConnectOptions::new("").max_in_flight(64)).await.unwrap();
        let (mut most, mut queued) = (0, 0);
        for i in 0..N {
            let payload = i.to_string();
            let queue = match mode {
                Mode::NoWait => Err(Error::WouldBlock),
                Mode::Queued => {
                    client.queue_publish(topic, payload.as_bytes(), QoS::AtLeastOnce, false)
                }
            };
            match queue {
                Ok(_) => queued += 1,
                Err(Error::WouldBlock) => {
                    client
                        .publish_no_wait(topic, payload.as_bytes(), QoS::AtLeastOnce, false)
                        .await
                        .unwrap();
                }
                Err(e) => panic!("queue_publish: {e:?}"),
            }
            most = most.max(client.in_flight());
        }
        client.wait_all_acked().await.unwrap();
        client.disconnect().await.unwrap();
        // The window was actually used.
        assert!(most > 1, "at most {most} in flight");
        if matches!(mode, Mode::Queued) {
            // Batching actually happened.
            assert!(queued > N / 2, "only {queued} of {N} queued");
        }
    })
    .await
    .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), sub)
        .await
        .expect("subscriber timed out")
        .unwrap();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_10000_messages_all_arrive_in_order() {
    ordered_10000("pipelined_10000", "pipelined/order", Mode::NoWait).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_batches_of_10000_messages_all_arrive_in_order() {
    ordered_10000("queued_10000", "queued/order", Mode::Queued).await;
}

/// Publishes `0..n` through `proxy`, which kills the connection after
/// `kill` bytes in `dir`; reconnects with `clean_session(false)` and
/// finishes. Returns the number of reconnects.
async fn publish_through_kill(
    port: u16,
    proxy: &Proxy,
    topic: &str,
    n: u32,
    dir: Dir,
    kill: u64,
) -> u32 {
    let opts = ConnectOptions::new("pipelined-kill").clean_session(false).max_in_flight(64);
    let (mut rx, mut tx) = (vec![0u8; 1024], vec![0u8; 8 * 1024]);
    let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    client.connect(&opts).await.unwrap();
    proxy.kill_after(dir, kill);
    let mut reconnects = 0;
    let mut next = 0;
    loop {
        let result = async {
            while next < n {
                // The window (64) exceeds n, so publish_no_wait never waits
                // for a PUBACK: a message is stored iff in_flight() grew.
                let before = client.in_flight();
                let r = client
                    .publish_no_wait(topic, next.to_string().as_bytes(), QoS::AtLeastOnce, false)
                    .await;
                if r.is_ok() || client.in_flight() > before {
                    next += 1;
                }
                r?;
            }
            client.wait_all_acked().await
        }
        .await;
        match result {
            Ok(()) => break,
            Err(e) => {
                assert!(matches!(e, Error::ConnectionClosed | Error::Transport(_)), "{e:?}");
                reconnects += 1;
                assert!(reconnects < 5, "the connection keeps failing");
                client.reconnect(tcp(port).await, &opts).await.unwrap();
            }
        }
    }
    client.disconnect().await.unwrap();
    reconnects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_4_4_0_1_connection_killed_mid_window_then_reconnect_delivers_every_message() {
    let Some(broker) =
        Mosquitto::start("pipelined_kill", "max_inflight_messages 0\nmax_queued_messages 0\n")
    else {
        return;
    };
    const N: u32 = 50;
    // One PUBLISH of "k/<i>" here is 2 + 2 + 8 + 2 + up to 2 bytes; a
    // PUBACK is 4. Kill inside the first, middle and last part of the
    // window, on the way up (PUBLISHes lost) and down (PUBACKs lost).
    for (round, (dir, kill)) in
        [(Dir::Up, 10u64), (Dir::Up, 400), (Dir::Up, 790), (Dir::Down, 2), (Dir::Down, 101)]
            .into_iter()
            .enumerate()
    {
        let topic: &'static str = Box::leak(format!("pipelined/k{round}").into_boxed_str());
        let (ready, subscribed) = oneshot::channel();
        let sub = subscriber(broker.port, topic, N as usize, ready);
        subscribed.await.unwrap();
        let port = broker.port;
        let reconnects = tokio::spawn(async move {
            let proxy = Proxy::start(port, round as u64).await;
            publish_through_kill(proxy.port, &proxy, topic, N, dir, kill).await
        })
        .await
        .unwrap();
        assert_eq!(reconnects, 1, "round {round}: the armed kill fired once");
        let got = tokio::time::timeout(Duration::from_secs(30), sub)
            .await
            .expect("subscriber timed out")
            .unwrap();
        for i in 0..N {
            assert!(
                got.contains(&i),
                "round {round} ({dir:?} after {kill} bytes): message {i} lost; got {got:?}"
            );
        }
    }
}
