//! Cancel safety of reads over TLS: embedded-tls 0.19 loses a record's
//! header when its read future is dropped mid-record, so `umqtt::tls`
//! frames the socket with `RecordFramed`. Checked directly on the
//! adapter (a record fed one byte at a time, the read dropped after every
//! `Pending`) and end to end (`check_msg` in a tight loop against a
//! Mosquitto TLS listener while every TLS record arrives one byte per
//! read, the read dropped in between).
#![cfg(feature = "tls")]

mod common;
mod tls_common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{Mosquitto, Tcp, free_port, tcp};
use embedded_io_async::{ErrorType, Read, Write};
use tls_common::{OsRng, SystemClock, have_openssl, pki};
use umqtt::tls::{self, FramedError, READ_RECORD_BUFFER, RecordFramed, TLS_RECORD_OVERHEAD};
use umqtt::{Client, ConnectOptions, Publish, QoS};

const WAIT: Duration = Duration::from_secs(20);

/// A socket double that has received the first `arrived` bytes of
/// `data`: a read returns at most one of them, and is `Pending` (it can be
/// dropped there) when none is left.
struct Trickle {
    data: VecDeque<u8>,
    arrived: usize,
}

impl ErrorType for Trickle {
    type Error = core::convert::Infallible;
}

impl Read for Trickle {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        std::future::poll_fn(|_| {
            if self.data.is_empty() {
                return Poll::Ready(Ok(0));
            }
            if self.arrived == 0 {
                return Poll::Pending;
            }
            self.arrived -= 1;
            buf[0] = self.data.pop_front().unwrap();
            Poll::Ready(Ok(1))
        })
        .await
    }
}

/// A TLS record: content type, version 3.3, length, `body`.
fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, 3, 3];
    r.extend((body.len() as u16).to_be_bytes());
    r.extend(body);
    r
}

/// Polls `fut` once with a no-op waker; `None` if pending (it is dropped).
fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[test]
fn record_framed_hands_out_only_whole_records_when_reads_are_dropped_while_pending() {
    let records = [
        record(23, &(0..40u8).collect::<Vec<_>>()),
        record(22, &[]),
        record(23, &[0xAA; 3]),
        record(21, &(0..200u8).rev().collect::<Vec<_>>()),
    ];
    let boundaries: Vec<usize> = records
        .iter()
        .scan(0, |end, r| {
            *end += r.len();
            Some(*end)
        })
        .collect();
    let stream: Vec<u8> = records.concat();
    let socket = Trickle { data: stream.iter().copied().collect(), arrived: 0 };
    let mut buffer = [0u8; 5 + 200];
    let mut framed = RecordFramed::new(socket, &mut buffer);
    let mut handed_out = Vec::new();
    let mut pendings = 0;
    // Reader sizes as embedded-tls uses them (5 for a header, then the
    // body) and odd ones; each read future lives for one poll only.
    let sizes = [5, 1, 7, 64, 3, 1000];
    let mut step = 0;
    while handed_out.len() < stream.len() {
        // One more byte arrives on the socket.
        framed.socket_mut().arrived += 1;
        while handed_out.len() < stream.len() {
            let mut out = [0u8; 1000];
            let size = sizes[step % sizes.len()];
            step += 1;
            match poll_once(framed.read(&mut out[..size])) {
                Some(Ok(n)) => {
                    assert!(n > 0, "end of stream before all records");
                    handed_out.extend_from_slice(&out[..n]);
                }
                Some(Err(e)) => panic!("read failed: {e:?}"),
                None => {
                    pendings += 1;
                    assert!(
                        handed_out.is_empty() || boundaries.contains(&handed_out.len()),
                        "Pending after {} bytes handed out, inside a record (boundaries {boundaries:?})",
                        handed_out.len()
                    );
                    break;
                }
            }
        }
    }
    assert_eq!(handed_out, stream, "bytes handed out are the records, in order");
    assert!(pendings >= stream.len() - records.len(), "pendings: {pendings}");
    // The socket is drained: end of stream.
    assert!(matches!(poll_once(framed.read(&mut [0u8; 8])), Some(Ok(0))));
}

