//! The WebSocket transport (feature `ws`) against a scripted server: what a
//! real broker does not send. Each test is named after the statement of
//! RFC 6455 or MQTT 3.1.1 §6 it checks; every bad input must end in a
//! typed error (no panic, no hang: `drive` fails a call that never ends).
#![cfg(feature = "ws")]
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(stream)` marks where the mock is handed back for inspection"
)]

mod mock_support;

use embedded_io_async::{Read, Write};
use mock_support::*;
use umqtt::mock::{MockError, MockTransport, Step};
use umqtt::ws::{self, FrameError, HandshakeError, RngCore, WsOptions, WsStream};
use umqtt::{Client, QoS, SubscribeReturnCode};

/// A deterministic RNG: the handshake nonce is the bytes 0 to 15, the
/// masking keys an LCG sequence (so tests can predict every frame).
#[derive(Clone)]
struct TestRng(u32);

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0
    }
    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
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

const SEED: u32 = 7;
/// `Sec-WebSocket-Key` for the nonce 0..16, and its accept value
/// (base64 of SHA-1 of key + GUID, computed independently).
const KEY: &str = "AAECAwQFBgcICQoLDA0ODw==";
const ACCEPT: &str = "Bz3qJYTGdOe8gUSpLosEdiLKDrk=";

type Stream<'a> = WsStream<'a, &'a mut MockTransport, TestRng>;
type WsResult<T> = Result<T, ws::Error<MockError>>;

fn request(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn response(headers: &str) -> Vec<u8> {
    format!("HTTP/1.1 101 Switching Protocols\r\n{headers}\r\n").into_bytes()
}

fn good_headers() -> String {
    format!(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n"
    )
}

/// A server frame (unmasked) with first byte `b0` and the minimal length form.
fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![b0];
    match payload.len() {
        n @ 0..126 => frame.push(n as u8),
        n @ 126..=0xffff => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

fn binary(payload: &[u8]) -> Vec<u8> {
    server_frame(0x82, payload)
}

/// The masking keys the stream will use, in order.
struct Masks(TestRng);

impl Masks {
    fn new() -> Self {
        Self(TestRng(SEED))
    }

    /// The next client frame: FIN, `opcode`, masked `payload`.
    fn frame(&mut self, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = self.0.next_u32().to_le_bytes();
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n @ 0..126 => frame.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        frame
    }
}

/// A mock that takes the standard handshake for `ws://broker/mqtt`.
fn handshaken() -> MockTransport {
    MockTransport::new().expect(&request("broker", "/mqtt", "")).send(&response(&good_headers()))
}

fn open<'a>(mock: &'a mut MockTransport, tx: &'a mut [u8]) -> WsResult<Stream<'a>> {
    drive(ws::connect(mock, tx, &WsOptions::new("broker", "/mqtt"), TestRng(SEED)))
}

/// The handshake answered with `response`: its error.
fn handshake_error(response: &[u8]) -> WsResult<()> {
    let mut mock = MockTransport::new().expect(&request("broker", "/mqtt", "")).send(response);
    let mut tx = [0u8; 512];
    open(&mut mock, &mut tx).map(drop)
}

/// Reads until `n` bytes came or the read fails.
fn read_n(stream: &mut Stream<'_>, n: usize) -> WsResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while out.len() < n {
        let want = (n - out.len()).min(buf.len());
        match drive(stream.read(&mut buf[..want]))? {
            0 => break,
            got => out.extend_from_slice(&buf[..got]),
        }
    }
    Ok(out)
}

/// What reading a connected stream gives when the server sends `bytes`.
fn read_after(bytes: &[u8], n: usize) -> WsResult<Vec<u8>> {
    let mut mock = handshaken().send(bytes);
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx)?;
    read_n(&mut stream, n)
}

