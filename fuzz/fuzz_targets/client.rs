//! The whole client against a fuzzed broker: arbitrary inbound bytes,
//! served in arbitrary pieces (with transient `Pending`s), while the
//! client runs a fuzz-chosen sequence of calls (`wait_msg`, `check_msg`,
//! `publish` QoS 0/1, `publish_no_wait`, `wait_all_acked`, `subscribe`,
//! `unsubscribe`, `ping`, `reconnect`, `disconnect`, time passing).
//!
//! Checked: no panic; no hang (each call is polled a bounded number of
//! times with a no-op waker; the transport is never pending for good, the
//! inbound bytes end with end-of-stream, and time only moves when the
//! input says so, so a call still pending at the bound is a bug); every
//! byte the client writes is a sequence of whole, valid packets that a
//! client may send, starting with CONNECT; a fatal error leaves the state
//! `Failed`; `wait_all_acked` returning Ok leaves nothing in flight; the
//! handler only sees valid topics.
//!
//! Input layout: 4 bytes of configuration, a count and that many call
//! bytes, a count and that many read sizes (0 = one `Pending`), then the
//! bytes the "broker" sends.
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

/// The broker side, shared by every transport of one run so that a
/// `reconnect` continues where the last connection stopped.
struct Inbound {
    bytes: Vec<u8>,
    at: usize,
    sizes: Vec<u8>,
    next_size: usize,
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
    yielded: bool,
}

impl FuzzTransport {
    fn new(inbound: &Rc<RefCell<Inbound>>) -> Self {
        Self {
            inbound: Rc::clone(inbound),
            written: Vec::new(),
            yielded: false,
        }
    }

    /// A transient `Pending` (waking itself) when the size list says 0.
    fn size(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        if self.yielded {
            self.yielded = false;
            return Some(usize::MAX);
        }
        let size = self.inbound.borrow_mut().next_size();
        if size.is_none() {
            self.yielded = true;
            cx.waker().wake_by_ref();
        }
        size
    }
}

impl Drop for FuzzTransport {
    fn drop(&mut self) {
        check_written(&self.written);
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
/// kinds a client sends, CONNECT first.
fn check_written(mut written: &[u8]) {
    let mut first = true;
    while !written.is_empty() {
        let d = packet::decode(written).unwrap_or_else(|e| {
            panic!("client wrote an invalid or partial packet ({e}): {written:02x?}")
        });
        match d.packet {
            Packet::Connect(_) => assert!(first, "CONNECT after the first packet"),
            Packet::Publish(p) => assert!(p.qos != QoS::ExactlyOnce),
            Packet::PubAck(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect => {}
            other => panic!("a client must not send {other:?}"),
        }
        assert!(
            !first || matches!(d.packet, Packet::Connect(_)),
            "first packet is not CONNECT"
        );
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

/// Runs one client call to completion and checks the state it leaves.
macro_rules! call {
    ($client:ident, $call:expr) => {{
        let result = drive($call);
        check(&$client, &result);
    }};
}

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
    }));

    let keep_alive = [0u16, 1, 5, 60][usize::from(config[0] & 0b11)];
    let protocol = if config[0] & 0b100 != 0 {
        ProtocolLevel::V31
    } else {
        ProtocolLevel::V311
    };
    let opts = ConnectOptions::new("fuzz")
        .keep_alive_secs(keep_alive)
        .clean_session(config[0] & 0b1000 == 0)
        .protocol(protocol)
        .max_in_flight(u16::from(config[3] & 0x1f));
    let mut rx = vec![0u8; 8 + usize::from(config[1])];
    let mut tx = vec![0u8; 8 + usize::from(config[2]) * 2];
    let max_in_flight = usize::from(opts.max_in_flight);

    let mut client = Client::new(
        FuzzTransport::new(&inbound),
        &mut rx,
        &mut tx,
        |m: &Publish<'_>| {
            assert!(
                TopicName::new(m.topic).is_ok(),
                "invalid topic delivered: {:?}",
                m.topic
            );
            assert!(m.qos != QoS::ExactlyOnce);
        },
    );
    let payload = [0x5au8; 300];

    call!(client, client.connect(&opts));
    for &call in calls {
        let arg = usize::from(call >> 4);
        let topic = TOPICS[arg % TOPICS.len()];
        let body = &payload[..arg * 19];
        match call & 0x0f {
            0 => call!(client, client.wait_msg()),
            1 => call!(client, client.check_msg()),
            2 => call!(
                client,
                client.publish(topic, body, QoS::AtMostOnce, arg & 1 == 1)
            ),
            3 => call!(client, client.publish(topic, body, QoS::AtLeastOnce, false)),
            4 => call!(client, client.publish_no_wait(topic, body, false)),
            5 => {
                let r = drive(client.wait_all_acked());
                check(&client, &r);
                assert!(
                    r.is_err() || client.in_flight() == 0,
                    "wait_all_acked Ok with publishes in flight"
                );
            }
            6 => {
                let qos = if arg & 1 == 1 {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                };
                call!(client, client.subscribe(FILTERS[arg % FILTERS.len()], qos));
            }
            7 => {
                let topics: Vec<_> = FILTERS
                    .iter()
                    .take(1 + arg % FILTERS.len())
                    .map(|&filter| SubscribeTopic {
                        filter,
                        qos: QoS::AtLeastOnce,
                    })
                    .collect();
                call!(client, client.subscribe_many(&topics));
            }
            8 => call!(client, client.unsubscribe(FILTERS[arg % FILTERS.len()])),
            9 => call!(client, client.ping()),
            10 => call!(
                client,
                client.reconnect(FuzzTransport::new(&inbound), &opts)
            ),
            11 => call!(client, client.disconnect()),
            12 => MockDriver::get().advance(Duration::from_millis(250 * (arg as u64 + 1))),
            13 => MockDriver::get().advance(Duration::from_secs(10 * (arg as u64 + 1))),
            _ => {
                let _ = client.state();
                let _ = client.in_flight();
            }
        }
        assert!(
            client.in_flight() <= max_in_flight,
            "more publishes in flight than allowed"
        );
    }
});

/// A fatal error always leaves the client `Failed`.
fn check<T, H, R>(client: &Client<'_, T, H>, result: &Result<R, umqtt::Error<T::Error>>)
where
    T: embedded_io_async::Read + embedded_io_async::Write,
    H: FnMut(&Publish<'_>),
{
    if let Err(e) = result {
        if e.is_fatal() {
            assert_eq!(
                client.state(),
                State::Failed,
                "fatal {e:?} but state {:?}",
                client.state()
            );
        }
    }
}
