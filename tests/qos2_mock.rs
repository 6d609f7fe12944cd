//! QoS 2 in both directions against the scripted mock transport (issue 11,
//! section 4): every step of the outbound flow (PUBLISH → PUBREC → PUBREL
//! → PUBCOMP) and of the inbound one (method B of section 4.3.3: deliver
//! on PUBLISH, keep the packet identifier until PUBREL), the resend after a
//! reconnect that keeps the session `[MQTT-4.4.0-1]`, the session handover
//! with the receive slots, the clean-session discard, and cancellation of
//! `publish` and `wait_msg` at every await point with the bytes on the wire
//! checked after carrying on.
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock and the slots are handed back for inspection"
)]

mod mock_support;

use mock_support::*;
use umqtt::mock::{MockTransport, Step};
use umqtt::{Client, Connected, Error, ProtocolError, PublishError, QoS, State};
use umqtt::{SubscribeReturnCode, packet::PacketType};

const GRANTED2: [SubscribeReturnCode; 1] = [SubscribeReturnCode::Success(QoS::ExactlyOnce)];

fn nothing(_: &umqtt::Publish<'_>) {}

// ---- outbound ----

/// `publish` at QoS 2 returns only at PUBCOMP, having answered PUBREC
/// with PUBREL; the identifier is free afterwards.
#[test]
fn mqtt_4_3_3_outbound_qos2_publish_returns_at_pubcomp_after_pubrec_pubrel() {
    let mut mock = connected()
        .expect(&publish2("t", b"two", 1, false))
        .send(&pubrec(1))
        .expect(&pubrel(1))
        .send(&pubcomp(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing);
    drive(client.connect(&opts())).unwrap();
    drive(client.publish("t", b"two", QoS::ExactlyOnce, false)).unwrap();
    assert_eq!(client.in_flight(), 0);
    assert!(!client.is_in_flight(id(1)));
    drop(client);
    mock.assert_done();
}

/// Each step on its own: after PUBLISH the message is in flight; PUBREC is
/// answered with PUBREL and the message stays in flight (now awaiting
/// PUBCOMP); only PUBCOMP completes it.
#[test]
fn mqtt_4_3_3_outbound_qos2_each_step_in_turn() {
    let mut mock = connected().expect(&publish2("t", b"x", 1, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing);
    drive(client.connect(&opts())).unwrap();
    let id1 = drive(client.publish_no_wait("t", b"x", QoS::ExactlyOnce, false)).unwrap();
    assert_eq!(id1, id(1));
    assert!(client.is_in_flight(id1));
    // Nothing arrived yet: nothing happens.
    assert!(!drive(client.check_msg()).unwrap());
    assert_eq!(client.in_flight(), 1);

    client.transport_mut().push(Step::Send(pubrec(1)));
    client.transport_mut().push(Step::Expect(pubrel(1)));
    assert!(!drive(client.check_msg()).unwrap(), "a PUBREC is no message");
    assert!(client.transport_mut().remaining().next().is_none(), "PUBREL written");
    assert!(client.is_in_flight(id1), "awaiting PUBCOMP");

    client.transport_mut().push(Step::Send(pubcomp(1)));
    drive(client.wait_acked(id1)).unwrap();
    assert!(!client.is_in_flight(id1));
    assert_eq!(client.state(), State::Connected);
    drop(client);
    mock.assert_done();
}

/// `publish_no_wait` at QoS 2 pipelines in the `max_in_flight` window: a
/// third message waits until a PUBCOMP (not a PUBREC) frees a place.
#[test]
fn qos2_publish_no_wait_pipelines_and_only_pubcomp_opens_the_window() {
    let o = opts().max_in_flight(2);
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&publish2("t", b"1", 1, false))
        .expect(&publish2("t", b"2", 2, false))
        .send(&cat(&[&pubrec(1), &pubrec(2)]))
        .expect(&pubrel(1))
        .expect(&pubrel(2))
        .send(&pubcomp(2))
        .expect(&publish2("t", b"3", 3, false))
        .send(&cat(&[&pubcomp(1), &pubrec(3)]))
        .expect(&pubrel(3))
        .send(&pubcomp(3));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing);
    drive(client.connect(&o)).unwrap();
    for n in 1..=3u16 {
        let got =
            drive(client.publish_no_wait("t", n.to_string().as_bytes(), QoS::ExactlyOnce, false))
                .unwrap();
        assert_eq!(got, id(n));
    }
    drive(client.wait_all_acked()).unwrap();
    assert_eq!(client.in_flight(), 0);
    drop(client);
    mock.assert_done();
}

/// A second PUBREC for a message already released gets its PUBREL again
/// (the broker may not have seen the first), and nothing else changes.
#[test]
fn mqtt_4_3_3_pubrec_again_is_answered_with_pubrel_again() {
    let mut mock = connected()
        .expect(&publish2("t", b"x", 1, false))
        .send(&pubrec(1))
        .expect(&pubrel(1))
        .send(&pubrec(1))
        .expect(&pubrel(1))
        .send(&pubcomp(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing);
    drive(client.connect(&opts())).unwrap();
    drive(client.publish("t", b"x", QoS::ExactlyOnce, false)).unwrap();
    assert_eq!(client.in_flight(), 0);
    drop(client);
    mock.assert_done();
}

/// A PUBCOMP for an identifier not in flight is ignored: the connection
/// goes on and a message in flight is untouched.
#[test]
fn pubcomp_for_unknown_id_is_ignored() {
    let mut mock = connected()
        .expect(&publish2("t", b"x", 1, false))
        .send(&pubcomp(7))
        .send(&pubrec(1))
        .expect(&pubrel(1))
        .send(&pubcomp(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing);
    drive(client.connect(&opts())).unwrap();
    drive(client.publish("t", b"x", QoS::ExactlyOnce, false)).unwrap();
    assert_eq!(client.state(), State::Connected);
    assert_eq!(client.in_flight(), 0);
    drop(client);
    mock.assert_done();
}

/// The wrong acknowledgment for the stage a QoS 2 message is at (PUBCOMP
/// before PUBREC, PUBACK at all) is a protocol error, and the message is
/// kept for resend (the error says so).
#[test]
fn qos2_ack_of_the_wrong_kind_is_a_protocol_error_and_the_message_stays_stored() {
    for (ack, kind) in [(pubcomp(1), PacketType::PubComp), (puback(1), PacketType::PubAck)] {
        let mut mock = connected().expect(&publish2("t", b"x", 1, false)).send(&ack);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing);
        drive(client.connect(&opts())).unwrap();
        let err = drive(client.publish("t", b"x", QoS::ExactlyOnce, false)).unwrap_err();
        assert_eq!(
            err,
            PublishError {
                error: Error::Protocol(ProtocolError::UnexpectedPacket(kind)),
                stored: Some(id(1)),
            }
        );
        assert_eq!(client.state(), State::Failed);
        assert!(client.is_in_flight(id(1)), "kept for resend");
        drop(client);
        mock.assert_done();
    }
}

// ---- inbound ----

/// Method B: the message is delivered on PUBLISH and PUBREC sent; its
/// identifier stays in a slot until PUBREL, which is answered with PUBCOMP
/// and frees the slot.
#[test]
fn mqtt_4_3_3_inbound_qos2_delivered_on_publish_id_kept_until_pubrel() {
    let mut mock = connected().send(&publish2("in", b"p", 5, false)).expect(&pubrec(5));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 4]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    drive(client.connect(&opts())).unwrap();
    drive(client.wait_msg()).unwrap();
    assert_eq!(got.all(), vec![("in".to_owned(), b"p".to_vec(), QoS::ExactlyOnce, false)]);
    assert!(client.transport_mut().remaining().next().is_none(), "PUBREC written");
    drop(client);
    mock.assert_done();
    assert_eq!(slots, [5, 0, 0, 0], "the identifier awaits PUBREL");
}

/// The whole inbound flow with one client: PUBLISH → delivered, PUBREC;
/// PUBREL → PUBCOMP, slot freed.
#[test]
fn mqtt_4_3_3_inbound_qos2_pubrel_is_answered_with_pubcomp_and_frees_the_slot() {
    let mut mock = connected()
        .send(&publish2("in", b"p", 5, false))
        .expect(&pubrec(5))
        .send(&pubrel(5))
        .expect(&pubcomp(5));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 4]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    drive(client.connect(&opts())).unwrap();
    drive(client.wait_msg()).unwrap();
    // PUBREL is no message: check_msg handles it and answers.
    while client.transport_mut().remaining().next().is_some() {
        assert!(!drive(client.check_msg()).unwrap());
    }
    assert_eq!(got.topics(), ["in"]);
    drop(client);
    mock.assert_done();
    assert_eq!(slots, [0; 4], "PUBREL freed the slot");
}

