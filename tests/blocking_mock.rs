//! The blocking client (`umqtt::blocking::Client`) against the scripted
//! mock transport, with exact bytes on the wire, and under a fake clock
//! that moves exactly as the client waits: keepalive and acknowledgment
//! timeouts with the same figures as the async tests in
//! `tests/mock-time/tests/{keepalive,timeouts}.rs`.
//!
//! The blocking flavour of the mock is a wrapper here, [`Blocking`], over
//! the async `umqtt::mock::MockTransport` (no library change): each read
//! and write polls the async call once, which the mock answers at once
//! whenever the script allows it; `wait_readable` looks at the next
//! scripted step and, when nothing is readable, advances the fake clock
//! by the whole timeout, or only up to the instant a step scheduled with
//! [`Blocking::at`] arrives.
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock is handed back for inspection"
)]

mod mock_support;

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use embassy_time::{Duration, Instant};
use mock_support::*;
use umqtt::blocking::{self, Clock};
use umqtt::mock::{MockError, MockTransport, Step};
use umqtt::packet::ConnectReturnCode;
use umqtt::{ConnectOptions, Error, PublishError, QoS, State, SubscribeReturnCode};

// ---- the blocking mock and the fake clock ----

/// A fake clock in microseconds, shared between the client and the mock.
#[derive(Clone, Default)]
struct FakeClock(Rc<Cell<u64>>);

impl FakeClock {
    fn ms(&self) -> u64 {
        self.0.get() / 1_000
    }

    /// Moves the clock to `ms` (never backwards).
    fn set_ms(&self, ms: u64) {
        assert!(ms * 1_000 >= self.0.get(), "the fake clock never goes back");
        self.0.set(ms * 1_000);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.get())
    }
}

/// After this much fake time the client is taken to wait forever.
const HORIZON_US: u64 = 48 * 3600 * 1_000_000;

/// The blocking flavour of [`MockTransport`].
struct Blocking<'m> {
    mock: &'m mut MockTransport,
    clock: FakeClock,
    /// The limit in ms of every `wait_readable` that found nothing
    /// readable (and so let the time pass), in order.
    waits: Vec<Option<u64>>,
    /// Zero-limit waits in a row that found nothing at the same instant:
    /// a client spinning without letting time pass.
    spins: u32,
    /// Every write takes at most this many bytes (partial writes).
    max_write: usize,
    /// Steps the broker plays once the fake clock reaches their time (ms),
    /// in time order.
    later: Vec<(u64, Step)>,
    /// The next `wait_readable` fails.
    fail_wait: bool,
}

impl<'m> Blocking<'m> {
    /// The broker sends `bytes` at `ms` on the fake clock.
    fn at(mut self, ms: u64, bytes: &[u8]) -> Self {
        self.later.push((ms, Step::Send(bytes.to_vec())));
        self
    }

    fn new(mock: &'m mut MockTransport, clock: &FakeClock) -> Self {
        Self {
            mock,
            clock: clock.clone(),
            waits: Vec::new(),
            spins: 0,
            max_write: usize::MAX,
            later: Vec::new(),
            fail_wait: false,
        }
    }

    /// Polls the mock's async call once: it is ready whenever the script
    /// allows progress.
    fn once<F: Future>(fut: F, what: &str) -> F::Output {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(fut).poll(&mut cx) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("blocking {what} on the mock would block forever"),
        }
    }
}

impl embedded_io::ErrorType for Blocking<'_> {
    type Error = MockError;
}

impl embedded_io::Read for Blocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, MockError> {
        Self::once(embedded_io_async::Read::read(&mut *self.mock, buf), "read")
    }
}

impl embedded_io::Write for Blocking<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, MockError> {
        let buf = &buf[..buf.len().min(self.max_write)];
        Self::once(embedded_io_async::Write::write(&mut *self.mock, buf), "write")
    }

    fn flush(&mut self) -> Result<(), MockError> {
        Self::once(embedded_io_async::Write::flush(&mut *self.mock), "flush")
    }
}

impl blocking::Transport for Blocking<'_> {
    /// Readable when the next step is broker bytes, a read error or end
    /// of stream; otherwise the whole `timeout` passes on the fake clock.
    fn wait_readable(&mut self, timeout: Option<Duration>) -> Result<bool, MockError> {
        if std::mem::take(&mut self.fail_wait) {
            return Err(MockError);
        }
        let readable = matches!(
            self.mock.remaining().next(),
            Some(Step::Send(_) | Step::ReadError | Step::Eof)
        );
        if readable {
            self.spins = 0;
            return Ok(true);
        }
        self.waits.push(timeout.map(|t| t.as_millis()));
        let start = self.clock.0.get();
        let limit = timeout.map(|t| start + t.as_micros());
        self.spins = if limit == Some(start) { self.spins + 1 } else { 0 };
        assert!(self.spins < 1_000, "the client spins on zero waits without time passing");
        if let Some(&(at, _)) = self.later.first() {
            // The broker speaks before the limit: the wait ends then.
            let at = (at * 1_000).max(start);
            if limit.is_none_or(|limit| at <= limit) {
                self.clock.0.set(at);
                while self.later.first().is_some_and(|(t, _)| t * 1_000 <= at) {
                    let (_, step) = self.later.remove(0);
                    self.mock.push(step);
                }
                return Ok(true);
            }
        }
        let Some(now) = limit else {
            panic!("the client waits without a limit for bytes the script does not have");
        };
        assert!(now < HORIZON_US, "the client waited past the test horizon");
        self.clock.0.set(now);
        Ok(false)
    }
}