#[test]
fn mqtt_6_0_0_3_the_upgrade_request_offers_mqtt_with_key_version_host_path_and_extra_headers() {
    let extra = "Authorization: Bearer abc\r\nX-Tenant: t1\r\n";
    let mut mock = MockTransport::new()
        .expect(&request("broker.example:8083", "/mqtt?x=1", extra))
        .send(&response(&good_headers()));
    let mut tx = [0u8; 512];
    let headers = [("Authorization", "Bearer abc"), ("X-Tenant", "t1")];
    let options = WsOptions::new("broker.example:8083", "/mqtt?x=1").headers(&headers);
    let stream = drive(ws::connect(&mut mock, &mut tx, &options, TestRng(SEED))).unwrap();
    drop(stream);
    mock.assert_done();
}

#[test]
fn rfc6455_4_1_header_names_and_values_are_matched_case_insensitively() {
    let headers = format!(
        "upgrade: WebSocket\r\nCONNECTION: keep-alive, upgrade\r\nsec-websocket-accept:{ACCEPT}\r\n\
         Sec-Websocket-Protocol:  mqtt \r\nServer: test\r\n"
    );
    assert_eq!(handshake_error(&response(&headers)), Ok(()));
}

#[test]
fn rfc6455_4_1_a_status_other_than_101_fails_with_the_status() {
    for code in [400u16, 401, 404, 200] {
        let response = format!("HTTP/1.1 {code} Nope\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            handshake_error(response.as_bytes()),
            Err(ws::Error::Handshake(HandshakeError::Status(code)))
        );
    }
}

