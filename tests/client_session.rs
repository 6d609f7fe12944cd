//! Session continuity against the scripted mock transport: QoS 1
//! publishes resent after a reconnect with DUP=1 and their packet
//! identifiers, in order, and discarded by a clean session.
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock is handed back for inspection"
)]

mod mock_support;

use mock_support::*;
use umqtt::mock::{MockError, Step};
use umqtt::{Client, Connected, Error, PublishError, QoS, State};

#[test]
fn mqtt_4_4_0_1_publish_qos1_is_resent_after_reconnect_with_dup_and_same_id() {
    let mut mock1 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .expect(&publish("t", b"x", Some(1), false))
        .step(Step::Eof);
    let mut mock2 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"x", Some(1), true)) // [MQTT-3.3.1-1] DUP=1
        .send(&puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&persistent()).await.unwrap();
        assert_eq!(
            client.publish("t", b"x", QoS::AtLeastOnce, false).await,
            Err(PublishError { error: Error::ConnectionClosed, stored: Some(id(1)) })
        );
        assert!(client.is_in_flight(id(1)));
        assert!(client.reconnect(&mut mock2, &persistent()).await.unwrap().session_present);
        client.wait_acked(id(1)).await.unwrap();
        assert_eq!(client.in_flight(), 0);
    });
    drop(client);
    mock1.assert_done();
    mock2.assert_done();
}

use umqtt::mock::MockTransport;

#[test]
fn mqtt_4_6_0_1_unacknowledged_publishes_are_resent_in_their_original_order() {
    let mut mock1 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .expect(&publish("t", b"1", Some(1), false))
        .expect(&publish("t", b"2", Some(2), false))
        .expect(&publish("t", b"3", Some(3), false))
        .send(&puback(2))
        .step(Step::ReadError);
    let mut mock2 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"1", Some(1), true))
        .expect(&publish("t", b"3", Some(3), true))
        .send(&cat(&[&puback(1), &puback(3)]))
        .expect(&publish("t", b"4", Some(4), false))
        .send(&puback(4));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&persistent()).await.unwrap();
        for payload in [b"1", b"2", b"3"] {
            client.publish_no_wait("t", payload, QoS::AtLeastOnce, false).await.unwrap();
        }
        assert_eq!(client.wait_all_acked().await, Err(Error::Transport(MockError)));
        assert_eq!(client.state(), State::Failed);
        assert_eq!(client.in_flight(), 2);
        client.reconnect(&mut mock2, &persistent()).await.unwrap();
        client.wait_all_acked().await.unwrap();
        // [MQTT-2.3.1-2]: a new message gets an id not in use, after the old ones.
        client.publish("t", b"4", QoS::AtLeastOnce, false).await.unwrap();
    });
    drop(client);
    mock1.assert_done();
    mock2.assert_done();
}

#[test]
fn mqtt_4_4_0_1_publish_interrupted_by_a_write_error_is_resent_after_reconnect() {
    let mut mock1 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .step(Step::WriteError);
    let mut mock2 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"x", Some(1), true))
        .send(&puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&persistent()).await.unwrap();
        assert_eq!(
            client.publish("t", b"x", QoS::AtLeastOnce, false).await,
            Err(PublishError { error: Error::Transport(MockError), stored: Some(id(1)) })
        );
        client.reconnect(&mut mock2, &persistent()).await.unwrap();
        client.wait_all_acked().await.unwrap();
    });
    drop(client);
    mock2.assert_done();
}

