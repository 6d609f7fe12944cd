//! The always-connected client against a real Mosquitto that is SIGKILLed
//! and restarted on the same port 20 times while the client publishes
//! 10,000 QoS 1 messages to a topic it is subscribed to: none is lost
//! (unacknowledged ones are resent `[MQTT-4.4.0-1]`), duplicates are counted, and after every restart a
//! message from `mosquitto_pub` reaches the client (its subscription came
//! back, whether the broker kept the session or not), with and without
//! broker persistence. Then four tasks publishing 1,000 QoS 1 messages
//! each through one connection while the broker is restarted twice: every
//! message arrives, each task's order is kept, no packet is interleaved.
//!
//! Figures go to stdout, prefixed `ROBUST-FIGURES:`.

mod common;
mod robust_support;

use std::process::Command;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{Mosquitto, temp_dir};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use robust_support::{Forward, TokioTcp, median_max};
use umqtt::robust::{Backoff, Client, Config, Event, Runner, State};
use umqtt::{ConnectOptions, QoS};

type Shared = State<CriticalSectionRawMutex, 128, 256, 128, 8>;

fn config() -> Config {
    Config {
        backoff: Backoff {
            min: embassy_time::Duration::from_millis(10),
            max: embassy_time::Duration::from_millis(500),
            factor: 2,
            jitter_percent: 20,
            // Each restart starts the schedule again (restarts come < 1 s apart).
            stable_after: embassy_time::Duration::from_millis(100),
        },
        connect_timeout: embassy_time::Duration::from_secs(2),
        stop_on_auth_refusal: false,
    }
}

/// Starts a runner for `client_id` on `port` as a tokio task; its events
/// come out of the returned receiver.
fn start_runner(
    port: u16,
    client_id: &'static str,
    state: &'static Shared,
) -> (Client<'static>, Receiver<(Instant, Event)>) {
    let rx: &'static mut [u8] = Box::leak(vec![0u8; 1024].into_boxed_slice());
    let tx: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
    let opts = ConnectOptions::new(client_id).clean_session(false).keep_alive_secs(10);
    let (events_tx, events) = channel();
    let (runner, client) = Runner::new(TokioTcp { port }, state, rx, tx, opts, config());
    let mut seed = 0x2545_f491_u32;
    let mut runner = runner
        .with_rng(move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        })
        .with_hooks(Forward(events_tx));
    tokio::spawn(async move {
        runner.run().await;
    });
    (client, events)
}

/// Waits for the next `Resubscribed` event (the link is whole again);
/// returns when the `Connected` before it came.
fn await_resubscribed(events: &Receiver<(Instant, Event)>) -> Instant {
    let mut connected = None;
    loop {
        let (at, e) = events.recv_timeout(Duration::from_secs(30)).expect("client reconnects");
        match e {
            Event::Connected { .. } => connected = Some(at),
            Event::Resubscribed { .. } => return connected.unwrap_or(at),
            _ => {}
        }
    }
}

fn mosquitto_pub(port: u16, topic: &str, message: &str) {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-m", message])
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub failed");
}

const MESSAGES: u32 = 10_000;
const RESTARTS: u32 = 20;

fn kill_and_restart_20_times(test: &'static str, persistence: bool, state: &'static Shared) {
    let dir = temp_dir(test);
    let extra = if persistence {
        // Saved on every change, so a SIGKILL keeps (most of) the session.
        format!(
            "persistence true\npersistence_location {}/\nautosave_on_changes true\nautosave_interval 1\n",
            dir.display()
        )
    } else {
        String::new()
    };
    let extra = extra.as_str();
    let Some(broker) = Mosquitto::start_in(test, &dir, extra) else { return };
    let port = broker.port;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _guard = rt.enter();
    let (client, events) = start_runner(port, test, state);
    let (progress_tx, progress) = channel::<u32>();
    let (marker_tx, markers) = channel::<String>();

    // Subscribe, then publish 10,000 numbered messages, reporting
    // progress every 400 acknowledged.
    let publisher = rt.spawn(async move {
        client.subscribe("robust/#", QoS::AtLeastOnce).await.unwrap();
        for i in 0..MESSAGES {
            client
                .publish("robust/seq", i.to_string().as_bytes(), QoS::AtLeastOnce, false)
                .await
                .unwrap();
            if (i + 1) % 400 == 0 {
                let _ = progress_tx.send(i + 1);
            }
        }
    });
    // Receive until every number arrived; count duplicates.
    let receiver = rt.spawn(async move {
        let mut seen = vec![0u32; MESSAGES as usize];
        let mut unique = 0;
        let mut buf = [0u8; 256];
        while unique < MESSAGES {
            let m = client.receive(&mut buf).await.unwrap();
            if m.topic == "robust/marker" {
                let _ = marker_tx.send(String::from_utf8_lossy(m.payload).into_owned());
                continue;
            }
            let i: usize = std::str::from_utf8(m.payload).unwrap().parse().unwrap();
            seen[i] += 1;
            if seen[i] == 1 {
                unique += 1;
            }
        }
        seen
    });

    await_resubscribed(&events);
    let mut broker = broker;
    let mut broker_start = Vec::new();
    let mut after_kill = Vec::new();
    for k in 1..=RESTARTS {
        // Kill at 400, 800, ... messages acknowledged.
        while progress.recv_timeout(Duration::from_secs(60)).expect("publisher progresses")
            < k * 400
        {}
        while events.try_recv().is_ok() {}
        let killed = Instant::now();
        broker.kill();
        drop(broker);
        broker = Mosquitto::start_on(test, &dir, port, extra).unwrap();
        broker_start.push(killed.elapsed().as_secs_f64() * 1e3);
        let connected = await_resubscribed(&events);
        after_kill.push(connected.saturating_duration_since(killed).as_secs_f64() * 1e3);
        let marker = format!("restart-{k}");
        mosquitto_pub(port, "robust/marker", &marker);
        let got = markers.recv_timeout(Duration::from_secs(10)).expect("marker after restart");
        assert_eq!(got, marker, "the subscription is back after restart {k}");
    }
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), publisher)
            .await
            .expect("publisher done")
            .unwrap();
    });
    let seen = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), receiver)
            .await
            .expect("all received")
            .unwrap()
    });
    let lost = seen.iter().filter(|&&n| n == 0).count();
    let duplicates: u32 = seen.iter().map(|&n| n.saturating_sub(1)).sum();
    let stats = client.stats();
    let (start_median, start_max) = median_max(&mut broker_start);
    let (median, max) = median_max(&mut after_kill);
    println!(
        "ROBUST-FIGURES: {test}: {RESTARTS} SIGKILL restarts, {MESSAGES} QoS 1 messages: lost {lost}, duplicated {duplicates}; SIGKILL to CONNACK accepted: median {median:.1} ms, max {max:.1} ms (the harness's restart, with its readiness probe polling every 20 ms, returned after median {start_median:.1} ms, max {start_max:.1} ms); reconnects {}, attempts {}",
        stats.reconnects, stats.attempts
    );
    assert_eq!(lost, 0, "no acknowledged message lost");
    assert!(stats.reconnects >= RESTARTS, "{stats:?}");
    rt.block_on(client.close());
}

