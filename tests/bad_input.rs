//! A hostile or broken broker: every class of invalid or unexpected
//! server-to-client packet, played by a scripted fake broker
//! (`umqtt::mock::MockTransport`: CONNECT expected, CONNACK sent, then the
//! bad bytes).
//!
//! For each case the client must give a typed error (`Error::Protocol`,
//! `Error::ConnectionClosed`, ...) or a documented tolerance (unknown
//! acknowledgments are ignored), reach `State::Failed` where the
//! specification requires closing the connection (section 4.8), never
//! panic, never hang (every call is polled a bounded number of times), and
//! work again after `reconnect` to a fresh broker (CONNECT, then a QoS 1
//! publish acknowledged).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use umqtt::mock::{MockError, MockTransport, Step, packet_bytes};
use umqtt::packet::{
    ConnAck, ConnectReturnCode, List, Malformed, Packet, PacketId, PacketType, SubAck, Subscribe,
    SubscribeReturnCode, SubscribeTopic, Unsubscribe,
};
use umqtt::{Client, ConnectOptions, Error, ProtocolError, Publish, QoS, State};

/// When the bad bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Instead of CONNACK, during `connect`.
    BeforeConnAck,
    /// After CONNACK, during `wait_msg`.
    Connected,
    /// After a SUBSCRIBE of one filter (packet id 1), during `subscribe`.
    Subscribing,
}

/// What the client must do with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// This error, and the connection closed (`State::Failed`).
    Fatal(Error<MockError>),
    /// Ignored: a valid QoS 0 PUBLISH that follows is delivered.
    Tolerated,
    /// `subscribe` ignores it and returns the real SUBACK's QoS 1.
    SubscribeOk,
    /// A non-fatal error, the connection kept (`State::Connected`).
    NonFatal(Error<MockError>),
}

struct Case {
    name: &'static str,
    phase: Phase,
    bytes: Vec<u8>,
    eof: bool,
    outcome: Outcome,
}

fn opts() -> ConnectOptions<'static> {
    ConnectOptions::new("bad-input").keep_alive_secs(0)
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn connack() -> Vec<u8> {
    packet_bytes(&Packet::ConnAck(ConnAck {
        session_present: false,
        code: ConnectReturnCode::Accepted,
    }))
}

fn subscribe_packet() -> Vec<u8> {
    let topics = [SubscribeTopic { filter: "t", qos: QoS::AtLeastOnce }];
    packet_bytes(&Packet::Subscribe(Subscribe { packet_id: id(1), topics: List::Items(&topics) }))
}

/// A PUBLISH with raw `flags`, raw topic bytes and an optional raw id.
fn publish_raw(flags: u8, topic: &[u8], packet_id: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic);
    if let Some(i) = packet_id {
        body.extend_from_slice(&i.to_be_bytes());
    }
    body.extend_from_slice(payload);
    let mut out = vec![0x30 | flags, body.len() as u8];
    assert!(body.len() < 128);
    out.extend_from_slice(&body);
    out
}