#[test]
fn mqtt_3_1_2_6_clean_session_discards_unacknowledged_publishes() {
    let mut mock1 = connected().expect(&publish("t", b"x", Some(1), false)).step(Step::Eof);
    // Only CONNECT and CONNACK: a resend would fail the script.
    let mut mock2 = connected().expect(&publish("t", b"y", Some(2), false)).send(&puback(2));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&opts()).await.unwrap();
        assert_eq!(
            client.publish("t", b"x", QoS::AtLeastOnce, false).await,
            Err(PublishError { error: Error::ConnectionClosed, stored: Some(id(1)) })
        );
        assert_eq!(client.in_flight(), 1);
        // The clean session discards the message and says so: it must not
        // look acknowledged.
        assert_eq!(
            client.reconnect(&mut mock2, &opts()).await.unwrap(),
            Connected { session_present: false, discarded: 1 }
        );
        assert_eq!(client.in_flight(), 0);
        assert!(!client.is_in_flight(id(1)));
        client.wait_acked(id(1)).await.unwrap(); // nothing to wait for
        client.publish("t", b"y", QoS::AtLeastOnce, false).await.unwrap();
    });
    drop(client);
    mock1.assert_done();
    mock2.assert_done();
}

#[test]
fn resend_survives_two_reconnects_and_sets_dup_once() {
    let mut mock1 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .expect(&publish("t", b"x", Some(1), false))
        .step(Step::Eof);
    let mut mock2 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"x", Some(1), true))
        .step(Step::Eof);
    let mut mock3 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"x", Some(1), true))
        .send(&puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&persistent()).await.unwrap();
        assert!(client.publish("t", b"x", QoS::AtLeastOnce, false).await.is_err());
        client.reconnect(&mut mock2, &persistent()).await.unwrap();
        assert_eq!(client.wait_all_acked().await, Err(Error::ConnectionClosed));
        client.reconnect(&mut mock3, &persistent()).await.unwrap();
        client.wait_all_acked().await.unwrap();
    });
    drop(client);
    mock3.assert_done();
}

#[test]
fn mqtt_4_4_0_1_session_handed_to_a_new_client_resends_with_dup_and_same_ids() {
    let mut mock1 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .expect(&publish("t", b"1", Some(1), false))
        .expect(&publish("t", b"2", Some(2), false))
        .step(Step::Eof);
    let mut mock2 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"1", Some(1), true))
        .expect(&publish("t", b"2", Some(2), true))
        .send(&cat(&[&puback(1), &puback(2)]))
        // [MQTT-2.3.1-2]: the allocator carried on, too.
        .expect(&publish("t", b"3", Some(3), false))
        .send(&puback(3));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&persistent()).await.unwrap();
        client.publish_no_wait("t", b"1", QoS::AtLeastOnce, false).await.unwrap();
        client.publish_no_wait("t", b"2", QoS::AtLeastOnce, false).await.unwrap();
        assert_eq!(client.wait_all_acked().await, Err(Error::ConnectionClosed));
    });
    // The transport (a TLS stream, say) goes with the client; `tx` stays.
    let session = client.into_session();
    assert_eq!(session.in_flight(), 2);
    let mut client =
        Client::with_session(&mut mock2, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {}, session);
    drive(async {
        assert!(client.connect(&persistent()).await.unwrap().session_present);
        client.wait_all_acked().await.unwrap();
        client.publish("t", b"3", QoS::AtLeastOnce, false).await.unwrap();
    });
    drop(client);
    mock1.assert_done();
    mock2.assert_done();
}

#[test]
fn session_with_a_different_tx_buffer_forgets_the_publishes_instead_of_misreading_them() {
    let mut mock1 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(false))
        .expect(&publish("t", b"1", Some(1), false));
    let mut mock2 = MockTransport::new()
        .expect(&connect(&persistent()))
        .send(&connack(true))
        .expect(&publish("t", b"2", Some(2), false))
        .send(&puback(2));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    drive(async {
        client.connect(&persistent()).await.unwrap();
        client.publish_no_wait("t", b"1", QoS::AtLeastOnce, false).await.unwrap();
    });
    let session = client.into_session();
    let mut other_tx = [0u8; 128];
    let mut client = Client::with_session(
        &mut mock2,
        &mut rx,
        &mut other_tx,
        |_: &umqtt::Publish<'_>| {},
        session,
    );
    assert_eq!(client.in_flight(), 0);
    drive(async {
        client.connect(&persistent()).await.unwrap();
        client.publish("t", b"2", QoS::AtLeastOnce, false).await.unwrap();
    });
    drop(client);
    mock1.assert_done();
    mock2.assert_done();
}
