//! The client against the scripted mock transport: the conversations a
//! real broker cannot produce on demand. Fragmented reads, PUBLISH packets
//! interleaved before every kind of acknowledgment, acknowledgments for
//! other packet identifiers, refusals, packet identifiers on the wire,
//! one write and one flush per packet, and the connection state.
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock is handed back for inspection"
)]

mod mock_support;

use mock_support::*;
use umqtt::mock::{MockTransport, Step};
use umqtt::packet::{ConnectReturnCode, PacketType};
use umqtt::{Client, Error, ProtocolError, QoS, State, SubscribeReturnCode, SubscribeTopic};

const GRANTED_1: SubscribeReturnCode = SubscribeReturnCode::Success(QoS::AtLeastOnce);

#[test]
fn mqtt_4_3_2_2_publish_qos1_delivers_interleaved_publish_before_puback() {
    let mut mock = connected()
        .expect(&publish("t", b"x", Some(1), false))
        .send(&publish("a/b", b"hi", Some(9), false))
        .expect(&puback(9))
        .send(&puback(1))
        .max_read(1);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    drive(async {
        client.connect(&opts()).await.unwrap();
        client.publish("t", b"x", QoS::AtLeastOnce, false).await.unwrap();
        assert_eq!(client.in_flight(), 0);
        assert_eq!(client.state(), State::Connected);
    });
    drop(client);
    mock.assert_done();
    assert_eq!(got.messages(), [("a/b".to_owned(), b"hi".to_vec())]);
}

/// Every call of the API over a transport that returns one byte per read.
#[test]
fn every_call_works_with_one_byte_reads() {
    let mut mock = connected()
        .expect(&subscribe(1, "s/#", QoS::AtLeastOnce))
        .send(&suback(1, &[GRANTED_1]))
        .expect(&publish("p0", b"zero", None, false))
        .expect(&publish("p1", b"one", Some(2), false))
        .send(&puback(2))
        .expect(&unsubscribe(3, "s/#"))
        .send(&unsuback(3))
        .expect(&PINGREQ)
        .send(&PINGRESP)
        .send(&publish("s/in1", b"first", Some(77), false))
        .expect(&puback(77))
        .send(&publish("s/in0", b"second", None, false))
        .expect(&DISCONNECT)
        .max_read(1);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    drive(async {
        assert!(!client.connect(&opts()).await.unwrap().session_present);
        assert_eq!(client.subscribe("s/#", QoS::AtLeastOnce).await, Ok(QoS::AtLeastOnce));
        client.publish("p0", b"zero", QoS::AtMostOnce, false).await.unwrap();
        client.publish("p1", b"one", QoS::AtLeastOnce, false).await.unwrap();
        client.unsubscribe("s/#").await.unwrap();
        client.ping().await.unwrap();
        client.wait_msg().await.unwrap();
        let mut polls = 0;
        while !client.check_msg().await.unwrap() {
            polls += 1;
            assert!(polls < 100, "check_msg never delivered the message");
        }
        client.disconnect().await.unwrap();
    });
    assert_eq!(client.state(), State::Disconnected);
    drop(client);
    mock.assert_done();
    assert_eq!(
        got.messages(),
        [("s/in1".to_owned(), b"first".to_vec()), ("s/in0".to_owned(), b"second".to_vec())]
    );
}

/// The incoming traffic a broker may send while the client waits for an
/// acknowledgment: QoS 0 and QoS 1 PUBLISH packets, the latter acknowledged
/// in the order they arrived `[MQTT-4.6.0-2]`.
fn interleaved(one_segment: bool) -> MockTransport {
    let (p0, p7, p8) = (
        publish("i/0", b"q0", None, false),
        publish("i/7", b"q1a", Some(7), false),
        publish("i/8", b"q1b", Some(8), false),
    );
    let mock = MockTransport::new();
    if one_segment {
        // All three in one read: both PUBACKs go out before the next read.
        mock.send(&cat(&[&p0, &p7, &p8])).expect(&puback(7)).expect(&puback(8))
    } else {
        // One byte per read: each PUBACK goes out before the next byte is read.
        mock.send(&p0).send(&p7).expect(&puback(7)).send(&p8).expect(&puback(8))
    }
}

