//! What people read in logs: every codec error, refusal code, topic and
//! list renders as distinct, meaningful text, and the small conveniences
//! of the public types agree with each other.

use std::collections::HashSet;

use umqtt::QoS;
use umqtt::packet::{
    self, ConnectReturnCode, DecodeError, EncodeError, List, Malformed, Packet, SubscribeReturnCode,
};
use umqtt::session::PacketIds;
use umqtt::topic::{TopicFilter, TopicName};

const ALL_MALFORMED: [Malformed; 29] = [
    Malformed::ReservedPacketType,
    Malformed::InvalidFlags,
    Malformed::InvalidQoS,
    Malformed::DupWithQoS0,
    Malformed::RemainingLengthTooLong,
    Malformed::RemainingLengthNotMinimal,
    Malformed::PacketTooLarge,
    Malformed::Truncated,
    Malformed::TrailingBytes,
    Malformed::InvalidUtf8,
    Malformed::NullCharacter,
    Malformed::StringTooLong,
    Malformed::ZeroPacketId,
    Malformed::PacketIdMismatch,
    Malformed::InvalidProtocolName,
    Malformed::UnsupportedProtocolLevel,
    Malformed::ConnectReservedFlag,
    Malformed::WillFlagsWithoutWill,
    Malformed::PasswordWithoutUsername,
    Malformed::EmptyClientIdWithSession,
    Malformed::ConnAckReservedFlags,
    Malformed::InvalidConnectReturnCode,
    Malformed::SessionPresentWithRefusal,
    Malformed::EmptyTopic,
    Malformed::WildcardInTopicName,
    Malformed::InvalidTopicFilter,
    Malformed::NoTopicFilters,
    Malformed::SubscribeReservedBits,
    Malformed::InvalidSubAckReturnCode,
];

#[test]
fn every_malformed_reason_has_its_own_message() {
    let texts: HashSet<String> = ALL_MALFORMED.iter().map(|m| m.to_string()).collect();
    assert_eq!(texts.len(), ALL_MALFORMED.len(), "two reasons share a message");
    for m in ALL_MALFORMED {
        assert_eq!(m.to_string(), m.as_str());
        assert!(!m.as_str().is_empty());
    }
}

#[test]
fn decode_and_encode_errors_name_their_reason() {
    let incomplete = DecodeError::Incomplete { needed: 3 }.to_string();
    assert!(incomplete.contains('3') && incomplete.contains("incomplete"), "{incomplete}");
    let malformed = DecodeError::Malformed(Malformed::InvalidQoS).to_string();
    assert!(malformed.contains(Malformed::InvalidQoS.as_str()), "{malformed}");
    let small = EncodeError::BufferTooSmall { needed: 42 }.to_string();
    assert!(small.contains("42"), "{small}");
    let invalid = EncodeError::Invalid(Malformed::EmptyTopic).to_string();
    assert!(invalid.contains(Malformed::EmptyTopic.as_str()), "{invalid}");
    // As `std::error::Error` (feature `std`).
    let boxed: Box<dyn std::error::Error> = Box::new(DecodeError::Malformed(Malformed::Truncated));
    assert!(boxed.to_string().contains("runs past"));
    let boxed: Box<dyn std::error::Error> = Box::new(EncodeError::Invalid(Malformed::Truncated));
    assert!(boxed.to_string().contains("runs past"));
}

#[test]
fn connect_return_codes_read_as_the_specification_names_them() {
    let codes = [
        (0u8, "connection accepted"),
        (1, "unacceptable protocol version"),
        (2, "identifier rejected"),
        (3, "server unavailable"),
        (4, "bad user name or password"),
        (5, "not authorized"),
    ];
    for (byte, text) in codes {
        let bytes = [0x20, 0x02, 0x00, byte];
        let ack = packet::decode(&bytes).unwrap();
        let Packet::ConnAck(ack) = ack.packet else { panic!("not a CONNACK") };
        assert_eq!(ack.code as u8, byte);
        assert_eq!(ack.code.as_str(), text);
        assert!(ack.code.to_string().contains(text));
    }
    assert_eq!(ConnectReturnCode::NotAuthorized.as_str(), "not authorized");
}

#[test]
fn topics_display_as_given() {
    let name = TopicName::new("sensors/01/temp").unwrap();
    assert_eq!(name.to_string(), "sensors/01/temp");
    let filter = TopicFilter::new("sensors/+/temp").unwrap();
    assert_eq!(filter.to_string(), "sensors/+/temp");
    assert_eq!(filter.as_str(), "sensors/+/temp");
    assert!(filter.matches(&name));
}

#[test]
fn lists_count_the_same_given_or_decoded() {
    let given = [SubscribeReturnCode::Success(QoS::AtLeastOnce), SubscribeReturnCode::Failure];
    let items: List<'_, SubscribeReturnCode> = List::Items(&given);
    assert_eq!(items.len(), 2);
    assert!(!items.is_empty());
    assert!(List::<SubscribeReturnCode>::Items(&[]).is_empty());
    let decoded = packet::decode(&[0x90, 0x04, 0x00, 0x01, 0x01, 0x80]).unwrap();
    let Packet::SubAck(ack) = decoded.packet else { panic!("not a SUBACK") };
    assert_eq!(ack.return_codes.len(), 2);
    assert!(!ack.return_codes.is_empty());
    assert_eq!(ack.return_codes, items);
    assert_eq!(format!("{:?}", ack.return_codes), format!("{:?}", given));
}

#[test]
fn packet_ids_default_starts_at_one() {
    let mut ids = PacketIds::default();
    assert_eq!(ids.allocate(|_| false).map(|id| id.get()), Some(1));
    assert_eq!(PacketIds::default(), PacketIds::new());
}