/// One valid example of each packet type a server must not send or that
/// has fixed flags, with its type.
fn valid_packets() -> Vec<(PacketType, Vec<u8>)> {
    let topics = [SubscribeTopic { filter: "t", qos: QoS::AtLeastOnce }];
    let codes = [SubscribeReturnCode::Success(QoS::AtLeastOnce)];
    let filters = ["t"];
    vec![
        (
            PacketType::Connect,
            packet_bytes(&Packet::Connect(ConnectOptions::new("x").to_connect())),
        ),
        (PacketType::ConnAck, connack()),
        (PacketType::PubAck, packet_bytes(&Packet::PubAck(id(1)))),
        (PacketType::PubRec, packet_bytes(&Packet::PubRec(id(1)))),
        (PacketType::PubRel, packet_bytes(&Packet::PubRel(id(1)))),
        (PacketType::PubComp, packet_bytes(&Packet::PubComp(id(1)))),
        (
            PacketType::Subscribe,
            packet_bytes(&Packet::Subscribe(Subscribe {
                packet_id: id(1),
                topics: List::Items(&topics),
            })),
        ),
        (
            PacketType::SubAck,
            packet_bytes(&Packet::SubAck(SubAck {
                packet_id: id(1),
                return_codes: List::Items(&codes),
            })),
        ),
        (
            PacketType::Unsubscribe,
            packet_bytes(&Packet::Unsubscribe(Unsubscribe {
                packet_id: id(1),
                filters: List::Items(&filters),
            })),
        ),
        (PacketType::UnsubAck, packet_bytes(&Packet::UnsubAck(id(1)))),
        (PacketType::PingReq, packet_bytes(&Packet::PingReq)),
        (PacketType::PingResp, packet_bytes(&Packet::PingResp)),
        (PacketType::Disconnect, packet_bytes(&Packet::Disconnect)),
    ]
}

fn malformed(m: Malformed) -> Outcome {
    Outcome::Fatal(Error::Protocol(ProtocolError::Malformed(m)))
}

fn unexpected(t: PacketType) -> Outcome {
    Outcome::Fatal(Error::Protocol(ProtocolError::UnexpectedPacket(t)))
}

const CLOSED: Outcome = Outcome::Fatal(Error::ConnectionClosed);

fn case(name: &'static str, phase: Phase, bytes: &[u8], eof: bool, outcome: Outcome) -> Case {
    Case { name, phase, bytes: bytes.to_vec(), eof, outcome }
}