fn append(mut base: MockTransport, more: MockTransport) -> MockTransport {
    for step in more.remaining() {
        base = base.step(step.clone());
    }
    base
}

const INTERLEAVED_TOPICS: [&str; 3] = ["i/0", "i/7", "i/8"];

type Handler = Box<dyn FnMut(&umqtt::Publish<'_>)>;
type Call =
    for<'c> fn(&'c mut MockClient<'_, Handler>) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'c>>;

#[test]
fn mqtt_4_6_0_2_publishes_before_every_ack_are_delivered_and_acknowledged_in_order() {
    for one_segment in [true, false] {
        // (name, what the client writes, the acknowledgment, the call)
        let cases: [(&str, Vec<u8>, Vec<u8>, Call); 4] = [
            ("puback", publish("t", b"x", Some(1), false), puback(1), |c| {
                Box::pin(async { c.publish("t", b"x", QoS::AtLeastOnce, false).await.unwrap() })
            }),
            (
                "suback",
                subscribe(1, "f", QoS::AtMostOnce),
                suback(1, &[SubscribeReturnCode::Success(QoS::AtMostOnce)]),
                |c| {
                    Box::pin(async {
                        assert_eq!(c.subscribe("f", QoS::AtMostOnce).await, Ok(QoS::AtMostOnce))
                    })
                },
            ),
            ("unsuback", unsubscribe(1, "f"), unsuback(1), |c| {
                Box::pin(async { c.unsubscribe("f").await.unwrap() })
            }),
            ("pingresp", PINGREQ.to_vec(), PINGRESP.to_vec(), |c| {
                Box::pin(async { c.ping().await.unwrap() })
            }),
        ];
        for (name, request, ack, call) in cases {
            let mut mock =
                append(connected().expect(&request), interleaved(one_segment)).send(&ack);
            if !one_segment {
                mock = mock.max_read(1);
            }
            let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
            let (got, handler) = recorder();
            let handler: Handler = Box::new(handler);
            let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
            drive(async {
                client.connect(&opts()).await.unwrap();
                call(&mut client).await;
                assert_eq!(client.state(), State::Connected, "{name}");
            });
            drop(client);
            mock.assert_done();
            assert_eq!(got.topics(), INTERLEAVED_TOPICS, "{name}, one segment: {one_segment}");
        }
    }
}

#[test]
fn mqtt_3_2_0_1_publish_before_connack_is_a_protocol_error() {
    let mut mock =
        MockTransport::new().expect(&connect(&opts())).send(&publish("early", b"", None, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    let err = drive(client.connect(&opts())).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::UnexpectedPacket(PacketType::Publish)));
    assert!(err.is_fatal());
    assert_eq!(client.state(), State::Failed);
    drop(client);
    assert!(got.all().is_empty());
}

#[test]
fn mqtt_2_3_1_6_puback_for_an_unknown_packet_id_is_ignored() {
    let mut mock =
        connected().expect(&publish("t", b"x", Some(1), false)).send(&puback(42)).send(&puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        client.publish("t", b"x", QoS::AtLeastOnce, false).await.unwrap();
    });
    assert_eq!(client.state(), State::Connected);
    assert_eq!(client.in_flight(), 0);
    drop(client);
    mock.assert_done();
}