#[test]
fn rfc6455_4_1_a_wrong_or_missing_accept_fails() {
    let wrong = good_headers().replace(ACCEPT, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let missing = good_headers().replace(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"), "");
    for headers in [wrong, missing] {
        assert_eq!(
            handshake_error(&response(&headers)),
            Err(ws::Error::Handshake(HandshakeError::AcceptMismatch))
        );
    }
}

#[test]
fn mqtt_6_0_0_4_a_server_that_does_not_select_mqtt_fails() {
    let missing = good_headers().replace("Sec-WebSocket-Protocol: mqtt\r\n", "");
    assert_eq!(
        handshake_error(&response(&missing)),
        Err(ws::Error::Handshake(HandshakeError::SubprotocolMissing))
    );
    let other = good_headers().replace("Protocol: mqtt", "Protocol: mqttv3.1");
    assert_eq!(
        handshake_error(&response(&other)),
        Err(ws::Error::Handshake(HandshakeError::SubprotocolMismatch))
    );
}

#[test]
fn rfc6455_4_1_no_upgrade_or_connection_header_fails() {
    for remove in ["Upgrade: websocket\r\n", "Connection: Upgrade\r\n"] {
        let headers = good_headers().replace(remove, "");
        assert_eq!(
            handshake_error(&response(&headers)),
            Err(ws::Error::Handshake(HandshakeError::NotUpgraded))
        );
    }
}

#[test]
fn rfc6455_4_1_an_extension_not_requested_fails() {
    let headers = good_headers() + "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    assert_eq!(
        handshake_error(&response(&headers)),
        Err(ws::Error::Handshake(HandshakeError::UnrequestedExtension))
    );
}

#[test]
fn handshake_a_response_that_is_not_http_fails_as_malformed() {
    for response in
        [&b"SSH-2.0-OpenSSH\r\n\r\n"[..], b"HTTP/1.1 1O1 x\r\n\r\n", b"\xff\xfe\r\n\r\n"]
    {
        assert_eq!(
            handshake_error(response),
            Err(ws::Error::Handshake(HandshakeError::MalformedResponse))
        );
    }
    let no_colon = good_headers() + "garbage line\r\n";
    assert_eq!(
        handshake_error(&response(&no_colon)),
        Err(ws::Error::Handshake(HandshakeError::MalformedResponse))
    );
}

#[test]
fn handshake_the_server_closing_before_the_blank_line_fails() {
    let mut mock = MockTransport::new()
        .expect(&request("broker", "/mqtt", ""))
        .send(b"HTTP/1.1 101 Switching Protocols\r\nUpg")
        .step(Step::Eof);
    let mut tx = [0u8; 512];
    assert_eq!(
        open(&mut mock, &mut tx).map(drop),
        Err(ws::Error::Handshake(HandshakeError::ConnectionClosed))
    );
}

#[test]
fn handshake_a_response_head_larger_than_the_buffer_fails() {
    let big = good_headers() + &format!("X-Padding: {}\r\n", "p".repeat(600));
    let mut mock =
        MockTransport::new().expect(&request("broker", "/mqtt", "")).send(&response(&big));
    let mut tx = [0u8; 512];
    assert_eq!(
        open(&mut mock, &mut tx).map(drop),
        Err(ws::Error::Handshake(HandshakeError::BufferTooSmall { needed: 513 }))
    );
}

#[test]
fn handshake_a_request_larger_than_the_buffer_fails_before_writing() {
    let mut mock = MockTransport::new();
    let mut tx = [0u8; 100];
    let needed = request("broker", "/mqtt", "").len();
    assert_eq!(
        open(&mut mock, &mut tx).map(drop),
        Err(ws::Error::Handshake(HandshakeError::BufferTooSmall { needed }))
    );
    assert!(mock.written().is_empty());
}

/// A transport whose writes take no byte (an embedded-io contract breach
/// `write_all` would panic on).
struct TakesNothing;

impl embedded_io_async::ErrorType for TakesNothing {
    type Error = MockError;
}

impl Read for TakesNothing {
    async fn read(&mut self, _: &mut [u8]) -> Result<usize, MockError> {
        Ok(0)
    }
}

impl Write for TakesNothing {
    async fn write(&mut self, _: &[u8]) -> Result<usize, MockError> {
        Ok(0)
    }

    async fn flush(&mut self) -> Result<(), MockError> {
        Ok(())
    }
}

#[test]
fn handshake_a_transport_that_takes_no_byte_fails_with_write_zero_not_a_panic() {
    let mut tx = [0u8; 512];
    let options = WsOptions::new("broker", "/mqtt");
    let result = drive(ws::connect(TakesNothing, &mut tx, &options, TestRng(SEED))).map(drop);
    assert_eq!(result, Err(ws::Error::WriteZero));
}

#[test]
fn handshake_cr_lf_in_host_path_or_header_is_refused_before_writing() {
    let injected = [("X-A", "1\r\nX-Injected: 2")];
    let bad_name = [("X A", "1")];
    let options = [
        WsOptions::new("broker\r\nX: y", "/mqtt"),
        WsOptions::new("broker", "/mqtt HTTP/1.0\r\n"),
        WsOptions::new("broker", "mqtt"),
        WsOptions::new("broker", "/mqtt").headers(&injected),
        WsOptions::new("broker", "/mqtt").headers(&bad_name),
    ];
    for options in options {
        let mut mock = MockTransport::new();
        let mut tx = [0u8; 512];
        let result = drive(ws::connect(&mut mock, &mut tx, &options, TestRng(SEED))).map(drop);
        assert_eq!(result, Err(ws::Error::Handshake(HandshakeError::InvalidRequest)));
        assert!(mock.written().is_empty());
    }
}

#[test]
fn rfc6455_4_1_the_handshake_reads_no_byte_past_the_response_head() {
    // The head and a first frame arrive in one segment.
    let mut mock = MockTransport::new()
        .expect(&request("broker", "/mqtt", ""))
        .send(&[response(&good_headers()), binary(b"\x20\x02\x00\x00")].concat());
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(read_n(&mut stream, 4).unwrap(), b"\x20\x02\x00\x00");
}

#[test]
fn rfc6455_5_1_client_frames_are_masked_binary_frames_each_with_a_fresh_key() {
    let mut masks = Masks::new();
    let (first, second) =
        (masks.frame(0x2, b"\x10\x0cconnect-bytes"), masks.frame(0x2, b"\xc0\x00"));
    assert_ne!(first[2..6], second[2..6], "a fresh masking key per frame");
    let mut mock = handshaken().expect(&first).expect(&second);
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(drive(stream.write(b"\x10\x0cconnect-bytes")).unwrap(), 15);
    drive(stream.flush()).unwrap();
    drive(stream.write_all(b"\xc0\x00")).unwrap();
    drive(stream.flush()).unwrap();
    drop(stream);
    mock.assert_done();
}

#[test]
fn rfc6455_5_2_a_write_larger_than_the_frame_buffer_goes_out_in_several_frames() {
    let payload: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let mut masks = Masks::new();
    // 200 bytes of buffer: 8 + 192 bytes, then 6 + 108.
    let frames = [masks.frame(0x2, &payload[..192]), masks.frame(0x2, &payload[192..])].concat();
    let mut mock = handshaken().expect(&frames);
    let mut tx = [0u8; 200];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(drive(stream.write(&payload)).unwrap(), 192);
    drive(stream.write_all(&payload[192..])).unwrap();
    drive(stream.flush()).unwrap();
    drop(stream);
    mock.assert_done();
}

#[test]
fn rfc6455_5_1_a_masked_server_frame_fails() {
    let masked = [0x82, 0x82, 1, 2, 3, 4, 0x21, 0x02];
    assert_eq!(read_after(&masked, 2), Err(ws::Error::Frame(FrameError::MaskedFrame)));
}

#[test]
fn mqtt_6_0_0_1_a_text_frame_fails() {
    assert_eq!(
        read_after(&server_frame(0x81, b"hi"), 2),
        Err(ws::Error::Frame(FrameError::TextFrame))
    );
}

#[test]
fn rfc6455_5_2_reserved_bits_fail() {
    for rsv in [0x40, 0x20, 0x10] {
        assert_eq!(
            read_after(&server_frame(0x82 | rsv, b"\xd0\x00"), 2),
            Err(ws::Error::Frame(FrameError::ReservedBits))
        );
    }
}

#[test]
fn rfc6455_5_2_reserved_opcodes_fail() {
    for opcode in (0x3..=0x7).chain(0xb..=0xf) {
        assert_eq!(
            read_after(&server_frame(0x80 | opcode, b""), 1),
            Err(ws::Error::Frame(FrameError::ReservedOpcode(opcode)))
        );
    }
}

#[test]
fn rfc6455_5_5_a_control_frame_over_125_bytes_fails() {
    for opcode in [0x8, 0x9, 0xa] {
        let frame = server_frame(0x80 | opcode, &[0; 126]);
        assert_eq!(read_after(&frame, 1), Err(ws::Error::Frame(FrameError::ControlTooLong)));
    }
}

#[test]
fn rfc6455_5_5_a_fragmented_control_frame_fails() {
    for opcode in [0x8, 0x9, 0xa] {
        let frame = server_frame(opcode, b"x");
        assert_eq!(read_after(&frame, 1), Err(ws::Error::Frame(FrameError::FragmentedControl)));
    }
}

#[test]
fn rfc6455_5_2_payload_lengths_at_the_edges_of_the_7_16_and_64_bit_forms() {
    for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let frame = binary(&payload);
        let header = match len {
            0..126 => 2,
            126..=65_535 => 4,
            _ => 10,
        };
        assert_eq!(frame.len(), header + len);
        // Followed by a marker frame so an empty frame is seen through.
        let got = read_after(&[frame, binary(b"!")].concat(), len + 1).unwrap();
        assert_eq!(got.len(), len + 1, "length {len}");
        assert_eq!(&got[..len], &payload[..], "length {len}");
    }
}