type Handler = Box<dyn FnMut(&umqtt::Publish<'_>)>;
type BClient<'a> = blocking::Client<'a, Blocking<'a>, Handler, FakeClock>;

/// A blocking client over `mock` with a recorder and a fake clock at 0.
fn client<'a>(
    mock: &'a mut MockTransport,
    rx: &'a mut [u8],
    tx: &'a mut [u8],
) -> (BClient<'a>, Got, FakeClock) {
    let clock = FakeClock::default();
    let (got, handler) = recorder();
    let handler: Handler = Box::new(handler);
    let c = blocking::Client::new(Blocking::new(mock, &clock), rx, tx, handler, clock.clone());
    (c, got, clock)
}

const GRANTED: [SubscribeReturnCode; 3] = [
    SubscribeReturnCode::Success(QoS::AtMostOnce),
    SubscribeReturnCode::Success(QoS::AtLeastOnce),
    SubscribeReturnCode::Success(QoS::ExactlyOnce),
];

// ---- every call, byte by byte ----

/// Every call over a transport that reads one byte and writes one byte
/// at a time: the driver resumes partial writes and reads.
#[test]
fn every_call_works_with_one_byte_reads_and_one_byte_writes() {
    let mut mock = connected()
        .expect(&subscribe(1, "s/#", QoS::ExactlyOnce))
        .send(&suback(1, &GRANTED[2..]))
        .expect(&publish("p0", b"zero", None, false))
        .expect(&publish("p1", b"one", Some(2), false))
        .send(&puback(2))
        .expect(&publish2("p2", b"two", 3, false))
        .send(&pubrec(3))
        .expect(&pubrel(3))
        .send(&pubcomp(3))
        .expect(&unsubscribe(4, "x"))
        .send(&unsuback(4))
        .expect(&PINGREQ)
        .send(&PINGRESP)
        .send(&publish("s/in1", b"first", Some(77), false))
        .expect(&puback(77))
        .send(&publish2("s/in2", b"second", 78, false))
        .expect(&pubrec(78))
        .send(&pubrel(78))
        .expect(&pubcomp(78))
        .send(&publish("s/in0", b"third", None, false))
        .expect(&DISCONNECT)
        .max_read(1);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut slots = [0u16; 2];
    let (c, got, clock) = client(&mut mock, &mut rx, &mut tx);
    let mut c = c.receive_qos2(&mut slots);
    c.transport_mut().max_write = 1;
    assert!(!c.connect(&opts()).unwrap().session_present);
    assert_eq!(c.subscribe("s/#", QoS::ExactlyOnce), Ok(QoS::ExactlyOnce));
    c.publish("p0", b"zero", QoS::AtMostOnce, false).unwrap();
    c.publish("p1", b"one", QoS::AtLeastOnce, false).unwrap();
    c.publish("p2", b"two", QoS::ExactlyOnce, false).unwrap();
    c.unsubscribe("x").unwrap();
    c.ping().unwrap();
    c.wait_msg().unwrap();
    c.wait_msg().unwrap();
    let mut polls = 0;
    while !c.check_msg().unwrap() {
        polls += 1;
        assert!(polls < 100, "check_msg never delivered the message");
    }
    c.disconnect().unwrap();
    assert_eq!(c.state(), State::Disconnected);
    assert_eq!(clock.ms(), 0, "nothing waited for time");
    drop(c);
    mock.assert_done();
    assert_eq!(mock.write_calls().0, mock.written().len(), "one byte per write");
    assert_eq!(got.topics(), ["s/in1", "s/in2", "s/in0"]);
}

// ---- connect ----

#[test]
fn connect_writes_connect_and_reports_session_present_from_connack() {
    for present in [false, true] {
        let o = persistent();
        let mut mock = MockTransport::new().expect(&connect(&o)).send(&connack(present));
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
        assert_eq!(c.state(), State::Disconnected);
        assert_eq!(c.connect(&o).unwrap().session_present, present);
        assert_eq!(c.state(), State::Connected);
        assert_eq!(clock.ms(), 0);
        drop(c);
        mock.assert_done();
    }
}

