//! The WebSocket layer (feature `ws`) against a fuzzed server: arbitrary
//! bytes for the handshake response and the frames after it, served in
//! arbitrary pieces with transient `Pending`s, with the client running a
//! fuzz-chosen sequence of calls over the stream (`wait_msg`,
//! `check_msg`, `publish` QoS 0/1, `subscribe`, `ping`, `disconnect`),
//! then the WebSocket `close`.
//!
//! Checked: no panic; no hang (each call is polled a bounded number of
//! times; the transport is never pending for good and the bytes end with
//! end of stream); everything written after the request is whole client
//! frames (FIN, masked, binary, pong or close, control payloads of at
//! most 125 bytes), nothing but a close after a close, and the binary
//! payloads together are whole MQTT packets a client may send, CONNECT
//! first.
//!
//! Input layout: 1 configuration byte (bit 7: a valid 101 response comes
//! first, to go deeper; bits 0-5: the frame buffer size), a count and
//! that many call bytes, a count and that many read/write sizes (0 = one
//! transient `Pending`), then the bytes the "server" sends.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use embassy_time::MockDriver;
use libfuzzer_sys::fuzz_target;
use umqtt::packet::{self, Packet};
use umqtt::ws::{self, RngCore, WsOptions};
use umqtt::{Client, ConnectOptions, Publish, QoS};

const POLLS: usize = 100_000;
const MAX_PENDING_IN_A_ROW: u8 = 3;

/// The response to the request made with [`FixedRng`]'s key.
const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: Bz3qJYTGdOe8gUSpLosEdiLKDrk=\r\n\
Sec-WebSocket-Protocol: mqtt\r\n\r\n";

/// The handshake nonce is 0..16 (so [`RESPONSE`] matches); masks count up.
struct FixedRng(u32);

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9);
        self.0
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = i as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The transport never fails (end of stream is how the server leaves).
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

/// Serves the server bytes and accepts every write, both in fuzz-chosen
/// pieces.
struct FuzzTransport {
    inbound: Vec<u8>,
    at: usize,
    sizes: Vec<u8>,
    next_size: usize,
    pending_in_a_row: u8,
    written: Vec<u8>,
}

impl FuzzTransport {
    fn size(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        if self.sizes.is_empty() || self.pending_in_a_row >= MAX_PENDING_IN_A_ROW {
            self.pending_in_a_row = 0;
            return Some(usize::MAX);
        }
        let s = self.sizes[self.next_size % self.sizes.len()];
        self.next_size += 1;
        if s == 0 {
            self.pending_in_a_row += 1;
            cx.waker().wake_by_ref();
            return None;
        }
        self.pending_in_a_row = 0;
        Some(usize::from(s))
    }
}

impl embedded_io_async::ErrorType for FuzzTransport {
    type Error = Never;
}