/// A QoS 2 PUBLISH whose identifier awaits PUBREL is a redelivery (DUP or
/// not): answered with PUBREC, not delivered again. After PUBREL the same
/// identifier starts a new message, which is delivered.
#[test]
fn mqtt_4_3_3_2_duplicate_qos2_publish_gets_pubrec_without_redelivery() {
    let mut mock = connected()
        .send(&publish2("in", b"first", 5, false))
        .expect(&pubrec(5))
        .send(&publish2("in", b"first", 5, true))
        .expect(&pubrec(5))
        .send(&publish2("in", b"first", 5, false))
        .expect(&pubrec(5))
        .send(&pubrel(5))
        .expect(&pubcomp(5))
        .send(&publish2("in", b"second", 5, false))
        .expect(&pubrec(5));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    drive(client.connect(&opts())).unwrap();
    drive(client.wait_msg()).unwrap();
    drive(client.wait_msg()).unwrap();
    assert_eq!(client.state(), State::Connected);
    drop(client);
    mock.assert_done();
    assert_eq!(
        got.messages(),
        [("in".to_owned(), b"first".to_vec()), ("in".to_owned(), b"second".to_vec())]
    );
    assert_eq!(slots, [5, 0]);
}

/// A PUBREL for an identifier not awaiting release (PUBREL before any
/// PUBLISH, or a PUBREL resent after its PUBCOMP was lost) is answered
/// with PUBCOMP, and nothing is delivered.
#[test]
fn mqtt_4_3_3_pubrel_for_unknown_id_is_answered_with_pubcomp() {
    let mut mock = connected()
        .send(&pubrel(3))
        .expect(&pubcomp(3))
        .send(&publish2("in", b"p", 3, false))
        .expect(&pubrec(3))
        .send(&pubrel(3))
        .expect(&pubcomp(3))
        .send(&pubrel(3))
        .expect(&pubcomp(3));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    drive(client.connect(&opts())).unwrap();
    while client.transport_mut().remaining().next().is_some() {
        drive(client.check_msg()).unwrap();
    }
    assert_eq!(client.state(), State::Connected);
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics(), ["in"], "the PUBLISH is delivered once, the PUBRELs deliver nothing");
    assert_eq!(slots, [0, 0]);
}