#[test]
fn mqtt_3_2_2_5_refused_connack_is_a_fatal_refused_error() {
    let mut mock = MockTransport::new()
        .expect(&connect(&opts()))
        .send(&connack_code(false, ConnectReturnCode::NotAuthorized));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, _) = client(&mut mock, &mut rx, &mut tx);
    let err = c.connect(&opts()).unwrap_err();
    assert_eq!(err, Error::Refused(ConnectReturnCode::NotAuthorized));
    assert!(err.is_fatal());
    assert_ne!(c.state(), State::Connected);
    assert_eq!(
        c.publish("t", b"", QoS::AtMostOnce, false).map_err(|e| e.error),
        Err(Error::NotConnected)
    );
    drop(c);
    mock.assert_done();
}

// ---- subscribe ----

#[test]
fn subscribe_at_qos_0_1_2_writes_subscribe_and_returns_the_granted_qos() {
    let mut mock = connected()
        .expect(&subscribe(1, "a", QoS::AtMostOnce))
        .send(&suback(1, &GRANTED[..1]))
        .expect(&subscribe(2, "b", QoS::AtLeastOnce))
        .send(&suback(2, &GRANTED[1..2]))
        .expect(&subscribe(3, "c", QoS::ExactlyOnce))
        // The broker may grant less than asked.
        .send(&suback(3, &GRANTED[1..2]))
        .expect(&subscribe(4, "d", QoS::ExactlyOnce))
        .send(&suback(4, &[SubscribeReturnCode::Failure]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut slots = [0u16; 4];
    let (c, _, _) = client(&mut mock, &mut rx, &mut tx);
    let mut c = c.receive_qos2(&mut slots);
    c.connect(&opts()).unwrap();
    assert_eq!(c.subscribe("a", QoS::AtMostOnce), Ok(QoS::AtMostOnce));
    assert_eq!(c.subscribe("b", QoS::AtLeastOnce), Ok(QoS::AtLeastOnce));
    assert_eq!(c.subscribe("c", QoS::ExactlyOnce), Ok(QoS::AtLeastOnce));
    assert_eq!(c.subscribe("d", QoS::ExactlyOnce), Err(Error::SubscribeRefused));
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
}

/// A QoS 2 subscription with receive slots: the inbound QoS 2 message is
/// delivered once, PUBREC written, PUBREL answered with PUBCOMP.
#[test]
fn mqtt_4_3_3_subscribe_qos2_with_slots_receives_exactly_once() {
    let mut mock = connected()
        .expect(&subscribe(1, "q2", QoS::ExactlyOnce))
        .send(&suback(1, &GRANTED[2..]))
        .send(&publish2("q2", b"once", 5, false))
        .expect(&pubrec(5))
        // A duplicate before PUBREL is acknowledged, not delivered again.
        .send(&publish2("q2", b"once", 5, true))
        .expect(&pubrec(5))
        .send(&pubrel(5))
        .expect(&pubcomp(5))
        .send(&publish("q2", b"next", None, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut slots = [0u16; 2];
    let (c, got, _) = client(&mut mock, &mut rx, &mut tx);
    let mut c = c.receive_qos2(&mut slots);
    c.connect(&opts()).unwrap();
    assert_eq!(c.subscribe("q2", QoS::ExactlyOnce), Ok(QoS::ExactlyOnce));
    c.wait_msg().unwrap();
    c.wait_msg().unwrap();
    assert_eq!(got.messages(), [("q2".into(), b"once".to_vec()), ("q2".into(), b"next".to_vec())]);
    drop(c);
    mock.assert_done();
}

// ---- publish ----

#[test]
fn publish_qos0_is_written_once_and_returns() {
    let mut mock = connected().expect(&publish("t", b"zero", None, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    c.publish("t", b"zero", QoS::AtMostOnce, false).unwrap();
    assert_eq!(c.in_flight(), 0);
    assert_eq!(clock.ms(), 0);
    drop(c);
    assert_eq!(mock.write_calls(), (2, 2), "one write and one flush per packet");
    mock.assert_done();
}

#[test]
fn mqtt_4_6_0_2_publish_qos1_delivers_interleaved_publishes_and_acks_them_in_order() {
    let mut mock = connected()
        .expect(&publish("t", b"x", Some(1), false))
        .send(&publish("i/0", b"q0", None, false))
        .send(&publish("i/7", b"q1a", Some(7), false))
        .expect(&puback(7))
        .send(&publish("i/8", b"q1b", Some(8), false))
        .expect(&puback(8))
        .send(&puback(1))
        .max_read(1);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    c.publish("t", b"x", QoS::AtLeastOnce, false).unwrap();
    assert_eq!(c.in_flight(), 0);
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
    assert_eq!(got.topics(), ["i/0", "i/7", "i/8"]);
}

#[test]
fn mqtt_4_3_3_publish_qos2_returns_at_pubcomp_and_delivers_interleaved_publish() {
    let mut mock = connected()
        .expect(&publish2("t", b"two", 1, false))
        .send(&publish("in", b"a", Some(3), false))
        .expect(&puback(3))
        .send(&pubrec(1))
        .expect(&pubrel(1))
        .send(&publish("in", b"b", None, false))
        .send(&pubcomp(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    c.publish("t", b"two", QoS::ExactlyOnce, false).unwrap();
    assert!(!c.is_in_flight(id(1)));
    drop(c);
    mock.assert_done();
    assert_eq!(got.messages(), [("in".into(), b"a".to_vec()), ("in".into(), b"b".to_vec())]);
}

#[test]
fn publish_no_wait_pipelines_and_wait_all_acked_collects_the_acks() {
    let mut mock = connected()
        .expect(&publish("t", b"1", Some(1), false))
        .expect(&publish("t", b"2", Some(2), false))
        .expect(&publish2("t", b"3", 3, false))
        // Acknowledgments out of order.
        .send(&puback(2))
        .send(&pubrec(3))
        .expect(&pubrel(3))
        .send(&puback(1))
        .send(&pubcomp(3));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    assert_eq!(c.publish_no_wait("t", b"1", QoS::AtLeastOnce, false), Ok(id(1)));
    assert_eq!(c.publish_no_wait("t", b"2", QoS::AtLeastOnce, false), Ok(id(2)));
    assert_eq!(c.publish_no_wait("t", b"3", QoS::ExactlyOnce, false), Ok(id(3)));
    assert_eq!(c.in_flight(), 3, "nothing read before the three are written");
    c.wait_acked(id(2)).unwrap();
    assert!(!c.is_in_flight(id(2)));
    c.wait_all_acked().unwrap();
    assert_eq!(c.in_flight(), 0);
    drop(c);
    mock.assert_done();
}

#[test]
fn publish_no_wait_at_qos0_is_refused_without_writing() {
    let mut mock = connected();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    let err = c.publish_no_wait("t", b"", QoS::AtMostOnce, false).unwrap_err();
    assert_eq!(err.stored, None);
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
}

// ---- receiving ----

/// The PUBACK of a QoS 1 message is on the wire when `wait_msg` returns:
/// nothing is left for a later call to write.
#[test]
fn mqtt_4_3_2_wait_msg_writes_the_puback_before_it_returns() {
    let mut mock = connected().send(&publish("in", b"m", Some(4), false)).expect(&puback(4));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    c.wait_msg().unwrap();
    assert_eq!(got.topics(), ["in"]);
    assert!(c.transport_mut().mock.written().ends_with(&puback(4)));
    assert!(c.transport_mut().mock.remaining().next().is_none());
    drop(c);
    mock.assert_done();
}

#[test]
fn check_msg_returns_false_at_once_when_nothing_is_readable() {
    let mut mock = connected();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    clock.set_ms(1_234);
    c.transport_mut().waits.clear();
    assert_eq!(c.check_msg(), Ok(false));
    assert_eq!(clock.ms(), 1_234, "check_msg did not wait");
    assert_eq!(c.transport_mut().waits, [Some(0)], "one zero-limit poll");
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
}

#[test]
fn check_msg_delivers_what_has_arrived_and_acknowledges_it() {
    let mut mock = connected().send(&publish("in", b"m", Some(2), false)).expect(&puback(2));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    assert_eq!(c.check_msg(), Ok(true));
    assert_eq!(c.check_msg(), Ok(false));
    assert_eq!(got.topics(), ["in"]);
    drop(c);
    mock.assert_done();
}

// ---- ping, unsubscribe, disconnect ----

#[test]
fn ping_writes_pingreq_and_returns_at_pingresp() {
    let mut mock = connected()
        .expect(&PINGREQ)
        .send(&publish("in", b"", None, false))
        .send(&PINGRESP)
        .expect(&unsubscribe(1, "f"))
        .send(&unsuback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    c.ping().unwrap();
    c.unsubscribe("f").unwrap();
    assert_eq!(got.topics(), ["in"]);
    drop(c);
    mock.assert_done();
}

#[test]
fn disconnect_writes_disconnect_and_every_call_after_is_not_connected() {
    let mut mock = connected().expect(&DISCONNECT);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    c.disconnect().unwrap();
    assert_eq!(c.state(), State::Disconnected);
    assert_eq!(c.ping(), Err(Error::NotConnected));
    assert_eq!(c.wait_msg(), Err(Error::NotConnected));
    assert_eq!(c.check_msg(), Err(Error::NotConnected));
    assert_eq!(c.subscribe("f", QoS::AtMostOnce), Err(Error::NotConnected));
    drop(c);
    mock.assert_done();
}

// ---- errors ----

#[test]
fn read_error_is_a_fatal_transport_error_and_not_connected_after() {
    let mut mock = connected().expect(&publish("t", b"", Some(1), false)).step(Step::ReadError);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    let err = c.publish("t", b"", QoS::AtLeastOnce, false).unwrap_err();
    assert_eq!(err, PublishError { error: Error::Transport(MockError), stored: Some(id(1)) });
    assert!(err.error.is_fatal());
    assert_eq!(c.state(), State::Failed);
    assert_eq!(c.in_flight(), 1, "kept for the resend");
    assert_eq!(c.wait_msg(), Err(Error::NotConnected));
    assert_eq!(c.ping(), Err(Error::NotConnected));
    drop(c);
    mock.assert_done();
}

#[test]
fn write_error_fails_the_connection_and_says_whether_the_message_was_stored() {
    for (qos, stored) in [(QoS::AtMostOnce, None), (QoS::AtLeastOnce, Some(id(1)))] {
        let mut mock = connected().step(Step::WriteError);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let (mut c, _, _) = client(&mut mock, &mut rx, &mut tx);
        c.connect(&opts()).unwrap();
        let err = c.publish("t", b"", qos, false).unwrap_err();
        assert_eq!(err, PublishError { error: Error::Transport(MockError), stored }, "{qos:?}");
        assert_eq!(c.state(), State::Failed);
        assert_eq!(
            c.publish("t", b"", qos, false),
            Err(PublishError { error: Error::NotConnected, stored: None })
        );
        drop(c);
        mock.assert_done();
    }
}

#[test]
fn end_of_stream_while_waiting_is_connection_closed() {
    let mut mock = connected().step(Step::Eof);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    let err = c.wait_msg().unwrap_err();
    assert_eq!(err, Error::ConnectionClosed);
    assert!(err.is_fatal());
    assert_eq!(c.state(), State::Failed);
    drop(c);
    mock.assert_done();
}

// ---- keepalive under the fake clock ----

fn ka10() -> ConnectOptions<'static> {
    opts().keep_alive_secs(10)
}

fn connected_ka10() -> MockTransport {
    MockTransport::new().expect(&connect(&ka10())).send(&connack(false))
}

#[test]
fn mqtt_3_1_2_23_wait_msg_sends_pingreq_at_exactly_10_000_ms_for_keepalive_10_s() {
    let mut mock = connected_ka10()
        .expect(&PINGREQ)
        .send(&PINGRESP)
        .expect(&PINGREQ)
        .send(&PINGRESP)
        .send(&publish("in", b"m", None, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&ka10()).unwrap();
    c.wait_msg().unwrap();
    // First PINGREQ at 10 s, its PINGRESP at once, the second an interval
    // later; the message follows the second PINGRESP.
    assert_eq!(clock.ms(), 20_000);
    assert_eq!(c.transport_mut().waits, [Some(10_000), Some(10_000)]);
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
    assert_eq!(got.topics(), ["in"]);
}

#[test]
fn mqtt_3_1_2_23_pingreq_goes_out_exactly_at_the_interval_not_before() {
    let mut mock = connected_ka10().expect(&PINGREQ).send(&PINGRESP);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&ka10()).unwrap();
    for ms in [9_999, 10_000] {
        clock.set_ms(ms);
        assert_eq!(c.check_msg(), Ok(false));
        let pinged = c.transport_mut().mock.written().ends_with(&PINGREQ);
        assert_eq!(pinged, ms == 10_000, "at {ms} ms");
    }
    drop(c);
    mock.assert_done();
}

#[test]
fn mqtt_3_1_2_23_check_msg_every_250_ms_pings_at_10_000_and_20_000_ms() {
    let mut mock =
        connected_ka10().expect(&PINGREQ).send(&PINGRESP).expect(&PINGREQ).send(&PINGRESP);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&ka10()).unwrap();
    let mut pings = Vec::new();
    for tick in 1..=100u64 {
        clock.set_ms(tick * 250);
        let before = c.transport_mut().mock.written().len();
        assert_eq!(c.check_msg(), Ok(false));
        if c.transport_mut().mock.written().len() > before {
            pings.push(clock.ms());
        }
    }
    assert_eq!(pings, [10_000, 20_000]);
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
}

#[test]
fn keepalive_timeout_at_exactly_15_000_ms_when_the_broker_never_answers_pingreq() {
    let mut mock = connected_ka10().expect(&PINGREQ);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&ka10()).unwrap();
    let err = c.wait_msg().unwrap_err();
    assert_eq!(err, Error::KeepAliveTimeout);
    assert!(err.is_fatal());
    assert_eq!(clock.ms(), 15_000);
    assert_eq!(c.state(), State::Failed);
    assert_eq!(c.wait_msg(), Err(Error::NotConnected));
    drop(c);
    mock.assert_done();
}

#[test]
fn keepalive_timeout_counts_from_the_last_packet_received() {
    let mut mock = connected_ka10()
        .expect(&publish("t", b"", Some(1), false))
        .send(&puback(1))
        .expect(&PINGREQ);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&ka10()).unwrap();
    clock.set_ms(4_000);
    c.publish("t", b"", QoS::AtLeastOnce, false).unwrap(); // PUBACK at 4 s
    assert_eq!(c.wait_msg(), Err(Error::KeepAliveTimeout));
    assert_eq!(clock.ms(), 4_000 + 15_000);
    drop(c);
    mock.assert_done();
}

#[test]
fn keepalive_timeout_found_by_check_msg_at_15_000_ms() {
    let mut mock = connected_ka10().expect(&PINGREQ);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&ka10()).unwrap();
    let mut tick = 0u64;
    let err = loop {
        tick += 1;
        assert!(tick < 1_000, "no keepalive timeout");
        clock.set_ms(tick * 100);
        match c.check_msg() {
            Ok(false) => {}
            Ok(true) => panic!("no message was sent"),
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::KeepAliveTimeout);
    assert_eq!(clock.ms(), 15_000);
    assert_eq!(c.state(), State::Failed);
    drop(c);
    mock.assert_done();
}

#[test]
fn keepalive_expiry_interrupts_a_publish_waiting_for_its_puback() {
    let o = ka10().ack_timeout(Duration::from_secs(60));
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&publish("t", b"", Some(1), false))
        .expect(&PINGREQ);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&o).unwrap();
    assert_eq!(
        c.publish("t", b"", QoS::AtLeastOnce, false),
        Err(PublishError { error: Error::KeepAliveTimeout, stored: Some(id(1)) })
    );
    assert_eq!(clock.ms(), 15_000);
    assert_eq!(c.in_flight(), 1);
    drop(c);
    mock.assert_done();
}

#[test]
fn keepalive_zero_never_pings_and_wait_readable_gets_no_limit() {
    let mut mock = connected();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    for hour in 1..=24u64 {
        clock.set_ms(hour * 3_600_000);
        assert_eq!(c.check_msg(), Ok(false));
    }
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
}

// ---- acknowledgment timeouts under the fake clock ----

/// Keepalive off (so only the ack timeout runs), ack timeout 3 s.
fn o3() -> ConnectOptions<'static> {
    opts().ack_timeout(Duration::from_secs(3))
}

fn connected_o3() -> MockTransport {
    MockTransport::new().expect(&connect(&o3())).send(&connack(false))
}

#[test]
fn connack_timeout_at_3_000_ms_is_fatal_and_reconnect_recovers() {
    let mut silent = MockTransport::new().expect(&connect(&o3()));
    let mut mock2 = connected_o3();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut silent, &mut rx, &mut tx);
    assert_eq!(c.connect(&o3()), Err(Error::Timeout));
    assert_eq!(clock.ms(), 3_000);
    assert_eq!(c.state(), State::Failed, "the link is not usable after a CONNACK timeout");
    assert_eq!(c.ping(), Err(Error::NotConnected));
    let link2 = Blocking::new(&mut mock2, &clock);
    assert!(!c.reconnect(link2, &o3()).unwrap().session_present);
    assert_eq!(c.state(), State::Connected);
    drop(c);
    silent.assert_done();
    mock2.assert_done();
}

#[test]
fn puback_timeout_at_3_000_ms_keeps_the_message_in_flight_and_the_client_usable() {
    let p = o3().clean_session(false);
    let mut mock = MockTransport::new()
        .expect(&connect(&p))
        .send(&connack(false))
        .expect(&publish("t", b"x", Some(1), false))
        .expect(&publish("t", b"q0", None, false))
        .expect(&PINGREQ)
        .send(&PINGRESP);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&p).unwrap();
    let err = c.publish("t", b"x", QoS::AtLeastOnce, false).unwrap_err();
    assert_eq!(err, PublishError { error: Error::Timeout, stored: Some(id(1)) });
    assert!(!err.error.is_fatal());
    assert_eq!(clock.ms(), 3_000);
    assert_eq!(c.state(), State::Connected);
    assert!(c.is_in_flight(id(1)));
    c.publish("t", b"q0", QoS::AtMostOnce, false).unwrap();
    c.ping().unwrap();
    assert_eq!(clock.ms(), 3_000);
    assert_eq!(c.wait_acked(id(1)), Err(Error::Timeout));
    assert_eq!(clock.ms(), 6_000);
    drop(c);
    mock.assert_done();
}

