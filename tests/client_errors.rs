//! The client against the scripted mock transport when things go wrong:
//! end of stream and read errors in the middle of a packet, write errors,
//! and inbound packets larger than the receive buffer.
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock is handed back for inspection"
)]

mod mock_support;

use mock_support::*;
use umqtt::mock::{MockError, MockTransport, Step};
use umqtt::packet::PacketType;
use umqtt::{Client, Error, Oversize, QoS, State, SubscribeReturnCode};

type Handler = fn(&umqtt::Publish<'_>);
type CallFuture<'c> = std::pin::Pin<Box<dyn Future<Output = MockResult<()>> + 'c>>;
type Call = for<'c> fn(&'c mut MockClient<'_, Handler>) -> CallFuture<'c>;

fn ignore(_: &umqtt::Publish<'_>) {}

/// Runs `call` after a connect, against `after_connect` steps, and
/// returns its error and the client state.
fn fail_with(
    after_connect: &[Step],
    call: Call,
    max_read: Option<usize>,
) -> (Error<MockError>, State, usize) {
    let mut mock = connected();
    for step in after_connect {
        mock = mock.step(step.clone());
    }
    if let Some(n) = max_read {
        mock = mock.max_read(n);
    }
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, ignore as Handler);
    drive(client.connect(&opts())).unwrap();
    let err = drive(call(&mut client)).unwrap_err();
    let (state, in_flight) = (client.state(), client.in_flight());
    // A failed client refuses further calls instead of writing.
    assert_eq!(
        drive(client.publish("t", b"", QoS::AtMostOnce, false)),
        Err(Error::NotConnected.into())
    );
    drop(client);
    mock.assert_done();
    (err, state, in_flight)
}

fn publish_q1<'c>(c: &'c mut MockClient<'_, Handler>) -> CallFuture<'c> {
    Box::pin(async { c.publish("t", b"x", QoS::AtLeastOnce, false).await.map_err(Error::from) })
}

fn publish_q0<'c>(c: &'c mut MockClient<'_, Handler>) -> CallFuture<'c> {
    Box::pin(async { c.publish("t", b"x", QoS::AtMostOnce, false).await.map_err(Error::from) })
}

#[test]
fn eof_mid_packet_is_connection_closed_in_every_waiting_call() {
    let half = |bytes: Vec<u8>| Step::Send(bytes[..bytes.len() - 1].to_vec());
    let cases: [(&str, Vec<Step>, Call); 5] = [
        ("wait_msg", vec![half(publish("a", b"b", Some(3), false))], |c| Box::pin(c.wait_msg())),
        (
            "publish",
            vec![Step::Expect(publish("t", b"x", Some(1), false)), half(puback(1))],
            publish_q1,
        ),
        (
            "subscribe",
            vec![
                Step::Expect(subscribe(1, "f", QoS::AtMostOnce)),
                half(suback(1, &[SubscribeReturnCode::Failure])),
            ],
            |c| Box::pin(async { c.subscribe("f", QoS::AtMostOnce).await.map(drop) }),
        ),
        ("unsubscribe", vec![Step::Expect(unsubscribe(1, "f")), half(unsuback(1))], |c| {
            Box::pin(c.unsubscribe("f"))
        }),
        ("ping", vec![Step::Expect(PINGREQ.to_vec()), half(PINGRESP.to_vec())], |c| {
            Box::pin(c.ping())
        }),
    ];
    for (name, steps, call) in cases {
        for max_read in [None, Some(1)] {
            let mut steps = steps.clone();
            steps.push(Step::Eof);
            let (err, state, _) = fail_with(&steps, call, max_read);
            assert_eq!(err, Error::ConnectionClosed, "{name}");
            assert!(err.is_fatal());
            assert_eq!(state, State::Failed, "{name}");
        }
    }
}

#[test]
fn read_error_mid_packet_is_a_transport_error_in_every_waiting_call() {
    let half = |bytes: Vec<u8>| Step::Send(bytes[..bytes.len() - 1].to_vec());
    let cases: [(&str, Vec<Step>, Call); 3] = [
        ("wait_msg", vec![half(publish("a", b"b", None, false))], |c| Box::pin(c.wait_msg())),
        (
            "publish",
            vec![Step::Expect(publish("t", b"x", Some(1), false)), half(puback(1))],
            publish_q1,
        ),
        ("ping", vec![Step::Expect(PINGREQ.to_vec()), half(PINGRESP.to_vec())], |c| {
            Box::pin(c.ping())
        }),
    ];
    for (name, mut steps, call) in cases {
        steps.push(Step::ReadError);
        let (err, state, _) = fail_with(&steps, call, Some(1));
        assert_eq!(err, Error::Transport(MockError), "{name}");
        assert!(err.is_fatal());
        assert_eq!(state, State::Failed, "{name}");
    }
}

#[test]
fn eof_or_read_error_during_connect_fails_the_connect() {
    for last in [Step::Eof, Step::ReadError] {
        let mut mock = MockTransport::new()
            .expect(&connect(&opts()))
            .send(&connack(false)[..2])
            .step(last.clone());
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let mut client = Client::new(&mut mock, &mut rx, &mut tx, ignore);
        let err = drive(client.connect(&opts())).unwrap_err();
        let expected =
            if last == Step::Eof { Error::ConnectionClosed } else { Error::Transport(MockError) };
        assert_eq!(err, expected);
        assert_eq!(client.state(), State::Failed);
    }
}

#[test]
fn write_errors_are_transport_errors_and_fail_the_connection() {
    // CONNECT
    let mut mock = MockTransport::new().step(Step::WriteError);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, ignore);
    assert_eq!(drive(client.connect(&opts())), Err(Error::Transport(MockError)));
    assert_eq!(client.state(), State::Failed);
    drop(client);
    mock.assert_done();

    // PUBLISH QoS 0 and 1, SUBSCRIBE, PINGREQ, DISCONNECT
    let cases: [(&str, Call); 5] = [
        ("publish qos 0", publish_q0),
        ("publish qos 1", publish_q1),
        ("subscribe", |c| Box::pin(async { c.subscribe("f", QoS::AtMostOnce).await.map(drop) })),
        ("ping", |c| Box::pin(c.ping())),
        ("disconnect", |c| Box::pin(c.disconnect())),
    ];
    for (name, call) in cases {
        let (err, state, in_flight) = fail_with(&[Step::WriteError], call, None);
        assert_eq!(err, Error::Transport(MockError), "{name}");
        assert!(err.is_fatal());
        assert_eq!(state, State::Failed, "{name}");
        // The QoS 1 message stays stored for the resend after reconnect.
        assert_eq!(in_flight, usize::from(name == "publish qos 1"), "{name}");
    }
}

