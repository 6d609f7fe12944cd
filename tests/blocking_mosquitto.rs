//! The blocking client (`umqtt::blocking::Client`) against a private
//! Mosquitto per test, over `std::net::TcpStream` + `FromStd` +
//! `StdClock`, publisher and subscriber each in its own thread: QoS 0/1/2
//! round trips, 1,000 QoS 1 messages in order, a persistent session that
//! receives what was queued while it was offline, and keepalive on a 1 s
//! interval. Threads synchronise through channels; every wait for the
//! other side is bounded by [`WAIT`]. Each test skips with one line when
//! Mosquitto is missing (see `common::Mosquitto::start`).

mod common;

use std::cell::RefCell;
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::Mosquitto;
use embedded_io_adapters::std::FromStd;
use umqtt::blocking::{Client, Clock, StdClock, Transport};
use umqtt::{ConnectOptions, QoS, State};

/// How long a test waits for the other side.
const WAIT: Duration = Duration::from_secs(20);

/// A received message: topic, payload, QoS.
type Received = (String, Vec<u8>, QoS);

/// A blocking transport to the broker on `port`, with TCP_NODELAY.
fn link(port: u16) -> FromStd<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to broker");
    stream.set_nodelay(true).unwrap();
    FromStd::new(stream)
}

/// A handler that records into the returned list.
fn recorder() -> (Rc<RefCell<Vec<Received>>>, impl FnMut(&umqtt::Publish<'_>)) {
    let got = Rc::new(RefCell::new(Vec::new()));
    let sink = got.clone();
    (got, move |m: &umqtt::Publish<'_>| {
        sink.borrow_mut().push((m.topic.to_owned(), m.payload.to_vec(), m.qos));
    })
}

/// Receives from `rx` within [`WAIT`] or fails the test.
fn within<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("{what} did not happen within {WAIT:?}"))
}