#[test]
fn suback_timeout_at_3_000_ms_then_subscribe_again() {
    let mut mock = connected_o3()
        .expect(&subscribe(1, "f", QoS::AtMostOnce))
        .expect(&subscribe(2, "f", QoS::AtMostOnce))
        .send(&suback(1, &GRANTED[..1]))
        .send(&suback(2, &GRANTED[..1]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&o3()).unwrap();
    assert_eq!(c.subscribe("f", QoS::AtMostOnce), Err(Error::Timeout));
    assert_eq!(clock.ms(), 3_000);
    assert_eq!(c.state(), State::Connected);
    assert_eq!(c.subscribe("f", QoS::AtMostOnce), Ok(QoS::AtMostOnce));
    assert_eq!(clock.ms(), 3_000);
    drop(c);
    mock.assert_done();
}

#[test]
fn pingresp_timeout_at_3_000_ms_then_ping_again() {
    let mut mock = connected_o3().expect(&PINGREQ).expect(&PINGREQ).send(&PINGRESP);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&o3()).unwrap();
    assert_eq!(c.ping(), Err(Error::Timeout));
    assert_eq!(clock.ms(), 3_000);
    assert_eq!(c.state(), State::Connected);
    c.ping().unwrap();
    drop(c);
    mock.assert_done();
}