impl embedded_io_async::Read for FuzzTransport {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Never> {
        std::future::poll_fn(|cx| {
            let Some(size) = self.size(cx) else { return Poll::Pending };
            let rest = &self.inbound[self.at..];
            let n = rest.len().min(buf.len()).min(size);
            buf[..n].copy_from_slice(&rest[..n]);
            self.at += n;
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl embedded_io_async::Write for FuzzTransport {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Never> {
        std::future::poll_fn(|cx| {
            let Some(size) = self.size(cx) else { return Poll::Pending };
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

fn drive<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..POLLS {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("call still pending after {POLLS} polls with a ready transport");
}

/// The frames written after the request: whole, valid client frames;
/// returns the binary payloads, unmasked and joined.
fn check_frames(mut wire: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut closed = false;
    while !wire.is_empty() {
        let [b0, b1, rest @ ..] = wire else { panic!("torn frame header: {wire:02x?}") };
        assert_eq!(b0 & 0xf0, 0x80, "client frame without FIN or with RSV bits: {b0:#x}");
        assert_eq!(b1 & 0x80, 0x80, "unmasked client frame");
        let (len, rest) = match b1 & 0x7f {
            126 => (usize::from(u16::from_be_bytes([rest[0], rest[1]])), &rest[2..]),
            127 => (u64::from_be_bytes(rest[..8].try_into().unwrap()) as usize, &rest[8..]),
            n => (usize::from(n), rest),
        };
        let (key, rest) = rest.split_at(4);
        assert!(rest.len() >= len, "torn frame: {len} bytes announced, {} written", rest.len());
        let payload: Vec<u8> = rest[..len].iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k).collect();
        assert!(!closed, "frame after our close frame");
        match b0 & 0x0f {
            0x2 => data.extend_from_slice(&payload),
            0x8 => {
                assert!(len == 0 || len == 2, "close reply of {len} bytes");
                closed = true;
            }
            0xa => assert!(len <= 125),
            op => panic!("client sent opcode {op:#x}"),
        }
        wire = &rest[len..];
    }
    data
}

/// The MQTT bytes: whole packets a client sends, CONNECT first.
fn check_packets(mut bytes: &[u8]) {
    let mut first = true;
    while !bytes.is_empty() {
        let d = packet::decode(bytes).unwrap_or_else(|e| panic!("invalid or torn packet ({e})"));
        assert_eq!(first, matches!(d.packet, Packet::Connect(_)), "{:?}", d.packet);
        assert!(
            matches!(
                d.packet,
                Packet::Connect(_)
                    | Packet::Publish(_)
                    | Packet::PubAck(_)
                    | Packet::PubRec(_)
                    | Packet::PubRel(_)
                    | Packet::PubComp(_)
                    | Packet::Subscribe(_)
                    | Packet::PingReq
                    | Packet::Disconnect
            ),
            "a client must not send {:?}",
            d.packet
        );
        first = false;
        bytes = &bytes[d.len..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, rest)) = data.split_first() else { return };
    let Some((&n_calls, rest)) = rest.split_first() else { return };
    let (calls, rest) = rest.split_at(usize::from(n_calls).min(rest.len()));
    let Some((&n_sizes, rest)) = rest.split_first() else { return };
    let (sizes, stream) = rest.split_at(usize::from(n_sizes).min(rest.len()));

    MockDriver::get().reset();
    let mut inbound = Vec::new();
    if config & 0x80 != 0 {
        inbound.extend_from_slice(RESPONSE);
    }
    inbound.extend_from_slice(stream);
    let mut transport = FuzzTransport {
        inbound,
        at: 0,
        sizes: sizes.to_vec(),
        next_size: 0,
        pending_in_a_row: 0,
        written: Vec::new(),
    };
    // 200 to 704 bytes: the request always fits.
    let mut ws_tx = vec![0u8; 200 + usize::from(config & 0x3f) * 8];
    let options = WsOptions::new("broker", "/mqtt");
    let request_len = {
        let Ok(mut stream) = drive(ws::connect(&mut transport, &mut ws_tx, &options, FixedRng(0)))
        else {
            return;
        };
        let request_len = stream.transport_mut().written.len();
        let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
        let mut client = Client::new(&mut stream, &mut rx, &mut tx, |m: &Publish<'_>| {
            assert!(m.qos != QoS::ExactlyOnce);
        });
        let opts = ConnectOptions::new("fuzz").keep_alive_secs(0);
        if drive(client.connect(&opts)).is_ok() {
            for &call in calls {
                let body = &[0x5a; 300][..usize::from(call >> 4) * 19];
                let result = match call & 0x07 {
                    0 => drive(client.wait_msg()),
                    1 => drive(client.check_msg()).map(drop),
                    2 => drive(client.publish("a/b", body, QoS::AtMostOnce, false)).map_err(|e| e.error),
                    3 => drive(client.publish("a/b", body, QoS::AtLeastOnce, false)).map_err(|e| e.error),
                    4 => drive(client.subscribe("a/#", QoS::AtLeastOnce)).map(drop),
                    5 => drive(client.ping()),
                    6 => drive(client.disconnect()),
                    _ => drive(client.flush()),
                };
                if result.is_err_and(|e| e.is_fatal()) {
                    break;
                }
            }
        }
        drop(client);
        let _ = drive(stream.close(1000));
        request_len
    };
    let frames = transport.written.get(request_len..).unwrap_or_default();
    check_packets(&check_frames(frames));
});