#[test]
fn rfc6455_5_2_a_length_not_in_its_minimal_form_fails() {
    let short_in_16 = [&[0x82, 126, 0, 125][..], &[0; 125]].concat();
    assert_eq!(read_after(&short_in_16, 1), Err(ws::Error::Frame(FrameError::NonMinimalLength)));
    let short_in_64 = [&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff][..], &[0; 16]].concat();
    assert_eq!(read_after(&short_in_64, 1), Err(ws::Error::Frame(FrameError::NonMinimalLength)));
}

#[test]
fn rfc6455_5_2_a_64_bit_length_with_the_top_bit_set_fails() {
    let huge = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(read_after(&huge, 1), Err(ws::Error::Frame(FrameError::LengthTooLarge)));
}

#[test]
fn rfc6455_5_2_a_frame_far_larger_than_any_buffer_is_streamed_through() {
    // 2^40 bytes announced: the stream hands out what comes, never
    // buffering the frame; the first 100 bytes arrive intact.
    let announced = [0x82, 127, 0, 0, 0x01, 0, 0, 0, 0, 0];
    let got = read_after(&[&announced[..], &[7; 100]].concat(), 100).unwrap();
    assert_eq!(got, vec![7; 100]);
}

#[test]
fn rfc6455_5_4_continuation_without_a_message_and_a_new_message_before_fin_fail() {
    assert_eq!(
        read_after(&server_frame(0x80, b"x"), 1),
        Err(ws::Error::Frame(FrameError::UnexpectedContinuation))
    );
    let interleaved = [server_frame(0x02, b"a"), server_frame(0x82, b"b")].concat();
    assert_eq!(read_after(&interleaved, 2), Err(ws::Error::Frame(FrameError::UnfinishedMessage)));
}

