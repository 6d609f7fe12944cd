//! The client against a private Mosquitto per test (the reference broker):
//! round trips, retained messages, last will, authentication, ACL
//! refusals, unsubscribe, protocol levels and a long ordered run (sessions,
//! DUP resend and oversize messages: `broker_mosquitto_sessions.rs`).
//! Each test skips with one line when Mosquitto is missing (see
//! `common::Mosquitto::start`).

mod broker_support;
mod common;

use std::time::Duration;

use broker_support::{
    Inbox, Received, broker_with_password, broker_with_subscribe_acl, next, silent,
};
use common::{Mosquitto, tcp};
use embedded_io_async::Read as _;
use umqtt::packet::ConnectReturnCode;
use umqtt::{
    Client, ConnectOptions, Error, ProtocolLevel, QoS, State, SubscribeReturnCode, SubscribeTopic,
};

/// Round trip of three messages at `qos` with protocol `level`.
async fn round_trip(broker: &Mosquitto, qos: QoS, level: ProtocolLevel) {
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler());
    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    sub.connect(&ConnectOptions::new("rt-sub").protocol(level)).await.unwrap();
    publ.connect(&ConnectOptions::new("rt-pub").protocol(level)).await.unwrap();
    assert_eq!(sub.subscribe("rt/+", qos).await.unwrap(), qos);
    for n in 1..=3u8 {
        publ.publish("rt/x", &[b'0' + n], qos, false).await.unwrap();
    }
    for _ in 0..3 {
        next(&mut sub).await;
    }
    let want: Vec<Received> =
        (1..=3u8).map(|n| ("rt/x".into(), vec![b'0' + n], qos, false)).collect();
    assert_eq!(inbox.take(), want);
    sub.disconnect().await.unwrap();
    publ.disconnect().await.unwrap();
}

#[tokio::test]
async fn qos0_round_trip_between_two_clients() {
    let Some(broker) = Mosquitto::start("qos0_round_trip", "") else {
        return;
    };
    round_trip(&broker, QoS::AtMostOnce, ProtocolLevel::V311).await;
}

#[tokio::test]
async fn qos1_round_trip_between_two_clients() {
    let Some(broker) = Mosquitto::start("qos1_round_trip", "") else {
        return;
    };
    round_trip(&broker, QoS::AtLeastOnce, ProtocolLevel::V311).await;
}

#[tokio::test]
async fn protocol_level_3_1_round_trip() {
    let Some(broker) = Mosquitto::start("protocol_3_1", "") else {
        return;
    };
    round_trip(&broker, QoS::AtLeastOnce, ProtocolLevel::V31).await;
    round_trip(&broker, QoS::AtMostOnce, ProtocolLevel::V31).await;
}

#[tokio::test]
async fn mqtt_3_3_1_6_retained_message_is_sent_to_a_new_subscription() {
    let Some(broker) = Mosquitto::start("retained", "") else {
        return;
    };
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    publ.connect(&ConnectOptions::new("ret-pub")).await.unwrap();
    publ.publish("status/dev1", b"online", QoS::AtLeastOnce, true).await.unwrap();
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler());
    sub.connect(&ConnectOptions::new("ret-sub")).await.unwrap();
    sub.subscribe("status/#", QoS::AtLeastOnce).await.unwrap();
    // Retained messages may arrive before SUBACK: the client delivers them.
    if inbox.is_empty() {
        next(&mut sub).await;
    }
    let retained = ("status/dev1".into(), b"online".to_vec(), QoS::AtLeastOnce, true);
    assert_eq!(inbox.take(), vec![retained]);
    // A live message on the same topic has retain 0 [MQTT-3.3.1-9].
    publ.publish("status/dev1", b"live", QoS::AtLeastOnce, true).await.unwrap();
    next(&mut sub).await;
    assert_eq!(
        inbox.take(),
        vec![("status/dev1".into(), b"live".to_vec(), QoS::AtLeastOnce, false)]
    );
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_is_published_on_abrupt_close_and_not_after_disconnect() {
    let Some(broker) = Mosquitto::start("will", "") else {
        return;
    };
    let inbox = Inbox::default();
    let (mut rx0, mut tx0) = ([0u8; 256], [0u8; 256]);
    let mut watcher = Client::new(tcp(broker.port).await, &mut rx0, &mut tx0, inbox.handler());
    watcher.connect(&ConnectOptions::new("watcher")).await.unwrap();
    watcher.subscribe("will/#", QoS::AtLeastOnce).await.unwrap();
    let will =
        |id| ConnectOptions::new(id).will("will/gone", id.as_bytes(), QoS::AtLeastOnce, false);

    // DISCONNECT: the broker discards the will [MQTT-3.14.4-3]. Mosquitto
    // decides before it closes the socket, and it runs on one thread, so
    // once the close is seen a will would already be queued ahead of the
    // marker published below.
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut clean = Client::new(tcp(broker.port).await, &mut rx, &mut tx, silent);
    clean.connect(&will("clean")).await.unwrap();
    clean.disconnect().await.unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(clean.transport_mut().read(&mut byte).await.unwrap(), 0);
    drop(clean);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut marker = Client::new(tcp(broker.port).await, &mut rx, &mut tx, silent);
    marker.connect(&ConnectOptions::new("marker")).await.unwrap();
    marker.publish("will/marker", b"m", QoS::AtLeastOnce, false).await.unwrap();
    next(&mut watcher).await;
    assert_eq!(inbox.take(), vec![("will/marker".into(), b"m".to_vec(), QoS::AtLeastOnce, false)]);

    // Abrupt close: the transport is dropped without DISCONNECT.
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut abrupt = Client::new(tcp(broker.port).await, &mut rx, &mut tx, silent);
    abrupt.connect(&will("abrupt")).await.unwrap();
    drop(abrupt);
    next(&mut watcher).await;
    assert_eq!(
        inbox.take(),
        vec![("will/gone".into(), b"abrupt".to_vec(), QoS::AtLeastOnce, false)]
    );
}