/// Without slots a QoS 2 PUBLISH is a protocol error (the client never
/// asked for QoS 2), and nothing is answered.
#[test]
fn qos2_publish_without_receive_slots_is_a_protocol_error() {
    let mut mock = connected().send(&publish2("in", b"p", 5, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    drive(client.connect(&opts())).unwrap();
    let err = drive(client.wait_msg()).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::QoS2Publish));
    assert!(err.is_fatal());
    assert_eq!(client.state(), State::Failed);
    drop(client);
    mock.assert_done();
    assert!(got.topics().is_empty());
    assert_eq!(mock.written(), connect(&opts()), "no PUBREC");
}

/// Subscribing at QoS 2 needs the slots: without them it is refused
/// before anything is sent; with them the SUBSCRIBE asks for QoS 2.
#[test]
fn qos2_subscribe_without_receive_slots_is_refused_and_sends_nothing() {
    let mut mock = connected();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing);
    drive(client.connect(&opts())).unwrap();
    assert!(matches!(
        drive(client.subscribe("f", QoS::ExactlyOnce)),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(client.state(), State::Connected, "a refused argument does not end the link");
    drop(client);
    mock.assert_done();
    assert_eq!(mock.written(), connect(&opts()));

    let mut mock =
        connected().expect(&subscribe(1, "f", QoS::ExactlyOnce)).send(&suback(1, &GRANTED2));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 1]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing).receive_qos2(&mut slots);
    drive(client.connect(&opts())).unwrap();
    assert_eq!(drive(client.subscribe("f", QoS::ExactlyOnce)).unwrap(), QoS::ExactlyOnce);
    drop(client);
    mock.assert_done();
}