#[test]
fn rfc6455_5_4_a_fragmented_message_is_read_whole_with_control_frames_between() {
    let mut masks = Masks::new();
    let pong = masks.frame(0xa, b"p");
    let fragments = [
        server_frame(0x02, b"ab"),
        server_frame(0x89, b"p"),
        server_frame(0x00, b""),
        server_frame(0x8a, b"unsolicited"),
        server_frame(0x80, b"cd"),
    ]
    .concat();
    let mut mock = handshaken().send(&fragments).expect(&pong);
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(read_n(&mut stream, 4).unwrap(), b"abcd");
    drop(stream);
    mock.assert_done();
}

#[test]
fn rfc6455_5_5_2_a_ping_is_answered_with_a_pong_with_its_payload() {
    let mut masks = Masks::new();
    let payload = [0x5a; 125];
    let pong = masks.frame(0xa, &payload);
    let mut mock =
        handshaken().send(&server_frame(0x89, &payload)).expect(&pong).send(&binary(b"\xd0\x00"));
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(read_n(&mut stream, 2).unwrap(), b"\xd0\x00");
    drop(stream);
    mock.assert_done();
    // Flushed while only reading, so that a TLS stream sends it too.
    assert_eq!(mock.write_calls().1, 2, "the request and the pong are flushed");
}

#[test]
fn rfc6455_5_5_1_a_close_is_answered_echoing_its_status_and_reported() {
    let mut masks = Masks::new();
    let reply = masks.frame(0x8, &1001u16.to_be_bytes());
    let close = server_frame(0x88, &[&1001u16.to_be_bytes()[..], b"going away"].concat());
    let mut mock = handshaken().send(&close).expect(&reply);
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(read_n(&mut stream, 1), Err(ws::Error::Closed { code: Some(1001) }));
    // Later reads and writes keep failing the same way.
    assert_eq!(read_n(&mut stream, 1), Err(ws::Error::Closed { code: Some(1001) }));
    assert_eq!(drive(stream.write(b"x")), Err(ws::Error::Closed { code: Some(1001) }));
    drop(stream);
    mock.assert_done();
}

#[test]
fn rfc6455_5_5_1_a_close_without_status_is_answered_without_one() {
    let mut masks = Masks::new();
    let reply = masks.frame(0x8, b"");
    let mut mock = handshaken().send(&server_frame(0x88, b"")).expect(&reply);
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(read_n(&mut stream, 1), Err(ws::Error::Closed { code: None }));
    drop(stream);
    mock.assert_done();
}

#[test]
fn rfc6455_5_5_1_a_close_with_a_one_byte_payload_fails() {
    assert_eq!(
        read_after(&server_frame(0x88, b"\x03"), 1),
        Err(ws::Error::Frame(FrameError::BadClosePayload))
    );
}

#[test]
fn rfc6455_7_1_2_close_sends_the_status_and_waits_for_the_servers_close() {
    let mut masks = Masks::new();
    let ours = masks.frame(0x8, &1000u16.to_be_bytes());
    let mut mock = handshaken()
        .expect(&ours)
        .send(&binary(b"late data is discarded"))
        .send(&server_frame(0x88, &1000u16.to_be_bytes()));
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(drive(stream.close(1000)), Ok(Some(1000)));
    assert_eq!(drive(stream.write(b"x")), Err(ws::Error::Closed { code: Some(1000) }));
    drop(stream);
    mock.assert_done();
}

