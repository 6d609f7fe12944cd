//! One test per normative statement `[MQTT-x.y.z-n]` of MQTT 3.1.1
//! (OASIS mqtt-v3.1.1-os) that a codec can check, named after it, checking
//! the decoder and the encoder wherever both apply. `tests/STATEMENTS.md`
//! maps every statement of the specification to its test or says why it is
//! not the codec's to check.
//!
//! The byte strings are written out by hand from the specification's
//! figures, not produced by the encoder under test.

use umqtt::packet::{
    self, ConnAck, Connect, ConnectReturnCode, DecodeError, EncodeError, LastWill, List, Malformed,
    Packet, PacketId, ProtocolLevel, Publish, QoS, SubAck, Subscribe, SubscribeReturnCode,
    SubscribeTopic, Unsubscribe,
};
use umqtt::topic::{TopicFilter, TopicName};

// ---------------------------------------------------------------- helpers

/// A packet: first byte, remaining length, body.
fn raw(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        v.push(b);
        if n == 0 {
            break;
        }
    }
    v.extend_from_slice(body);
    v
}

/// A length-prefixed string or binary field.
fn s(bytes: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

/// A CONNECT with protocol `name`/`level`, connect `flags`, keep alive 60
/// and the payload fields `payload`.
fn connect_raw_with(name: &[u8], level: u8, flags: u8, payload: &[&[u8]]) -> Vec<u8> {
    let mut body = s(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    for field in payload {
        body.extend_from_slice(field);
    }
    raw(0x10, &body)
}

fn connect_raw(flags: u8, payload: &[&[u8]]) -> Vec<u8> {
    connect_raw_with(b"MQTT", 4, flags, payload)
}

/// The packet `bytes` decodes to; it must use every byte.
#[track_caller]
fn decodes(bytes: &[u8]) -> Packet<'_> {
    match packet::decode(bytes) {
        Ok(d) => {
            assert_eq!(d.len, bytes.len(), "{bytes:02x?}: length");
            d.packet
        }
        Err(e) => panic!("{bytes:02x?}: expected a packet, got {e:?}"),
    }
}

/// Why `bytes` can never be a valid packet.
#[track_caller]
fn malformed(bytes: &[u8]) -> Malformed {
    match packet::decode(bytes) {
        Err(DecodeError::Malformed(m)) => m,
        other => panic!("{bytes:02x?}: expected Malformed, got {other:?}"),
    }
}

/// The bytes of `p`; also checks `encoded_len`, and that they decode back
/// to `p`.
#[track_caller]
fn encodes(p: &Packet<'_>) -> Vec<u8> {
    let len = packet::encoded_len(p).unwrap_or_else(|e| panic!("{p:?}: {e:?}"));
    let mut buf = vec![0u8; len];
    assert_eq!(packet::encode(p, &mut buf), Ok(len));
    assert_eq!(&decodes(&buf), p, "round trip");
    buf
}

/// Why the encoder refuses `p`; it must write nothing.
#[track_caller]
fn invalid(p: &Packet<'_>) -> Malformed {
    let Err(EncodeError::Invalid(m)) = packet::encoded_len(p) else {
        panic!("{p:?}: encoded_len accepted it");
    };
    let mut buf = vec![0xaa; 70_000];
    assert_eq!(packet::encode(p, &mut buf), Err(EncodeError::Invalid(m)));
    assert!(buf.iter().all(|&b| b == 0xaa), "{p:?}: bytes written");
    m
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn publish<'a>(topic: &'a str, qos: QoS, packet_id: Option<u16>, payload: &'a [u8]) -> Packet<'a> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        packet_id: packet_id.map(id),
        payload,
    })
}

fn connect(client_id: &str) -> Connect<'_> {
    Connect {
        protocol: ProtocolLevel::V311,
        clean_session: true,
        keep_alive: 60,
        client_id,
        will: None,
        username: None,
        password: None,
    }
}

