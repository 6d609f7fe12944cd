//! Known answers: packets recorded from real Mosquitto 2.0.11 tools and
//! broker (`tests/fixtures/*.hex`, made by `scripts/capture-fixtures`; each
//! file's header says how). Each is decoded, every field checked against
//! the command line that produced it, and re-encoded to identical bytes.

use std::path::Path;

use umqtt::packet::{
    self, ConnAck, Connect, ConnectReturnCode, LastWill, List, Packet, PacketId, ProtocolLevel,
    Publish, QoS, SubAck, Subscribe, SubscribeReturnCode, SubscribeTopic, Unsubscribe,
};

/// The bytes of fixture `name`: hex pairs after the `#` comment lines.
fn fixture(name: &str) -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.starts_with("# "), "{name}: the header saying how it was made is missing");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|pair| {
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("{name}: bad hex {pair:?}"))
        })
        .collect()
}

/// Decodes fixture `name`, checks it is `expected` and uses every byte,
/// and that `expected` encodes to exactly the recorded bytes.
#[track_caller]
fn check(name: &str, expected: Packet<'_>) {
    let bytes = fixture(name);
    let decoded = packet::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded.len, bytes.len(), "{name}: length");
    assert_eq!(decoded.packet, expected, "{name}: fields");
    // Encode both what we expect and what we decoded (borrowing `bytes`).
    for p in [expected, decoded.packet] {
        assert_eq!(packet::encoded_len(&p), Ok(bytes.len()), "{name}: encoded_len");
        let mut out = vec![0u8; bytes.len()];
        assert_eq!(packet::encode(&p, &mut out), Ok(bytes.len()), "{name}: encode");
        assert_eq!(out, bytes, "{name}: re-encoded bytes");
    }
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn accepted() -> Packet<'static> {
    Packet::ConnAck(ConnAck { session_present: false, code: ConnectReturnCode::Accepted })
}

const JSON: &[u8] = br#"{"msg": 1}"#;

#[test]
fn connect_v311_with_will_and_credentials() {
    check(
        "connect_v311_will_credentials",
        Packet::Connect(Connect {
            protocol: ProtocolLevel::V311,
            clean_session: true,
            keep_alive: 30,
            client_id: "umqtt-fixture-pub",
            will: Some(LastWill {
                topic: "devices/umqtt-fixture-pub/status",
                payload: b"offline",
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            username: Some("fixture-user"),
            password: Some(b"fixture-secret"),
        }),
    );
}

#[test]
fn connect_v311_minimal() {
    check(
        "connect_v311_minimal",
        Packet::Connect(Connect {
            protocol: ProtocolLevel::V311,
            clean_session: true,
            keep_alive: 60,
            client_id: "umqtt-fixture-pub0",
            will: None,
            username: None,
            password: None,
        }),
    );
}

#[test]
fn connect_v31_with_credentials() {
    check(
        "connect_v31_credentials",
        Packet::Connect(Connect {
            protocol: ProtocolLevel::V31,
            clean_session: true,
            keep_alive: 60,
            client_id: "umqtt-fixture-v31",
            will: None,
            username: Some("fixture-user"),
            password: Some(b"fixture-secret"),
        }),
    );
}

#[test]
fn connack() {
    check("connack_accepted", accepted());
    check("connack_v31_accepted", accepted());
    check(
        "connack_not_authorized",
        Packet::ConnAck(ConnAck { session_present: false, code: ConnectReturnCode::NotAuthorized }),
    );
}

#[test]
fn publish_qos1_retained_from_client() {
    check(
        "publish_qos1_retain_from_client",
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "sensors/01/temp",
            packet_id: Some(id(1)),
            payload: JSON,
        }),
    );
}

#[test]
fn publish_qos0_from_client() {
    check(
        "publish_qos0_from_client",
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "sensors/02/temp",
            packet_id: None,
            payload: b"21.5",
        }),
    );
}

#[test]
fn publish_v31_qos1() {
    check(
        "publish_v31_qos1",
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "sensors/03/temp",
            packet_id: Some(id(1)),
            payload: b"hello",
        }),
    );
}

/// The broker forwards the retained message with RETAIN 0 to an existing
/// subscription and RETAIN 1 to a new one `[MQTT-3.3.1-8]`, `[MQTT-3.3.1-9]`.
#[test]
fn publishes_from_broker() {
    let qos1 = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "sensors/01/temp",
        packet_id: Some(id(1)),
        payload: JSON,
    };
    check("publish_qos1_to_subscriber", Packet::Publish(qos1));
    check("publish_retained_to_new_subscriber", Packet::Publish(Publish { retain: true, ..qos1 }));
    check(
        "publish_qos0_to_subscriber",
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "sensors/02/temp",
            packet_id: None,
            payload: b"21.5",
        }),
    );
}

#[test]
fn pubacks() {
    check("puback_from_broker", Packet::PubAck(id(1)));
    check("puback_from_client", Packet::PubAck(id(1)));
}

#[test]
fn subscribe_with_three_filters() {
    let topics = [
        SubscribeTopic { filter: "sensors/+/temp", qos: QoS::AtLeastOnce },
        SubscribeTopic { filter: "sensors/#", qos: QoS::AtLeastOnce },
        SubscribeTopic { filter: "cmd/+/set", qos: QoS::AtLeastOnce },
    ];
    check(
        "subscribe_three_filters",
        Packet::Subscribe(Subscribe { packet_id: id(1), topics: List::Items(&topics) }),
    );
    let bytes = fixture("subscribe_three_filters");
    let Packet::Subscribe(s) = packet::decode(&bytes).unwrap().packet else { panic!() };
    assert_eq!(s.topics.len(), 3);
    assert_eq!(s.topics.iter().collect::<Vec<_>>(), topics);
}

#[test]
fn suback_with_three_codes() {
    let codes = [SubscribeReturnCode::Success(QoS::AtLeastOnce); 3];
    check(
        "suback_three_codes",
        Packet::SubAck(SubAck { packet_id: id(1), return_codes: List::Items(&codes) }),
    );
}

#[test]
fn unsubscribe_and_unsuback() {
    let filters = ["sensors/+/temp"];
    check(
        "unsubscribe",
        Packet::Unsubscribe(Unsubscribe { packet_id: id(2), filters: List::Items(&filters) }),
    );
    check("unsuback", Packet::UnsubAck(id(2)));
}

#[test]
fn ping_and_disconnect() {
    check("pingreq", Packet::PingReq);
    check("pingresp", Packet::PingResp);
    check("disconnect", Packet::Disconnect);
}

/// Every fixture is used by a test above, and every one decodes alone.
#[test]
fn every_fixture_is_checked() {
    let source = include_str!("codec_known_answers.rs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "hex") {
            let name = path.file_stem().unwrap().to_str().unwrap();
            assert!(source.contains(&format!("\"{name}\"")), "fixture {name} is not checked");
            let bytes = fixture(name);
            assert_eq!(packet::decode(&bytes).map(|d| d.len), Ok(bytes.len()), "{name}");
            count += 1;
        }
    }
    assert!(count >= 21, "{count} fixtures");
}