#[test]
fn rfc6455_7_1_1_end_of_stream_between_frames_is_end_of_stream_and_inside_one_is_truncated() {
    let mut mock = handshaken().send(&binary(b"ab")).step(Step::Eof);
    let mut tx = [0u8; 512];
    let mut stream = open(&mut mock, &mut tx).unwrap();
    assert_eq!(read_n(&mut stream, 3).unwrap(), b"ab");
    drop(stream);
    for cut in [1, 3, 5] {
        let frame = binary(b"abcd");
        let mut mock = handshaken().send(&frame[..cut]).step(Step::Eof);
        let mut tx = [0u8; 512];
        let mut stream = open(&mut mock, &mut tx).unwrap();
        let got = read_n(&mut stream, 4);
        assert_eq!(got, Err(ws::Error::Truncated), "cut after {cut} bytes");
    }
}

/// The MQTT conversation used through the client: CONNECT/CONNACK,
/// SUBSCRIBE/SUBACK, two PUBLISH in one frame, PINGREQ/PINGRESP; the
/// server's bytes split into frames by `frames`.
fn client_conversation(frames: impl Fn(&[u8]) -> Vec<u8>, max_read: Option<usize>) {
    let mut masks = Masks::new();
    let o = opts();
    let mut mock = handshaken()
        .expect(&masks.frame(0x2, &connect(&o)))
        .send(&frames(&connack(false)))
        .expect(&masks.frame(0x2, &subscribe(1, "a/#", QoS::AtLeastOnce)))
        .send(&frames(&cat(&[
            &suback(1, &[SubscribeReturnCode::Success(QoS::AtLeastOnce)]),
            &publish("a/1", b"one", None, false),
            &publish("a/2", b"two", Some(5), false),
        ])))
        .expect(&masks.frame(0x2, &puback(5)))
        .expect(&masks.frame(0x2, &PINGREQ))
        .send(&frames(&PINGRESP));
    if let Some(n) = max_read {
        mock = mock.max_read(n);
    }
    let mut ws_tx = [0u8; 512];
    let stream = open(&mut mock, &mut ws_tx).unwrap();
    let (got, handler) = recorder();
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(stream, &mut rx, &mut tx, handler);
    drive(client.connect(&o)).unwrap();
    assert_eq!(drive(client.subscribe("a/#", QoS::AtLeastOnce)).unwrap(), QoS::AtLeastOnce);
    drive(client.wait_msg()).unwrap();
    drive(client.wait_msg()).unwrap();
    drive(client.ping()).unwrap();
    drop(client);
    assert_eq!(
        got.messages(),
        vec![("a/1".to_owned(), b"one".to_vec()), ("a/2".to_owned(), b"two".to_vec())]
    );
    mock.assert_done();
}

#[test]
fn mqtt_6_0_0_2_several_packets_in_one_frame_reach_the_client() {
    client_conversation(binary, None);
}

#[test]
fn mqtt_6_0_0_2_packets_split_over_frames_and_fragments_are_reassembled() {
    // Every byte its own frame, alternately a message of its own and a
    // fragment of a message of two frames.
    client_conversation(
        |bytes| {
            bytes
                .chunks(2)
                .flat_map(|pair| match pair {
                    [a, b] => [server_frame(0x02, &[*a]), server_frame(0x80, &[*b])].concat(),
                    _ => binary(pair),
                })
                .collect()
        },
        None,
    );
}

#[test]
fn one_byte_at_a_time_the_client_conversation_still_completes() {
    client_conversation(binary, Some(1));
}

