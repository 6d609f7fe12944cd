//! Property tests of the codec over generated valid packets of all 14
//! types (both protocol levels for CONNECT, optional will and credentials,
//! every QoS, SUBSCRIBE/UNSUBSCRIBE with 1..N valid filters, every SUBACK
//! code) and over arbitrary or mutated bytes:
//!
//! - `decode(encode(p)) == p`, and `encoded_len(p)` is what `encode` writes;
//! - decoding arbitrary bytes never panics and uses at most the input;
//! - every strict prefix of a packet is `Incomplete`, with `needed >= 1`,
//!   never more than what is missing, and exact once the fixed header is
//!   complete;
//! - bytes after a packet change neither the packet nor its length;
//! - whatever decodes re-encodes to the very same bytes;
//! - topic matching agrees with a plain reference implementation.

use proptest::prelude::*;
use proptest::string::string_regex;
use umqtt::packet::{
    self, ConnAck, Connect, ConnectReturnCode, DecodeError, EncodeError, LastWill, List, Malformed,
    Packet, PacketId, ProtocolLevel, Publish, QoS, SubAck, Subscribe, SubscribeReturnCode,
    SubscribeTopic, Unsubscribe,
};
use umqtt::topic::{TopicFilter, TopicName};

// ------------------------------------------------------------- generators

/// A packet with owned fields; [`with_packet`] lends it as a [`Packet`].
#[derive(Debug, Clone)]
enum Owned {
    Connect {
        protocol: ProtocolLevel,
        clean_session: bool,
        keep_alive: u16,
        client_id: String,
        will: Option<(String, Vec<u8>, QoS, bool)>,
        username: Option<String>,
        password: Option<Vec<u8>>,
    },
    ConnAck(ConnAck),
    Publish {
        dup: bool,
        qos: QoS,
        retain: bool,
        topic: String,
        packet_id: Option<PacketId>,
        payload: Vec<u8>,
    },
    PubAck(PacketId),
    PubRec(PacketId),
    PubRel(PacketId),
    PubComp(PacketId),
    Subscribe(PacketId, Vec<(String, QoS)>),
    SubAck(PacketId, Vec<SubscribeReturnCode>),
    Unsubscribe(PacketId, Vec<String>),
    UnsubAck(PacketId),
    PingReq,
    PingResp,
    Disconnect,
}

fn with_packet<R>(o: &Owned, f: impl FnOnce(Packet<'_>) -> R) -> R {
    match o {
        Owned::Connect {
            protocol,
            clean_session,
            keep_alive,
            client_id,
            will,
            username,
            password,
        } => f(Packet::Connect(Connect {
            protocol: *protocol,
            clean_session: *clean_session,
            keep_alive: *keep_alive,
            client_id,
            will: will.as_ref().map(|(topic, payload, qos, retain)| LastWill {
                topic,
                payload,
                qos: *qos,
                retain: *retain,
            }),
            username: username.as_deref(),
            password: password.as_deref(),
        })),
        Owned::ConnAck(c) => f(Packet::ConnAck(*c)),
        Owned::Publish { dup, qos, retain, topic, packet_id, payload } => {
            f(Packet::Publish(Publish {
                dup: *dup,
                qos: *qos,
                retain: *retain,
                topic,
                packet_id: *packet_id,
                payload,
            }))
        }
        Owned::PubAck(id) => f(Packet::PubAck(*id)),
        Owned::PubRec(id) => f(Packet::PubRec(*id)),
        Owned::PubRel(id) => f(Packet::PubRel(*id)),
        Owned::PubComp(id) => f(Packet::PubComp(*id)),
        Owned::Subscribe(id, topics) => {
            let items: Vec<SubscribeTopic<'_>> =
                topics.iter().map(|(filter, qos)| SubscribeTopic { filter, qos: *qos }).collect();
            f(Packet::Subscribe(Subscribe { packet_id: *id, topics: List::Items(&items) }))
        }
        Owned::SubAck(id, codes) => {
            f(Packet::SubAck(SubAck { packet_id: *id, return_codes: List::Items(codes) }))
        }
        Owned::Unsubscribe(id, filters) => {
            let items: Vec<&str> = filters.iter().map(String::as_str).collect();
            f(Packet::Unsubscribe(Unsubscribe { packet_id: *id, filters: List::Items(&items) }))
        }
        Owned::UnsubAck(id) => f(Packet::UnsubAck(*id)),
        Owned::PingReq => f(Packet::PingReq),
        Owned::PingResp => f(Packet::PingResp),
        Owned::Disconnect => f(Packet::Disconnect),
    }
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    prop_oneof![
        Just(PacketId::new(1).unwrap()),
        Just(PacketId::MAX),
        (1..=u16::MAX).prop_map(|n| PacketId::new(n).unwrap()),
    ]
}

/// Any string without U+0000 (the codec's strings), of `len` chars.
fn text(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    string_regex(&format!("[^\u{0}]{{{},{}}}", len.start(), len.end())).unwrap()
}

/// A topic level: printable ASCII, some non-ASCII, no wildcard, separator
/// or U+0000; possibly empty.
fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => string_regex("[a-z0-9_ -]{0,6}").unwrap(),
        1 => string_regex("[^+#/\u{0}]{0,4}").unwrap(),
        1 => Just(String::new()),
    ]
}