#[test]
fn mqtt_2_3_1_6_pubacks_out_of_order_complete_the_right_publishes() {
    let mut mock = connected()
        .expect(&publish("t", b"1", Some(1), false))
        .expect(&publish("t", b"2", Some(2), false))
        .expect(&publish("t", b"3", Some(3), false))
        .send(&cat(&[&puback(3), &puback(1)]))
        .send(&puback(2));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        let ids = [
            client.publish_no_wait("t", b"1", QoS::AtLeastOnce, false).await.unwrap(),
            client.publish_no_wait("t", b"2", QoS::AtLeastOnce, false).await.unwrap(),
            client.publish_no_wait("t", b"3", QoS::AtLeastOnce, false).await.unwrap(),
        ];
        assert_eq!(ids, [id(1), id(2), id(3)]);
        assert_eq!(client.in_flight(), 3);
        client.wait_acked(id(1)).await.unwrap();
        assert!(!client.is_in_flight(id(1)));
        assert!(!client.is_in_flight(id(3)));
        assert!(client.is_in_flight(id(2)));
        client.wait_all_acked().await.unwrap();
        assert_eq!(client.in_flight(), 0);
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn mqtt_2_3_1_6_stale_suback_and_unsuback_are_ignored() {
    let mut mock = connected()
        .expect(&subscribe(1, "f", QoS::AtLeastOnce))
        .send(&suback(9, &[SubscribeReturnCode::Failure]))
        .send(&unsuback(1))
        .send(&suback(1, &[GRANTED_1]))
        .expect(&unsubscribe(2, "f"))
        .send(&unsuback(1))
        .send(&suback(2, &[GRANTED_1]))
        .send(&unsuback(2));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        assert_eq!(client.subscribe("f", QoS::AtLeastOnce).await, Ok(QoS::AtLeastOnce));
        client.unsubscribe("f").await.unwrap();
    });
    assert_eq!(client.state(), State::Connected);
    drop(client);
    mock.assert_done();
}

#[test]
fn connack_refusal_codes_1_to_5_are_refused_errors() {
    let codes = [
        ConnectReturnCode::UnacceptableProtocolVersion,
        ConnectReturnCode::IdentifierRejected,
        ConnectReturnCode::ServerUnavailable,
        ConnectReturnCode::BadUserNameOrPassword,
        ConnectReturnCode::NotAuthorized,
    ];
    for (n, code) in codes.into_iter().enumerate() {
        assert_eq!(code as u8, n as u8 + 1);
        let mut mock =
            MockTransport::new().expect(&connect(&opts())).send(&connack_code(false, code));
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
        let err = drive(client.connect(&opts())).unwrap_err();
        assert_eq!(err, Error::Refused(code));
        assert!(err.is_fatal());
        assert_eq!(client.state(), State::Failed);
        // Nothing may be sent on a refused connection.
        assert_eq!(
            drive(client.publish("t", b"", QoS::AtMostOnce, false)),
            Err(Error::NotConnected.into())
        );
        drop(client);
        mock.assert_done();
    }
}