/// Joins `handle` once it has reported on `done` (bounded by [`WAIT`]).
fn join<T>(handle: JoinHandle<T>, done: &Receiver<()>, what: &str) -> T {
    within(done, what);
    handle.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

/// A subscriber thread: connects as `id`, subscribes to `filter` at
/// `qos`, says so on the returned channel, receives `n` messages,
/// disconnects and returns them.
fn subscriber(
    port: u16,
    id: &'static str,
    filter: &'static str,
    qos: QoS,
    n: usize,
) -> (Receiver<()>, Receiver<()>, JoinHandle<Vec<Received>>) {
    let (ready_tx, ready) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let handle = thread::spawn(move || {
        let (mut rx, mut tx, mut slots) = ([0u8; 512], [0u8; 512], [0u16; 8]);
        let (got, handler) = recorder();
        let mut c = Client::new(link(port), &mut rx, &mut tx, handler, StdClock::new())
            .receive_qos2(&mut slots);
        c.connect(&ConnectOptions::new(id).keep_alive_secs(30)).unwrap();
        assert_eq!(c.subscribe(filter, qos).unwrap(), qos);
        ready_tx.send(()).unwrap();
        while got.borrow().len() < n {
            c.wait_msg().unwrap();
        }
        c.disconnect().unwrap();
        let _ = done_tx.send(());
        got.take()
    });
    (ready, done, handle)
}

/// A publisher thread: connects as `id` and publishes `payloads` to
/// `topic` at `qos`, each call returning only when the broker has
/// acknowledged it.
fn publisher(
    port: u16,
    id: &'static str,
    topic: &'static str,
    qos: QoS,
    payloads: Vec<Vec<u8>>,
) -> (Receiver<()>, JoinHandle<()>) {
    let (done_tx, done) = mpsc::channel();
    let handle = thread::spawn(move || {
        let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
        let mut c =
            Client::new(link(port), &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {}, StdClock::new());
        c.connect(&ConnectOptions::new(id)).unwrap();
        for p in &payloads {
            c.publish(topic, p, qos, false).unwrap();
        }
        assert_eq!(c.in_flight(), 0);
        c.disconnect().unwrap();
        let _ = done_tx.send(());
    });
    (done, handle)
}

fn round_trip(test: &str, qos: QoS) {
    let Some(broker) = Mosquitto::start(test, "") else {
        return;
    };
    let (ready, sub_done, sub) = subscriber(broker.port, "bk-sub", "rt/+", qos, 3);
    within(&ready, "the subscription");
    let payloads: Vec<Vec<u8>> = (1..=3u8).map(|n| vec![b'0' + n]).collect();
    let (pub_done, publ) = publisher(broker.port, "bk-pub", "rt/x", qos, payloads.clone());
    join(publ, &pub_done, "the publisher");
    let got = join(sub, &sub_done, "the subscriber");
    let want: Vec<Received> = payloads.into_iter().map(|p| ("rt/x".into(), p, qos)).collect();
    assert_eq!(got, want);
}

#[test]
fn blocking_qos0_round_trip_between_two_threads() {
    round_trip("blocking_qos0_round_trip", QoS::AtMostOnce);
}

#[test]
fn blocking_qos1_round_trip_between_two_threads() {
    round_trip("blocking_qos1_round_trip", QoS::AtLeastOnce);
}

#[test]
fn blocking_qos2_round_trip_between_two_threads() {
    round_trip("blocking_qos2_round_trip", QoS::ExactlyOnce);
}

#[test]
fn mqtt_4_6_0_2_one_thousand_qos1_messages_arrive_in_order() {
    let Some(broker) = Mosquitto::start("blocking_thousand_qos1", "") else {
        return;
    };
    let (ready, sub_done, sub) = subscriber(broker.port, "bk-sub1k", "seq", QoS::AtLeastOnce, 1000);
    within(&ready, "the subscription");
    let payloads: Vec<Vec<u8>> = (0..1000u16).map(|n| n.to_be_bytes().to_vec()).collect();
    let (pub_done, publ) =
        publisher(broker.port, "bk-pub1k", "seq", QoS::AtLeastOnce, payloads.clone());
    join(publ, &pub_done, "the publisher");
    let got = join(sub, &sub_done, "the subscriber");
    assert_eq!(got.len(), 1000);
    let received: Vec<Vec<u8>> = got.into_iter().map(|(_, p, _)| p).collect();
    assert_eq!(received, payloads, "in publish order, none lost or repeated");
}

#[test]
fn mqtt_3_1_2_4_persistent_session_receives_the_messages_queued_while_offline() {
    let Some(broker) = Mosquitto::start("blocking_persistent", "") else {
        return;
    };
    let port = broker.port;
    let o = ConnectOptions::new("bk-persist").clean_session(false);
    // First connection: subscribe, then leave.
    let (done_tx, done) = mpsc::channel();
    let first = thread::spawn(move || {
        let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
        let mut c =
            Client::new(link(port), &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {}, StdClock::new());
        assert!(!c.connect(&o).unwrap().session_present, "a fresh broker has no session");
        assert_eq!(c.subscribe("offline/#", QoS::AtLeastOnce).unwrap(), QoS::AtLeastOnce);
        c.disconnect().unwrap();
        let _ = done_tx.send(());
    });
    join(first, &done, "the first connection");
    // While it is offline: three QoS 1 messages, acknowledged by the broker.
    let payloads: Vec<Vec<u8>> = (1..=3u8).map(|n| vec![b'a' + n]).collect();
    let (pub_done, publ) =
        publisher(port, "bk-persist-pub", "offline/x", QoS::AtLeastOnce, payloads.clone());
    join(publ, &pub_done, "the publisher");
    // Back: the session is present and the queued messages arrive.
    let (done_tx, done) = mpsc::channel();
    let second = thread::spawn(move || {
        let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
        let (got, handler) = recorder();
        let mut c = Client::new(link(port), &mut rx, &mut tx, handler, StdClock::new());
        assert!(c.connect(&o).unwrap().session_present);
        while got.borrow().len() < 3 {
            c.wait_msg().unwrap();
        }
        c.disconnect().unwrap();
        let _ = done_tx.send(());
        got.take()
    });
    let got = join(second, &done, "the reconnected subscriber");
    let want: Vec<Received> =
        payloads.into_iter().map(|p| ("offline/x".into(), p, QoS::AtLeastOnce)).collect();
    assert_eq!(got, want);
}

/// A transport that reports every PINGREQ the client writes.
struct Tap {
    inner: FromStd<TcpStream>,
    pings: Sender<()>,
}

impl embedded_io::ErrorType for Tap {
    type Error = std::io::Error;
}

impl embedded_io::Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.inner.read(buf)
    }
}

impl embedded_io::Write for Tap {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = self.inner.write(buf)?;
        // The client writes each packet in one call over TCP.
        if buf[..n] == [0xc0, 0x00] {
            let _ = self.pings.send(());
        }
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}