/// A valid topic name: levels joined by '/', sometimes `$`-prefixed.
fn topic_name() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(level(), 1..6)).prop_map(|(dollar, levels)| {
        let mut name = levels.join("/");
        if dollar {
            name.insert(0, '$');
        }
        if name.is_empty() {
            name.push('t');
        }
        name
    })
}

/// A valid topic filter: levels or '+', optionally ending in '#'.
fn topic_filter() -> impl Strategy<Value = String> {
    let filter_level = prop_oneof![3 => level(), 1 => Just("+".to_string())];
    (prop::collection::vec(filter_level, 0..6), any::<bool>()).prop_map(|(mut levels, hash)| {
        if hash || levels.is_empty() {
            levels.push("#".to_string());
        }
        let filter = levels.join("/");
        if filter.is_empty() { "#".to_string() } else { filter }
    })
}

fn binary(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn connect() -> impl Strategy<Value = Owned> {
    let will = prop::option::of((topic_name(), binary(40), qos(), any::<bool>()));
    (
        prop_oneof![Just(ProtocolLevel::V311), Just(ProtocolLevel::V31)],
        any::<bool>(),
        any::<u16>(),
        text(0..=23),
        will,
        prop::option::of(text(0..=12)),
        prop::option::of(binary(16)),
    )
        .prop_map(
            |(protocol, clean_session, keep_alive, client_id, will, mut username, password)| {
                // [MQTT-3.1.3-7]: an empty client id needs a clean session;
                // [MQTT-3.1.2-22]: a 3.1.1 password needs a user name.
                let clean_session = clean_session || client_id.is_empty();
                if password.is_some() && protocol == ProtocolLevel::V311 && username.is_none() {
                    username = Some("user".to_string());
                }
                Owned::Connect {
                    protocol,
                    clean_session,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                }
            },
        )
}

fn connack() -> impl Strategy<Value = Owned> {
    (any::<bool>(), 0..=5u8).prop_map(|(session_present, code)| {
        let code = ConnectReturnCode::from_u8(code).unwrap();
        let session_present = session_present && code == ConnectReturnCode::Accepted;
        Owned::ConnAck(ConnAck { session_present, code })
    })
}

fn publish() -> impl Strategy<Value = Owned> {
    (qos(), any::<bool>(), any::<bool>(), topic_name(), packet_id(), binary(300)).prop_map(
        |(qos, dup, retain, topic, id, payload)| {
            let at_most_once = qos == QoS::AtMostOnce;
            Owned::Publish {
                dup: dup && !at_most_once,
                qos,
                retain,
                topic,
                packet_id: (!at_most_once).then_some(id),
                payload,
            }
        },
    )
}

fn return_code() -> impl Strategy<Value = SubscribeReturnCode> {
    prop_oneof![qos().prop_map(SubscribeReturnCode::Success), Just(SubscribeReturnCode::Failure)]
}

fn any_packet() -> impl Strategy<Value = Owned> {
    prop_oneof![
        connect(),
        connack(),
        publish(),
        packet_id().prop_map(Owned::PubAck),
        packet_id().prop_map(Owned::PubRec),
        packet_id().prop_map(Owned::PubRel),
        packet_id().prop_map(Owned::PubComp),
        (packet_id(), prop::collection::vec((topic_filter(), qos()), 1..8))
            .prop_map(|(id, topics)| Owned::Subscribe(id, topics)),
        (packet_id(), prop::collection::vec(return_code(), 1..8))
            .prop_map(|(id, codes)| Owned::SubAck(id, codes)),
        (packet_id(), prop::collection::vec(topic_filter(), 1..8))
            .prop_map(|(id, filters)| Owned::Unsubscribe(id, filters)),
        packet_id().prop_map(Owned::UnsubAck),
        Just(Owned::PingReq),
        Just(Owned::PingResp),
        Just(Owned::Disconnect),
    ]
}

/// The bytes of a generated packet, checking `encoded_len` on the way.
fn encode_owned(o: &Owned) -> Vec<u8> {
    with_packet(o, |p| {
        let len = packet::encoded_len(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        let mut buf = vec![0u8; len];
        assert_eq!(packet::encode(&p, &mut buf), Ok(len), "encode wrote encoded_len bytes");
        buf
    })
}

/// Whatever decodes re-encodes to the same bytes: the one exception is a
/// CONNECT with an empty client id and no clean session, which a server
/// must be able to read (to answer 0x02, `[MQTT-3.1.3-8]`) but a client
/// must not send (`[MQTT-3.1.3-7]`).
fn check_reencodes(bytes: &[u8]) {
    let Ok(d) = packet::decode(bytes) else { return };
    assert!(d.len >= 2 && d.len <= bytes.len());
    let mut out = vec![0u8; d.len];
    match packet::encode(&d.packet, &mut out) {
        Ok(n) => {
            assert_eq!(n, d.len);
            assert_eq!(out, &bytes[..d.len], "{:?}", d.packet);
        }
        Err(EncodeError::Invalid(Malformed::EmptyClientIdWithSession)) => {}
        Err(e) => panic!("decoded {:?} but cannot encode it: {e}", d.packet),
    }
}

// -------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// `decode(encode(p)) == p`, using exactly the bytes written.
    #[test]
    fn roundtrip(o in any_packet()) {
        let bytes = encode_owned(&o);
        with_packet(&o, |p| {
            let d = packet::decode(&bytes).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            assert_eq!(d.packet, p);
            assert_eq!(d.len, bytes.len());
            assert_eq!(d.packet.packet_type(), p.packet_type());
            let header = packet::FixedHeader::parse(&bytes).unwrap();
            assert_eq!(header.packet_len(), bytes.len());
        });
        check_reencodes(&bytes);
    }

    /// Every strict prefix is `Incomplete`; `needed` is at least 1, never
    /// more than what is missing, and exact once the fixed header is in.
    #[test]
    fn prefixes_are_incomplete(o in any_packet()) {
        let bytes = encode_owned(&o);
        let header_len = packet::FixedHeader::parse(&bytes).unwrap().header_len;
        for k in 0..bytes.len() {
            match packet::decode(&bytes[..k]) {
                Err(DecodeError::Incomplete { needed }) => {
                    let missing = bytes.len() - k;
                    prop_assert!(needed >= 1);
                    prop_assert!(needed <= missing, "prefix {k}: needed {needed} > missing {missing}");
                    if k >= header_len {
                        prop_assert_eq!(needed, missing, "prefix {}", k);
                    }
                }
                other => prop_assert!(false, "prefix {k} of {bytes:02x?}: {other:?}"),
            }
        }
    }

    /// Bytes after a packet change neither the packet nor its length.
    #[test]
    fn trailing_junk_is_ignored(o in any_packet(), junk in binary(20)) {
        let bytes = encode_owned(&o);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&junk);
        let alone = packet::decode(&bytes).unwrap();
        let with_junk = packet::decode(&longer).unwrap();
        prop_assert_eq!(alone, with_junk);
    }

    /// A stream of packets decodes back one after the other.
    #[test]
    fn streams_decode_in_order(packets in prop::collection::vec(any_packet(), 1..6)) {
        let encoded: Vec<Vec<u8>> = packets.iter().map(encode_owned).collect();
        let stream = encoded.concat();
        let mut rest = &stream[..];
        for (o, bytes) in packets.iter().zip(&encoded) {
            let d = packet::decode(rest).unwrap();
            prop_assert_eq!(d.len, bytes.len());
            with_packet(o, |p| assert_eq!(d.packet, p));
            rest = &rest[d.len..];
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(packet::decode(rest), Err(DecodeError::Incomplete { needed: 2 }));
    }

    /// A buffer one byte short gets `BufferTooSmall` and is not touched.
    #[test]
    fn short_buffer_is_refused(o in any_packet()) {
        let bytes = encode_owned(&o);
        let mut short = vec![0xa5u8; bytes.len() - 1];
        with_packet(&o, |p| {
            assert_eq!(packet::encode(&p, &mut short), Err(EncodeError::BufferTooSmall { needed: bytes.len() }));
        });
        prop_assert!(short.iter().all(|&b| b == 0xa5));
    }

    /// Arbitrary bytes never panic the decoder; what it accepts fits the
    /// input and re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes(bytes in binary(64)) {
        match packet::decode(&bytes) {
            Ok(d) => prop_assert!(d.len <= bytes.len()),
            Err(DecodeError::Incomplete { needed }) => prop_assert!(needed >= 1),
            Err(DecodeError::Malformed(_)) => {}
        }
        check_reencodes(&bytes);
    }

    /// Arbitrary bodies behind each valid first byte, with a consistent
    /// remaining length, reach deeper into every packet decoder.
    #[test]
    fn arbitrary_bodies(first in prop::sample::select(FIRST_BYTES), body in binary(48)) {
        let mut bytes = vec![first, body.len() as u8];
        bytes.extend_from_slice(&body);
        if let Ok(d) = packet::decode(&bytes) {
            prop_assert_eq!(d.len, bytes.len());
        }
        check_reencodes(&bytes);
    }

    /// Valid packets with bytes flipped, inserted or removed: no panic, and
    /// anything accepted re-encodes identically.
    #[test]
    fn mutated_packets(o in any_packet(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4)) {
        let mut bytes = encode_owned(&o);
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len() + 1);
            match kind {
                0 if i < bytes.len() => bytes[i] ^= byte | 1,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.push(byte),
            }
        }
        if let Ok(d) = packet::decode(&bytes) {
            prop_assert!(d.len <= bytes.len());
        }
        check_reencodes(&bytes);
    }

    /// Topic validation accepts every generated name and filter, and
    /// matching agrees with the reference implementation below.
    #[test]
    fn topic_matching_agrees_with_reference(filter in topic_filter(), name in topic_name()) {
        let f = TopicFilter::new(&filter).unwrap();
        let n = TopicName::new(&name).unwrap();
        prop_assert_eq!(f.matches(&n), reference_matches(&filter, &name), "{} vs {}", filter, name);
    }

    /// A filter built from a name, with levels replaced by wildcards,
    /// matches it (unless it starts with a wildcard and the name with '$').
    #[test]
    fn wildcarded_names_match(name in topic_name(), plus in prop::collection::vec(any::<bool>(), 6), cut in 0..6usize) {
        let levels: Vec<&str> = name.split('/').collect();
        let mut filter: Vec<&str> =
            levels.iter().zip(plus.iter().cycle()).map(|(l, &p)| if p { "+" } else { *l }).collect();
        if cut < filter.len() {
            filter.truncate(cut);
            filter.push("#");
        }
        let filter = filter.join("/");
        let f = TopicFilter::new(&filter).unwrap();
        let expected = !(name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')));
        prop_assert_eq!(f.matches(&TopicName::new(&name).unwrap()), expected, "{} vs {}", filter, name);
    }

    /// Validation of arbitrary strings never panics and agrees with the
    /// rules of section 4.7.
    #[test]
    fn topic_validation_agrees_with_rules(s in prop_oneof![text(0..=12), string_regex("[a+#/\u{0}]{0,8}").unwrap()]) {
        let common_ok = !s.is_empty() && !s.contains('\0');
        prop_assert_eq!(TopicName::new(&s).is_ok(), common_ok && !s.contains(['+', '#']));
        let levels: Vec<&str> = s.split('/').collect();
        let filter_ok = common_ok
            && levels.iter().enumerate().all(|(i, l)| match *l {
                "+" => true,
                "#" => i == levels.len() - 1,
                l => !l.contains(['+', '#']),
            });
        prop_assert_eq!(TopicFilter::new(&s).is_ok(), filter_ok, "{:?}", s);
    }
}

