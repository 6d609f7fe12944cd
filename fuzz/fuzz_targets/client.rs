//! The whole client against a fuzzed broker: arbitrary inbound bytes,
//! served in arbitrary pieces (with transient `Pending`s), while the
//! client runs a fuzz-chosen sequence of calls (`wait_msg`, `check_msg`,
//! `publish` QoS 0/1/2, `publish_no_wait`, `queue_publish`, `flush`,
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
//! handler only sees valid topics, and QoS 2 only when the client has
//! receive slots (`receive_qos2`), which it may be given (config[0] bit 4);
//! PUBREC only goes out with slots. QoS 2 both ways: an outbound QoS 1 or
//! QoS 2 message never stops being in flight (is never reported complete)
//! unless the broker sent its PUBACK / PUBCOMP, and for QoS 2 the client
//! wrote its PUBREL, or a clean-session connect discarded it; an inbound
//! QoS 2 message is never delivered twice while its packet id awaits PUBREL
//! (no PUBREL for the id came in between, no clean-session connect and no
//! CONNACK without session present).
//!
//! Input layout: 4 bytes of configuration, a count and that many call
//! bytes, a count and that many read/write sizes (0 = one transient
//! `Pending`, during which time moves on by a configured step, so ack
//! timeouts and keepalive expiry happen inside calls), then the bytes the
//! "broker" sends: raw, or (config[0] bit 6) a script of one byte per
//! packet (see [`script`]) that names PUBREC, PUBREL, PUBCOMP (valid, with
//! wrong flags, with a wrong length), QoS 2 PUBLISH and the other server
//! packets, with packet identifiers 1 to 16.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use embassy_time::{Duration, MockDriver};
use libfuzzer_sys::fuzz_target;
use umqtt::packet::{self, DecodeError, Packet, PacketId, ProtocolLevel};
use umqtt::topic::TopicName;
use umqtt::{Client, ConnectOptions, Publish, PublishError, QoS, State, SubscribeTopic};

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
    /// Every byte the client wrote, on every connection.
    written: Vec<u8>,
    /// Whether the client was given QoS 2 receive slots.
    receives_qos2: bool,
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
        check_written(&self.written, self.inbound.borrow().receives_qos2);
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
            self.inbound.borrow_mut().written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), Never> {
        Ok(())
    }
}