#[test]
fn suback_failure_is_subscribe_refused_and_subscribe_many_returns_each_code() {
    let topics = [
        SubscribeTopic { filter: "a", qos: QoS::AtLeastOnce },
        SubscribeTopic { filter: "b", qos: QoS::AtLeastOnce },
        SubscribeTopic { filter: "c", qos: QoS::AtMostOnce },
    ];
    let codes =
        [GRANTED_1, SubscribeReturnCode::Failure, SubscribeReturnCode::Success(QoS::AtMostOnce)];
    let many =
        umqtt::mock::packet_bytes(&umqtt::packet::Packet::Subscribe(umqtt::packet::Subscribe {
            packet_id: id(2),
            topics: umqtt::packet::List::Items(&topics),
        }));
    let mut mock = connected()
        .expect(&subscribe(1, "no/#", QoS::AtLeastOnce))
        .send(&suback(1, &[SubscribeReturnCode::Failure]))
        .expect(&many)
        .send(&suback(2, &codes))
        .expect(&subscribe(3, "downgraded", QoS::AtLeastOnce))
        .send(&suback(3, &[SubscribeReturnCode::Success(QoS::AtMostOnce)]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        let err = client.subscribe("no/#", QoS::AtLeastOnce).await.unwrap_err();
        assert_eq!(err, Error::SubscribeRefused);
        assert!(!err.is_fatal());
        assert_eq!(client.state(), State::Connected);
        assert_eq!(client.subscribe_many(&topics).await.unwrap().as_slice(), codes);
        assert_eq!(client.subscribe("downgraded", QoS::AtLeastOnce).await, Ok(QoS::AtMostOnce));
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn suback_with_a_wrong_number_of_codes_is_a_protocol_error() {
    // [MQTT-3.8.4-5]: one return code per topic filter.
    let mut mock = connected()
        .expect(&subscribe(1, "f", QoS::AtLeastOnce))
        .send(&suback(1, &[GRANTED_1, GRANTED_1]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        let err = client.subscribe("f", QoS::AtLeastOnce).await.unwrap_err();
        assert_eq!(err, Error::Protocol(ProtocolError::SubAckCountMismatch));
    });
    assert_eq!(client.state(), State::Failed);
}

#[test]
fn mqtt_2_3_1_2_packet_ids_on_the_wire_count_up_across_packet_types() {
    let mut mock = connected()
        .expect(&publish("t", b"", Some(1), false))
        .send(&puback(1))
        .expect(&subscribe(2, "f", QoS::AtLeastOnce))
        .send(&suback(2, &[GRANTED_1]))
        .expect(&publish("t", b"q0", None, false)) // [MQTT-2.3.1-5]: QoS 0 has no id
        .expect(&unsubscribe(3, "f"))
        .send(&unsuback(3))
        .expect(&publish("t", b"", Some(4), false))
        .expect(&publish("t", b"", Some(5), false))
        .send(&cat(&[&puback(4), &puback(5)]))
        .expect(&publish("t", b"", Some(6), false))
        .send(&puback(6));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        client.publish("t", b"", QoS::AtLeastOnce, false).await.unwrap();
        client.subscribe("f", QoS::AtLeastOnce).await.unwrap();
        client.publish("t", b"q0", QoS::AtMostOnce, false).await.unwrap();
        client.unsubscribe("f").await.unwrap();
        assert_eq!(client.publish_no_wait("t", b"", QoS::AtLeastOnce, false).await, Ok(id(4)));
        assert_eq!(client.publish_no_wait("t", b"", QoS::AtLeastOnce, false).await, Ok(id(5)));
        client.wait_all_acked().await.unwrap();
        client.publish("t", b"", QoS::AtLeastOnce, false).await.unwrap();
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn every_packet_is_written_with_one_write_and_one_flush() {
    let mut mock = connected()
        .expect(&subscribe(1, "f", QoS::AtLeastOnce))
        .send(&suback(1, &[GRANTED_1]))
        .expect(&publish("t", &[7; 40], None, false))
        .expect(&publish("t", &[8; 40], Some(2), false))
        .send(&puback(2))
        .send(&publish("in", b"m", Some(5), false))
        .expect(&puback(5))
        .expect(&unsubscribe(3, "f"))
        .send(&unsuback(3))
        .expect(&PINGREQ)
        .send(&PINGRESP)
        .expect(&DISCONNECT);
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        client.subscribe("f", QoS::AtLeastOnce).await.unwrap();
        client.publish("t", &[7; 40], QoS::AtMostOnce, false).await.unwrap();
        client.publish("t", &[8; 40], QoS::AtLeastOnce, false).await.unwrap();
        client.wait_msg().await.unwrap();
        client.unsubscribe("f").await.unwrap();
        client.ping().await.unwrap();
        client.disconnect().await.unwrap();
    });
    drop(client);
    mock.assert_done();
    // CONNECT, SUBSCRIBE, PUBLISH, PUBLISH, PUBACK, UNSUBSCRIBE, PINGREQ, DISCONNECT
    assert_eq!(mock.write_calls(), (8, 8));
}

#[test]
fn state_goes_disconnected_connecting_connected_disconnected() {
    // The first broker never answers CONNECT; the second one does.
    let mut mock1 = MockTransport::new().expect(&connect(&opts()));
    let mut mock2 = connected().expect(&DISCONNECT);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    assert_eq!(client.state(), State::Disconnected);
    // CONNECT written, no CONNACK: the call waits; give up on it.
    assert_eq!(poll_then_drop(client.connect(&opts()), 10), None);
    assert_eq!(client.state(), State::Connecting);
    assert_eq!(
        drive(client.publish("t", b"", QoS::AtMostOnce, false)),
        Err(Error::NotConnected.into())
    );
    drive(client.reconnect(&mut mock2, &opts())).unwrap();
    assert_eq!(client.state(), State::Connected);
    drive(client.disconnect()).unwrap();
    assert_eq!(client.state(), State::Disconnected);
    drop(client);
    mock1.assert_done();
    mock2.assert_done();
}

#[test]
fn state_becomes_failed_on_a_broken_connection_and_connected_after_reconnect() {
    let mut mock1 = connected().step(Step::Eof);
    let mut mock2 = connected();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        assert_eq!(client.wait_msg().await, Err(Error::ConnectionClosed));
        assert_eq!(client.state(), State::Failed);
        assert_eq!(client.ping().await, Err(Error::NotConnected));
        assert!(!client.reconnect(&mut mock2, &opts()).await.unwrap().session_present);
        assert_eq!(client.state(), State::Connected);
    });
    drop(client);
    mock2.assert_done();
}