/// Every first byte a valid packet can start with.
const FIRST_BYTES: &[u8] = &[
    0x10, 0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x3a, 0x3b, 0x3c, 0x3d, 0x40, 0x50, 0x62, 0x70,
    0x82, 0x90, 0xa2, 0xb0, 0xc0, 0xd0, 0xe0,
];

/// Section 4.7 matching written the obvious way, level list against level
/// list, recursively.
fn reference_matches(filter: &str, name: &str) -> bool {
    fn go(f: &[&str], n: &[&str]) -> bool {
        match (f.first(), n.first()) {
            (Some(&"#"), _) => true,
            (None, None) => true,
            (Some(&"+"), Some(_)) => go(&f[1..], &n[1..]),
            (Some(a), Some(b)) => a == b && go(&f[1..], &n[1..]),
            _ => false,
        }
    }
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    go(&f, &n)
}

/// The boundaries of the remaining length encoding round-trip (PUBLISH
/// payloads sized to land on each side of every boundary).
#[test]
fn remaining_length_boundaries_roundtrip() {
    for remaining in [127usize, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
        let payload = vec![7u8; remaining - 3];
        let p = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            packet_id: None,
            payload: &payload,
        });
        let len = packet::encoded_len(&p).unwrap();
        let mut buf = vec![0u8; len];
        assert_eq!(packet::encode(&p, &mut buf), Ok(len));
        let d = packet::decode(&buf).unwrap();
        assert_eq!((d.packet, d.len), (p, len));
        let header = packet::FixedHeader::parse(&buf).unwrap();
        assert_eq!(header.remaining_len, remaining);
        assert_eq!(packet::decode(&buf[..len - 1]), Err(DecodeError::Incomplete { needed: 1 }));
    }
}
