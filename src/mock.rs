//! A scripted mock transport that plays a broker conversation, for unit
//! tests of firmware logic on the host (feature `mock`).
//!
//! The script is a sequence of steps: bytes the client must write, bytes
//! the "broker" answers, errors and end of stream. A write that differs
//! from the script fails the test with both sides decoded and in hex.
//!
//! ```
//! use umqtt::mock::{MockTransport, packet_bytes};
//! use umqtt::packet::{ConnAck, ConnectReturnCode, Packet};
//! use umqtt::{Client, ConnectOptions};
//!
//! let opts = ConnectOptions::new("test-1").keep_alive_secs(0);
//! let mut mock = MockTransport::new()
//!     .expect_packet(&Packet::Connect(opts.to_connect()))
//!     .send_packet(&Packet::ConnAck(ConnAck {
//!         session_present: false,
//!         code: ConnectReturnCode::Accepted,
//!     }))
//!     .expect(&packet_bytes(&Packet::PingReq))
//!     .send(&[0xd0, 0x00]); // PINGRESP
//! let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
//! let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_msg: &umqtt::Publish<'_>| {});
//! embassy_futures::block_on(async {
//!     assert!(!client.connect(&opts).await.unwrap().session_present);
//!     client.ping().await.unwrap();
//! });
//! drop(client);
//! mock.assert_done();
//! ```

extern crate std;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::string::String;
use std::task::{Poll, Waker};
use std::vec::Vec;

use core::future::poll_fn;

use crate::packet::{self, Packet};

/// One step of a scripted conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The client must write exactly these bytes (over one or more writes).
    /// Like a real socket the mock is full duplex: the write may happen
    /// while `Send` steps before this one are still unread.
    Expect(Vec<u8>),
    /// The broker sends these bytes (returned by the client's reads).
    Send(Vec<u8>),
    /// The next read fails.
    ReadError,
    /// The next write fails.
    WriteError,
    /// Reads return end of stream (0 bytes) from here on.
    Eof,
}

/// Error the mock returns when the script says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockError;

impl core::fmt::Display for MockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("mock transport error")
    }
}

impl std::error::Error for MockError {}

impl embedded_io_async::Error for MockError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::ConnectionReset
    }
}

/// A transport that follows a script; see the [module docs](self).
#[derive(Debug, Default)]
pub struct MockTransport {
    script: VecDeque<Step>,
    max_read: Option<usize>,
    yield_once: bool,
    yielded: bool,
    reader: Option<Waker>,
    written: Vec<u8>,
    writes: usize,
    flushes: usize,
}

/// The encoded bytes of `packet`.
///
/// # Panics
/// If `packet` cannot be encoded (a test bug).
pub fn packet_bytes(packet: &Packet<'_>) -> Vec<u8> {
    let len = packet::encoded_len(packet).expect("valid packet");
    let mut buf = std::vec![0; len];
    packet::encode(packet, &mut buf).expect("valid packet");
    buf
}

fn describe(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match packet::decode(rest) {
            Ok(d) => {
                let _ = writeln!(out, "    {:?}", d.packet);
                rest = rest.get(d.len..).unwrap_or_default();
            }
            Err(e) => {
                let _ = writeln!(out, "    ({e}) {:02x?}", rest);
                break;
            }
        }
    }
    let _ = write!(out, "    hex: {:02x?}", bytes);
    out
}

impl MockTransport {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step.
    #[must_use]
    pub fn step(mut self, step: Step) -> Self {
        self.script.push_back(step);
        self
    }

    /// The client must write `bytes` next.
    #[must_use]
    pub fn expect(self, bytes: &[u8]) -> Self {
        self.step(Step::Expect(bytes.to_vec()))
    }

    /// The client must write `packet` next.
    #[must_use]
    pub fn expect_packet(self, packet: &Packet<'_>) -> Self {
        self.step(Step::Expect(packet_bytes(packet)))
    }

    /// The broker sends `bytes` next.
    #[must_use]
    pub fn send(self, bytes: &[u8]) -> Self {
        self.step(Step::Send(bytes.to_vec()))
    }

    /// The broker sends `packet` next.
    #[must_use]
    pub fn send_packet(self, packet: &Packet<'_>) -> Self {
        self.step(Step::Send(packet_bytes(packet)))
    }

