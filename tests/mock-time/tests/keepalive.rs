//! Keepalive under the mock clock: PINGREQ sent by the waiting calls when
//! the interval has passed `[MQTT-3.1.2-23]`, and a broker that stops
//! answering detected at exactly 1.5 × keepalive.
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock is handed back for inspection"
)]

#[path = "../../mock_support/mod.rs"]
mod mock_support;

use embassy_time::{Instant, Timer};
use mock_support::*;
use umqtt::mock::MockTransport;
use umqtt::{Client, ConnectOptions, Error, QoS, State};
use umqtt_mock_time_tests::{clock, now_ms, run, run_ms};

fn ka10() -> ConnectOptions<'static> {
    opts().keep_alive_secs(10)
}

fn connected_ka10() -> MockTransport {
    MockTransport::new().expect(&connect(&ka10())).send(&connack(false))
}

#[test]
fn mqtt_3_1_2_23_wait_msg_sends_pingreq_after_the_keepalive_interval() {
    let _clock = clock();
    let mut mock = connected_ka10()
        .expect(&PINGREQ)
        .send(&PINGRESP)
        .expect(&PINGREQ)
        .send(&PINGRESP)
        .send(&publish("in", b"m", None, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let (got, handler) = recorder();
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, handler);
    run_ms(async {
        client.connect(&ka10()).await.unwrap();
        client.wait_msg().await.unwrap();
        // First PINGREQ at 10 s, its PINGRESP at once, the second PINGREQ
        // an interval later; the message follows the second PINGRESP.
        assert_eq!(now_ms(), 20_000);
    });
    assert_eq!(client.state(), State::Connected);
    drop(client);
    mock.assert_done();
    assert_eq!(got.topics(), ["in"]);
}

#[test]
fn mqtt_3_1_2_23_pingreq_goes_out_exactly_at_the_interval_not_before() {
    let _clock = clock();
    let mut mock = connected_ka10().expect(&PINGREQ).send(&PINGRESP);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&ka10()).await.unwrap();
        for ms in [9_999, 10_000] {
            Timer::at(Instant::from_millis(ms)).await;
            assert!(!client.check_msg().await.unwrap());
            let pinged = client.transport_mut().written().ends_with(&PINGREQ);
            assert_eq!(pinged, ms == 10_000, "at {ms} ms");
        }
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn mqtt_3_1_2_23_check_msg_sends_pingreq_when_due_and_reads_the_pingresp() {
    let _clock = clock();
    let mut mock =
        connected_ka10().expect(&PINGREQ).send(&PINGRESP).expect(&PINGREQ).send(&PINGRESP);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&ka10()).await.unwrap();
        let mut pings = Vec::new();
        // An application loop calling check_msg every 250 ms for 25 s.
        for tick in 1..=100u64 {
            Timer::at(Instant::from_millis(tick * 250)).await;
            let before = client.transport_mut().written().len();
            assert!(!client.check_msg().await.unwrap());
            if client.transport_mut().written().len() > before {
                pings.push(now_ms());
            }
        }
        // The PINGRESP read at 10 s (next check_msg) counts as traffic:
        // the next ping is due an interval after the PINGREQ.
        assert_eq!(pings, [10_000, 20_000]);
    });
    assert_eq!(client.state(), State::Connected);
    drop(client);
    mock.assert_done();
}