/// When every slot holds an identifier awaiting PUBREL, a new QoS 2
/// PUBLISH fails the connection with `ReceiveSlotsFull` (fatal), unanswered
/// and undelivered, so the broker redelivers it after the reconnect. A
/// redelivery of a stored identifier still works while full.
#[test]
fn receive_slots_full_fails_the_connection_without_pubrec_or_delivery() {
    let mut mock = connected()
        .send(&publish2("in", b"1", 1, false))
        .expect(&pubrec(1))
        .send(&publish2("in", b"2", 2, false))
        .expect(&pubrec(2))
        .send(&publish2("in", b"1", 1, true))
        .expect(&pubrec(1))
        .send(&publish2("in", b"3", 3, false));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    drive(client.connect(&opts())).unwrap();
    drive(client.wait_msg()).unwrap();
    drive(client.wait_msg()).unwrap();
    let err = drive(client.wait_msg()).unwrap_err();
    assert_eq!(err, Error::ReceiveSlotsFull);
    assert!(err.is_fatal());
    assert_eq!(client.state(), State::Failed);
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics(), ["in", "in"]);
    assert_eq!(
        mock.written(),
        cat(&[&connect(&opts()), &pubrec(1), &pubrec(2), &pubrec(1)]),
        "no PUBREC for id 3"
    );
    assert_eq!(slots, [1, 2]);
}

/// An inbound QoS 2 PUBLISH larger than `rx` is drained and answered with
/// PUBREC (not PUBACK), its identifier kept like a delivered one.
#[test]
fn oversize_qos2_publish_is_answered_with_pubrec_and_its_id_kept() {
    let big = [b'x'; 100];
    let mut mock = connected().send(&publish2("in", &big, 4, false)).expect(&pubrec(4));
    let (mut rx, mut tx, mut slots) = ([0u8; 32], [0u8; 64], [0u16; 2]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, nothing).receive_qos2(&mut slots);
    drive(client.connect(&opts())).unwrap();
    assert!(matches!(drive(client.wait_msg()), Err(Error::PacketTooLarge(_))));
    assert_eq!(client.state(), State::Connected);
    drop(client);
    mock.assert_done();
    assert_eq!(slots, [4, 0]);
}

// ---- reconnect, handover, clean session ----

/// Stores, on a connection that then breaks: id 1 (QoS 2, PUBREC received,
/// PUBREL sent), id 2 (QoS 1), id 3 (QoS 2, no PUBREC).
fn lost_connection(o: &umqtt::ConnectOptions<'_>) -> MockTransport {
    MockTransport::new()
        .expect(&connect(o))
        .send(&connack(false))
        .expect(&publish2("t", b"1", 1, false))
        .expect(&publish("t", b"2", Some(2), false))
        .expect(&publish2("t", b"3", 3, false))
        .send(&pubrec(1))
        .expect(&pubrel(1))
        .step(Step::Eof)
}

fn publish_three<T, H>(client: &mut Client<'_, T, H>, o: &umqtt::ConnectOptions<'_>)
where
    T: embedded_io_async::Read + embedded_io_async::Write,
    T::Error: std::fmt::Debug,
    H: FnMut(&umqtt::Publish<'_>),
{
    drive(async {
        client.connect(o).await.unwrap();
        client.publish_no_wait("t", b"1", QoS::ExactlyOnce, false).await.unwrap();
        client.publish_no_wait("t", b"2", QoS::AtLeastOnce, false).await.unwrap();
        client.publish_no_wait("t", b"3", QoS::ExactlyOnce, false).await.unwrap();
        assert!(client.wait_all_acked().await.is_err(), "the link ends");
    });
    assert_eq!(client.in_flight(), 3);
}

/// After a reconnect that keeps the session, in order: the message with
/// PUBREC gets its PUBREL again, never the PUBLISH; the others are resent
/// as PUBLISH with DUP=1 and their identifiers `[MQTT-4.4.0-1]`; then the
/// flows complete.
#[test]
fn mqtt_4_4_0_1_reconnect_resends_pubrel_after_pubrec_and_publish_dup_before() {
    let o = persistent();
    let mut lost = lost_connection(&o);
    let mut again = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(true))
        .expect(&cat(&[
            &pubrel(1),
            &publish("t", b"2", Some(2), true),
            &publish2("t", b"3", 3, true),
        ]))
        .send(&cat(&[&pubcomp(1), &puback(2), &pubrec(3)]))
        .expect(&pubrel(3))
        .send(&pubcomp(3));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
    let mut client = Client::new(&mut lost, &mut rx, &mut tx, nothing);
    publish_three(&mut client, &o);
    let connected = drive(client.reconnect(&mut again, &o)).unwrap();
    assert_eq!(connected, Connected { session_present: true, discarded: 0 });
    drive(client.wait_all_acked()).unwrap();
    assert_eq!(client.in_flight(), 0);
    drop(client);
    lost.assert_done();
    again.assert_done();
}