#[tokio::test]
async fn username_and_password_are_accepted_and_wrong_ones_refused() {
    let Some(broker) = broker_with_password("credentials") else {
        return;
    };
    let port = broker.port;
    let connect = |opts: ConnectOptions<'static>| async move {
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, silent);
        let result = client.connect(&opts).await.map_err(|e| format!("{e:?}"));
        (result, client.state())
    };
    let (ok, state) = connect(ConnectOptions::new("auth").credentials("alice", b"secret")).await;
    assert_eq!((ok.map(|c| c.session_present), state), (Ok(false), State::Connected));
    let refused_codes = [
        format!("{:?}", Error::<()>::Refused(ConnectReturnCode::BadUserNameOrPassword)),
        format!("{:?}", Error::<()>::Refused(ConnectReturnCode::NotAuthorized)),
    ];
    for opts in [
        ConnectOptions::new("auth").credentials("alice", b"wrong"),
        ConnectOptions::new("auth").credentials("mallory", b"secret"),
        ConnectOptions::new("auth"),
    ] {
        let (refused, state) = connect(opts).await;
        let refused = refused.unwrap_err();
        assert!(refused_codes.contains(&refused), "{opts:?} gave {refused}");
        assert_eq!(state, State::Failed);
    }
}

#[tokio::test]
async fn mqtt_3_9_3_subscription_denied_by_acl_is_refused_with_0x80() {
    let Some(broker) = broker_with_subscribe_acl("acl") else {
        return;
    };
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(tcp(broker.port).await, &mut rx, &mut tx, silent);
    client.connect(&ConnectOptions::new("acl")).await.unwrap();
    let refused = client.subscribe("denied/x", QoS::AtLeastOnce).await;
    assert!(matches!(refused, Err(Error::SubscribeRefused)), "{refused:?}");
    assert_eq!(client.state(), State::Connected, "a refusal is not fatal");
    let topics = [
        SubscribeTopic { filter: "allowed/a", qos: QoS::AtLeastOnce },
        SubscribeTopic { filter: "denied/b", qos: QoS::AtMostOnce },
    ];
    let codes = client.subscribe_many(&topics).await.unwrap();
    assert_eq!(
        codes.as_slice(),
        [SubscribeReturnCode::Success(QoS::AtLeastOnce), SubscribeReturnCode::Failure]
    );
    client.ping().await.unwrap();
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let Some(broker) = Mosquitto::start("unsubscribe", "") else {
        return;
    };
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler());
    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    sub.connect(&ConnectOptions::new("unsub-sub")).await.unwrap();
    publ.connect(&ConnectOptions::new("unsub-pub")).await.unwrap();
    sub.subscribe("gone/+", QoS::AtLeastOnce).await.unwrap();
    sub.subscribe("kept", QoS::AtLeastOnce).await.unwrap();
    publ.publish("gone/1", b"before", QoS::AtLeastOnce, false).await.unwrap();
    next(&mut sub).await;
    assert_eq!(inbox.payloads(), [b"before"]);
    sub.unsubscribe("gone/+").await.unwrap();
    publ.publish("gone/1", b"after", QoS::AtLeastOnce, false).await.unwrap();
    publ.publish("kept", b"marker", QoS::AtLeastOnce, false).await.unwrap();
    next(&mut sub).await;
    // One publisher's messages arrive in order: "after" would come first.
    assert_eq!(inbox.payloads(), [b"marker"]);
}

#[tokio::test]
async fn thousand_qos1_messages_arrive_in_order_none_lost() {
    const COUNT: u32 = 1000;
    let Some(broker) = Mosquitto::start("thousand", "") else {
        return;
    };
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 512], [0u8; 512], [0u8; 1024], [0u8; 1024]);
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler());
    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    sub.connect(&ConnectOptions::new("many-sub")).await.unwrap();
    publ.connect(&ConnectOptions::new("many-pub")).await.unwrap();
    sub.subscribe("many", QoS::AtLeastOnce).await.unwrap();
    let sending = async {
        for n in 0..COUNT {
            publ.publish_no_wait("many", n.to_string().as_bytes(), QoS::AtLeastOnce, false)
                .await
                .unwrap();
        }
        publ.wait_all_acked().await.unwrap();
    };
    let receiving = async {
        while inbox.len() < COUNT as usize {
            next(&mut sub).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(sending, receiving) })
        .await
        .expect("1000 messages in 60 s");
    let received = inbox.take();
    assert!(received.iter().all(|(_, _, qos, _)| *qos == QoS::AtLeastOnce));
    let got: Vec<String> =
        received.into_iter().map(|(_, p, ..)| String::from_utf8(p).unwrap()).collect();
    let want: Vec<String> = (0..COUNT).map(|n| n.to_string()).collect();
    assert_eq!(got, want);
}