fn subscribe<'a>(topics: &'a [SubscribeTopic<'a>]) -> Packet<'a> {
    Packet::Subscribe(Subscribe { packet_id: id(1), topics: List::Items(topics) })
}

fn unsubscribe<'a>(filters: &'a [&'a str]) -> Packet<'a> {
    Packet::Unsubscribe(Unsubscribe { packet_id: id(1), filters: List::Items(filters) })
}

/// A QoS 0 PUBLISH whose topic field holds `topic` (raw bytes).
fn publish_raw(topic: &[u8]) -> Vec<u8> {
    raw(0x30, &s(topic))
}

/// A SUBSCRIBE (id 1) of one raw filter with requested QoS byte `qos`.
fn subscribe_raw(filter: &[u8], qos: u8) -> Vec<u8> {
    let mut body = vec![0, 1];
    body.extend_from_slice(&s(filter));
    body.push(qos);
    raw(0x82, &body)
}

/// An UNSUBSCRIBE (id 1) of one raw filter.
fn unsubscribe_raw(filter: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 1];
    body.extend_from_slice(&s(filter));
    raw(0xa2, &body)
}

/// Ill-formed UTF-8: a lone continuation byte, a truncated sequence, an
/// overlong encoding of '/', an encoded surrogate U+D800, a code point
/// above U+10FFFF.
const ILL_FORMED: &[&[u8]] =
    &[b"a\x80b", b"a\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"];

// ------------------------------------------------- 1.5.3 UTF-8 strings

/// `[MQTT-1.5.3-1]` Strings must be well-formed UTF-8 and must not encode
/// U+D800..U+DFFF; a receiver closes the connection on ill-formed UTF-8.
/// Every string field of every packet is checked by the decoder. The
/// encoder takes `&str`, which Rust guarantees to be well-formed.
#[test]
fn mqtt_1_5_3_1_ill_formed_utf8_is_malformed() {
    for bad in ILL_FORMED {
        assert_eq!(malformed(&publish_raw(bad)), Malformed::InvalidUtf8, "topic {bad:02x?}");
        assert_eq!(malformed(&subscribe_raw(bad, 0)), Malformed::InvalidUtf8);
        assert_eq!(malformed(&unsubscribe_raw(bad)), Malformed::InvalidUtf8);
        // client identifier, will topic, user name
        assert_eq!(malformed(&connect_raw(0x02, &[&s(bad)])), Malformed::InvalidUtf8);
        assert_eq!(
            malformed(&connect_raw(0x06, &[&s(b"c"), &s(bad), &s(b"m")])),
            Malformed::InvalidUtf8
        );
        assert_eq!(malformed(&connect_raw(0x82, &[&s(b"c"), &s(bad)])), Malformed::InvalidUtf8);
    }
    // Well-formed multi-byte UTF-8 (2, 3 and 4 bytes) is accepted.
    let topic = "caf\u{e9}/\u{20ac}/\u{1f600}";
    assert_eq!(decodes(&publish_raw(topic.as_bytes())), publish(topic, QoS::AtMostOnce, None, b""));
    encodes(&publish(topic, QoS::AtMostOnce, None, b""));
}

/// `[MQTT-1.5.3-2]` A string must not contain U+0000; a receiver closes
/// the connection when one does. Checked in both directions.
#[test]
fn mqtt_1_5_3_2_null_character_is_malformed() {
    assert_eq!(malformed(&publish_raw(b"a\0b")), Malformed::NullCharacter);
    assert_eq!(malformed(&subscribe_raw(b"a/\0", 1)), Malformed::NullCharacter);
    assert_eq!(malformed(&unsubscribe_raw(b"\0")), Malformed::NullCharacter);
    assert_eq!(malformed(&connect_raw(0x02, &[&s(b"id\0")])), Malformed::NullCharacter);
    assert_eq!(
        malformed(&connect_raw(0x06, &[&s(b"c"), &s(b"w\0"), &s(b"m")])),
        Malformed::NullCharacter
    );
    assert_eq!(malformed(&connect_raw(0x82, &[&s(b"c"), &s(b"u\0")])), Malformed::NullCharacter);

    assert_eq!(invalid(&publish("a\0b", QoS::AtMostOnce, None, b"")), Malformed::NullCharacter);
    assert_eq!(invalid(&Packet::Connect(connect("id\0"))), Malformed::NullCharacter);
    let c = Connect { username: Some("u\0"), ..connect("c") };
    assert_eq!(invalid(&Packet::Connect(c)), Malformed::NullCharacter);
    let topics = [SubscribeTopic { filter: "a/\0", qos: QoS::AtMostOnce }];
    assert_eq!(invalid(&subscribe(&topics)), Malformed::NullCharacter);
    assert_eq!(invalid(&unsubscribe(&["\0"])), Malformed::NullCharacter);

    // Binary fields (payload, will message, password) may hold zero bytes.
    encodes(&publish("t", QoS::AtMostOnce, None, b"\0\0"));
    let will = LastWill { topic: "w", payload: b"\0", qos: QoS::AtMostOnce, retain: false };
    encodes(&Packet::Connect(Connect {
        will: Some(will),
        username: Some("u"),
        password: Some(b"\0"),
        ..connect("c")
    }));
}

/// `[MQTT-1.5.3-3]` 0xEF 0xBB 0xBF is U+FEFF wherever it appears and must
/// not be skipped or stripped by a receiver.
#[test]
fn mqtt_1_5_3_3_byte_order_mark_is_kept() {
    let bytes = publish_raw(b"\xef\xbb\xbfa/\xef\xbb\xbf");
    let Packet::Publish(p) = decodes(&bytes) else { panic!() };
    assert_eq!(p.topic, "\u{feff}a/\u{feff}");
    assert_eq!(encodes(&Packet::Publish(p)), bytes);
    let bytes = connect_raw(0x02, &[&s(b"\xef\xbb\xbf")]);
    let Packet::Connect(c) = decodes(&bytes) else { panic!() };
    assert_eq!(c.client_id, "\u{feff}");
}

// --------------------------------------------------- 2.2.2 fixed header flags

/// Every type but PUBLISH with the flags table 2.2 requires.
const REQUIRED_FLAGS: &[(u8, u8)] = &[
    (1, 0),
    (2, 0),
    (4, 0),
    (5, 0),
    (6, 2),
    (7, 0),
    (8, 2),
    (9, 0),
    (10, 2),
    (11, 0),
    (12, 0),
    (13, 0),
    (14, 0),
];

/// `[MQTT-2.2.2-1]` Reserved flag bits must be set to the values of table
/// 2.2. The decoder rejects every other nibble for every type; the encoder
/// writes exactly the listed values.
#[test]
fn mqtt_2_2_2_1_reserved_flags_have_listed_values() {
    for &(packet_type, required) in REQUIRED_FLAGS {
        for flags in 0..16u8 {
            let first = packet_type << 4 | flags;
            let bytes = [first, 0];
            let result = packet::decode(&bytes);
            if flags == required {
                assert_ne!(result, Err(DecodeError::Malformed(Malformed::InvalidFlags)));
            } else {
                assert_eq!(
                    result,
                    Err(DecodeError::Malformed(Malformed::InvalidFlags)),
                    "{first:#04x}"
                );
            }
        }
    }
    let codes = [SubscribeReturnCode::Success(QoS::AtMostOnce)];
    let topics = [SubscribeTopic { filter: "a", qos: QoS::AtMostOnce }];
    let packets = [
        (Packet::Connect(connect("c")), 0x10),
        (
            Packet::ConnAck(ConnAck { session_present: false, code: ConnectReturnCode::Accepted }),
            0x20,
        ),
        (Packet::PubAck(id(1)), 0x40),
        (Packet::PubRec(id(1)), 0x50),
        (Packet::PubRel(id(1)), 0x62),
        (Packet::PubComp(id(1)), 0x70),
        (subscribe(&topics), 0x82),
        (Packet::SubAck(SubAck { packet_id: id(1), return_codes: List::Items(&codes) }), 0x90),
        (unsubscribe(&["a"]), 0xa2),
        (Packet::UnsubAck(id(1)), 0xb0),
        (Packet::PingReq, 0xc0),
        (Packet::PingResp, 0xd0),
        (Packet::Disconnect, 0xe0),
    ];
    for (p, first) in packets {
        assert_eq!(encodes(&p)[0], first, "{p:?}");
    }
}

/// `[MQTT-2.2.2-2]` A receiver of invalid flags closes the connection:
/// the decoder reports them as malformed (never as incomplete) as soon as
/// the first byte has arrived.
#[test]
fn mqtt_2_2_2_2_invalid_flags_are_malformed_from_the_first_byte() {
    for first in [0x11, 0x28, 0x41, 0x60, 0x80, 0x83, 0x9f, 0xa0, 0xc1, 0xd4, 0xe8] {
        assert_eq!(malformed(&[first]), Malformed::InvalidFlags, "{first:#04x}");
    }
}

// ----------------------------------------------- 2.3.1 packet identifier

/// `[MQTT-2.3.1-1]` SUBSCRIBE, UNSUBSCRIBE and PUBLISH with QoS > 0 carry a
/// non-zero packet identifier. The decoder rejects 0 (also in the
/// acknowledgements, whose identifiers echo these); the encoder's
/// `PacketId` cannot hold 0, and a QoS > 0 PUBLISH without one is refused.
#[test]
fn mqtt_2_3_1_1_packet_id_is_non_zero() {
    assert_eq!(malformed(&raw(0x32, &[0, 1, b't', 0, 0])), Malformed::ZeroPacketId);
    assert_eq!(malformed(&raw(0x34, &[0, 1, b't', 0, 0])), Malformed::ZeroPacketId);
    assert_eq!(malformed(&raw(0x82, &[0, 0, 0, 1, b'a', 0])), Malformed::ZeroPacketId);
    assert_eq!(malformed(&raw(0xa2, &[0, 0, 0, 1, b'a'])), Malformed::ZeroPacketId);
    for first in [0x40, 0x50, 0x62, 0x70, 0xb0] {
        assert_eq!(malformed(&[first, 2, 0, 0]), Malformed::ZeroPacketId);
    }
    assert_eq!(malformed(&raw(0x90, &[0, 0, 0])), Malformed::ZeroPacketId);
    assert_eq!(PacketId::new(0), None);

    assert_eq!(invalid(&publish("t", QoS::AtLeastOnce, None, b"")), Malformed::PacketIdMismatch);
    assert_eq!(invalid(&publish("t", QoS::ExactlyOnce, None, b"")), Malformed::PacketIdMismatch);
    let bytes = encodes(&publish("t", QoS::AtLeastOnce, Some(0x1234), b""));
    assert_eq!(bytes, [0x32, 5, 0, 1, b't', 0x12, 0x34]);
    assert_eq!(
        decodes(&raw(0x34, &[0, 1, b't', 0xff, 0xff])),
        publish("t", QoS::ExactlyOnce, Some(65535), b"")
    );
}

/// `[MQTT-2.3.1-5]` A QoS 0 PUBLISH has no packet identifier: the decoder
/// reads none (the bytes after the topic are payload), the encoder
/// refuses one.
#[test]
fn mqtt_2_3_1_5_qos0_publish_has_no_packet_id() {
    let bytes = raw(0x30, &[0, 1, b't', 0, 7]);
    assert_eq!(decodes(&bytes), publish("t", QoS::AtMostOnce, None, &[0, 7]));
    assert_eq!(invalid(&publish("t", QoS::AtMostOnce, Some(7), b"")), Malformed::PacketIdMismatch);
    assert_eq!(encodes(&publish("t", QoS::AtMostOnce, None, b"x")), [0x30, 4, 0, 1, b't', b'x']);
}

// ------------------------------------------------------------ 3.1 CONNECT

/// `[MQTT-3.1.2-1]` The protocol name is "MQTT" (3.1.1; "MQIsdp" for 3.1):
/// any other name is refused by the decoder, and the encoder writes only
/// these two.
#[test]
fn mqtt_3_1_2_1_protocol_name_is_checked() {
    for name in [&b"MQTX"[..], b"mqtt", b"MQT", b"", b"MQTTT", b"MQIsdP"] {
        assert_eq!(
            malformed(&connect_raw_with(name, 4, 0x02, &[&s(b"c")])),
            Malformed::InvalidProtocolName,
            "{name:?}"
        );
    }
    let v311 = encodes(&Packet::Connect(connect("c")));
    assert_eq!(&v311[2..9], b"\0\x04MQTT\x04");
    let v31 = encodes(&Packet::Connect(Connect { protocol: ProtocolLevel::V31, ..connect("c") }));
    assert_eq!(&v31[2..11], b"\0\x06MQIsdp\x03");
}

/// `[MQTT-3.1.2-2]` A protocol level the server does not support is
/// answered with CONNACK 0x01: the decoder reports it with its own error,
/// distinct from a bad name, so a server can send that CONNACK. Only
/// "MQTT" 4 and "MQIsdp" 3 are supported.
#[test]
fn mqtt_3_1_2_2_unsupported_protocol_level_is_reported() {
    for (name, level) in
        [(&b"MQTT"[..], 3), (b"MQTT", 5), (b"MQTT", 0), (b"MQIsdp", 4), (b"MQIsdp", 255)]
    {
        assert_eq!(
            malformed(&connect_raw_with(name, level, 0x02, &[&s(b"c")])),
            Malformed::UnsupportedProtocolLevel
        );
    }
    let bytes = connect_raw_with(b"MQIsdp", 3, 0x02, &[&s(b"c")]);
    let Packet::Connect(c) = decodes(&bytes) else { panic!() };
    assert_eq!(c.protocol, ProtocolLevel::V31);
}

/// `[MQTT-3.1.2-3]` The reserved bit 0 of the connect flags is zero.
#[test]
fn mqtt_3_1_2_3_connect_reserved_flag_is_zero() {
    assert_eq!(malformed(&connect_raw(0x03, &[&s(b"c")])), Malformed::ConnectReservedFlag);
    assert_eq!(malformed(&connect_raw(0x01, &[&s(b"c")])), Malformed::ConnectReservedFlag);
    let will = LastWill { topic: "w", payload: b"m", qos: QoS::ExactlyOnce, retain: true };
    let c = Connect { will: Some(will), username: Some("u"), password: Some(b"p"), ..connect("c") };
    let bytes = encodes(&Packet::Connect(c));
    assert_eq!(bytes[9], 0b1111_0110, "all flags but the reserved one");
}

/// `[MQTT-3.1.2-9]` With the Will Flag set, Will Topic and Will Message
/// are in the payload: missing ones are malformed, and the encoder writes
/// both.
#[test]
fn mqtt_3_1_2_9_will_flag_means_will_fields_present() {
    assert_eq!(malformed(&connect_raw(0x06, &[&s(b"c")])), Malformed::Truncated);
    assert_eq!(malformed(&connect_raw(0x06, &[&s(b"c"), &s(b"w")])), Malformed::Truncated);
    let bytes = connect_raw(0x06, &[&s(b"c"), &s(b"w/t"), &s(b"bye")]);
    let will = LastWill { topic: "w/t", payload: b"bye", qos: QoS::AtMostOnce, retain: false };
    let expected = Packet::Connect(Connect { will: Some(will), ..connect("c") });
    assert_eq!(decodes(&bytes), expected);
    assert_eq!(encodes(&expected), bytes);
}

/// `[MQTT-3.1.2-11]` With the Will Flag clear, Will QoS and Will Retain
/// are zero and the will fields are absent.
#[test]
fn mqtt_3_1_2_11_no_will_flag_means_no_will_fields() {
    for flags in [0x0a, 0x12, 0x22, 0x2a, 0x32] {
        assert_eq!(malformed(&connect_raw(flags, &[&s(b"c")])), Malformed::WillFlagsWithoutWill);
    }
    // Will fields present without the flag are bytes no field accounts for.
    assert_eq!(
        malformed(&connect_raw(0x02, &[&s(b"c"), &s(b"w"), &s(b"m")])),
        Malformed::TrailingBytes
    );
    let bytes = encodes(&Packet::Connect(connect("c")));
    assert_eq!(bytes[9] & 0b0011_1100, 0);
    assert_eq!(&bytes[12..], &s(b"c")[..], "nothing after the client id");
}

/// `[MQTT-3.1.2-13]` With the Will Flag clear, Will QoS is 0.
#[test]
fn mqtt_3_1_2_13_no_will_flag_means_will_qos_zero() {
    assert_eq!(malformed(&connect_raw(0x0a, &[&s(b"c")])), Malformed::WillFlagsWithoutWill);
    assert_eq!(malformed(&connect_raw(0x12, &[&s(b"c")])), Malformed::WillFlagsWithoutWill);
    assert!(matches!(
        malformed(&connect_raw(0x1a, &[&s(b"c")])),
        Malformed::InvalidQoS | Malformed::WillFlagsWithoutWill
    ));
    assert_eq!(encodes(&Packet::Connect(connect("c")))[9] & 0b0001_1000, 0);
}

/// `[MQTT-3.1.2-14]` Will QoS is 0, 1 or 2, never 3.
#[test]
fn mqtt_3_1_2_14_will_qos_is_not_3() {
    assert_eq!(
        malformed(&connect_raw(0x1e, &[&s(b"c"), &s(b"w"), &s(b"m")])),
        Malformed::InvalidQoS
    );
    for (qos, bits) in [(QoS::AtMostOnce, 0x00), (QoS::AtLeastOnce, 0x08), (QoS::ExactlyOnce, 0x10)]
    {
        let will = LastWill { topic: "w", payload: b"m", qos, retain: false };
        let bytes = encodes(&Packet::Connect(Connect { will: Some(will), ..connect("c") }));
        assert_eq!(bytes[9] & 0b0001_1000, bits);
    }
    assert_eq!(QoS::from_bits(3), Err(Malformed::InvalidQoS));
}

/// `[MQTT-3.1.2-15]` With the Will Flag clear, Will Retain is 0.
#[test]
fn mqtt_3_1_2_15_no_will_flag_means_will_retain_zero() {
    assert_eq!(malformed(&connect_raw(0x22, &[&s(b"c")])), Malformed::WillFlagsWithoutWill);
    assert_eq!(encodes(&Packet::Connect(connect("c")))[9] & 0b0010_0000, 0);
    let will = LastWill { topic: "w", payload: b"m", qos: QoS::AtMostOnce, retain: true };
    let bytes = encodes(&Packet::Connect(Connect { will: Some(will), ..connect("c") }));
    assert_eq!(bytes[9] & 0b0010_0100, 0b0010_0100);
}

/// `[MQTT-3.1.2-18]` With the User Name Flag clear, no user name follows.
#[test]
fn mqtt_3_1_2_18_no_user_name_flag_means_no_user_name() {
    assert_eq!(malformed(&connect_raw(0x02, &[&s(b"c"), &s(b"u")])), Malformed::TrailingBytes);
    let bytes = encodes(&Packet::Connect(connect("c")));
    assert_eq!(bytes[9] & 0x80, 0);
    assert_eq!(bytes.len(), 2 + 10 + 3);
}

/// `[MQTT-3.1.2-19]` With the User Name Flag set, a user name follows.
#[test]
fn mqtt_3_1_2_19_user_name_flag_means_user_name_present() {
    assert_eq!(malformed(&connect_raw(0x82, &[&s(b"c")])), Malformed::Truncated);
    let bytes = connect_raw(0x82, &[&s(b"c"), &s(b"user")]);
    let expected = Packet::Connect(Connect { username: Some("user"), ..connect("c") });
    assert_eq!(decodes(&bytes), expected);
    assert_eq!(encodes(&expected), bytes);
    // An empty user name is still a user name.
    let empty = Packet::Connect(Connect { username: Some(""), ..connect("c") });
    assert_eq!(encodes(&empty), connect_raw(0x82, &[&s(b"c"), &s(b"")]));
}

/// `[MQTT-3.1.2-20]` With the Password Flag clear, no password follows.
#[test]
fn mqtt_3_1_2_20_no_password_flag_means_no_password() {
    assert_eq!(
        malformed(&connect_raw(0x82, &[&s(b"c"), &s(b"u"), &s(b"p")])),
        Malformed::TrailingBytes
    );
    let bytes = encodes(&Packet::Connect(Connect { username: Some("u"), ..connect("c") }));
    assert_eq!(bytes[9] & 0x40, 0);
}

/// `[MQTT-3.1.2-21]` With the Password Flag set, a password follows.
#[test]
fn mqtt_3_1_2_21_password_flag_means_password_present() {
    assert_eq!(malformed(&connect_raw(0xc2, &[&s(b"c"), &s(b"u")])), Malformed::Truncated);
    let bytes = connect_raw(0xc2, &[&s(b"c"), &s(b"u"), &s(b"\x00\xffpw")]);
    let expected = Packet::Connect(Connect {
        username: Some("u"),
        password: Some(b"\x00\xffpw"),
        ..connect("c")
    });
    assert_eq!(decodes(&bytes), expected);
    assert_eq!(encodes(&expected), bytes);
}

/// `[MQTT-3.1.2-22]` With the User Name Flag clear, the Password Flag is
/// clear too (MQTT 3.1.1).
#[test]
fn mqtt_3_1_2_22_password_requires_user_name() {
    assert_eq!(
        malformed(&connect_raw(0x42, &[&s(b"c"), &s(b"p")])),
        Malformed::PasswordWithoutUsername
    );
    let c = Connect { password: Some(b"p"), ..connect("c") };
    assert_eq!(invalid(&Packet::Connect(c)), Malformed::PasswordWithoutUsername);
}

/// `[MQTT-3.1.3-1]` The payload fields appear in the order Client
/// Identifier, Will Topic, Will Message, User Name, Password.
#[test]
fn mqtt_3_1_3_1_payload_field_order() {
    let bytes = connect_raw(0xee, &[&s(b"id"), &s(b"wt"), &s(b"wm"), &s(b"un"), &s(b"pw")]);
    let will = LastWill { topic: "wt", payload: b"wm", qos: QoS::AtLeastOnce, retain: true };
    let expected = Packet::Connect(Connect {
        will: Some(will),
        username: Some("un"),
        password: Some(b"pw"),
        ..connect("id")
    });
    assert_eq!(decodes(&bytes), expected);
    assert_eq!(encodes(&expected), bytes);
}

/// `[MQTT-3.1.3-3]` The Client Identifier is present and first in the
/// payload.
#[test]
fn mqtt_3_1_3_3_client_id_present_and_first() {
    assert_eq!(malformed(&connect_raw(0x02, &[])), Malformed::Truncated);
    assert_eq!(malformed(&connect_raw(0x02, &[&[0, 5, b'a']])), Malformed::Truncated);
    let bytes = encodes(&Packet::Connect(connect("first")));
    assert_eq!(&bytes[12..], &s(b"first")[..]);
}

/// `[MQTT-3.1.3-4]` The Client Identifier is a UTF-8 encoded string.
#[test]
fn mqtt_3_1_3_4_client_id_is_utf8() {
    for bad in ILL_FORMED {
        assert_eq!(malformed(&connect_raw(0x02, &[&s(bad)])), Malformed::InvalidUtf8);
    }
    let bytes = connect_raw(0x02, &[&s("\u{e9}t\u{e9}".as_bytes())]);
    let Packet::Connect(c) = decodes(&bytes) else { panic!() };
    assert_eq!(c.client_id, "\u{e9}t\u{e9}");
}

/// `[MQTT-3.1.3-7]` A client that sends an empty Client Identifier sets
/// CleanSession: the encoder refuses the other case. The decoder accepts
/// it, because the server must answer it with CONNACK 0x02
/// `[MQTT-3.1.3-8]` rather than drop the connection.
#[test]
fn mqtt_3_1_3_7_empty_client_id_requires_clean_session() {
    let c = Connect { clean_session: false, ..connect("") };
    assert_eq!(invalid(&Packet::Connect(c)), Malformed::EmptyClientIdWithSession);
    encodes(&Packet::Connect(connect("")));
    encodes(&Packet::Connect(Connect { clean_session: false, ..connect("c") }));
    let bytes = connect_raw(0x00, &[&s(b"")]);
    let Packet::Connect(c) = decodes(&bytes) else { panic!() };
    assert!(!c.clean_session);
    assert_eq!(c.client_id, "");
}

/// `[MQTT-3.1.3-10]` The Will Topic is a UTF-8 encoded string (and, being
/// the topic name of the will PUBLISH, follows the topic name rules).
#[test]
fn mqtt_3_1_3_10_will_topic_is_utf8() {
    for bad in ILL_FORMED {
        assert_eq!(
            malformed(&connect_raw(0x06, &[&s(b"c"), &s(bad), &s(b"m")])),
            Malformed::InvalidUtf8
        );
    }
    assert_eq!(
        malformed(&connect_raw(0x06, &[&s(b"c"), &s(b"a/#"), &s(b"m")])),
        Malformed::WildcardInTopicName
    );
    assert_eq!(
        malformed(&connect_raw(0x06, &[&s(b"c"), &s(b""), &s(b"m")])),
        Malformed::EmptyTopic
    );
    let will = LastWill { topic: "a/+", payload: b"", qos: QoS::AtMostOnce, retain: false };
    let c = Connect { will: Some(will), ..connect("c") };
    assert_eq!(invalid(&Packet::Connect(c)), Malformed::WildcardInTopicName);
}

/// `[MQTT-3.1.3-11]` The User Name is a UTF-8 encoded string.
#[test]
fn mqtt_3_1_3_11_user_name_is_utf8() {
    for bad in ILL_FORMED {
        assert_eq!(malformed(&connect_raw(0x82, &[&s(b"c"), &s(bad)])), Malformed::InvalidUtf8);
    }
    // The password is binary data: any bytes.
    let bytes = connect_raw(0xc2, &[&s(b"c"), &s(b"u"), &s(b"\xff\xfe")]);
    let Packet::Connect(c) = decodes(&bytes) else { panic!() };
    assert_eq!(c.password, Some(&b"\xff\xfe"[..]));
}

// ------------------------------------------------------------ 3.2 CONNACK

/// `[MQTT-3.2.2-4]` A CONNACK with a non-zero return code has Session
/// Present 0.
#[test]
fn mqtt_3_2_2_4_refusal_has_no_session_present() {
    for code in 1..=5u8 {
        assert_eq!(malformed(&[0x20, 2, 1, code]), Malformed::SessionPresentWithRefusal);
        let refused = ConnectReturnCode::from_u8(code).unwrap();
        let ack = ConnAck { session_present: true, code: refused };
        assert_eq!(invalid(&Packet::ConnAck(ack)), Malformed::SessionPresentWithRefusal);
        let ack = ConnAck { session_present: false, code: refused };
        assert_eq!(encodes(&Packet::ConnAck(ack)), [0x20, 2, 0, code]);
    }
    let ack = ConnAck { session_present: true, code: ConnectReturnCode::Accepted };
    assert_eq!(decodes(&[0x20, 2, 1, 0]), Packet::ConnAck(ack));
    assert_eq!(encodes(&Packet::ConnAck(ack)), [0x20, 2, 1, 0]);
}

// ------------------------------------------------------------ 3.3 PUBLISH

/// `[MQTT-3.3.1-2]` DUP is 0 for every QoS 0 message.
#[test]
fn mqtt_3_3_1_2_dup_is_zero_at_qos0() {
    assert_eq!(malformed(&[0x38]), Malformed::DupWithQoS0);
    assert_eq!(malformed(&raw(0x39, &[0, 1, b't'])), Malformed::DupWithQoS0);
    let p = Publish {
        dup: true,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        packet_id: None,
        payload: b"",
    };
    assert_eq!(invalid(&Packet::Publish(p)), Malformed::DupWithQoS0);
    // DUP is allowed, and kept, at QoS 1 and 2.
    for (qos, first) in [(QoS::AtLeastOnce, 0x3a), (QoS::ExactlyOnce, 0x3c)] {
        let p = Publish {
            dup: true,
            qos,
            retain: false,
            topic: "t",
            packet_id: Some(id(9)),
            payload: b"",
        };
        assert_eq!(encodes(&Packet::Publish(p))[0], first);
    }
}

/// `[MQTT-3.3.1-4]` A PUBLISH never has both QoS bits set; a receiver
/// closes the connection, so the decoder reports it from the first byte.
#[test]
fn mqtt_3_3_1_4_qos_bits_not_both_set() {
    for first in [0x36, 0x37, 0x3e, 0x3f] {
        assert_eq!(malformed(&[first]), Malformed::InvalidQoS);
        assert_eq!(malformed(&raw(first, &[0, 1, b't', 0, 1])), Malformed::InvalidQoS);
    }
    for (qos, first) in
        [(QoS::AtMostOnce, 0x30), (QoS::AtLeastOnce, 0x32), (QoS::ExactlyOnce, 0x34)]
    {
        let pid = (qos != QoS::AtMostOnce).then_some(1);
        assert_eq!(encodes(&publish("t", qos, pid, b""))[0], first);
    }
}

/// `[MQTT-3.3.2-1]` The Topic Name is the first field of the PUBLISH
/// variable header, a UTF-8 encoded string.
#[test]
fn mqtt_3_3_2_1_topic_name_is_first_and_utf8() {
    assert_eq!(malformed(&raw(0x30, &[])), Malformed::Truncated);
    assert_eq!(malformed(&raw(0x30, &[0])), Malformed::Truncated);
    assert_eq!(malformed(&raw(0x30, &[0, 3, b'a'])), Malformed::Truncated);
    for bad in ILL_FORMED {
        assert_eq!(malformed(&publish_raw(bad)), Malformed::InvalidUtf8);
    }
    let bytes = encodes(&publish("a/b", QoS::AtLeastOnce, Some(1), b"pay"));
    assert_eq!(bytes, [0x32, 10, 0, 3, b'a', b'/', b'b', 0, 1, b'p', b'a', b'y']);
}

/// `[MQTT-3.3.2-2]` The Topic Name in a PUBLISH has no wildcard.
#[test]
fn mqtt_3_3_2_2_topic_name_has_no_wildcards() {
    for topic in ["#", "+", "a/#", "a/+/b", "a+", "#a", "sport/tennis/#", "+/x"] {
        assert_eq!(
            malformed(&publish_raw(topic.as_bytes())),
            Malformed::WildcardInTopicName,
            "{topic}"
        );
        assert_eq!(
            invalid(&publish(topic, QoS::AtMostOnce, None, b"")),
            Malformed::WildcardInTopicName,
            "{topic}"
        );
    }
    encodes(&publish("a/b/c", QoS::AtMostOnce, None, b""));
}

// ----------------------------------------------- 3.6 PUBREL, 3.8 SUBSCRIBE

/// `[MQTT-3.6.1-1]` PUBREL fixed header flags are 0,0,1,0; anything else
/// is malformed.
#[test]
fn mqtt_3_6_1_1_pubrel_flags_are_0010() {
    for flags in (0..16u8).filter(|&f| f != 2) {
        assert_eq!(malformed(&[0x60 | flags, 2, 0, 1]), Malformed::InvalidFlags);
    }
    assert_eq!(decodes(&[0x62, 2, 0, 1]), Packet::PubRel(id(1)));
    assert_eq!(encodes(&Packet::PubRel(id(0x0102))), [0x62, 2, 1, 2]);
}

/// `[MQTT-3.8.1-1]` SUBSCRIBE fixed header flags are 0,0,1,0.
#[test]
fn mqtt_3_8_1_1_subscribe_flags_are_0010() {
    let good = subscribe_raw(b"a", 0);
    for flags in (0..16u8).filter(|&f| f != 2) {
        let mut bad = good.clone();
        bad[0] = 0x80 | flags;
        assert_eq!(malformed(&bad), Malformed::InvalidFlags);
    }
    let topics = [SubscribeTopic { filter: "a", qos: QoS::AtMostOnce }];
    assert_eq!(decodes(&good), subscribe(&topics));
    assert_eq!(encodes(&subscribe(&topics)), good);
}

/// `[MQTT-3.8.3-1]` SUBSCRIBE topic filters are UTF-8 encoded strings (and
/// valid topic filters).
#[test]
fn mqtt_3_8_3_1_subscribe_filters_are_utf8() {
    for bad in ILL_FORMED {
        assert_eq!(malformed(&subscribe_raw(bad, 0)), Malformed::InvalidUtf8);
    }
    // A bad filter after a good one.
    let mut body = vec![0, 1];
    body.extend(s(b"ok"));
    body.push(0);
    body.extend(s(b"\xff"));
    body.push(0);
    assert_eq!(malformed(&raw(0x82, &body)), Malformed::InvalidUtf8);
    assert_eq!(malformed(&subscribe_raw(b"a/#/b", 0)), Malformed::InvalidTopicFilter);
    let topics = [SubscribeTopic { filter: "a/#/b", qos: QoS::AtMostOnce }];
    assert_eq!(invalid(&subscribe(&topics)), Malformed::InvalidTopicFilter);
    let topics = [SubscribeTopic { filter: "\u{e9}/+/#", qos: QoS::AtLeastOnce }];
    assert_eq!(encodes(&subscribe(&topics)), subscribe_raw("\u{e9}/+/#".as_bytes(), 1));
}

/// `[MQTT-3.8.3-3]` A SUBSCRIBE carries at least one filter/QoS pair.
#[test]
fn mqtt_3_8_3_3_subscribe_has_at_least_one_filter() {
    assert_eq!(malformed(&raw(0x82, &[0, 1])), Malformed::NoTopicFilters);
    assert_eq!(invalid(&subscribe(&[])), Malformed::NoTopicFilters);
    let empty = Packet::Subscribe(Subscribe { packet_id: id(1), topics: List::Encoded(&[]) });
    assert_eq!(invalid(&empty), Malformed::NoTopicFilters);
}

/// `[MQTT-3-8.3-4]` (so numbered in the specification) A SUBSCRIBE whose
/// requested-QoS byte has reserved bits set, or QoS 3, is malformed.
#[test]
fn mqtt_3_8_3_4_subscribe_reserved_bits_and_qos() {
    for byte in [0x04, 0x08, 0x80, 0xfc, 0x41] {
        assert_eq!(malformed(&subscribe_raw(b"a", byte)), Malformed::SubscribeReservedBits);
    }
    assert_eq!(malformed(&subscribe_raw(b"a", 3)), Malformed::InvalidQoS);
    for (qos, byte) in [(QoS::AtMostOnce, 0), (QoS::AtLeastOnce, 1), (QoS::ExactlyOnce, 2)] {
        let topics = [SubscribeTopic { filter: "a", qos }];
        assert_eq!(decodes(&subscribe_raw(b"a", byte)), subscribe(&topics));
        assert_eq!(*encodes(&subscribe(&topics)).last().unwrap(), byte);
    }
}

// -------------------------------------------------------------- 3.9 SUBACK

/// `[MQTT-3.9.3-2]` SUBACK return codes other than 0x00, 0x01, 0x02 and
/// 0x80 are reserved and never used.
#[test]
fn mqtt_3_9_3_2_suback_return_codes_are_0_1_2_or_0x80() {
    for code in 0..=255u8 {
        let bytes = [0x90, 3, 0, 7, code];
        match code {
            0..=2 => {
                let qos = QoS::from_bits(code).unwrap();
                let codes = [SubscribeReturnCode::Success(qos)];
                let ack =
                    Packet::SubAck(SubAck { packet_id: id(7), return_codes: List::Items(&codes) });
                assert_eq!(decodes(&bytes), ack);
                assert_eq!(encodes(&ack), bytes);
            }
            0x80 => {
                let codes = [SubscribeReturnCode::Failure];
                let ack =
                    Packet::SubAck(SubAck { packet_id: id(7), return_codes: List::Items(&codes) });
                assert_eq!(decodes(&bytes), ack);
                assert_eq!(encodes(&ack), bytes);
            }
            _ => assert_eq!(malformed(&bytes), Malformed::InvalidSubAckReturnCode, "{code:#04x}"),
        }
    }
    // A bad code after good ones, and a SUBACK without codes.
    assert_eq!(malformed(&[0x90, 5, 0, 7, 0, 0x80, 0x81]), Malformed::InvalidSubAckReturnCode);
    assert_eq!(malformed(&[0x90, 2, 0, 7]), Malformed::InvalidSubAckReturnCode);
    let ack = Packet::SubAck(SubAck { packet_id: id(7), return_codes: List::Items(&[]) });
    assert_eq!(invalid(&ack), Malformed::InvalidSubAckReturnCode);
}

// --------------------------------------------------------- 3.10 UNSUBSCRIBE

/// `[MQTT-3.10.1-1]` UNSUBSCRIBE fixed header flags are 0,0,1,0.
#[test]
fn mqtt_3_10_1_1_unsubscribe_flags_are_0010() {
    let good = unsubscribe_raw(b"a");
    for flags in (0..16u8).filter(|&f| f != 2) {
        let mut bad = good.clone();
        bad[0] = 0xa0 | flags;
        assert_eq!(malformed(&bad), Malformed::InvalidFlags);
    }
    assert_eq!(decodes(&good), unsubscribe(&["a"]));
    assert_eq!(encodes(&unsubscribe(&["a"])), good);
}

/// `[MQTT-3.10.3-1]` UNSUBSCRIBE topic filters are UTF-8 encoded strings,
/// packed contiguously.
#[test]
fn mqtt_3_10_3_1_unsubscribe_filters_are_utf8() {
    for bad in ILL_FORMED {
        assert_eq!(malformed(&unsubscribe_raw(bad)), Malformed::InvalidUtf8);
    }
    assert_eq!(malformed(&unsubscribe_raw(b"+a")), Malformed::InvalidTopicFilter);
    assert_eq!(invalid(&unsubscribe(&["a#"])), Malformed::InvalidTopicFilter);
    let bytes = [0xa2, 10, 0, 1, 0, 1, b'a', 0, 3, b'b', b'/', b'#'];
    assert_eq!(decodes(&bytes), unsubscribe(&["a", "b/#"]));
    assert_eq!(encodes(&unsubscribe(&["a", "b/#"])), bytes);
}

/// `[MQTT-3.10.3-2]` An UNSUBSCRIBE carries at least one topic filter.
#[test]
fn mqtt_3_10_3_2_unsubscribe_has_at_least_one_filter() {
    assert_eq!(malformed(&raw(0xa2, &[0, 1])), Malformed::NoTopicFilters);
    assert_eq!(invalid(&unsubscribe(&[])), Malformed::NoTopicFilters);
}

// ---------------------------------------------------------- 3.14 DISCONNECT

/// `[MQTT-3.14.1-1]` DISCONNECT reserved bits are zero.
#[test]
fn mqtt_3_14_1_1_disconnect_reserved_bits_are_zero() {
    for flags in 1..16u8 {
        assert_eq!(malformed(&[0xe0 | flags, 0]), Malformed::InvalidFlags);
    }
    assert_eq!(decodes(&[0xe0, 0]), Packet::Disconnect);
    assert_eq!(encodes(&Packet::Disconnect), [0xe0, 0]);
}

// ------------------------------------------------------ 4.3 QoS 0 delivery

/// `[MQTT-4.3.1-1]` A QoS 0 sender sends PUBLISH with QoS=0, DUP=0: what
/// the encoder writes for a QoS 0 message, whatever else is set.
#[test]
fn mqtt_4_3_1_1_qos0_publish_is_sent_with_qos0_dup0() {
    for retain in [false, true] {
        let p = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain,
            topic: "t",
            packet_id: None,
            payload: b"x",
        };
        let first = encodes(&Packet::Publish(p))[0];
        assert_eq!(first & 0b1110, 0, "QoS 0, DUP 0");
        assert_eq!(first & 1, u8::from(retain));
        let dup = Publish { dup: true, ..p };
        assert_eq!(invalid(&Packet::Publish(dup)), Malformed::DupWithQoS0);
    }
}