#[test]
fn write_error_on_the_puback_is_reported_after_the_delivery() {
    let mut mock = connected().send(&publish("in", b"m", Some(4), false)).step(Step::WriteError);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    drive(client.connect(&opts())).unwrap();
    assert_eq!(drive(client.wait_msg()), Err(Error::Transport(MockError)));
    assert_eq!(client.state(), State::Failed);
    drop(client);
    assert_eq!(got.topics(), ["in"]);
}

// ---- Oversize inbound packets (rx is 64 bytes) ----

const BIG_TOPIC: &str = "big/topic";

fn big(packet_id: Option<u16>) -> Vec<u8> {
    publish(BIG_TOPIC, &[0xab; 200], packet_id, false)
}

/// Bytes of `big` the client needs to decide: fixed header (3), topic
/// length and topic, and the packet identifier of a QoS 1 PUBLISH.
fn decision_point(qos1: bool) -> usize {
    if qos1 { 3 + 2 + BIG_TOPIC.len() + 2 } else { 3 + 2 }
}

fn oversize(qos1: bool) -> Oversize {
    Oversize {
        packet_type: PacketType::Publish,
        size: big(None).len() + if qos1 { 2 } else { 0 },
        topic_len: Some(BIG_TOPIC.len() as u16),
        acknowledged: qos1,
    }
}

#[test]
fn oversize_publish_is_drained_reported_acknowledged_and_the_next_message_delivered() {
    for qos1 in [false, true] {
        for max_read in [None, Some(1)] {
            for tail_with_next in [false, true] {
                let packet = big(qos1.then_some(7));
                let k = decision_point(qos1);
                let next = publish("next", b"small", None, false);
                let mut mock = connected().send(&packet[..k]);
                mock = if tail_with_next {
                    // The tail and the next packet arrive in one segment.
                    mock.send(&cat(&[&packet[k..], &next]))
                } else {
                    mock.send(&packet[k..]).send(&next)
                };
                if qos1 {
                    // Acknowledged once the whole packet has been drained.
                    mock = mock.expect(&puback(7));
                }
                if let Some(n) = max_read {
                    mock = mock.max_read(n);
                }
                let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
                let (got, handler) = recorder();
                let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
                drive(client.connect(&opts())).unwrap();
                let err = drive(client.wait_msg()).unwrap_err();
                let case =
                    format!("qos1 {qos1}, max_read {max_read:?}, tail_with_next {tail_with_next}");
                assert_eq!(err, Error::PacketTooLarge(oversize(qos1)), "{case}");
                assert_eq!(oversize(qos1).size, packet.len());
                assert!(!err.is_fatal());
                let text = err.to_string();
                assert!(
                    text.contains(&packet.len().to_string()) && text.contains("topic 9"),
                    "{text}"
                );
                assert_eq!(client.state(), State::Connected);
                drive(client.wait_msg()).unwrap();
                assert_eq!(client.state(), State::Connected);
                drop(client);
                mock.assert_done();
                assert_eq!(got.messages(), [("next".to_owned(), b"small".to_vec())], "{case}");
            }
        }
    }
}

#[test]
fn oversize_publish_during_an_ack_wait_is_reported_by_the_next_wait_msg() {
    let packet = big(Some(7));
    let k = decision_point(true);
    let mut mock = connected()
        .expect(&publish("t", b"x", Some(1), false))
        .send(&packet[..k])
        .send(&packet[k..])
        .expect(&puback(7))
        .send(&puback(1))
        .send(&publish("next", b"", None, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    drive(async {
        client.connect(&opts()).await.unwrap();
        client.publish("t", b"x", QoS::AtLeastOnce, false).await.unwrap();
        assert_eq!(client.wait_msg().await, Err(Error::PacketTooLarge(oversize(true))));
        client.wait_msg().await.unwrap();
    });
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics(), ["next"]);
}

/// Even when the topic alone does not fit `rx`, the packet identifier of
/// a QoS 1 PUBLISH is picked out while draining and the message is
/// acknowledged, so the broker does not redeliver it forever.
#[test]
fn oversize_publish_whose_topic_exceeds_rx_is_still_acknowledged() {
    let topic = "t".repeat(100);
    let packet = publish(&topic, b"p", Some(7), false);
    let mut mock = connected()
        .send(&packet)
        .expect(&puback(7))
        .send(&publish("next", b"", None, false))
        .max_read(1);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    drive(client.connect(&opts())).unwrap();
    let expected = Oversize {
        packet_type: PacketType::Publish,
        size: packet.len(),
        topic_len: Some(100),
        acknowledged: true,
    };
    assert_eq!(drive(client.wait_msg()), Err(Error::PacketTooLarge(expected)));
    drive(client.wait_msg()).unwrap();
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics(), ["next"]);
}