/// What the client wrote on one connection: whole, valid packets of the
/// kinds a client sends, CONNECT first, nothing after DISCONNECT; PUBREC
/// only from a client that receives QoS 2.
fn check_written(mut written: &[u8], receives_qos2: bool) {
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
            Packet::Disconnect => disconnected = true,
            Packet::PubRec(id) => {
                assert!(receives_qos2, "PUBREC {id:?} from a client without QoS 2 slots")
            }
            Packet::Connect(_)
            | Packet::Publish(_)
            | Packet::PubAck(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
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

/// The broker's bytes for a script (config[0] bit 6): one byte per packet,
/// the low nibble its kind, the high nibble `n` the packet identifier
/// `n + 1` (1 to 16: the client allocates from 1 up, so these meet the ids
/// in use as well as unknown ones).
///
/// 0 CONNACK (accepted, session present if `n` is odd; refused for 15),
/// 1 PUBACK, 2 PUBREC, 3 PUBREL, 4 PUBCOMP, 5 PUBLISH QoS 2 (DUP if `n` >=
/// 8), 6 PUBLISH QoS 1, 7 PUBLISH QoS 0, 8 SUBACK (one code, QoS `n % 4`,
/// 3: failure), 9 UNSUBACK, 10 PINGRESP, 11 PUBREC (`n` even) or PUBCOMP
/// (odd) with wrong flags, 12 PUBREL with wrong flags (0 or DUP-like),
/// 13 an acknowledgment of the wrong length (PUBREC 3, PUBCOMP 1, PUBREL
/// 0, PUBREL 4, by `n % 4`), 14 a QoS 2 PUBLISH with a 300-byte payload
/// (oversize for small `rx`: drained, PUBREC), 15 the next byte as it is.
fn script(ops: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ops = ops.iter();
    while let Some(&op) = ops.next() {
        let n = op >> 4;
        let [hi, lo] = (u16::from(n) + 1).to_be_bytes();
        let publish = |out: &mut Vec<u8>, first: u8, payload_len: usize| {
            let with_id = first & 0b0110 != 0;
            let remaining = 2 + 3 + if with_id { 2 } else { 0 } + payload_len;
            out.push(first);
            let mut len = remaining;
            loop {
                let byte = (len % 128) as u8;
                len /= 128;
                out.push(if len > 0 { byte | 0x80 } else { byte });
                if len == 0 {
                    break;
                }
            }
            out.extend_from_slice(b"\x00\x03a/b");
            if with_id {
                out.extend_from_slice(&[hi, lo]);
            }
            out.extend(std::iter::repeat_n(n, payload_len));
        };
        match op & 0x0f {
            0 if n == 15 => out.extend_from_slice(&[0x20, 0x02, 0x00, 0x05]),
            0 => out.extend_from_slice(&[0x20, 0x02, n & 1, 0x00]),
            1 => out.extend_from_slice(&[0x40, 0x02, hi, lo]),
            2 => out.extend_from_slice(&[0x50, 0x02, hi, lo]),
            3 => out.extend_from_slice(&[0x62, 0x02, hi, lo]),
            4 => out.extend_from_slice(&[0x70, 0x02, hi, lo]),
            5 => publish(&mut out, if n >= 8 { 0x3c } else { 0x34 }, 2),
            6 => publish(&mut out, 0x32, 2),
            7 => publish(&mut out, 0x30, 2),
            8 => {
                let code = if n % 4 == 3 { 0x80 } else { n % 4 };
                out.extend_from_slice(&[0x90, 0x03, hi, lo, code]);
            }
            9 => out.extend_from_slice(&[0xb0, 0x02, hi, lo]),
            10 => out.extend_from_slice(&[0xd0, 0x00]),
            11 => out.extend_from_slice(&[if n & 1 == 0 { 0x52 } else { 0x71 }, 0x02, hi, lo]),
            12 => out.extend_from_slice(&[if n & 1 == 0 { 0x60 } else { 0x6a }, 0x02, hi, lo]),
            13 => match n % 4 {
                0 => out.extend_from_slice(&[0x50, 0x03, hi, lo, 0x00]),
                1 => out.extend_from_slice(&[0x70, 0x01, hi]),
                2 => out.extend_from_slice(&[0x62, 0x00]),
                _ => out.extend_from_slice(&[0x62, 0x04, hi, lo, 0x00, 0x00]),
            },
            14 => publish(&mut out, 0x34, 300),
            _ => out.extend(ops.next()),
        }
    }
    out
}

/// Whether `haystack` holds the 4-byte acknowledgment `first, 2, id`.
fn has_ack(haystack: &[u8], first: u8, id: PacketId) -> bool {
    let [hi, lo] = id.get().to_be_bytes();
    haystack.windows(4).any(|w| w == [first, 0x02, hi, lo])
}

/// Whether `haystack` holds an accepting CONNACK without session present:
/// the broker starts a new session, so the client forgets the inbound QoS 2
/// ids awaiting PUBREL and the next PUBLISH with one of them is a new
/// message.
fn has_new_session(haystack: &[u8]) -> bool {
    haystack.windows(4).any(|w| w == [0x20, 0x02, 0x00, 0x00])
}

/// The packet id of the last QoS 1 or 2 PUBLISH without DUP in `written`
/// (whole packets, maybe followed by a partial one).
fn last_new_publish(mut written: &[u8]) -> Option<(PacketId, QoS)> {
    let mut last = None;
    loop {
        match packet::decode(written) {
            Ok(d) => {
                if let Packet::Publish(p) = d.packet
                    && let (Some(id), false) = (p.packet_id, p.dup)
                {
                    last = Some((id, p.qos));
                }
                written = &written[d.len..];
            }
            Err(DecodeError::Incomplete { .. } | DecodeError::Malformed(_)) => return last,
        }
    }
}

/// An outbound QoS 1 or 2 message the client reported stored.
struct Outbound {
    id: PacketId,
    qos: QoS,
    /// Where in the broker's bytes its acknowledgment may start: the
    /// client may have held up to `rx` bytes unread when it was published.
    from: usize,
}

/// Checks that each tracked outbound message the client no longer has in
/// flight was completed by the broker: a PUBACK (QoS 1) or PUBCOMP (QoS 2)
/// for its id came in since it was published, and for QoS 2 the client
/// wrote its PUBREL. Forgets those.
fn check_completed(
    tracked: &mut Vec<Outbound>,
    in_flight: impl Fn(PacketId) -> bool,
    inbound: &Inbound,
) {
    tracked.retain(|m| {
        if in_flight(m.id) {
            return true;
        }
        let received = &inbound.bytes[m.from.min(inbound.at)..inbound.at];
        let ack = if m.qos == QoS::ExactlyOnce { 0x70 } else { 0x40 };
        assert!(
            has_ack(received, ack, m.id),
            "{:?} message {:?} complete without its {}",
            m.qos,
            m.id,
            if ack == 0x70 { "PUBCOMP" } else { "PUBACK" }
        );
        if m.qos == QoS::ExactlyOnce {
            assert!(
                has_ack(&inbound.written, 0x62, m.id),
                "QoS 2 message {:?} complete though its PUBREL was never written",
                m.id
            );
        }
        false
    });
}

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
    if config[0] & 0x40 != 0 {
        bytes.extend(script(stream));
    } else {
        bytes.extend_from_slice(stream);
    }
    let receives_qos2 = config[0] & 0x10 != 0;
    let inbound = Rc::new(RefCell::new(Inbound {
        bytes,
        at: 0,
        sizes: sizes.to_vec(),
        next_size: 0,
        pending_step: Duration::from_millis(PENDING_STEPS_MS[usize::from(config[3] >> 5)]),
        written: Vec::new(),
        receives_qos2,
    }));

    let keep_alive = [0u16, 1, 5, 60][usize::from(config[0] & 0b11)];
    let protocol = if config[0] & 0b100 != 0 { ProtocolLevel::V31 } else { ProtocolLevel::V311 };
    let clean_session = config[0] & 0b1000 == 0;
    let opts = ConnectOptions::new("fuzz")
        .keep_alive_secs(keep_alive)
        .clean_session(clean_session)
        .protocol(protocol)
        .max_in_flight(u16::from(config[3] & 0x1f));
    let rx_len = 8 + usize::from(config[1]);
    let mut rx = vec![0u8; rx_len];
    let mut tx = vec![0u8; 8 + usize::from(config[2]) * 2];
    // One slot (full at the second QoS 2 message awaiting PUBREL) or three.
    let mut slots = vec![0u16; if config[0] & 0x20 != 0 { 1 } else { 3 }];
    let max_in_flight = usize::from(opts.max_in_flight);

    // Inbound QoS 2 messages delivered, by packet id, with where in the
    // broker's bytes a PUBREL releasing them may start.
    let delivered: Rc<RefCell<HashMap<u16, usize>>> = Rc::default();
    let handler = {
        let (inbound, delivered) = (Rc::clone(&inbound), Rc::clone(&delivered));
        move |m: &Publish<'_>| {
            assert!(TopicName::new(m.topic).is_ok(), "invalid topic delivered: {:?}", m.topic);
            let (Some(id), QoS::ExactlyOnce) = (m.packet_id, m.qos) else { return };
            assert!(receives_qos2, "QoS 2 message delivered to a client without slots");
            let inbound = inbound.borrow();
            let mut delivered = delivered.borrow_mut();
            if let Some(&from) = delivered.get(&id.get()) {
                let since = &inbound.bytes[from.min(inbound.at)..inbound.at];
                assert!(
                    has_ack(since, 0x62, id) || has_new_session(since),
                    "QoS 2 message {id:?} delivered twice with no PUBREL in between"
                );
            }
            delivered.insert(id.get(), inbound.at.saturating_sub(rx_len));
        }
    };
    let client = Client::new(FuzzTransport::new(&inbound), &mut rx, &mut tx, handler);
    let mut client = if receives_qos2 { client.receive_qos2(&mut slots) } else { client };
    let payload = [0x5au8; 300];

    let mut last_id = None;
    let mut tracked: Vec<Outbound> = Vec::new();

    let _ = call!(client, client.connect(&opts));
    for &call in calls {
        let arg = usize::from(call >> 4);
        let topic = TOPICS[arg % TOPICS.len()];
        let body = &payload[..arg * 19];
        let filters = &FILTERS[..1 + arg % FILTERS.len()];
        // QoS 1, or QoS 2 for the upper half of the arguments.
        let qos12 = if arg & 0b1000 != 0 { QoS::ExactlyOnce } else { QoS::AtLeastOnce };
        let from = inbound.borrow().at.saturating_sub(rx_len);
        match call & 0x0f {
            0 => _ = call!(client, client.wait_msg()),
            1 => _ = call!(client, client.check_msg()),
            2 => {
                let retain = arg & 1 == 1;
                _ = call!(client, client.publish(topic, body, QoS::AtMostOnce, retain));
            }
            3 => {
                match call!(client, client.publish(topic, body, qos12, false)) {
                    Ok(()) => {
                        // Complete: the last new PUBLISH written is this one.
                        let inbound = inbound.borrow();
                        let (id, qos) = last_new_publish(&client.transport_mut().written)
                            .expect("publish Ok without a PUBLISH written");
                        assert_eq!(qos, qos12);
                        let mut done = vec![Outbound { id, qos, from }];
                        check_completed(&mut done, |_| false, &inbound);
                    }
                    Err(PublishError { stored: Some(id), error }) => {
                        assert!(
                            client.is_in_flight(id),
                            "{error:?} says {id:?} is stored, it is not"
                        );
                        tracked.push(Outbound { id, qos: qos12, from });
                    }
                    Err(_) => {}
                }
            }
            4 => match call!(client, client.publish_no_wait(topic, body, qos12, false)) {
                Ok(id) => {
                    assert!(client.is_in_flight(id), "publish_no_wait forgot {id:?}");
                    last_id = Some(id);
                    tracked.push(Outbound { id, qos: qos12, from });
                }
                Err(PublishError { stored: Some(id), error }) => {
                    assert!(client.is_in_flight(id), "{error:?} says {id:?} is stored, it is not");
                    tracked.push(Outbound { id, qos: qos12, from });
                }
                Err(_) => {}
            },
            5 => {
                if call!(client, client.wait_all_acked()).is_ok() {
                    assert_eq!(client.in_flight(), 0, "wait_all_acked Ok with publishes in flight");
                }
            }
            6 => {
                let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][arg % 3];
                _ = call!(client, client.subscribe(FILTERS[arg % FILTERS.len()], qos));
            }
            7 => {
                let qos = if arg & 0b1000 != 0 { QoS::ExactlyOnce } else { QoS::AtLeastOnce };
                let topics: Vec<_> =
                    filters.iter().map(|&filter| SubscribeTopic { filter, qos }).collect();
                if let Ok(codes) = call!(client, client.subscribe_many(&topics)) {
                    // `[MQTT-3.8.4-5]`: one return code per topic filter.
                    assert_eq!(codes.len(), topics.len());
                }
            }
            8 if arg & 0b1000 != 0 => _ = call!(client, client.unsubscribe_many(filters)),
            8 => _ = call!(client, client.unsubscribe(FILTERS[arg % FILTERS.len()])),
            9 => _ = call!(client, client.ping()),
            10 => {
                _ = call!(client, client.reconnect(FuzzTransport::new(&inbound), &opts));
                if clean_session {
                    // Discarded `[MQTT-3.1.2-6]`, both ways.
                    tracked.clear();
                    delivered.borrow_mut().clear();
                }
            }
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
                let qos = match (arg >> 1) & 0b11 {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    _ => QoS::ExactlyOnce,
                };
                if let Ok(Some(id)) = client.queue_publish(topic, body, qos, false) {
                    assert!(client.is_in_flight(id), "queue_publish forgot {id:?}");
                    last_id = Some(id);
                    tracked.push(Outbound { id, qos, from });
                }
            }
            _ => _ = call!(client, client.flush()),
        }
        assert!(client.in_flight() <= max_in_flight, "more publishes in flight than allowed");
        check_completed(&mut tracked, |id| client.is_in_flight(id), &inbound.borrow());
    }
});

/// The error of a call's result, for [`check`]: a plain [`umqtt::Error`]
/// or the one inside a [`PublishError`].
trait CallError {
    fn error(&self) -> Option<&umqtt::Error<Never>>;
}

impl<R> CallError for Result<R, umqtt::Error<Never>> {
    fn error(&self) -> Option<&umqtt::Error<Never>> {
        self.as_ref().err()
    }
}

impl<R> CallError for Result<R, PublishError<Never>> {
    fn error(&self) -> Option<&umqtt::Error<Never>> {
        self.as_ref().err().map(|e| &e.error)
    }
}

/// A fatal error always leaves the client `Failed`, and ends the
/// connection: nothing more may be written on it.
fn check<H>(client: &mut Client<'_, FuzzTransport, H>, result: &impl CallError)
where
    H: FnMut(&Publish<'_>),
{
    if let Some(e) = result.error()
        && e.is_fatal()
    {
        assert_eq!(client.state(), State::Failed, "fatal {e:?} but state {:?}", client.state());
        let transport = client.transport_mut();
        transport.ended_at.get_or_insert(transport.written.len());
    }
}