// -------------------------------------------------------------- 4.7 topics

/// `[MQTT-4.7.1-1]` Wildcards may be used in topic filters but not in
/// topic names.
#[test]
fn mqtt_4_7_1_1_wildcards_only_in_filters() {
    for t in ["+", "#", "a/+", "a/#", "+/+/#"] {
        assert_eq!(TopicName::new(t), Err(Malformed::WildcardInTopicName));
        assert!(TopicFilter::new(t).is_ok(), "{t}");
        assert_eq!(malformed(&publish_raw(t.as_bytes())), Malformed::WildcardInTopicName);
        let topics = [SubscribeTopic { filter: t, qos: QoS::AtMostOnce }];
        assert_eq!(decodes(&encodes(&subscribe(&topics))), subscribe(&topics));
    }
}

/// `[MQTT-4.7.1-2]` '#' stands alone or after a separator, and is the last
/// character of the filter.
#[test]
fn mqtt_4_7_1_2_multi_level_wildcard_is_last_and_alone() {
    for ok in ["#", "/#", "a/#", "a/b/#", "+/#", "//#"] {
        assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        assert_eq!(
            decodes(&subscribe_raw(ok.as_bytes(), 0)).packet_type(),
            packet::PacketType::Subscribe
        );
    }
    for bad in ["a#", "a/#/b", "#/", "#/a", "a/b#", "##", "a/##", "#+"] {
        assert_eq!(TopicFilter::new(bad), Err(Malformed::InvalidTopicFilter), "{bad}");
        assert_eq!(malformed(&subscribe_raw(bad.as_bytes(), 0)), Malformed::InvalidTopicFilter);
        assert_eq!(malformed(&unsubscribe_raw(bad.as_bytes())), Malformed::InvalidTopicFilter);
        let topics = [SubscribeTopic { filter: bad, qos: QoS::AtMostOnce }];
        assert_eq!(invalid(&subscribe(&topics)), Malformed::InvalidTopicFilter);
        assert_eq!(invalid(&unsubscribe(&[bad])), Malformed::InvalidTopicFilter);
    }
}

