//! Acknowledgment timeouts under the mock clock: CONNACK, PUBACK, SUBACK,
//! UNSUBACK and PINGRESP each give `Error::Timeout` exactly at the
//! configured time, and the client stays usable (a QoS 1 publish stays in
//! flight and is resent after a reconnect).
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock is handed back for inspection"
)]

#[path = "../../mock_support/mod.rs"]
mod mock_support;

use embassy_time::Duration;
use mock_support::*;
use umqtt::mock::MockTransport;
use umqtt::{Client, ConnectOptions, Error, PublishError, QoS, State, SubscribeReturnCode};
use umqtt_mock_time_tests::{clock, now_ms, run_ms};

/// Keepalive off (so only the ack timeout runs), ack timeout 3 s.
fn o() -> ConnectOptions<'static> {
    opts().ack_timeout(Duration::from_secs(3))
}

fn p() -> ConnectOptions<'static> {
    o().clean_session(false)
}

fn connected_o() -> MockTransport {
    MockTransport::new().expect(&connect(&o())).send(&connack(false))
}

const GRANTED: [SubscribeReturnCode; 1] = [SubscribeReturnCode::Success(QoS::AtMostOnce)];

#[test]
fn connack_timeout_then_reconnect() {
    let _clock = clock();
    let mut silent = MockTransport::new().expect(&connect(&o()));
    let mut mock2 = connected_o();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut silent, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        assert_eq!(client.connect(&o()).await, Err(Error::Timeout));
        assert_eq!(now_ms(), 3_000);
        assert_ne!(client.state(), State::Connected);
        client.reconnect(&mut mock2, &o()).await.unwrap();
    });
    assert_eq!(client.state(), State::Connected);
    drop(client);
    silent.assert_done();
    mock2.assert_done();
}

#[test]
fn puback_timeout_keeps_the_publish_in_flight_and_it_is_resent_on_reconnect() {
    let _clock = clock();
    let mut mock1 = MockTransport::new()
        .expect(&connect(&p()))
        .send(&connack(false))
        .expect(&publish("t", b"x", Some(1), false))
        // Still usable after the timeout: QoS 0 and a ping go through.
        .expect(&publish("t", b"q0", None, false))
        .expect(&PINGREQ)
        .send(&PINGRESP);
    let mut mock2 = MockTransport::new()
        .expect(&connect(&p()))
        .send(&connack(true))
        .expect(&publish("t", b"x", Some(1), true))
        .send(&puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock1, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&p()).await.unwrap();
        let err = client.publish("t", b"x", QoS::AtLeastOnce, false).await.unwrap_err();
        assert_eq!(err, PublishError { error: Error::Timeout, stored: Some(id(1)) });
        assert!(!err.error.is_fatal());
        assert_eq!(now_ms(), 3_000);
        assert_eq!(client.state(), State::Connected);
        assert!(client.is_in_flight(id(1)));
        client.publish("t", b"q0", QoS::AtMostOnce, false).await.unwrap();
        client.ping().await.unwrap();
        assert_eq!(now_ms(), 3_000);
        // wait_acked times out again, 3 s later.
        assert_eq!(client.wait_acked(id(1)).await, Err(Error::Timeout));
        assert_eq!(now_ms(), 6_000);
        client.reconnect(&mut mock2, &p()).await.unwrap();
        client.wait_acked(id(1)).await.unwrap();
    });
    drop(client);
    mock1.assert_done();
    mock2.assert_done();
}

#[test]
fn suback_timeout_then_subscribe_again() {
    let _clock = clock();
    let mut mock = connected_o()
        .expect(&subscribe(1, "f", QoS::AtMostOnce))
        .expect(&subscribe(2, "f", QoS::AtMostOnce))
        // The late SUBACK for id 1 is ignored.
        .send(&suback(1, &GRANTED))
        .send(&suback(2, &GRANTED));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&o()).await.unwrap();
        assert_eq!(client.subscribe("f", QoS::AtMostOnce).await, Err(Error::Timeout));
        assert_eq!(now_ms(), 3_000);
        assert_eq!(client.state(), State::Connected);
        assert_eq!(client.subscribe("f", QoS::AtMostOnce).await, Ok(QoS::AtMostOnce));
        assert_eq!(now_ms(), 3_000);
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn unsuback_timeout_then_unsubscribe_again() {
    let _clock = clock();
    let mut mock =
        connected_o().expect(&unsubscribe(1, "f")).expect(&unsubscribe(2, "f")).send(&unsuback(2));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&o()).await.unwrap();
        assert_eq!(client.unsubscribe("f").await, Err(Error::Timeout));
        assert_eq!(now_ms(), 3_000);
        assert_eq!(client.state(), State::Connected);
        client.unsubscribe("f").await.unwrap();
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn pingresp_timeout_then_ping_again() {
    let _clock = clock();
    let mut mock = connected_o().expect(&PINGREQ).expect(&PINGREQ).send(&PINGRESP);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&o()).await.unwrap();
        assert_eq!(client.ping().await, Err(Error::Timeout));
        assert_eq!(now_ms(), 3_000);
        assert_eq!(client.state(), State::Connected);
        client.ping().await.unwrap();
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn messages_arriving_during_an_ack_wait_do_not_extend_the_timeout() {
    // A chatty broker that never sends the PUBACK: the timeout still
    // fires 3 s after the publish, and every message is delivered.
    let _clock = clock();
    let mut mock = connected_o().expect(&publish("t", b"", Some(1), false));
    for n in 0..5u16 {
        mock = mock.send(&publish("in", &n.to_be_bytes(), None, false));
    }
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    run_ms(async {
        client.connect(&o()).await.unwrap();
        assert_eq!(
            client.publish("t", b"", QoS::AtLeastOnce, false).await,
            Err(PublishError { error: Error::Timeout, stored: Some(id(1)) })
        );
        assert_eq!(now_ms(), 3_000);
    });
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics().len(), 5);
}
