//! The whole client against a fuzzed broker: arbitrary inbound bytes,
//! served in arbitrary pieces (with transient `Pending`s), while the
//! client runs a fuzz-chosen sequence of calls (`wait_msg`, `check_msg`,
//! `publish` QoS 0/1, `publish_no_wait`, `queue_publish`, `flush`,
//! `wait_acked`, `wait_all_acked`,
//! `subscribe`, `subscribe_many`, `unsubscribe`, `unsubscribe_many`,
//! `ping`, `reconnect`, `disconnect`, time passing).
//!
//! Checked: no panic; no hang (each call is polled a bounded number of
//! times with a no-op waker; the transport is never pending for good, the
//! inbound bytes end with end-of-stream, and time only moves when the
//! input says so, so a call still pending at the bound is a bug); every
//! byte the client writes is a sequence of whole, valid packets that a
//! client may send, starting with CONNECT, with nothing after DISCONNECT
//! `[MQTT-3.14.4-2]`; nothing is written on a connection after a fatal
//! error or `disconnect`; a fatal error leaves the state `Failed`;
//! `wait_acked` / `wait_all_acked` returning Ok leave the publish /
//! nothing in flight; never more in flight than `max_in_flight`; the
//! handler only sees valid topics and QoS 0 or 1.
//!
//! Input layout: 4 bytes of configuration, a count and that many call
//! bytes, a count and that many read/write sizes (0 = one transient
//! `Pending`, during which time moves on by a configured step, so ack
//! timeouts and keepalive expiry happen inside calls), then the bytes the
//! "broker" sends.
#![no_main]

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use embassy_time::{Duration, MockDriver};
use libfuzzer_sys::fuzz_target;
use umqtt::packet::{self, Packet, ProtocolLevel};
use umqtt::topic::TopicName;
use umqtt::{Client, ConnectOptions, Publish, QoS, State, SubscribeTopic};

/// Polls allowed per call before it counts as a hang.
const POLLS: usize = 100_000;

/// Most transient `Pending`s in a row; the next read or write is ready.
/// Two in a row let a deadline pass inside a call (a fresh timer is
/// pending on its first poll).
const MAX_PENDING_IN_A_ROW: u8 = 3;

/// The broker side, shared by every transport of one run so that a
/// `reconnect` continues where the last connection stopped.
struct Inbound {
    bytes: Vec<u8>,
    at: usize,
    sizes: Vec<u8>,
    next_size: usize,
    /// How far the clock moves at each transient `Pending`.
    pending_step: Duration,
}

impl Inbound {
    fn next_size(&mut self) -> Option<usize> {
        if self.sizes.is_empty() {
            return Some(usize::MAX);
        }
        let s = self.sizes[self.next_size % self.sizes.len()];
        self.next_size += 1;
        if s == 0 { None } else { Some(usize::from(s)) }
    }
}

/// The transport never fails (end of stream is how the broker leaves).
#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

impl embedded_io_async::Error for Never {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::Other
    }
}

/// Accepts every write (in fuzz-chosen pieces), serves the inbound bytes
/// in fuzz-chosen pieces, then end of stream.
struct FuzzTransport {
    inbound: Rc<RefCell<Inbound>>,
    written: Vec<u8>,
    /// `Pending`s returned since the last ready read or write.
    pending_in_a_row: u8,
    /// Bytes written when the connection ended (fatal error or
    /// `disconnect`): nothing may follow.
    ended_at: Option<usize>,
}

impl FuzzTransport {
    fn new(inbound: &Rc<RefCell<Inbound>>) -> Self {
        Self {
            inbound: Rc::clone(inbound),
            written: Vec::new(),
            pending_in_a_row: 0,
            ended_at: None,
        }
    }

    /// A transient `Pending` (waking itself, the clock moved on) when the
    /// size list says 0, at most [`MAX_PENDING_IN_A_ROW`] times in a row.
    fn size(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        if self.pending_in_a_row >= MAX_PENDING_IN_A_ROW {
            self.pending_in_a_row = 0;
            return Some(usize::MAX);
        }
        let mut inbound = self.inbound.borrow_mut();
        let size = inbound.next_size();
        if size.is_none() {
            self.pending_in_a_row += 1;
            MockDriver::get().advance(inbound.pending_step);
            cx.waker().wake_by_ref();
        } else {
            self.pending_in_a_row = 0;
        }
        size
    }
}