#[test]
fn messages_arriving_during_an_ack_wait_do_not_extend_the_timeout() {
    let mut mock = connected_o3().expect(&publish("t", b"", Some(1), false));
    for n in 0..5u16 {
        mock = mock.send(&publish("in", &n.to_be_bytes(), None, false));
    }
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&o3()).unwrap();
    clock.set_ms(1_000);
    assert_eq!(
        c.publish("t", b"", QoS::AtLeastOnce, false),
        Err(PublishError { error: Error::Timeout, stored: Some(id(1)) })
    );
    assert_eq!(clock.ms(), 4_000);
    drop(c);
    mock.assert_done();
    assert_eq!(got.topics().len(), 5);
}

// ---- the in-flight window and the session ----

#[test]
fn publish_no_wait_beyond_max_in_flight_waits_for_a_puback_to_open_the_window() {
    let o = opts().max_in_flight(1);
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&publish("t", b"1", Some(1), false))
        .send(&puback(1))
        .expect(&publish("t", b"2", Some(2), false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&o).unwrap();
    assert_eq!(c.publish_no_wait("t", b"1", QoS::AtLeastOnce, false), Ok(id(1)));
    assert_eq!(c.publish_no_wait("t", b"2", QoS::AtLeastOnce, false), Ok(id(2)));
    assert!(!c.is_in_flight(id(1)));
    assert!(c.is_in_flight(id(2)));
    assert_eq!(clock.ms(), 0);
    drop(c);
    mock.assert_done();
}