#[test]
fn sending_alone_does_not_postpone_the_ping_receiving_and_sending_does() {
    let _clock = clock();
    let mut mock = connected_ka10()
        // 6 s: a QoS 0 publish, nothing received: ping still due at 10 s.
        .expect(&publish("t", b"0", None, false))
        .expect(&PINGREQ)
        .send(&PINGRESP)
        // 12 s: a publish and a message received: ping due at 22 s.
        .expect(&publish("t", b"1", Some(1), false))
        .send(&puback(1))
        .expect(&PINGREQ)
        .send(&PINGRESP)
        .send(&publish("in", b"", None, false));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&ka10()).await.unwrap();
        Timer::at(Instant::from_secs(6)).await;
        client.publish("t", b"0", QoS::AtMostOnce, false).await.unwrap();
        Timer::at(Instant::from_millis(9_999)).await;
        assert!(!client.check_msg().await.unwrap());
        assert!(!client.transport_mut().written().ends_with(&PINGREQ));
        Timer::at(Instant::from_secs(10)).await;
        assert!(!client.check_msg().await.unwrap());
        assert!(client.transport_mut().written().ends_with(&PINGREQ));
        Timer::at(Instant::from_secs(12)).await;
        client.publish("t", b"1", QoS::AtLeastOnce, false).await.unwrap();
        client.wait_msg().await.unwrap();
        assert_eq!(now_ms(), 22_000);
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn keepalive_timeout_exactly_1_5_intervals_when_the_broker_never_answers_pingreq() {
    let _clock = clock();
    let mut mock = connected_ka10().expect(&PINGREQ);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&ka10()).await.unwrap();
        let err = client.wait_msg().await.unwrap_err();
        assert_eq!(err, Error::KeepAliveTimeout);
        assert!(err.is_fatal());
        assert_eq!(now_ms(), 15_000);
    });
    assert_eq!(client.state(), State::Failed);
    drop(client);
    mock.assert_done();
}

#[test]
fn keepalive_timeout_counts_from_the_last_packet_received() {
    let _clock = clock();
    let mut mock = connected_ka10()
        .expect(&publish("t", b"", Some(1), false))
        .send(&puback(1))
        .expect(&PINGREQ);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&ka10()).await.unwrap();
        Timer::at(Instant::from_secs(4)).await;
        client.publish("t", b"", QoS::AtLeastOnce, false).await.unwrap(); // PUBACK at 4 s
        assert_eq!(client.wait_msg().await, Err(Error::KeepAliveTimeout));
        assert_eq!(now_ms(), 4_000 + 15_000);
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn keepalive_timeout_found_by_check_msg_at_1_5_intervals() {
    let _clock = clock();
    let mut mock = connected_ka10().expect(&PINGREQ);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&ka10()).await.unwrap();
        for tick in 1u64.. {
            Timer::at(Instant::from_millis(tick * 100)).await;
            match client.check_msg().await {
                Ok(false) => {}
                Ok(true) => panic!("no message was sent"),
                Err(e) => {
                    assert_eq!(e, Error::KeepAliveTimeout);
                    break;
                }
            }
        }
        assert_eq!(now_ms(), 15_000);
    });
    assert_eq!(client.state(), State::Failed);
    drop(client);
    mock.assert_done();
}

#[test]
fn keepalive_expiry_interrupts_a_publish_waiting_for_its_puback() {
    // The ack timeout (60 s) is longer than 1.5 × keepalive: the dead link
    // is reported first, and the message stays stored for the resend.
    let _clock = clock();
    let o = ka10().ack_timeout(embassy_time::Duration::from_secs(60));
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&publish("t", b"", Some(1), false))
        .expect(&PINGREQ);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    run_ms(async {
        client.connect(&o).await.unwrap();
        assert_eq!(
            client.publish("t", b"", QoS::AtLeastOnce, false).await.map_err(|e| e.error),
            Err(Error::KeepAliveTimeout)
        );
        assert_eq!(now_ms(), 15_000);
    });
    assert_eq!(client.in_flight(), 1);
    drop(client);
    mock.assert_done();
}

#[test]
fn keepalive_zero_never_pings() {
    let _clock = clock();
    let mut mock = connected();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
    let day = async {
        client.connect(&opts()).await.unwrap();
        for hour in 1..=24u64 {
            Timer::at(Instant::from_secs(hour * 3600)).await;
            assert!(!client.check_msg().await.unwrap());
        }
    };
    run(day, embassy_time::Duration::from_secs(1), Instant::from_secs(25 * 3600));
    assert_eq!(client.state(), State::Connected);
    drop(client);
    mock.assert_done();
}