/// `[MQTT-4.7.1-3]` '+' occupies a whole level, at any level.
#[test]
fn mqtt_4_7_1_3_single_level_wildcard_is_a_whole_level() {
    for ok in ["+", "+/", "/+", "+/+", "a/+/b", "sport/+/player1", "+/tennis/#"] {
        assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        assert_eq!(decodes(&unsubscribe_raw(ok.as_bytes())), unsubscribe(&[ok]));
    }
    for bad in ["a+", "+a", "sport+", "a/b+/c", "++", "+#"] {
        assert_eq!(TopicFilter::new(bad), Err(Malformed::InvalidTopicFilter), "{bad}");
        assert_eq!(malformed(&subscribe_raw(bad.as_bytes(), 0)), Malformed::InvalidTopicFilter);
        assert_eq!(invalid(&unsubscribe(&[bad])), Malformed::InvalidTopicFilter);
    }
}

fn matches(filter: &str, name: &str) -> bool {
    TopicFilter::new(filter).unwrap().matches(&TopicName::new(name).unwrap())
}

/// `[MQTT-4.7.2-1]` A filter starting with a wildcard does not match a
/// topic name starting with '$'.
#[test]
fn mqtt_4_7_2_1_wildcard_does_not_match_dollar_topics() {
    assert!(!matches("#", "$SYS/broker/uptime"));
    assert!(!matches("+/broker/uptime", "$SYS/broker/uptime"));
    assert!(!matches("+", "$SYS"));
    assert!(!matches("+/#", "$SYS/x"));
    assert!(matches("$SYS/#", "$SYS/broker/uptime"));
    assert!(matches("$SYS/+/uptime", "$SYS/broker/uptime"));
    assert!(matches("$SYS", "$SYS"));
    // Only a '$' at the start of the name counts.
    assert!(matches("#", "a/$SYS"));
    assert!(matches("+/+", "a/$b"));
}