#[test]
fn publish_blocked_by_a_full_window_times_out_at_3_000_ms_unstored() {
    let o = o3().max_in_flight(1);
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&publish("t", b"1", Some(1), false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, clock) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&o).unwrap();
    assert_eq!(c.publish_no_wait("t", b"1", QoS::AtLeastOnce, false), Ok(id(1)));
    assert_eq!(
        c.publish("t", b"2", QoS::AtLeastOnce, false),
        Err(PublishError { error: Error::Timeout, stored: None })
    );
    assert_eq!(clock.ms(), 3_000);
    assert_eq!(c.in_flight(), 1);
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
}

#[test]
fn mqtt_4_4_0_1_reconnect_with_session_present_resends_with_dup_in_order() {
    let mut mock1 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .expect(&publish("t", b"1", Some(1), false))
        .expect(&publish2("t", b"2", 2, false))
        .step(Step::Eof);
    let mut mock2 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"1", Some(1), true))
        .expect(&publish2("t", b"2", 2, true))
        .send(&puback(1))
        .send(&pubrec(2))
        .expect(&pubrel(2))
        .send(&pubcomp(2));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
    let (mut c, _, clock) = client(&mut mock1, &mut rx, &mut tx);
    c.connect(&persistent()).unwrap();
    c.publish_no_wait("t", b"1", QoS::AtLeastOnce, false).unwrap();
    c.publish_no_wait("t", b"2", QoS::ExactlyOnce, false).unwrap();
    assert_eq!(c.wait_all_acked(), Err(Error::ConnectionClosed));
    assert_eq!(c.state(), State::Failed);
    assert!(c.reconnect(Blocking::new(&mut mock2, &clock), &persistent()).unwrap().session_present);
    c.wait_all_acked().unwrap();
    assert_eq!(c.in_flight(), 0);
    drop(c);
    mock1.assert_done();
    mock2.assert_done();
}