fn cases() -> Vec<Case> {
    use Malformed as M;
    use Phase::{BeforeConnAck as Pre, Connected as Conn, Subscribing as Sub};
    let mut v = vec![
        // Remaining length (section 2.2.3).
        case(
            "remaining_length_five_bytes_publish",
            Conn,
            &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            false,
            malformed(M::RemainingLengthTooLong),
        ),
        case(
            "remaining_length_five_bytes_pingresp",
            Conn,
            &[0xd0, 0x80, 0x80, 0x80, 0x80, 0x00],
            false,
            malformed(M::RemainingLengthTooLong),
        ),
        case(
            "remaining_length_non_minimal_zero",
            Conn,
            &[0xd0, 0x80, 0x00],
            false,
            malformed(M::RemainingLengthNotMinimal),
        ),
        case(
            "remaining_length_non_minimal_publish",
            Conn,
            &[0x30, 0x85, 0x00, 0, 1, b'a', b'x', b'y'],
            false,
            malformed(M::RemainingLengthNotMinimal),
        ),
        case(
            "remaining_length_larger_than_data_then_eof",
            Conn,
            &[0x30, 0x0a, 0, 1, b'a'],
            true,
            CLOSED,
        ),
        case(
            "remaining_length_exceeds_fields_puback",
            Conn,
            &[0x40, 0x03, 0, 1, 0],
            false,
            malformed(M::TrailingBytes),
        ),
        case(
            "remaining_length_short_puback",
            Conn,
            &[0x40, 0x01, 0],
            false,
            malformed(M::Truncated),
        ),
        // The QoS 2 acknowledgments have a fixed remaining length of 2.
        case(
            "remaining_length_exceeds_fields_pubrec",
            Conn,
            &[0x50, 0x03, 0, 1, 0],
            false,
            malformed(M::TrailingBytes),
        ),
        case(
            "remaining_length_short_pubrec",
            Conn,
            &[0x50, 0x01, 0],
            false,
            malformed(M::Truncated),
        ),
        case(
            "remaining_length_exceeds_fields_pubrel",
            Conn,
            &[0x62, 0x03, 0, 1, 0],
            false,
            malformed(M::TrailingBytes),
        ),
        case(
            "remaining_length_short_pubrel",
            Conn,
            &[0x62, 0x01, 0],
            false,
            malformed(M::Truncated),
        ),
        case(
            "remaining_length_exceeds_fields_pubcomp",
            Conn,
            &[0x70, 0x03, 0, 1, 0],
            false,
            malformed(M::TrailingBytes),
        ),
        case(
            "remaining_length_short_pubcomp",
            Conn,
            &[0x70, 0x01, 0],
            false,
            malformed(M::Truncated),
        ),
        // An acknowledgment announcing 256 MB is malformed, not drained.
        case(
            "remaining_length_maximum_puback",
            Conn,
            &[0x40, 0xff, 0xff, 0xff, 0x7f],
            false,
            malformed(M::TrailingBytes),
        ),
        case(
            "remaining_length_maximum_pubrel",
            Conn,
            &[0x62, 0xff, 0xff, 0xff, 0x7f],
            false,
            malformed(M::TrailingBytes),
        ),
        // A PUBCOMP for an identifier never published: ignored, like an
        // unknown PUBACK.
        case(
            "unsolicited_pubcomp_unknown_id",
            Conn,
            &packet_bytes(&Packet::PubComp(id(7))),
            false,
            Outcome::Tolerated,
        ),
        // A PUBREC for an identifier never published: the broker answers
        // a PUBLISH that was never sent.
        case(
            "unsolicited_pubrec_unknown_id",
            Conn,
            &packet_bytes(&Packet::PubRec(id(7))),
            false,
            unexpected(PacketType::PubRec),
        ),
        case(
            "remaining_length_pingresp_with_body",
            Conn,
            &[0xd0, 0x01, 0],
            false,
            malformed(M::TrailingBytes),
        ),
        case(
            "publish_topic_length_past_remaining_length",
            Conn,
            &[0x30, 0x03, 0, 5, b'a'],
            false,
            malformed(M::Truncated),
        ),
        case(
            "suback_packet_id_only_then_nothing",
            Conn,
            &[0x90, 0x02, 0, 1],
            false,
            malformed(M::InvalidSubAckReturnCode),
        ),
        case(
            "remaining_length_maximum_oversize_then_eof",
            Conn,
            &[0x30, 0xff, 0xff, 0xff, 0x7f, 0, 3, b'a', b'/', b'b'],
            true,
            // An oversize packet is reported once it is drained whole; the
            // stream ends first, so the connection is simply closed.
            CLOSED,
        ),
        // PUBLISH fixed-header flags.
        case(
            "mqtt_3_3_1_4_publish_qos_3",
            Conn,
            &publish_raw(0b0110, b"a", Some(1), b"x"),
            false,
            malformed(M::InvalidQoS),
        ),
        case(
            "mqtt_3_3_1_4_publish_qos_3_dup_retain",
            Conn,
            &publish_raw(0b1111, b"a", Some(1), b"x"),
            false,
            malformed(M::InvalidQoS),
        ),
        case(
            "mqtt_3_3_1_2_publish_dup_on_qos_0",
            Conn,
            &publish_raw(0b1000, b"a", None, b"x"),
            false,
            malformed(M::DupWithQoS0),
        ),
        case(
            "mqtt_2_3_1_1_publish_qos_1_packet_id_0",
            Conn,
            &publish_raw(0b0010, b"a", Some(0), b"x"),
            false,
            malformed(M::ZeroPacketId),
        ),
        case(
            "mqtt_3_8_4_6_publish_qos_2",
            Conn,
            &publish_raw(0b0100, b"a", Some(1), b"x"),
            false,
            Outcome::Fatal(Error::Protocol(ProtocolError::QoS2Publish)),
        ),
        // PUBLISH topic names.
        case(
            "mqtt_1_5_3_1_topic_invalid_utf8_byte",
            Conn,
            &publish_raw(0, b"a/\xff", None, b"x"),
            false,
            malformed(M::InvalidUtf8),
        ),
        case(
            "mqtt_1_5_3_1_topic_overlong_utf8_nul",
            Conn,
            &publish_raw(0, b"a\xc0\x80", None, b"x"),
            false,
            malformed(M::InvalidUtf8),
        ),
        case(
            "mqtt_1_5_3_1_topic_utf16_surrogate",
            Conn,
            &publish_raw(0, b"\xed\xa0\x80", None, b"x"),
            false,
            malformed(M::InvalidUtf8),
        ),
        case(
            "mqtt_1_5_3_2_topic_with_u0000",
            Conn,
            &publish_raw(0b0010, b"a\0b", Some(1), b"x"),
            false,
            malformed(M::NullCharacter),
        ),
        case(
            "mqtt_3_3_2_2_topic_with_plus",
            Conn,
            &publish_raw(0, b"a/+/b", None, b"x"),
            false,
            malformed(M::WildcardInTopicName),
        ),
        case(
            "mqtt_3_3_2_2_topic_with_hash",
            Conn,
            &publish_raw(0b0010, b"a/#", Some(1), b"x"),
            false,
            malformed(M::WildcardInTopicName),
        ),
        case(
            "mqtt_4_7_3_1_topic_empty",
            Conn,
            &publish_raw(0, b"", None, b"x"),
            false,
            malformed(M::EmptyTopic),
        ),
        // Packets a server must not send, or not now.
        case(
            "mqtt_3_2_0_1_second_connack",
            Conn,
            &connack(),
            false,
            unexpected(PacketType::ConnAck),
        ),
        case(
            "reserved_packet_type_0",
            Conn,
            &[0x00, 0x00],
            false,
            malformed(M::ReservedPacketType),
        ),
        case(
            "reserved_packet_type_15",
            Conn,
            &[0xf0, 0x00],
            false,
            malformed(M::ReservedPacketType),
        ),
        // Truncated packets followed by end of stream.
        case("eof_immediately", Conn, &[], true, CLOSED),
        case("truncated_first_byte_only_then_eof", Conn, &[0x30], true, CLOSED),
        case("truncated_remaining_length_then_eof", Conn, &[0x30, 0x80], true, CLOSED),
        case("truncated_publish_body_then_eof", Conn, &[0x32, 0x07, 0, 1, b'a'], true, CLOSED),
        case("truncated_puback_then_eof", Conn, &[0x40, 0x02, 0], true, CLOSED),
        case("truncated_suback_then_eof", Conn, &[0x90, 0x03, 0, 1], true, CLOSED),
        // Unsolicited acknowledgments: ignored (documented tolerance).
        case(
            "unsolicited_puback_unknown_id",
            Conn,
            &packet_bytes(&Packet::PubAck(id(7))),
            false,
            Outcome::Tolerated,
        ),
        case(
            "unsolicited_unsuback_unknown_id",
            Conn,
            &packet_bytes(&Packet::UnsubAck(id(7))),
            false,
            Outcome::Tolerated,
        ),
        case(
            "unsolicited_suback_unknown_id",
            Conn,
            &[0x90, 0x03, 0, 7, 0x01],
            false,
            Outcome::Tolerated,
        ),
        case("unsolicited_pingresp", Conn, &[0xd0, 0x00], false, Outcome::Tolerated),
        case(
            "unsolicited_suback_seventeen_codes",
            Conn,
            &[0x90, 19, 0, 7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            false,
            Outcome::Fatal(Error::Protocol(ProtocolError::SubAckCountMismatch)),
        ),
        // SUBACK answering our SUBSCRIBE of one filter.
        case(
            "mqtt_3_8_4_5_suback_more_codes_than_filters",
            Sub,
            &[0x90, 0x04, 0, 1, 1, 1],
            false,
            Outcome::Fatal(Error::Protocol(ProtocolError::SubAckCountMismatch)),
        ),
        case(
            "mqtt_3_8_4_5_suback_seventeen_codes",
            Sub,
            &[0x90, 19, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            false,
            Outcome::Fatal(Error::Protocol(ProtocolError::SubAckCountMismatch)),
        ),
        case(
            "mqtt_3_9_3_2_suback_return_code_3",
            Sub,
            &[0x90, 0x03, 0, 1, 0x03],
            false,
            malformed(M::InvalidSubAckReturnCode),
        ),
        case(
            "mqtt_3_9_3_2_suback_return_code_0x81",
            Sub,
            &[0x90, 0x03, 0, 1, 0x81],
            false,
            malformed(M::InvalidSubAckReturnCode),
        ),
        case(
            "suback_no_return_codes",
            Sub,
            &[0x90, 0x02, 0, 1],
            false,
            malformed(M::InvalidSubAckReturnCode),
        ),
        case("suback_packet_id_0", Sub, &[0x90, 0x03, 0, 0, 1], false, malformed(M::ZeroPacketId)),
        case(
            "suback_unknown_id_then_right_one",
            Sub,
            &[0x90, 0x03, 0, 9, 0x00, 0x90, 0x03, 0, 1, 0x01],
            false,
            Outcome::SubscribeOk,
        ),
        case(
            "suback_failure_0x80",
            Sub,
            &[0x90, 0x03, 0, 1, 0x80],
            false,
            Outcome::NonFatal(Error::SubscribeRefused),
        ),
        // CONNACK and anything before it.
        case(
            "connack_reserved_flag_bit_1",
            Pre,
            &[0x20, 0x02, 0x02, 0x00],
            false,
            malformed(M::ConnAckReservedFlags),
        ),
        case(
            "connack_reserved_flag_bit_7",
            Pre,
            &[0x20, 0x02, 0x80, 0x00],
            false,
            malformed(M::ConnAckReservedFlags),
        ),
        case(
            "connack_return_code_6",
            Pre,
            &[0x20, 0x02, 0x00, 0x06],
            false,
            malformed(M::InvalidConnectReturnCode),
        ),
        case(
            "connack_return_code_255",
            Pre,
            &[0x20, 0x02, 0x00, 0xff],
            false,
            malformed(M::InvalidConnectReturnCode),
        ),
        case(
            "mqtt_3_2_2_4_connack_session_present_with_refusal",
            Pre,
            &[0x20, 0x02, 0x01, 0x05],
            false,
            malformed(M::SessionPresentWithRefusal),
        ),
        case(
            "connack_fixed_header_flags",
            Pre,
            &[0x21, 0x02, 0x00, 0x00],
            false,
            malformed(M::InvalidFlags),
        ),
        case("connack_short", Pre, &[0x20, 0x01, 0x00], false, malformed(M::Truncated)),
        case(
            "connack_long",
            Pre,
            &[0x20, 0x03, 0x00, 0x00, 0x00],
            false,
            malformed(M::TrailingBytes),
        ),
        case(
            "connack_refused_not_authorized",
            Pre,
            &[0x20, 0x02, 0x00, 0x05],
            false,
            Outcome::Fatal(Error::Refused(ConnectReturnCode::NotAuthorized)),
        ),
        case("connack_truncated_then_eof", Pre, &[0x20, 0x02, 0x00], true, CLOSED),
        case("eof_before_connack", Pre, &[], true, CLOSED),
        case(
            "mqtt_3_2_0_1_publish_before_connack",
            Pre,
            &publish_raw(0, b"a", None, b"x"),
            false,
            unexpected(PacketType::Publish),
        ),
        case(
            "mqtt_3_2_0_1_puback_before_connack",
            Pre,
            &packet_bytes(&Packet::PubAck(id(1))),
            false,
            unexpected(PacketType::PubAck),
        ),
        case(
            "mqtt_3_2_0_1_suback_before_connack",
            Pre,
            &[0x90, 0x03, 0, 1, 0x01],
            false,
            unexpected(PacketType::SubAck),
        ),
        case(
            "mqtt_3_2_0_1_unsuback_before_connack",
            Pre,
            &packet_bytes(&Packet::UnsubAck(id(1))),
            false,
            unexpected(PacketType::UnsubAck),
        ),
        case(
            "mqtt_3_2_0_1_pingresp_before_connack",
            Pre,
            &[0xd0, 0x00],
            false,
            unexpected(PacketType::PingResp),
        ),
        case(
            "reserved_packet_type_before_connack",
            Pre,
            &[0xf0, 0x00],
            false,
            malformed(M::ReservedPacketType),
        ),
        case(
            "remaining_length_five_bytes_before_connack",
            Pre,
            &[0x20, 0x80, 0x80, 0x80, 0x80, 0x01],
            false,
            malformed(M::RemainingLengthTooLong),
        ),
    ];
    // Every packet type a server must not send to a client (section 3),
    // and a PUBREC for a message the client never sent. (A PUBREL for an
    // unknown identifier is answered with PUBCOMP: tests/qos2_mock.rs.)
    for (t, bytes) in valid_packets() {
        let name = match t {
            PacketType::Connect => "server_sends_connect",
            PacketType::Subscribe => "server_sends_subscribe",
            PacketType::Unsubscribe => "server_sends_unsubscribe",
            PacketType::PingReq => "server_sends_pingreq",
            PacketType::Disconnect => "server_sends_disconnect",
            PacketType::PubRec => "server_sends_pubrec",
            _ => continue,
        };
        v.push(case(name, Conn, &bytes, false, unexpected(t)));
    }
    // Reserved flag bits on each type with fixed flags [MQTT-2.2.2-2]: the
    // lowest and the highest flag bit flipped.
    for (t, bytes) in valid_packets() {
        for (bit, suffix) in [(0b0001u8, "bit_0"), (0b1000, "bit_3")] {
            let mut bad = bytes.clone();
            bad[0] ^= bit;
            let name: &'static str =
                format!("mqtt_2_2_2_2_{t:?}_flag_{suffix}").to_lowercase().leak();
            v.push(case(name, Conn, &bad, false, malformed(M::InvalidFlags)));
        }
    }
    v
}

/// Polls `fut` with a no-op waker at most `limit` times. `None`: it is
/// still pending, which for a client over a mock whose script is played
/// out means it waits for input that will never come (a hang).
fn drive<F: Future>(fut: F, limit: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..limit {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    None
}

const POLLS: usize = 10_000;

fn run_case(c: &Case) -> Result<(), String> {
    let good = publish_raw(0, b"ok", None, b"fine");
    let mut first = MockTransport::new().expect_packet(&Packet::Connect(opts().to_connect()));
    if c.phase != Phase::BeforeConnAck {
        first = first.send(&connack());
    }
    if c.phase == Phase::Subscribing {
        first = first.expect(&subscribe_packet());
    }
    if !c.bytes.is_empty() {
        first = first.send(&c.bytes);
    }
    match c.outcome {
        Outcome::Tolerated => first = first.send(&good),
        Outcome::SubscribeOk => {}
        _ if c.eof => first = first.step(Step::Eof),
        _ => {}
    }
    // After the failure: a fresh broker on a new transport. Packet id 1 is
    // taken by the SUBSCRIBE in the subscribing phase.
    let publish_id = if c.phase == Phase::Subscribing { 2 } else { 1 };
    let publish = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "after",
        packet_id: Some(id(publish_id)),
        payload: b"again",
    };
    let mut second = MockTransport::new()
        .expect_packet(&Packet::Connect(opts().to_connect()))
        .send(&connack())
        .expect_packet(&Packet::Publish(publish))
        .send_packet(&Packet::PubAck(id(publish_id)));

    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut delivered = Vec::new();
    let mut client = Client::new(&mut first, &mut rx, &mut tx, |m: &Publish<'_>| {
        delivered.push(m.topic.to_owned())
    });
    let hang = |what: &str| format!("{what} still pending after {POLLS} polls (hang)");

    let connected = drive(client.connect(&opts()), POLLS).ok_or_else(|| hang("connect"))?;
    let result: Result<(), Error<MockError>> = match c.phase {
        Phase::BeforeConnAck => connected.map(|_| ()),
        Phase::Connected => {
            connected.map_err(|e| format!("connect failed: {e:?}"))?;
            drive(client.wait_msg(), POLLS).ok_or_else(|| hang("wait_msg"))?
        }
        Phase::Subscribing => {
            connected.map_err(|e| format!("connect failed: {e:?}"))?;
            match drive(client.subscribe("t", QoS::AtLeastOnce), POLLS)
                .ok_or_else(|| hang("subscribe"))?
            {
                Ok(granted) if c.outcome == Outcome::SubscribeOk && granted == QoS::AtLeastOnce => {
                    Ok(())
                }
                Ok(granted) => return Err(format!("subscribe granted {granted:?} unexpectedly")),
                Err(e) => Err(e),
            }
        }
    };
    let state = client.state();
    match c.outcome {
        Outcome::Fatal(expected) => {
            if result != Err(expected) {
                return Err(format!("expected Err({expected:?}), got {result:?}"));
            }
            if state != State::Failed {
                return Err(format!("expected state Failed, got {state:?}"));
            }
            // A failed client refuses work instead of touching the stream.
            if drive(client.publish("x", b"", QoS::AtMostOnce, false), POLLS)
                != Some(Err(Error::NotConnected.into()))
            {
                return Err("publish on a failed client did not return NotConnected".into());
            }
        }
        Outcome::NonFatal(expected) => {
            if result != Err(expected) || state != State::Connected {
                return Err(format!(
                    "expected Err({expected:?}) and Connected, got {result:?} and {state:?}"
                ));
            }
        }
        Outcome::Tolerated | Outcome::SubscribeOk => {
            if result.is_err() || state != State::Connected {
                return Err(format!("expected Ok and Connected, got {result:?} and {state:?}"));
            }
        }
    }

    // Usable again after reconnect to a fresh broker.
    let again =
        drive(client.reconnect(&mut second, &opts()), POLLS).ok_or_else(|| hang("reconnect"))?;
    again.map_err(|e| format!("reconnect failed: {e:?}"))?;
    let published = drive(client.publish("after", b"again", QoS::AtLeastOnce, false), POLLS)
        .ok_or_else(|| hang("publish after reconnect"))?;
    published.map_err(|e| format!("publish after reconnect failed: {e:?}"))?;
    if client.state() != State::Connected || client.in_flight() != 0 {
        return Err(format!(
            "after reconnect: state {:?}, in flight {}",
            client.state(),
            client.in_flight()
        ));
    }
    second.assert_done();
    let expected_delivered: &[&str] = if c.outcome == Outcome::Tolerated { &["ok"] } else { &[] };
    if delivered != expected_delivered {
        return Err(format!("delivered {delivered:?}, expected {expected_delivered:?}"));
    }
    Ok(())
}

#[test]
fn every_invalid_server_packet_is_a_typed_error_or_documented_tolerance() {
    let cases = cases();
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
    }
    let mut failures = Vec::new();
    for c in &cases {
        match std::panic::catch_unwind(AssertUnwindSafe(|| run_case(c))) {
            Ok(Ok(())) => println!("ok    {}", c.name),
            Ok(Err(why)) => failures.push(format!("{}: {why}", c.name)),
            Err(_) => failures.push(format!("{}: PANICKED", c.name)),
        }
    }
    let by = |p: Phase| cases.iter().filter(|c| c.phase == p).count();
    println!(
        "bad input: {} cases ({} before CONNACK, {} connected, {} subscribing), {} passed, {} failed",
        cases.len(),
        by(Phase::BeforeConnAck),
        by(Phase::Connected),
        by(Phase::Subscribing),
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}