    /// Every read returns at most `n` bytes (1: byte by byte).
    #[must_use]
    pub fn max_read(mut self, n: usize) -> Self {
        self.max_read = Some(n.max(1));
        self
    }

    /// Every read and write first returns `Pending` once (waking itself),
    /// so each await point of a caller can be cancelled in tests.
    #[must_use]
    pub fn yield_every_call(mut self) -> Self {
        self.yield_once = true;
        self
    }

    /// Appends more steps to a running script.
    pub fn push(&mut self, step: Step) {
        self.script.push_back(step);
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    /// Steps not yet played.
    pub fn remaining(&self) -> impl Iterator<Item = &Step> {
        self.script.iter()
    }

    /// All bytes the client wrote so far.
    pub fn written(&self) -> &[u8] {
        &self.written
    }

    /// Number of `write` and `flush` calls so far.
    pub fn write_calls(&self) -> (usize, usize) {
        (self.writes, self.flushes)
    }

    /// Fails the test unless every step was played (a trailing `Eof` may
    /// stay).
    ///
    /// # Panics
    /// When steps remain.
    pub fn assert_done(&self) {
        let left: Vec<_> = self.script.iter().filter(|s| **s != Step::Eof).collect();
        assert!(left.is_empty(), "mock script not finished, remaining steps: {left:#?}");
    }

    fn take_yield(&mut self, cx: &mut core::task::Context<'_>) -> bool {
        if self.yield_once && !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return true;
        }
        self.yielded = false;
        false
    }
}

impl embedded_io_async::ErrorType for MockTransport {
    type Error = MockError;
}

impl embedded_io_async::Read for MockTransport {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, MockError> {
        poll_fn(|cx| {
            if self.take_yield(cx) {
                return Poll::Pending;
            }
            match self.script.front_mut() {
                Some(Step::Send(bytes)) => {
                    let n = bytes.len().min(buf.len()).min(self.max_read.unwrap_or(usize::MAX));
                    buf[..n].copy_from_slice(&bytes[..n]);
                    bytes.drain(..n);
                    if bytes.is_empty() {
                        self.script.pop_front();
                    }
                    Poll::Ready(Ok(n))
                }
                Some(Step::ReadError) => {
                    self.script.pop_front();
                    Poll::Ready(Err(MockError))
                }
                Some(Step::Eof) => Poll::Ready(Ok(0)),
                // The broker waits for the client to write (or the script
                // is over): like a quiet socket, the read stays pending.
                _ => {
                    self.reader = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl embedded_io_async::Write for MockTransport {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, MockError> {
        poll_fn(|cx| {
            if self.take_yield(cx) {
                return Poll::Pending;
            }
            self.writes += 1;
            // Full duplex: bytes the broker already sent may still be on
            // their way to the client while it writes, so a write matches
            // the first step that is not a `Send`.
            let at = self.script.iter().position(|s| !matches!(s, Step::Send(_)));
            match at.and_then(|i| self.script.get_mut(i).map(|s| (i, s))) {
                Some((i, Step::WriteError)) => {
                    self.script.remove(i);
                    Poll::Ready(Err(MockError))
                }
                Some((i, Step::Expect(expected))) => {
                    let n = buf.len().min(expected.len());
                    if buf[..n] != expected[..n] {
                        panic!(
                            "client wrote something else than the script expects\n  expected:\n{}\n  written:\n{}",
                            describe(expected),
                            describe(buf)
                        );
                    }
                    expected.drain(..n);
                    if expected.is_empty() {
                        self.script.remove(i);
                        if let Some(w) = self.reader.take() {
                            w.wake();
                        }
                    }
                    self.written.extend_from_slice(&buf[..n]);
                    Poll::Ready(Ok(n))
                }
                other => panic!(
                    "client wrote although the script expects {:?}\n  written:\n{}",
                    other.map(|(_, s)| s),
                    describe(buf)
                ),
            }
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), MockError> {
        poll_fn(|cx| {
            if self.take_yield(cx) {
                return Poll::Pending;
            }
            self.flushes += 1;
            Poll::Ready(Ok(()))
        })
        .await
    }
}