#[test]
fn into_session_and_with_session_carry_the_stored_messages_to_a_new_client() {
    let mut mock1 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .expect(&publish("t", b"1", Some(1), false))
        .step(Step::ReadError);
    let mut mock2 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"1", Some(1), true))
        .send(&puback(1))
        // [MQTT-2.3.1-2]: the identifier allocator carried on, too.
        .expect(&publish("t", b"2", Some(2), false))
        .send(&puback(2));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
    let clock = FakeClock::default();
    let mut c = blocking::Client::new(
        Blocking::new(&mut mock1, &clock),
        &mut rx,
        &mut tx,
        |_: &umqtt::Publish<'_>| {},
        clock.clone(),
    );
    c.connect(&persistent()).unwrap();
    let err = c.publish("t", b"1", QoS::AtLeastOnce, false).unwrap_err();
    assert_eq!(err.stored, Some(id(1)));
    let session = c.into_session();
    assert_eq!(session.in_flight(), 1);
    let mut c = blocking::Client::with_session(
        Blocking::new(&mut mock2, &clock),
        &mut rx,
        &mut tx,
        |_: &umqtt::Publish<'_>| {},
        clock.clone(),
        session,
    );
    assert!(c.connect(&persistent()).unwrap().session_present);
    c.wait_all_acked().unwrap();
    c.publish("t", b"2", QoS::AtLeastOnce, false).unwrap();
    drop(c);
    mock1.assert_done();
    mock2.assert_done();
}

// ---- bytes already buffered ----