/// `[MQTT-4.7.3-1]` Topic names and topic filters are at least one
/// character long.
#[test]
fn mqtt_4_7_3_1_topics_are_not_empty() {
    assert_eq!(TopicName::new(""), Err(Malformed::EmptyTopic));
    assert_eq!(TopicFilter::new(""), Err(Malformed::EmptyTopic));
    assert_eq!(malformed(&publish_raw(b"")), Malformed::EmptyTopic);
    assert_eq!(malformed(&subscribe_raw(b"", 0)), Malformed::EmptyTopic);
    assert_eq!(malformed(&unsubscribe_raw(b"")), Malformed::EmptyTopic);
    assert_eq!(invalid(&publish("", QoS::AtMostOnce, None, b"")), Malformed::EmptyTopic);
    let topics = [SubscribeTopic { filter: "", qos: QoS::AtMostOnce }];
    assert_eq!(invalid(&subscribe(&topics)), Malformed::EmptyTopic);
    assert_eq!(invalid(&unsubscribe(&[""])), Malformed::EmptyTopic);
    // One character, even a separator, is enough.
    assert!(TopicName::new("/").is_ok());
    assert!(TopicFilter::new("/").is_ok());
    encodes(&publish("/", QoS::AtMostOnce, None, b""));
}

/// `[MQTT-4.7.3-2]` Topic names and topic filters do not contain U+0000.
#[test]
fn mqtt_4_7_3_2_topics_have_no_null_character() {
    assert_eq!(TopicName::new("a\0"), Err(Malformed::NullCharacter));
    assert_eq!(TopicFilter::new("\0/#"), Err(Malformed::NullCharacter));
    assert_eq!(malformed(&publish_raw(b"\0")), Malformed::NullCharacter);
    assert_eq!(malformed(&subscribe_raw(b"a\0", 0)), Malformed::NullCharacter);
    let topics = [SubscribeTopic { filter: "+/\0", qos: QoS::AtMostOnce }];
    assert_eq!(invalid(&subscribe(&topics)), Malformed::NullCharacter);
}