impl Transport for Tap {
    fn wait_readable(
        &mut self,
        timeout: Option<embassy_time::Duration>,
    ) -> Result<bool, Self::Error> {
        self.inner.wait_readable(timeout)
    }
}

/// With a 1 s keepalive and nothing else to send, `wait_msg` pings the
/// broker every second; the broker, which closes a connection silent for
/// 1.5 intervals `[MQTT-3.1.2-24]`, keeps it open past two intervals and
/// logs the PINGREQs; the message published afterwards still arrives.
#[test]
fn mqtt_3_1_2_23_blocking_wait_msg_pings_on_a_1_s_keepalive_and_stays_connected() {
    let Some(broker) = Mosquitto::start("blocking_keepalive", "log_type all\n") else {
        return;
    };
    let port = broker.port;
    let (pings_tx, pings) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let sub = thread::spawn(move || {
        let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
        let (got, handler) = recorder();
        let clock = StdClock::new();
        let tap = Tap { inner: link(port), pings: pings_tx };
        let mut c = Client::new(tap, &mut rx, &mut tx, handler, clock);
        c.connect(&ConnectOptions::new("bk-ka").keep_alive_secs(1)).unwrap();
        assert_eq!(c.subscribe("ka", QoS::AtLeastOnce).unwrap(), QoS::AtLeastOnce);
        ready_tx.send(()).unwrap();
        c.wait_msg().unwrap();
        let elapsed_ms = clock.now().as_millis();
        assert_eq!(c.state(), State::Connected);
        c.disconnect().unwrap();
        let _ = done_tx.send(());
        (got.take(), elapsed_ms)
    });
    within(&ready, "the subscription");
    within(&pings, "the first PINGREQ");
    within(&pings, "the second PINGREQ");
    let (pub_done, publ) =
        publisher(port, "bk-ka-pub", "ka", QoS::AtLeastOnce, vec![b"late".to_vec()]);
    join(publ, &pub_done, "the publisher");
    let (got, elapsed_ms) = join(sub, &done, "the subscriber");
    assert_eq!(got, [("ka".to_owned(), b"late".to_vec(), QoS::AtLeastOnce)]);
    assert!(elapsed_ms >= 2_000, "connected for {elapsed_ms} ms, past 1.5 × 1 s");
    let log = broker.log();
    let received = log.matches("Received PINGREQ from bk-ka").count();
    assert!(received >= 2, "broker saw {received} PINGREQs; log:\n{log}");
}

/// Over a real socket `check_msg` returns `Ok(false)` at once when
/// nothing has arrived (the socket goes back to blocking afterwards), and
/// `Ok(true)` once a message is there.
#[test]
fn blocking_check_msg_over_tcp_returns_at_once_then_delivers() {
    let Some(broker) = Mosquitto::start("blocking_check_msg", "") else {
        return;
    };
    let port = broker.port;
    let (ready_tx, ready) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let sub = thread::spawn(move || {
        let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
        let (got, handler) = recorder();
        let clock = StdClock::new();
        let mut c = Client::new(link(port), &mut rx, &mut tx, handler, clock);
        c.connect(&ConnectOptions::new("bk-check").keep_alive_secs(30)).unwrap();
        assert_eq!(c.subscribe("chk", QoS::AtLeastOnce).unwrap(), QoS::AtLeastOnce);
        let before = clock.now();
        assert!(!c.check_msg().unwrap());
        let took = clock.now().as_millis() - before.as_millis();
        assert!(took < 500, "check_msg took {took} ms with nothing to read");
        ready_tx.send(()).unwrap();
        // Blocks until the message is there, then takes it without waiting.
        assert!(c.transport_mut().wait_readable(None).unwrap());
        while !c.check_msg().unwrap() {}
        assert_eq!(c.state(), State::Connected);
        c.disconnect().unwrap();
        let _ = done_tx.send(());
        got.take()
    });
    within(&ready, "the first check_msg");
    let (pub_done, publ) =
        publisher(port, "bk-check-pub", "chk", QoS::AtLeastOnce, vec![b"now".to_vec()]);
    join(publ, &pub_done, "the publisher");
    let got = join(sub, &done, "the subscriber");
    assert_eq!(got, [("chk".to_owned(), b"now".to_vec(), QoS::AtLeastOnce)]);
}