#[test]
fn record_framed_refuses_a_record_larger_than_its_buffer() {
    let stream = record(23, &[7; 100]);
    let socket = Trickle { arrived: stream.len(), data: stream.into() };
    let mut buffer = [0u8; 64];
    let mut framed = RecordFramed::new(socket, &mut buffer);
    let result = poll_once(framed.read(&mut [0u8; 8])).expect("ready");
    assert_eq!(result, Err(FramedError::RecordTooLarge { len: 105 }));
}

#[test]
fn record_framed_reports_end_of_stream_inside_a_record_as_end_of_stream() {
    let stream = record(23, &[7; 10]);
    let socket = Trickle { arrived: 8, data: stream[..8].iter().copied().collect() };
    let mut buffer = [0u8; 64];
    let mut framed = RecordFramed::new(socket, &mut buffer);
    assert_eq!(poll_once(framed.read(&mut [0u8; 8])), Some(Ok(0)));
}

/// A socket that delivers one byte per read and makes every other read
/// `Pending` once (waking itself), like TLS records split across TCP
/// segments on a slow link. Writes pass through.
struct OneByteAtATime {
    inner: Tcp,
    ready: bool,
}

impl ErrorType for OneByteAtATime {
    type Error = <Tcp as ErrorType>::Error;
}

impl Read for OneByteAtATime {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if !self.ready {
            self.ready = true;
            embassy_futures::yield_now().await;
        }
        self.ready = false;
        let len = buf.len().min(1);
        self.inner.read(&mut buf[..len]).await
    }
}

impl Write for OneByteAtATime {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.inner.write(buf).await
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await
    }
}

type Received = (String, Vec<u8>, QoS);

#[tokio::test]
async fn tls_check_msg_in_a_tight_loop_delivers_every_message_when_records_arrive_byte_by_byte() {
    let test = "tls_check_msg_split";
    if !have_openssl(test) {
        return;
    }
    let port = free_port();
    let conf = pki().listener(port, "server.pem", "server.key", false);
    let Some(broker) = Mosquitto::start(test, &conf) else {
        return;
    };

    let ca = pki().cert_der("ca.pem");
    let options = tls::TlsOptions::new("localhost", &ca).clock::<SystemClock>();
    let mut read_record = vec![0u8; READ_RECORD_BUFFER];
    let mut write_record = vec![0u8; 1024 + TLS_RECORD_OVERHEAD];
    let socket = OneByteAtATime { inner: tcp(port).await, ready: false };
    // The handshake's records arrive split too.
    let handshake = tls::connect(socket, &mut read_record, &mut write_record, &options, OsRng);
    let stream =
        tokio::time::timeout(WAIT, handshake).await.expect("handshake in time").expect("handshake");

    let inbox: Rc<RefCell<Vec<Received>>> = Rc::default();
    let sink = inbox.clone();
    let handler =
        move |m: &Publish<'_>| sink.borrow_mut().push((m.topic.into(), m.payload.into(), m.qos));
    let (mut rx, mut tx) = (vec![0u8; 4096], vec![0u8; 512]);
    let mut subscriber = Client::new(stream, &mut rx, &mut tx, handler);
    subscriber.connect(&ConnectOptions::new("tls-split-sub")).await.unwrap();
    subscriber.subscribe("split/#", QoS::AtLeastOnce).await.unwrap();

    // A plaintext publisher on the broker's other listener.
    let (mut prx, mut ptx) = (vec![0u8; 512], vec![0u8; 4096]);
    let mut publisher =
        Client::new(tcp(broker.port).await, &mut prx, &mut ptx, |_: &Publish<'_>| {});
    publisher.connect(&ConnectOptions::new("tls-split-pub")).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..12u32 {
        let topic = format!("split/{i}");
        let payload: Vec<u8> = (0..(i * 157) % 2000).map(|b| (b ^ i) as u8).collect();
        let qos = if i % 2 == 0 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
        publisher.publish(&topic, &payload, qos, false).await.unwrap();
        expected.push((topic, payload, qos));
    }
    publisher.disconnect().await.unwrap();

    let mut calls = 0u64;
    let receive = async {
        while inbox.borrow().len() < expected.len() {
            subscriber.check_msg().await.expect("check_msg over split records");
            calls += 1;
            // The application's loop: other work, then the next check.
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, receive).await.expect("every message in time");
    println!("{calls} check_msg calls for {} messages", expected.len());
    assert_eq!(*inbox.borrow(), expected);
    subscriber.ping().await.unwrap();
    subscriber.disconnect().await.unwrap();
}

/// A socket that writes at most `budget` more bytes, then is `Pending`
/// (without waking: the test drops the write there), and keeps a copy of
/// every byte written. Reads pass through.
struct Metered {
    inner: Tcp,
    budget: Rc<std::cell::Cell<usize>>,
    blocked: Rc<std::cell::Cell<bool>>,
    wire: Rc<RefCell<Vec<u8>>>,
}

impl ErrorType for Metered {
    type Error = <Tcp as ErrorType>::Error;
}

impl Read for Metered {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.inner.read(buf).await
    }
}

impl Write for Metered {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let budget = self.budget.get();
        if budget == 0 {
            self.blocked.set(true);
            return std::future::pending().await;
        }
        let n = self.inner.write(&buf[..buf.len().min(budget)]).await?;
        self.budget.set(budget - n);
        self.wire.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await
    }
}