/// Packets that arrived in one read are handled from the buffer: no call
/// waits on the transport for a packet it already holds.
#[test]
fn packets_buffered_with_the_connack_are_delivered_without_waiting() {
    let o = persistent();
    let mut mock = MockTransport::new().expect(&connect(&o)).send(&cat(&[
        &connack(true),
        &publish("q/1", b"a", Some(5), false),
        &publish("q/2", b"b", None, false),
        &publish("q/3", b"c", None, false),
    ]));
    // PUBACK 5 is written once the first message is handled.
    mock = mock.expect(&puback(5));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got, clock) = client(&mut mock, &mut rx, &mut tx);
    assert!(c.connect(&o).unwrap().session_present);
    c.wait_msg().unwrap();
    assert_eq!(c.check_msg(), Ok(true));
    c.wait_msg().unwrap();
    assert_eq!(c.check_msg(), Ok(false));
    assert_eq!(c.transport_mut().waits, [Some(0)], "only the last check_msg found nothing");
    assert_eq!(clock.ms(), 0);
    drop(c);
    mock.assert_done();
    assert_eq!(got.topics(), ["q/1", "q/2", "q/3"]);
}

// ---- the broker answering later ----

fn client_on<'a>(link: Blocking<'a>, rx: &'a mut [u8], tx: &'a mut [u8]) -> (BClient<'a>, Got) {
    let (got, handler) = recorder();
    let handler: Handler = Box::new(handler);
    let clock = link.clock.clone();
    (blocking::Client::new(link, rx, tx, handler, clock), got)
}

#[test]
fn puback_at_2_999_ms_is_in_time_for_a_3_s_ack_timeout() {
    let mut mock = connected_o3().expect(&publish("t", b"", Some(1), false));
    let clock = FakeClock::default();
    let link = Blocking::new(&mut mock, &clock).at(2_999, &puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _) = client_on(link, &mut rx, &mut tx);
    c.connect(&o3()).unwrap();
    c.publish("t", b"", QoS::AtLeastOnce, false).unwrap();
    assert_eq!(clock.ms(), 2_999);
    assert_eq!(c.in_flight(), 0);
    drop(c);
    mock.assert_done();
}

/// Each completed message gives the rest a new ack timeout: the second
/// PUBACK is late 3 s after the first one arrived, not after the publish.
#[test]
fn wait_all_acked_times_out_3_000_ms_after_the_last_completion() {
    let mut mock = connected_o3().expect(&publish("t", b"1", Some(1), false)).expect(&publish(
        "t",
        b"2",
        Some(2),
        false,
    ));
    let clock = FakeClock::default();
    let link = Blocking::new(&mut mock, &clock).at(2_000, &puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _) = client_on(link, &mut rx, &mut tx);
    c.connect(&o3()).unwrap();
    c.publish_no_wait("t", b"1", QoS::AtLeastOnce, false).unwrap();
    c.publish_no_wait("t", b"2", QoS::AtLeastOnce, false).unwrap();
    assert_eq!(c.wait_all_acked(), Err(Error::Timeout));
    assert_eq!(clock.ms(), 5_000);
    assert!(c.is_in_flight(id(2)));
    assert_eq!(c.state(), State::Connected);
    drop(c);
    mock.assert_done();
}

/// A publish waiting for a PUBACK longer than the keepalive interval
/// sends PINGREQ at 10,000 ms meanwhile and still completes.
#[test]
fn mqtt_3_1_2_23_publish_waiting_past_the_interval_pings_at_10_000_ms_and_completes() {
    let o = ka10().ack_timeout(Duration::from_secs(60));
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&publish("t", b"", Some(1), false))
        .expect(&PINGREQ)
        .send(&PINGRESP);
    let clock = FakeClock::default();
    let link = Blocking::new(&mut mock, &clock).at(12_000, &puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _) = client_on(link, &mut rx, &mut tx);
    c.connect(&o).unwrap();
    c.publish("t", b"", QoS::AtLeastOnce, false).unwrap();
    assert_eq!(clock.ms(), 12_000);
    assert_eq!(c.transport_mut().waits, [Some(10_000), Some(10_000)]);
    drop(c);
    mock.assert_done();
}

#[test]
fn a_failing_wait_readable_is_a_fatal_transport_error() {
    let mut mock = connected();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, _, _) = client(&mut mock, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    c.transport_mut().fail_wait = true;
    let err = c.check_msg().unwrap_err();
    assert_eq!(err, Error::Transport(MockError));
    assert!(err.is_fatal());
    assert_eq!(c.state(), State::Failed);
    assert_eq!(c.check_msg(), Err(Error::NotConnected));
    drop(c);
    mock.assert_done();
}

#[test]
fn wait_msg_without_keepalive_waits_without_a_limit_until_the_message() {
    let mut mock = connected();
    let clock = FakeClock::default();
    let link = Blocking::new(&mut mock, &clock).at(7_000, &publish("in", b"late", None, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (mut c, got) = client_on(link, &mut rx, &mut tx);
    c.connect(&opts()).unwrap();
    c.wait_msg().unwrap();
    assert_eq!(clock.ms(), 7_000);
    assert_eq!(c.transport_mut().waits, [None]);
    drop(c);
    mock.assert_done();
    assert_eq!(got.topics(), ["in"]);
}