/// `[MQTT-4.7.3-3]` Topic names and topic filters encode to at most 65,535
/// bytes.
#[test]
fn mqtt_4_7_3_3_topics_are_at_most_65535_bytes() {
    let longest = "a".repeat(65_535);
    let too_long = "a".repeat(65_536);
    assert!(TopicName::new(&longest).is_ok());
    assert!(TopicFilter::new(&longest).is_ok());
    assert_eq!(TopicName::new(&too_long), Err(Malformed::StringTooLong));
    assert_eq!(TopicFilter::new(&too_long), Err(Malformed::StringTooLong));
    assert_eq!(invalid(&publish(&too_long, QoS::AtMostOnce, None, b"")), Malformed::StringTooLong);
    let topics = [SubscribeTopic { filter: &too_long, qos: QoS::AtMostOnce }];
    assert_eq!(invalid(&subscribe(&topics)), Malformed::StringTooLong);
    assert_eq!(invalid(&unsubscribe(&[&too_long])), Malformed::StringTooLong);
    let bytes = encodes(&publish(&longest, QoS::AtLeastOnce, Some(1), b"p"));
    assert_eq!(bytes.len(), 1 + 3 + 2 + 65_535 + 2 + 1);
}

/// `[MQTT-4.7.3-4]` Matching does no normalization: levels compare byte
/// for byte, case, spaces and Unicode forms included.
#[test]
fn mqtt_4_7_3_4_matching_does_not_normalize() {
    assert!(!matches("ACCOUNTS", "Accounts"));
    assert!(matches("Accounts payable", "Accounts payable"));
    assert!(!matches("Accounts payable", "Accounts  payable"));
    assert!(!matches("/finance", "finance"));
    assert!(!matches("finance", "/finance"));
    // U+00C5 against U+0041 U+030A: the same glyph, different topics.
    assert!(!matches("\u{c5}", "A\u{30a}"));
    assert!(matches("+/\u{c5}", "x/\u{c5}"));
    assert!(!matches("a/", "a"));
    assert!(!matches("a", "a/"));
    // Non-normative examples of 4.7.1.
    assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
    assert!(matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    assert!(matches("sport/#", "sport"));
    assert!(matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!matches("sport/+", "sport"));
    assert!(matches("sport/+", "sport/"));
    assert!(matches("+/+", "/finance"));
    assert!(matches("/+", "/finance"));
    assert!(!matches("+", "/finance"));
}

// ------------------------------- rules of the text without a statement id

/// Section 2.2.1: packet types 0 and 15 are reserved.
#[test]
fn section_2_2_1_reserved_packet_types_are_malformed() {
    for first in [0x00, 0x0f, 0xf0, 0xff] {
        assert_eq!(malformed(&[first, 0]), Malformed::ReservedPacketType);
        assert_eq!(malformed(&[first]), Malformed::ReservedPacketType);
    }
}

/// Section 2.2.3: the remaining length takes at most four bytes, up to
/// 268,435,455, each value in its shortest form.
#[test]
fn section_2_2_3_remaining_length_encoding() {
    assert_eq!(malformed(&[0xc0, 0x80, 0x80, 0x80, 0x80, 0x01]), Malformed::RemainingLengthTooLong);
    assert_eq!(malformed(&[0xc0, 0xff, 0xff, 0xff, 0xff]), Malformed::RemainingLengthTooLong);
    for non_minimal in
        [&[0xc0, 0x80, 0x00][..], &[0xc0, 0xff, 0x80, 0x00], &[0xc0, 0x80, 0x80, 0x80, 0x00]]
    {
        assert_eq!(malformed(non_minimal), Malformed::RemainingLengthNotMinimal);
    }
    // Table 2.4 boundaries: the header parses and the rest is awaited.
    for (header, remaining) in [
        (&[0x30, 0x7f][..], 127usize),
        (&[0x30, 0x80, 0x01], 128),
        (&[0x30, 0xff, 0x7f], 16_383),
        (&[0x30, 0x80, 0x80, 0x01], 16_384),
        (&[0x30, 0xff, 0xff, 0x7f], 2_097_151),
        (&[0x30, 0x80, 0x80, 0x80, 0x01], 2_097_152),
        (&[0x30, 0xff, 0xff, 0xff, 0x7f], 268_435_455),
    ] {
        let h = packet::FixedHeader::parse(header).unwrap();
        assert_eq!(h.remaining_len, remaining);
        assert_eq!(h.header_len, header.len());
        assert_eq!(packet::decode(header), Err(DecodeError::Incomplete { needed: remaining }));
    }
    // The encoder writes the same boundaries.
    for (payload_len, header_len) in [(124usize, 2usize), (125, 3), (16_380, 3), (16_381, 4)] {
        let payload = vec![0u8; payload_len];
        let bytes = encodes(&publish("t", QoS::AtMostOnce, None, &payload));
        assert_eq!(bytes.len(), header_len + 3 + payload_len);
    }
    // A packet over the maximum is refused without being written.
    let max_payload = packet::MAX_REMAINING_LEN - 3;
    let huge = vec![0u8; max_payload + 1];
    assert_eq!(
        packet::encoded_len(&publish("t", QoS::AtMostOnce, None, &huge)),
        Err(EncodeError::Invalid(Malformed::PacketTooLarge))
    );
    assert_eq!(
        packet::encoded_len(&publish("t", QoS::AtMostOnce, None, &huge[..max_payload])),
        Ok(5 + packet::MAX_REMAINING_LEN)
    );
}

/// Section 1.5.3: strings and binary data are at most 65,535 bytes.
#[test]
fn section_1_5_3_fields_longer_than_65535_bytes_are_refused() {
    let long = vec![b'a'; 65_536];
    let long_str = core::str::from_utf8(&long).unwrap();
    assert_eq!(invalid(&Packet::Connect(connect(long_str))), Malformed::StringTooLong);
    let c = Connect { username: Some("u"), password: Some(&long), ..connect("c") };
    assert_eq!(invalid(&Packet::Connect(c)), Malformed::StringTooLong);
    let will = LastWill { topic: "w", payload: &long, qos: QoS::AtMostOnce, retain: false };
    assert_eq!(
        invalid(&Packet::Connect(Connect { will: Some(will), ..connect("c") })),
        Malformed::StringTooLong
    );
    let will = LastWill { topic: "w", payload: &long[1..], qos: QoS::AtMostOnce, retain: false };
    encodes(&Packet::Connect(Connect { will: Some(will), ..connect("c") }));
}

/// Section 3.2.2: CONNACK reserved flag bits are 0 and return codes above
/// 5 are reserved.
#[test]
fn section_3_2_2_connack_reserved_flags_and_codes() {
    for flags in [0x02, 0x80, 0xfe, 0xff] {
        assert_eq!(malformed(&[0x20, 2, flags, 0]), Malformed::ConnAckReservedFlags);
    }
    for code in 6..=255u8 {
        assert_eq!(malformed(&[0x20, 2, 0, code]), Malformed::InvalidConnectReturnCode);
    }
    assert_eq!(malformed(&[0x20, 1, 0]), Malformed::Truncated);
    assert_eq!(malformed(&[0x20, 3, 0, 0, 0]), Malformed::TrailingBytes);
}

/// Sections 3.4 to 3.14: packets of fixed size have exactly that size.
#[test]
fn fixed_size_packets_have_exact_remaining_length() {
    for first in [0x40, 0x50, 0x62, 0x70, 0xb0] {
        assert_eq!(malformed(&[first, 1, 1]), Malformed::Truncated);
        assert_eq!(malformed(&[first, 3, 0, 1, 0]), Malformed::TrailingBytes);
        assert_eq!(malformed(&[first, 0]), Malformed::Truncated);
    }
    for first in [0xc0, 0xd0, 0xe0] {
        assert_eq!(malformed(&[first, 1, 0]), Malformed::TrailingBytes);
    }
}

/// Incomplete input is never reported as malformed, and a short output
/// buffer is reported with the size needed, nothing written.
#[test]
fn incomplete_and_buffer_too_small() {
    assert_eq!(packet::decode(&[]), Err(DecodeError::Incomplete { needed: 2 }));
    assert_eq!(packet::decode(&[0x30]), Err(DecodeError::Incomplete { needed: 1 }));
    assert_eq!(packet::decode(&[0x30, 0x80]), Err(DecodeError::Incomplete { needed: 1 }));
    assert_eq!(packet::decode(&[0x30, 5, 0, 1]), Err(DecodeError::Incomplete { needed: 3 }));
    let p = publish("t", QoS::AtMostOnce, None, b"xyz");
    let mut buf = [0xaa; 7];
    assert_eq!(packet::encode(&p, &mut buf), Err(EncodeError::BufferTooSmall { needed: 8 }));
    assert_eq!(buf, [0xaa; 7]);
}

/// A decoded list (SUBSCRIBE, SUBACK, UNSUBSCRIBE) equals the caller's
/// list of the same items, and iterates them in wire order.
#[test]
fn decoded_lists_iterate_in_order() {
    let topics = [
        SubscribeTopic { filter: "a/+", qos: QoS::AtMostOnce },
        SubscribeTopic { filter: "b/#", qos: QoS::AtLeastOnce },
        SubscribeTopic { filter: "$SYS/x", qos: QoS::ExactlyOnce },
    ];
    let bytes = encodes(&subscribe(&topics));
    let Packet::Subscribe(s) = decodes(&bytes) else { panic!() };
    assert!(matches!(s.topics, List::Encoded(_)));
    assert_eq!(s.topics.len(), 3);
    assert!(!s.topics.is_empty());
    assert_eq!(s.topics.iter().collect::<Vec<_>>(), topics);
    let shorter = [topics[0], topics[1]];
    assert_ne!(s.topics, List::Items(&shorter));
}

/// A list given as wire bytes (`List::Encoded`, a public variant) is
/// checked before encoding like a received one: the encoder never writes
/// bytes its decoder refuses.
#[test]
fn hand_built_encoded_lists_are_checked() {
    let bad_filter =
        Packet::Subscribe(Subscribe { packet_id: id(1), topics: List::Encoded(b"\x00\x01#\x03") });
    assert_eq!(invalid(&bad_filter), Malformed::InvalidQoS);
    let truncated =
        Packet::Subscribe(Subscribe { packet_id: id(1), topics: List::Encoded(b"\x00\x05ab") });
    assert_eq!(invalid(&truncated), Malformed::Truncated);
    let bad_code =
        Packet::SubAck(SubAck { packet_id: id(1), return_codes: List::Encoded(b"\x00\x03") });
    assert_eq!(invalid(&bad_code), Malformed::InvalidSubAckReturnCode);
    let bad_unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: id(1),
        filters: List::Encoded(b"\x00\x02a#"),
    });
    assert_eq!(invalid(&bad_unsub), Malformed::InvalidTopicFilter);
    let good = Packet::Unsubscribe(Unsubscribe {
        packet_id: id(1),
        filters: List::Encoded(b"\x00\x01a\x00\x01+"),
    });
    assert_eq!(encodes(&good), [0xa2, 8, 0, 1, 0, 1, b'a', 0, 1, b'+']);
}