/// The same over a session handover (`into_session` / `with_session`, as
/// a TLS reconnect does), with inbound QoS 2 state too: the slots passed
/// to the next client keep the delivered id, so the broker's redelivery is
/// acknowledged and not delivered twice.
#[test]
fn mqtt_4_4_0_1_handover_keeps_outbound_pubrel_state_and_inbound_slots() {
    let o = persistent();
    // The broker delivered id 9 and may not have seen its PUBREC.
    let mut lost = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .send(&publish2("in", b"once", 9, false))
        .expect(&pubrec(9))
        .expect(&publish2("t", b"1", 1, false))
        .send(&pubrec(1))
        .expect(&pubrel(1))
        .step(Step::Eof);
    let mut again = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(true))
        .expect(&pubrel(1))
        .send(&publish2("in", b"once", 9, true))
        .expect(&pubrec(9))
        .send(&pubcomp(1))
        .send(&pubrel(9))
        .expect(&pubcomp(9))
        .send(&publish("after", b"", None, false));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 128], [0u16; 4]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut lost, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    drive(async {
        client.connect(&o).await.unwrap();
        client.wait_msg().await.unwrap();
        client.publish_no_wait("t", b"1", QoS::ExactlyOnce, false).await.unwrap();
        assert!(client.wait_all_acked().await.is_err());
    });
    let session = client.into_session();
    assert_eq!(session.in_flight(), 1);
    assert_eq!(slots, [9, 0, 0, 0]);

    let (got2, handler) = recorder();
    let mut client = Client::with_session(&mut again, &mut rx, &mut tx, handler, session)
        .receive_qos2(&mut slots);
    drive(client.connect(&o)).unwrap();
    drive(client.wait_msg()).unwrap(); // "after": the redelivered 9 is not delivered
    drive(client.wait_all_acked()).unwrap();
    drop(client);
    lost.assert_done();
    again.assert_done();
    assert_eq!(got.topics(), ["in"]);
    assert_eq!(got2.topics(), ["after"]);
    assert_eq!(slots, [0; 4]);
}

/// A clean-session reconnect discards the stored QoS 1 and QoS 2 messages
/// `[MQTT-3.1.2-6]` and says how many (`Connected::discarded`); they are not
/// resent and no longer in flight. It forgets the inbound ids awaiting
/// PUBREL too, so a new message with such an id is delivered.
#[test]
fn mqtt_3_1_2_6_clean_session_discards_stored_qos2_and_counts_them() {
    let o = opts().clean_session(false);
    let mut lost = lost_connection(&o);
    let mut fresh = MockTransport::new()
        .expect(&connect(&opts()))
        .send(&connack(false))
        .send(&publish2("in", b"new", 7, false))
        .expect(&pubrec(7));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 128], [7u16, 0]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut lost, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    publish_three(&mut client, &o);
    let connected = drive(client.reconnect(&mut fresh, &opts())).unwrap();
    assert_eq!(connected, Connected { session_present: false, discarded: 3 });
    assert_eq!(client.in_flight(), 0);
    for n in 1..=3 {
        assert!(!client.is_in_flight(id(n)));
    }
    drive(client.wait_msg()).unwrap();
    drop(client);
    fresh.assert_done();
    assert_eq!(fresh.written(), cat(&[&connect(&opts()), &pubrec(7)]), "nothing resent");
    assert_eq!(got.topics(), ["in"]);
    assert_eq!(slots, [7, 0]);
}

// ---- cancellation ----

/// Handles whatever the script still sends, with `check_msg`.
fn drain<H: FnMut(&umqtt::Publish<'_>)>(client: &mut MockClient<'_, H>) {
    for _ in 0..10_000 {
        if client.transport_mut().remaining().next().is_none() {
            return;
        }
        drive(client.check_msg()).unwrap();
    }
    panic!("the script never finished");
}