#[test]
fn mqtt_6_0_a_packet_larger_than_the_receive_buffer_in_one_frame_is_drained_by_the_client() {
    let mut masks = Masks::new();
    let o = opts();
    let big = publish("big", &[9; 1000], Some(3), false);
    let mut mock = handshaken()
        .expect(&masks.frame(0x2, &connect(&o)))
        .send(&binary(&connack(false)))
        .send(&binary(&cat(&[&big, &publish("small", b"s", None, false)])))
        .expect(&masks.frame(0x2, &puback(3)));
    let mut ws_tx = [0u8; 512];
    let stream = open(&mut mock, &mut ws_tx).unwrap();
    let (got, handler) = recorder();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let mut client = Client::new(stream, &mut rx, &mut tx, handler);
    drive(client.connect(&o)).unwrap();
    let first = drive(client.wait_msg());
    assert!(matches!(first, Err(umqtt::Error::PacketTooLarge(_))), "{first:?}");
    drive(client.wait_msg()).unwrap();
    drop(client);
    assert_eq!(got.topics(), vec!["small".to_owned()]);
    mock.assert_done();
}

#[test]
fn mqtt_6_0_a_close_in_the_middle_of_a_packet_fails_the_client_with_the_status() {
    let mut masks = Masks::new();
    let o = opts();
    let publish = publish("t", b"payload", None, false);
    let mut mock = handshaken()
        .expect(&masks.frame(0x2, &connect(&o)))
        .send(&binary(&connack(false)))
        .send(&binary(&publish[..4]))
        .send(&server_frame(0x88, &1011u16.to_be_bytes()))
        .expect(&masks.frame(0x8, &1011u16.to_be_bytes()));
    let mut ws_tx = [0u8; 512];
    let stream = open(&mut mock, &mut ws_tx).unwrap();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let mut client = Client::new(stream, &mut rx, &mut tx, silent_handler);
    drive(client.connect(&o)).unwrap();
    assert_eq!(
        drive(client.wait_msg()),
        Err(umqtt::Error::Transport(ws::Error::Closed { code: Some(1011) }))
    );
    drop(client);
    mock.assert_done();
}

fn silent_handler(_: &umqtt::Publish<'_>) {}

/// The server's bytes for the cancellation sweep: a ping, a message in
/// two fragments, one in a 16-bit-length frame, a close; and the payload
/// they carry.
fn sweep_script() -> (Vec<u8>, Vec<u8>) {
    let long: Vec<u8> = (0..200u8).collect();
    let server = [
        server_frame(0x89, b"ping!"),
        server_frame(0x02, b"frag-"),
        server_frame(0x80, b"mented"),
        binary(&long),
        server_frame(0x88, &1000u16.to_be_bytes()),
    ]
    .concat();
    (server, [&b"frag-mented"[..], &long].concat())
}

#[test]
fn cancel_safety_reads_and_writes_dropped_at_any_await_lose_no_byte_and_tear_no_frame() {
    // The mock yields once before every read, write and flush and reads
    // one byte at a time: polling a call k times and dropping it cancels
    // it at its k-th await point.
    let (server, payload) = sweep_script();
    let packet: Vec<u8> = (0..150u8).collect();
    let mut masks = Masks::new();
    let data_frame = masks.frame(0x2, &packet);
    let replies = [masks.frame(0xa, b"ping!"), masks.frame(0x8, &1000u16.to_be_bytes())].concat();
    for k in 1..10 {
        let mut mock = handshaken()
            .expect(&data_frame)
            .send(&server)
            .expect(&replies)
            .yield_every_call()
            .max_read(1);
        let mut tx = [0u8; 512];
        let mut stream = open(&mut mock, &mut tx).unwrap();
        let mut sent = 0;
        while sent < packet.len() {
            if let Some(n) = poll_then_drop(stream.write(&packet[sent..]), k) {
                sent += n.unwrap();
            }
        }
        while poll_then_drop(stream.flush(), k).is_none() {}
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        loop {
            match poll_then_drop(stream.read(&mut buf), k) {
                None => {}
                Some(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Some(Err(ws::Error::Closed { code: Some(1000) })) => break,
                Some(other) => panic!("k = {k}: {other:?}"),
            }
        }
        assert_eq!(got, payload, "k = {k}");
        drop(stream);
        mock.assert_done();
    }
}