#[test]
fn mqtt_4_4_0_1_sigkill_restarts_without_persistence_lose_no_qos1_message() {
    static STATE: Shared = State::new();
    kill_and_restart_20_times("robust-no-persistence", false, &STATE);
}

#[test]
fn mqtt_4_4_0_1_sigkill_restarts_with_persistence_lose_no_qos1_message() {
    static STATE: Shared = State::new();
    kill_and_restart_20_times("robust-persistence", true, &STATE);
}

#[test]
fn four_tasks_one_connection_two_restarts_every_message_in_order_per_task() {
    const TASKS: u32 = 4;
    const EACH: u32 = 1_000;
    static STATE: Shared = State::new();
    let test = "robust-four-tasks";
    let dir = temp_dir(test);
    let Some(mut broker) = Mosquitto::start_in(test, &dir, "") else { return };
    let port = broker.port;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _guard = rt.enter();
    let (client, events) = start_runner(port, test, &STATE);
    rt.block_on(client.subscribe("tasks/#", QoS::AtLeastOnce)).unwrap();
    await_resubscribed(&events);
    let (progress_tx, progress) = channel::<u32>();
    // Four tasks on a multi-threaded runtime, one handle each (a copy).
    let publishers: Vec<_> = (0..TASKS)
        .map(|task| {
            let progress_tx = progress_tx.clone();
            rt.spawn(async move {
                let topic = format!("tasks/{task}");
                for i in 0..EACH {
                    let payload = format!("{task}:{i}:{}", "x".repeat((i % 50) as usize));
                    client
                        .publish(&topic, payload.as_bytes(), QoS::AtLeastOnce, false)
                        .await
                        .unwrap();
                    let _ = progress_tx.send(1);
                }
            })
        })
        .collect();
    let receiver = rt.spawn(async move {
        // Per task: the numbers in the order they first arrived.
        let mut order: Vec<Vec<u32>> = vec![Vec::new(); TASKS as usize];
        let mut seen = vec![vec![false; EACH as usize]; TASKS as usize];
        let (mut unique, mut duplicates) = (0, 0);
        let mut buf = [0u8; 256];
        while unique < TASKS * EACH {
            let m = client.receive(&mut buf).await.unwrap();
            // A packet interleaved with another would not parse, or would
            // not match its topic.
            let text = std::str::from_utf8(m.payload).expect("payload intact");
            let mut parts = text.split(':');
            let task: u32 = parts.next().unwrap().parse().expect("task number");
            let i: u32 = parts.next().unwrap().parse().expect("message number");
            assert_eq!(parts.next().unwrap(), "x".repeat((i % 50) as usize), "payload intact");
            assert_eq!(m.topic, format!("tasks/{task}"), "topic matches payload");
            if std::mem::replace(&mut seen[task as usize][i as usize], true) {
                duplicates += 1;
            } else {
                order[task as usize].push(i);
                unique += 1;
            }
        }
        (order, duplicates)
    });
    let mut acked = 0;
    for threshold in [1_000, 2_500] {
        while acked < threshold {
            acked += progress.recv_timeout(Duration::from_secs(60)).expect("publishers progress");
        }
        while events.try_recv().is_ok() {}
        broker.kill();
        drop(broker);
        broker = Mosquitto::start_on(test, &dir, port, "").unwrap();
        await_resubscribed(&events);
    }
    rt.block_on(async {
        for p in publishers {
            tokio::time::timeout(Duration::from_secs(120), p)
                .await
                .expect("publisher done")
                .unwrap();
        }
    });
    let (order, duplicates) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), receiver)
            .await
            .expect("all received")
            .unwrap()
    });
    for (task, got) in order.iter().enumerate() {
        let expected: Vec<u32> = (0..EACH).collect();
        assert_eq!(*got, expected, "task {task}: every message, in its order");
    }
    println!(
        "ROBUST-FIGURES: {test}: 4 tasks x {EACH} QoS 1 messages, 2 SIGKILL restarts: lost 0, duplicated {duplicates}, order kept per task; reconnects {}",
        client.stats().reconnects
    );
    assert!(client.stats().reconnects >= 2);
    rt.block_on(client.close());
}
