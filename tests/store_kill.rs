//! Messages survive a reboot, with real processes `[MQTT-3.1.2-4]`: the
//! `cli` publisher with `--store FILE` publishes 1,000 numbered messages
//! to a real Mosquitto and is SIGKILLed 20 times at random moments, each
//! time started again with the same arguments; a persistent subscriber
//! counts what arrives. QoS 1: none lost, duplicates counted. QoS 2: none
//! lost, none duplicated.

mod cli_support;
mod common;

use std::cell::RefCell;
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use cli_support::cli;
use common::Mosquitto;
use embedded_io_adapters::std::FromStd;
use umqtt::blocking::{Client, StdClock};
use umqtt::{ConnectOptions, Publish, QoS};

const MESSAGES: usize = 1000;
const KILLS: usize = 20;

/// xorshift64: the kill moments, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Subscribes persistently to `topic` at `qos` and counts every payload
/// until `end`; sends `()` on `ready` once subscribed.
fn subscriber(port: u16, topic: String, qos: QoS, ready: mpsc::Sender<()>) -> Vec<String> {
    let socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut rx, mut tx, mut slots) = (vec![0u8; 4096], vec![0u8; 1024], vec![0u16; 64]);
    let received = RefCell::new(Vec::new());
    let handler = |m: &Publish<'_>| {
        received.borrow_mut().push(String::from_utf8(m.payload.to_vec()).unwrap());
    };
    let mut client = Client::new(FromStd::new(socket), &mut rx, &mut tx, handler, StdClock::new())
        .receive_qos2(&mut slots);
    let id = format!("store-kill-sub-{}", qos as u8);
    client.connect(&ConnectOptions::new(&id).clean_session(false).keep_alive_secs(30)).unwrap();
    client.subscribe(&topic, qos).unwrap();
    ready.send(()).unwrap();
    while received.borrow().last().is_none_or(|last| last != "end") {
        client.wait_msg().unwrap();
    }
    let _ = client.disconnect();
    drop(client);
    received.into_inner()
}

/// Runs the kill test at `qos`; returns (kills, duplicates).
fn kill_test(name: &str, qos: QoS) -> Option<(usize, usize, u64)> {
    let broker = Mosquitto::start(name, "max_queued_messages 10000\n")?;
    let port = broker.port;
    let topic = format!("store-kill/{}", qos as u8);
    let (ready_tx, ready) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let sub_topic = topic.clone();
    std::thread::spawn(move || {
        let _ = done_tx.send(subscriber(port, sub_topic, qos, ready_tx));
    });
    ready.recv_timeout(Duration::from_secs(10)).expect("the subscriber subscribes");

    let store = broker.dir.join("publisher.flash");
    let seed =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = Rng(seed);
    let (port_s, qos_s, count) = (port.to_string(), (qos as u8).to_string(), MESSAGES.to_string());
    let publisher = || {
        let mut c = cli();
        c.args(["pub", "-p", &port_s, "-t", &topic, "-m", "n{n}", "-q", &qos_s]);
        c.args(["--repeat", &count, "-c", "-i", &format!("store-kill-pub-{qos_s}")]);
        c.arg("--store").arg(&store).stdout(Stdio::null()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let mut kills = 0;
    let started = std::time::Instant::now();
    let mut finished = false;
    while kills < KILLS && !finished {
        let mut child = publisher();
        // A random moment: when the power goes, not a wait for anything.
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "{name}: the publisher failed");
                finished = true;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    if !finished {
        let out = publisher().wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: the last publisher failed: {stderr}");
    }
    let elapsed = started.elapsed();
    // The end marker, after everything the publisher sent (Mosquitto
    // forwards in the order it received).
    let end = cli().args(["pub", "-p", &port_s, "-t", &topic, "-m", "end", "-q", &qos_s]).output();
    assert!(end.unwrap().status.success());
    let received = done.recv_timeout(Duration::from_secs(60)).expect("the subscriber got the end");
    let mut counts = vec![0usize; MESSAGES];
    for payload in received.iter().filter(|p| *p != "end") {
        let n: usize = payload[1..].parse().unwrap();
        counts[n] += 1;
    }
    let lost: Vec<usize> = (0..MESSAGES).filter(|&n| counts[n] == 0).collect();
    assert!(lost.is_empty(), "{name}: lost {} messages: {lost:?} (seed {seed})", lost.len());
    let duplicates = counts.iter().map(|c| c - 1).sum();
    println!(
        "STORE-FIGURES: kill test QoS {}: {MESSAGES} messages, {kills} SIGKILLs, 0 lost, \
         {duplicates} duplicates, {:.1} s (seed {seed})",
        qos as u8,
        elapsed.as_secs_f64()
    );
    Some((kills, duplicates, seed))
}

#[test]
fn mqtt_3_1_2_4_qos1_publisher_killed_20_times_loses_nothing() {
    let Some((kills, _duplicates, seed)) = kill_test("store_kill_q1", QoS::AtLeastOnce) else {
        return;
    };
    assert_eq!(kills, KILLS, "the publisher finished before the 20th kill (seed {seed})");
}

#[test]
fn mqtt_4_3_3_qos2_publisher_killed_20_times_loses_and_duplicates_nothing() {
    let Some((kills, duplicates, seed)) = kill_test("store_kill_q2", QoS::ExactlyOnce) else {
        return;
    };
    assert_eq!(duplicates, 0, "QoS 2 duplicated (seed {seed})");
    assert_eq!(kills, KILLS, "the publisher finished before the 20th kill (seed {seed})");
}