impl Drop for FuzzTransport {
    fn drop(&mut self) {
        check_written(&self.written);
        if let Some(at) = self.ended_at {
            assert_eq!(
                at,
                self.written.len(),
                "client wrote after a fatal error or disconnect: {:02x?}",
                &self.written[at..]
            );
        }
    }
}

impl embedded_io_async::ErrorType for FuzzTransport {
    type Error = Never;
}

impl embedded_io_async::Read for FuzzTransport {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Never> {
        std::future::poll_fn(|cx| {
            let Some(size) = self.size(cx) else {
                return Poll::Pending;
            };
            let mut inbound = self.inbound.borrow_mut();
            let rest = &inbound.bytes[inbound.at..];
            let n = rest.len().min(buf.len()).min(size);
            buf[..n].copy_from_slice(&rest[..n]);
            inbound.at += n;
            Poll::Ready(Ok(n)) // 0 at the end: end of stream
        })
        .await
    }
}

impl embedded_io_async::Write for FuzzTransport {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Never> {
        std::future::poll_fn(|cx| {
            let Some(size) = self.size(cx) else {
                return Poll::Pending;
            };
            let n = buf.len().min(size).max(usize::from(!buf.is_empty()));
            self.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), Never> {
        Ok(())
    }
}

/// What the client wrote on one connection: whole, valid packets of the
/// kinds a client sends, CONNECT first, nothing after DISCONNECT.
fn check_written(mut written: &[u8]) {
    let mut first = true;
    let mut disconnected = false;
    while !written.is_empty() {
        let d = packet::decode(written).unwrap_or_else(|e| {
            panic!("client wrote an invalid or partial packet ({e}): {written:02x?}")
        });
        assert!(!disconnected, "client wrote {:?} after DISCONNECT", d.packet);
        assert!(
            first == matches!(d.packet, Packet::Connect(_)),
            "CONNECT is not exactly the first packet: {:?}",
            d.packet
        );
        match d.packet {
            Packet::Publish(p) => assert!(p.qos != QoS::ExactlyOnce),
            Packet::Disconnect => disconnected = true,
            Packet::Connect(_)
            | Packet::PubAck(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq => {}
            other => panic!("a client must not send {other:?}"),
        }
        first = false;
        written = &written[d.len..];
    }
}

/// Polls `fut` to completion; a call still pending after [`POLLS`] polls
/// is a hang (nothing in this harness stays pending).
fn drive<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..POLLS {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("client call still pending after {POLLS} polls with a ready transport");
}

/// Runs one client call to completion, checks the state it leaves and
/// hands back its result.
macro_rules! call {
    ($client:ident, $call:expr) => {{
        let result = drive($call);
        check(&mut $client, &result);
        result
    }};
}

/// How far the clock moves at each transient `Pending` (config[3] bits
/// 5-7): not at all, to past the ack timeout (10 s) and keepalive.
const PENDING_STEPS_MS: [u64; 8] = [0, 100, 500, 1_000, 2_500, 5_000, 11_000, 90_000];
const FILTERS: [&str; 4] = ["a/b", "a/+", "#", "$SYS/#"];
const TOPICS: [&str; 3] = ["a/b", "t", "sensors/01/temperature"];

fuzz_target!(|data: &[u8]| {
    let Some((config, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Some((&n_calls, rest)) = rest.split_first() else {
        return;
    };
    let (calls, rest) = rest.split_at(usize::from(n_calls).min(rest.len()));
    let Some((&n_sizes, rest)) = rest.split_first() else {
        return;
    };
    let (sizes, stream) = rest.split_at(usize::from(n_sizes).min(rest.len()));

    MockDriver::get().reset();
    let mut bytes = Vec::new();
    if config[0] & 0x80 != 0 {
        bytes.extend_from_slice(&[0x20, 0x02, 0x00, 0x00]); // CONNACK first, to go deeper
    }
    bytes.extend_from_slice(stream);
    let inbound = Rc::new(RefCell::new(Inbound {
        bytes,
        at: 0,
        sizes: sizes.to_vec(),
        next_size: 0,
        pending_step: Duration::from_millis(PENDING_STEPS_MS[usize::from(config[3] >> 5)]),
    }));

    let keep_alive = [0u16, 1, 5, 60][usize::from(config[0] & 0b11)];
    let protocol = if config[0] & 0b100 != 0 { ProtocolLevel::V31 } else { ProtocolLevel::V311 };
    let opts = ConnectOptions::new("fuzz")
        .keep_alive_secs(keep_alive)
        .clean_session(config[0] & 0b1000 == 0)
        .protocol(protocol)
        .max_in_flight(u16::from(config[3] & 0x1f));
    let mut rx = vec![0u8; 8 + usize::from(config[1])];
    let mut tx = vec![0u8; 8 + usize::from(config[2]) * 2];
    let max_in_flight = usize::from(opts.max_in_flight);

    let mut client =
        Client::new(FuzzTransport::new(&inbound), &mut rx, &mut tx, |m: &Publish<'_>| {
            assert!(TopicName::new(m.topic).is_ok(), "invalid topic delivered: {:?}", m.topic);
            assert!(m.qos != QoS::ExactlyOnce);
        });
    let payload = [0x5au8; 300];

    let mut last_id = None;

    let _ = call!(client, client.connect(&opts));
    for &call in calls {
        let arg = usize::from(call >> 4);
        let topic = TOPICS[arg % TOPICS.len()];
        let body = &payload[..arg * 19];
        let filters = &FILTERS[..1 + arg % FILTERS.len()];
        match call & 0x0f {
            0 => _ = call!(client, client.wait_msg()),
            1 => _ = call!(client, client.check_msg()),
            2 => {
                let retain = arg & 1 == 1;
                _ = call!(client, client.publish(topic, body, QoS::AtMostOnce, retain));
            }
            3 => _ = call!(client, client.publish(topic, body, QoS::AtLeastOnce, false)),
            4 => {
                if let Ok(id) = call!(client, client.publish_no_wait(topic, body, QoS::AtLeastOnce, false)) {
                    assert!(client.is_in_flight(id), "publish_no_wait forgot {id:?}");
                    last_id = Some(id);
                }
            }
            5 => {
                if call!(client, client.wait_all_acked()).is_ok() {
                    assert_eq!(client.in_flight(), 0, "wait_all_acked Ok with publishes in flight");
                }
            }
            6 => {
                let qos = if arg & 1 == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
                _ = call!(client, client.subscribe(FILTERS[arg % FILTERS.len()], qos));
            }
            7 => {
                let topics: Vec<_> = filters
                    .iter()
                    .map(|&filter| SubscribeTopic { filter, qos: QoS::AtLeastOnce })
                    .collect();
                if let Ok(codes) = call!(client, client.subscribe_many(&topics)) {
                    // `[MQTT-3.8.4-5]`: one return code per topic filter.
                    assert_eq!(codes.len(), topics.len());
                }
            }
            8 if arg & 0b1000 != 0 => _ = call!(client, client.unsubscribe_many(filters)),
            8 => _ = call!(client, client.unsubscribe(FILTERS[arg % FILTERS.len()])),
            9 => _ = call!(client, client.ping()),
            10 => _ = call!(client, client.reconnect(FuzzTransport::new(&inbound), &opts)),
            11 => {
                if call!(client, client.disconnect()).is_ok() {
                    assert_eq!(client.state(), State::Disconnected);
                    let transport = client.transport_mut();
                    transport.ended_at.get_or_insert(transport.written.len());
                }
            }
            12 => MockDriver::get().advance(Duration::from_millis(250 * (arg as u64 + 1))),
            13 => MockDriver::get().advance(Duration::from_secs(10 * (arg as u64 + 1))),
            14 => {
                if let Some(id) = last_id
                    && call!(client, client.wait_acked(id)).is_ok()
                {
                    assert!(!client.is_in_flight(id), "wait_acked Ok with {id:?} in flight");
                }
            }
            15 if arg & 1 == 0 => {
                let qos = if arg & 2 == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                if let Ok(Some(id)) = client.queue_publish(topic, body, qos, false) {
                    assert!(client.is_in_flight(id), "queue_publish forgot {id:?}");
                    last_id = Some(id);
                }
            }
            _ => _ = call!(client, client.flush()),
        }
        assert!(client.in_flight() <= max_in_flight, "more publishes in flight than allowed");
    }
});

/// A fatal error always leaves the client `Failed`, and ends the
/// connection: nothing more may be written on it.
fn check<H, R>(client: &mut Client<'_, FuzzTransport, H>, result: &Result<R, umqtt::Error<Never>>)
where
    H: FnMut(&Publish<'_>),
{
    if let Err(e) = result
        && e.is_fatal()
    {
        assert_eq!(client.state(), State::Failed, "fatal {e:?} but state {:?}", client.state());
        let transport = client.transport_mut();
        transport.ended_at.get_or_insert(transport.written.len());
    }
}