#[test]
fn mqtt_3_1_0_1_calls_before_connect_are_not_connected_and_send_nothing() {
    // An empty script: any write fails the test.
    let mut mock = MockTransport::new();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        assert_eq!(
            client.publish("t", b"", QoS::AtMostOnce, false).await,
            Err(Error::NotConnected.into())
        );
        assert_eq!(
            client.publish("t", b"", QoS::AtLeastOnce, false).await,
            Err(Error::NotConnected.into())
        );
        assert_eq!(
            client.publish_no_wait("t", b"", QoS::AtLeastOnce, false).await,
            Err(Error::NotConnected.into())
        );
        assert_eq!(client.subscribe("f", QoS::AtMostOnce).await, Err(Error::NotConnected));
        assert_eq!(client.subscribe_many(&[]).await, Err(Error::NotConnected));
        assert_eq!(client.unsubscribe("f").await, Err(Error::NotConnected));
        assert_eq!(client.unsubscribe_many(&["f"]).await, Err(Error::NotConnected));
        assert_eq!(client.wait_msg().await, Err(Error::NotConnected));
        assert_eq!(client.check_msg().await, Err(Error::NotConnected));
        assert_eq!(client.ping().await, Err(Error::NotConnected));
        assert_eq!(client.disconnect().await, Err(Error::NotConnected));
    });
    assert_eq!(client.state(), State::Disconnected);
    drop(client);
    assert!(mock.written().is_empty());
}

#[test]
fn mqtt_3_14_4_2_nothing_is_sent_after_disconnect() {
    let mut mock = connected().expect(&DISCONNECT);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        client.disconnect().await.unwrap();
        assert_eq!(
            client.publish("t", b"", QoS::AtMostOnce, false).await,
            Err(Error::NotConnected.into())
        );
        assert_eq!(client.ping().await, Err(Error::NotConnected));
        assert_eq!(client.disconnect().await, Err(Error::NotConnected));
    });
    drop(client);
    mock.assert_done();
}

/// A QoS 1 message delivered by `wait_msg` is acknowledged before the
/// call returns, so an application that then stops calling the client
/// (deep sleep, a long computation) does not leave the broker waiting and
/// redelivering `[MQTT-4.3.2-2]`.
#[test]
fn mqtt_4_3_2_2_wait_msg_sends_the_puback_before_returning() {
    let mut mock = connected().send(&publish("in", b"m", Some(5), false)).expect(&puback(5));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        client.wait_msg().await.unwrap();
    });
    drop(client);
    mock.assert_done();
}

/// Same for `check_msg`.
#[test]
fn mqtt_4_3_2_2_check_msg_sends_the_puback_before_returning() {
    let mut mock = connected().send(&publish("in", b"m", Some(5), false)).expect(&puback(5));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        assert!(client.check_msg().await.unwrap());
    });
    drop(client);
    mock.assert_done();
}

/// A burst of QoS 1 messages arriving in one read is acknowledged in one
/// write: each `wait_msg` delivers one, and the PUBACKs of those already
/// received whole go out together, before the call that finds no more.
#[test]
fn mqtt_4_6_0_2_pubacks_of_a_burst_go_out_in_one_write_in_order() {
    let burst: Vec<u8> =
        (1..=4u16).flat_map(|n| publish("b", n.to_string().as_bytes(), Some(n), false)).collect();
    let acks: Vec<u8> = (1..=4u16).flat_map(puback).collect();
    let mut mock = connected().send(&burst).expect(&acks);
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    drive(async {
        client.connect(&opts()).await.unwrap();
        for _ in 0..4 {
            client.wait_msg().await.unwrap();
        }
    });
    drop(client);
    // CONNECT, then the four PUBACKs: two writes, two flushes.
    assert_eq!(mock.write_calls(), (2, 2));
    mock.assert_done();
    let payloads: Vec<Vec<u8>> = got.messages().into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]);
}