fn expected_bytes(m: &MockTransport) -> Vec<u8> {
    m.remaining()
        .filter_map(|s| match s {
            Step::Expect(b) => Some(b.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

/// `publish` at QoS 2 dropped after k polls, k = 0, 1, 2, ... (the mock
/// returns `Pending` before every read, write and flush and reads one byte
/// at a time), while an inbound QoS 2 message crosses it. A call dropped
/// after its first poll has stored its message: the next calls finish the
/// flow (PUBREL after PUBREC, PUBCOMP taken), never tearing or repeating a
/// packet; one never polled is issued again. Each time: the bytes on the
/// wire are exactly the script, the inbound message is delivered once,
/// nothing stays in flight and no slot stays taken.
#[test]
fn cancel_publish_qos2_at_every_await_point() {
    for k in 0..2_000 {
        let mut mock = connected()
            .expect(&publish2("t", b"two", 1, false))
            .send(&publish2("in", b"p", 9, false))
            .expect(&pubrec(9))
            .send(&pubrec(1))
            .expect(&pubrel(1))
            .send(&pubrel(9))
            .expect(&pubcomp(9))
            .send(&pubcomp(1))
            .send(&publish("after", b"", None, false))
            .yield_every_call()
            .max_read(1);
        let expected = expected_bytes(&mock);
        let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
        let (got, handler) = recorder();
        let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
        drive(client.connect(&opts())).unwrap();
        let finished = match poll_then_drop(client.publish("t", b"two", QoS::ExactlyOnce, false), k)
        {
            Some(result) => {
                result.unwrap_or_else(|e| panic!("k={k}: {e:?}"));
                true
            }
            None if k == 0 => {
                drive(client.publish("t", b"two", QoS::ExactlyOnce, false)).unwrap();
                false
            }
            None => {
                assert!(client.is_in_flight(id(1)), "k={k}: committed on the first poll");
                false
            }
        };
        drain(&mut client);
        assert_eq!(client.state(), State::Connected, "k={k}");
        assert_eq!(client.in_flight(), 0, "k={k}");
        drop(client);
        mock.assert_done();
        assert_eq!(mock.written(), expected, "k={k}: bytes on the wire");
        assert_eq!(got.topics(), ["in", "after"], "k={k}: deliveries");
        assert_eq!(slots, [0, 0], "k={k}");
        if finished {
            assert!(k > 2, "too few await points ({k})");
            return;
        }
    }
    panic!("publish never finished");
}

/// `wait_msg` for an inbound QoS 2 message dropped after k polls: the
/// message is delivered exactly once (called again only if the handler had
/// not run), PUBREC goes out whole, PUBREL is answered with PUBCOMP, and the
/// next message arrives intact (no received byte lost).
#[test]
fn cancel_wait_msg_qos2_at_every_await_point() {
    for k in 0..2_000 {
        let mut mock = connected()
            .send(&publish2("in", b"payload", 9, false))
            .expect(&pubrec(9))
            .send(&pubrel(9))
            .expect(&pubcomp(9))
            .send(&publish2("after", b"", 10, false))
            .expect(&pubrec(10))
            .yield_every_call()
            .max_read(1);
        let expected = expected_bytes(&mock);
        let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
        let (got, handler) = recorder();
        let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
        drive(client.connect(&opts())).unwrap();
        let finished = match poll_then_drop(client.wait_msg(), k) {
            Some(result) => {
                result.unwrap_or_else(|e| panic!("k={k}: {e:?}"));
                true
            }
            None => {
                if got.topics().is_empty() {
                    drive(client.wait_msg()).unwrap_or_else(|e| panic!("k={k}: {e:?}"));
                }
                false
            }
        };
        drain(&mut client);
        assert_eq!(client.state(), State::Connected, "k={k}");
        drop(client);
        mock.assert_done();
        assert_eq!(mock.written(), expected, "k={k}: bytes on the wire");
        assert_eq!(got.topics(), ["in", "after"], "k={k}: deliveries");
        assert_eq!(slots, [10, 0], "k={k}: 9 released, 10 awaiting PUBREL");
        if finished {
            assert!(k > 2, "too few await points ({k})");
            return;
        }
    }
    panic!("wait_msg never finished");
}

/// A `reconnect` dropped after k polls while it resends a PUBREL and a
/// PUBLISH DUP; a second `reconnect` on a fresh transport resends both again,
/// whole and in order (PUBREL, never the PUBLISH, for the message with
/// PUBREC), and the flows complete.
#[test]
fn cancel_reconnect_during_qos2_resend_then_reconnect_resends_pubrel_and_publish_dup() {
    let o = persistent();
    let resend =
        cat(&[&pubrel(1), &publish("t", b"2", Some(2), true), &publish2("t", b"3", 3, true)]);
    let script = |done: bool| {
        let m = MockTransport::new().expect(&connect(&o)).send(&connack(true)).expect(&resend);
        if done {
            m.send(&cat(&[&pubcomp(1), &puback(2), &pubrec(3)]))
                .expect(&pubrel(3))
                .send(&pubcomp(3))
        } else {
            m
        }
    };
    for k in 0..2_000 {
        let mut lost = lost_connection(&o);
        let mut first = script(false).yield_every_call().max_read(1);
        let mut second = script(true).yield_every_call().max_read(1);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
        let mut client = Client::new(&mut lost, &mut rx, &mut tx, nothing);
        publish_three(&mut client, &o);
        let finished = poll_then_drop(client.reconnect(&mut first, &o), k).is_some();
        drive(client.reconnect(&mut second, &o)).unwrap();
        drive(client.wait_all_acked()).unwrap();
        assert_eq!(client.in_flight(), 0, "k={k}");
        drop(client);
        second.assert_done();
        let sent = first.written().to_vec();
        assert!(cat(&[&connect(&o), &resend]).starts_with(&sent), "k={k}: torn or extra bytes");
        if finished {
            first.assert_done();
            assert!(k > 2);
            return;
        }
    }
    panic!("reconnect never finished");
}

/// Regression: a CONNACK without session present (the broker lost or never
/// had the session, although `clean_session` was false) means no PUBREL
/// will come for the ids the slots hold; they must be forgotten, or a new
/// message of the new session reusing such an id would be taken for a
/// redelivery and lost.
#[test]
fn connack_without_session_present_forgets_ids_awaiting_pubrel() {
    let mut mock = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .send(&publish2("in", b"new", 5, false))
        .expect(&pubrec(5));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [5u16, 6]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    let connected = drive(client.connect(&persistent())).unwrap();
    assert!(!connected.session_present);
    drive(client.wait_msg()).unwrap();
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics(), ["in"], "the new message is delivered");
    assert_eq!(slots, [5, 0]);
}

/// With the session present, the slots are kept: a redelivery after the
/// reconnect is recognised.
#[test]
fn connack_with_session_present_keeps_ids_awaiting_pubrel() {
    let mut mock = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .send(&publish2("in", b"old", 5, true))
        .expect(&pubrec(5))
        .send(&publish("after", b"", None, false));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [5u16, 6]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    drive(client.connect(&persistent())).unwrap();
    drive(client.wait_msg()).unwrap();
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics(), ["after"]);
    assert_eq!(slots, [5, 6]);
}

/// With every slot taken, a new QoS 2 PUBLISH that arrived together with
/// the ones before it fails the connection only after their PUBRECs are
/// written: the broker then has them and answers the reconnect with
/// PUBRELs, which free the slots, instead of the same PUBLISHes, which
/// would fill them again after every reconnect (a livelock).
#[test]
fn receive_slots_full_fails_only_after_the_queued_pubrecs_are_written() {
    let burst = cat(&[&publish2("in", b"1", 1, false), &publish2("in", b"2", 2, false)]);
    let mut mock = connected().send(&burst).expect(&pubrec(1));
    let (mut rx, mut tx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 1]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler).receive_qos2(&mut slots);
    drive(client.connect(&opts())).unwrap();
    drive(client.wait_msg()).unwrap();
    let err = drive(client.wait_msg()).unwrap_err();
    assert_eq!(err, Error::ReceiveSlotsFull);
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics(), ["in"]);
    assert_eq!(mock.written(), cat(&[&connect(&opts()), &pubrec(1)]), "PUBREC 1 written first");
    assert_eq!(slots, [1]);
}