/// Splits `wire` into TLS records `(content type, body)`; panics on a
/// truncated record.
fn records_of(wire: &[u8]) -> Vec<(u8, &[u8])> {
    let mut records = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "truncated record header at the end of the wire");
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        assert!(rest.len() >= 5 + len, "truncated record on the wire ({len} announced)");
        records.push((rest[0], &rest[5..5 + len]));
        rest = &rest[5 + len..];
    }
    records
}

#[tokio::test]
async fn tls_publish_dropped_at_every_byte_of_its_record_is_finished_whole_and_no_nonce_repeats() {
    drop_publishes("tls_write_cancel", 40, 2 * (1024 + TLS_RECORD_OVERHEAD), 1).await;
}

/// A publish of four records (1,600 bytes over a 1,152-byte write buffer,
/// 442 bytes a record), dropped at every 5th byte of what it puts on the
/// wire: drops inside `write` (sealing a full record) as well as `flush`.
#[tokio::test]
async fn tls_publish_of_several_records_dropped_anywhere_is_finished_whole() {
    drop_publishes("tls_write_cancel_multi", 1600, 1024 + TLS_RECORD_OVERHEAD, 5).await;
}

/// Publishes messages of `payload_len` bytes over a TLS stream with a
/// `write_buffer`-byte write record buffer, dropping one publish at every
/// `step`-th byte it writes, each followed by an undisturbed publish; then
/// checks every message arrived intact and in order, and the wire.
async fn drop_publishes(test: &str, payload_len: usize, write_buffer: usize, step: usize) {
    if !have_openssl(test) {
        return;
    }
    let port = free_port();
    let conf = pki().listener(port, "server.pem", "server.key", false);
    let Some(broker) = Mosquitto::start(test, &conf) else {
        return;
    };

    // A plaintext subscriber sees what the broker received.
    type Topics = Vec<(String, Vec<u8>)>;
    let inbox: Rc<RefCell<Topics>> = Rc::default();
    let sink = inbox.clone();
    let handler = move |m: &Publish<'_>| sink.borrow_mut().push((m.topic.into(), m.payload.into()));
    let (mut srx, mut stx) = (vec![0u8; 4096], vec![0u8; 512]);
    let mut subscriber = Client::new(tcp(broker.port).await, &mut srx, &mut stx, handler);
    subscriber.connect(&ConnectOptions::new("tls-wcancel-sub")).await.unwrap();
    subscriber.subscribe("drop/#", QoS::AtMostOnce).await.unwrap();

    let budget = Rc::new(std::cell::Cell::new(usize::MAX));
    let blocked = Rc::new(std::cell::Cell::new(false));
    let wire: Rc<RefCell<Vec<u8>>> = Rc::default();
    let socket = Metered {
        inner: tcp(port).await,
        budget: budget.clone(),
        blocked: blocked.clone(),
        wire: wire.clone(),
    };
    let ca = pki().cert_der("ca.pem");
    let options = tls::TlsOptions::new("localhost", &ca).clock::<SystemClock>();
    let mut read_record = vec![0u8; READ_RECORD_BUFFER];
    let mut write_record = vec![0u8; write_buffer];
    let handshake = tls::connect(socket, &mut read_record, &mut write_record, &options, OsRng);
    let stream =
        tokio::time::timeout(WAIT, handshake).await.expect("handshake in time").expect("handshake");
    let (mut rx, mut tx) = (vec![0u8; 1024], vec![0u8; 4096]);
    let mut publisher = Client::new(stream, &mut rx, &mut tx, |_: &Publish<'_>| {});
    publisher.connect(&ConnectOptions::new("tls-wcancel-pub")).await.unwrap();

    // Every message has the same length and starts with the same bytes
    // (fixed header, topic length, "drop/"), so records sealed under one
    // nonce would start with the same ciphertext bytes.
    let message = |kind: &str, i: usize| (format!("drop/{kind}{i:04}"), vec![i as u8; payload_len]);
    let mut expected = Vec::new();
    let before = wire.borrow().len();
    let (topic, payload) = message("m", 0);
    publisher.publish(&topic, &payload, QoS::AtMostOnce, false).await.unwrap();
    expected.push((topic, payload));
    let record_len = wire.borrow().len() - before;
    assert!(record_len > payload_len, "one PUBLISH is {record_len} bytes on the wire");

    let mut dropped = 0;
    let cuts: Vec<usize> = (0..record_len).step_by(step).collect();
    for &cut in &cuts {
        let (topic, payload) = message("d", cut);
        budget.set(cut);
        blocked.set(false);
        let publish = publisher.publish(&topic, &payload, QoS::AtMostOnce, false);
        let stalled =
            std::future::poll_fn(|_| if blocked.get() { Poll::Ready(()) } else { Poll::Pending });
        match embassy_futures::select::select(publish, stalled).await {
            embassy_futures::select::Either::First(done) => done.unwrap(),
            embassy_futures::select::Either::Second(()) => dropped += 1,
        }
        budget.set(usize::MAX);
        expected.push((topic, payload));
        // Then carry on: the next publish finishes the dropped one first.
        let (topic, payload) = message("a", cut);
        publisher.publish(&topic, &payload, QoS::AtMostOnce, false).await.unwrap();
        expected.push((topic, payload));
    }
    assert_eq!(dropped, cuts.len(), "every cut dropped a publish mid-write");
    publisher.ping().await.expect("connection intact after the dropped writes");
    publisher.disconnect().await.unwrap();

    let receive = async {
        while inbox.borrow().len() < expected.len() {
            subscriber.wait_msg().await.unwrap();
        }
    };
    tokio::time::timeout(WAIT, receive).await.expect("every message in time");
    assert_eq!(*inbox.borrow(), expected, "every message, dropped or not, intact and in order");

    // The wire holds whole records only, and no two application-data
    // records start with the same 8 ciphertext bytes: a repeated sequence
    // number (AES-GCM nonce) over these equal-prefixed plaintexts would.
    let wire = wire.borrow();
    let records = records_of(&wire);
    let mut prefixes = std::collections::HashSet::new();
    let mut app = 0;
    for (content_type, body) in &records {
        if *content_type == 23 {
            app += 1;
            assert!(prefixes.insert(&body[..8]), "two records share a keystream prefix");
        }
    }
    println!(
        "{test}: a {record_len}-byte PUBLISH dropped at {} points; \
         {app} application-data records on the wire, all whole, no repeated nonce",
        cuts.len()
    );
}
