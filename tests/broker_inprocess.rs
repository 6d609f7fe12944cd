//! The client against the in-process broker of `examples/common/broker.rs`:
//! the core round trips, runnable on any machine (no Mosquitto needed).

#[path = "../examples/common/broker.rs"]
mod broker;
mod broker_support;
mod common;

use std::time::Duration;

use broker::Broker;
use broker_support::{Inbox, WAIT, next, silent};
use common::tcp;
use embedded_io_async::Read as _;
use umqtt::{Client, ConnectOptions, Error, QoS, State};

fn start() -> Broker {
    Broker::start().expect("start in-process broker")
}

#[tokio::test]
async fn connect_is_accepted_without_session_present() {
    let broker = start();
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(tcp(broker.port()).await, &mut rx, &mut tx, silent);
    assert_eq!(client.state(), State::Disconnected);
    let session_present = client.connect(&ConnectOptions::new("c1")).await.unwrap().session_present;
    assert!(!session_present);
    assert_eq!(client.state(), State::Connected);
}

#[tokio::test]
async fn qos0_round_trip_between_two_clients() {
    let broker = start();
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port()).await, &mut rx1, &mut tx1, inbox.handler());
    let mut publ = Client::new(tcp(broker.port()).await, &mut rx2, &mut tx2, silent);
    sub.connect(&ConnectOptions::new("sub")).await.unwrap();
    publ.connect(&ConnectOptions::new("pub")).await.unwrap();
    assert_eq!(sub.subscribe("a/b", QoS::AtMostOnce).await.unwrap(), QoS::AtMostOnce);
    publ.publish("a/b", b"zero", QoS::AtMostOnce, false).await.unwrap();
    next(&mut sub).await;
    assert_eq!(inbox.take(), vec![("a/b".into(), b"zero".to_vec(), QoS::AtMostOnce, false)]);
}

#[tokio::test]
async fn qos1_round_trip_between_two_clients() {
    let broker = start();
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port()).await, &mut rx1, &mut tx1, inbox.handler());
    let mut publ = Client::new(tcp(broker.port()).await, &mut rx2, &mut tx2, silent);
    sub.connect(&ConnectOptions::new("sub")).await.unwrap();
    publ.connect(&ConnectOptions::new("pub")).await.unwrap();
    assert_eq!(sub.subscribe("a/b", QoS::AtLeastOnce).await.unwrap(), QoS::AtLeastOnce);
    for n in 1..=3u8 {
        publ.publish("a/b", &[n], QoS::AtLeastOnce, false).await.unwrap();
        assert_eq!(publ.in_flight(), 0, "publish returns after its PUBACK");
    }
    for _ in 0..3 {
        next(&mut sub).await;
    }
    let got: Vec<_> = inbox.take().into_iter().map(|(_, p, q, _)| (p, q)).collect();
    let want: Vec<_> = (1..=3u8).map(|n| (vec![n], QoS::AtLeastOnce)).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn wildcard_filters_match_only_their_topics() {
    let broker = start();
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port()).await, &mut rx1, &mut tx1, inbox.handler());
    let mut publ = Client::new(tcp(broker.port()).await, &mut rx2, &mut tx2, silent);
    sub.connect(&ConnectOptions::new("sub")).await.unwrap();
    publ.connect(&ConnectOptions::new("pub")).await.unwrap();
    sub.subscribe("sensors/+/temp", QoS::AtLeastOnce).await.unwrap();
    sub.subscribe("cmd/#", QoS::AtLeastOnce).await.unwrap();
    for topic in ["sensors/01/temp", "sensors/01/hum", "sensors/01/temp/x", "cmd", "cmd/a/b", "end"]
    {
        publ.publish(topic, b"x", QoS::AtLeastOnce, false).await.unwrap();
    }
    sub.subscribe("end", QoS::AtLeastOnce).await.unwrap();
    publ.publish("end", b"x", QoS::AtLeastOnce, false).await.unwrap();
    let mut topics = Vec::new();
    while topics.last().is_none_or(|t| t != "end") {
        next(&mut sub).await;
        topics.extend(inbox.take().into_iter().map(|(t, ..)| t));
    }
    assert_eq!(topics, ["sensors/01/temp", "cmd", "cmd/a/b", "end"]);
}

#[tokio::test]
async fn ping_gets_pingresp() {
    let broker = start();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(tcp(broker.port()).await, &mut rx, &mut tx, silent);
    client.connect(&ConnectOptions::new("pinger")).await.unwrap();
    client.ping().await.unwrap();
    client.ping().await.unwrap();
}

#[tokio::test]
async fn keepalive_pings_keep_an_idle_connection_open() {
    let broker = start();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(tcp(broker.port()).await, &mut rx, &mut tx, silent);
    client.connect(&ConnectOptions::new("idle").keep_alive_secs(1)).await.unwrap();
    // The broker closes after 1.5 s of silence; wait_msg must ping on its own.
    let idle = tokio::time::timeout(Duration::from_millis(3200), client.wait_msg()).await;
    assert!(idle.is_err(), "no message expected, got {idle:?}");
    client.ping().await.unwrap();
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let broker = start();
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port()).await, &mut rx1, &mut tx1, inbox.handler());
    let mut publ = Client::new(tcp(broker.port()).await, &mut rx2, &mut tx2, silent);
    sub.connect(&ConnectOptions::new("sub")).await.unwrap();
    publ.connect(&ConnectOptions::new("pub")).await.unwrap();
    sub.subscribe("gone", QoS::AtLeastOnce).await.unwrap();
    sub.subscribe("kept", QoS::AtLeastOnce).await.unwrap();
    sub.unsubscribe("gone").await.unwrap();
    publ.publish("gone", b"1", QoS::AtLeastOnce, false).await.unwrap();
    publ.publish("kept", b"2", QoS::AtLeastOnce, false).await.unwrap();
    next(&mut sub).await;
    // The broker routes one publisher's messages in order: had "gone"
    // been delivered it would have come first.
    assert_eq!(inbox.take(), vec![("kept".into(), b"2".to_vec(), QoS::AtLeastOnce, false)]);
}

#[tokio::test]
async fn retained_message_is_delivered_on_subscribe_with_retain_set() {
    let broker = start();
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut publ = Client::new(tcp(broker.port()).await, &mut rx2, &mut tx2, silent);
    publ.connect(&ConnectOptions::new("pub")).await.unwrap();
    publ.publish("status", b"up", QoS::AtLeastOnce, true).await.unwrap();
    let mut sub = Client::new(tcp(broker.port()).await, &mut rx1, &mut tx1, inbox.handler());
    sub.connect(&ConnectOptions::new("sub")).await.unwrap();
    sub.subscribe("status", QoS::AtLeastOnce).await.unwrap();
    next(&mut sub).await;
    assert_eq!(inbox.take(), vec![("status".into(), b"up".to_vec(), QoS::AtLeastOnce, true)]);
}

#[tokio::test]
async fn disconnect_discards_the_will_and_abrupt_close_publishes_it() {
    let broker = start();
    let inbox = Inbox::default();
    let (mut rx0, mut tx0) = ([0u8; 256], [0u8; 256]);
    let mut watcher = Client::new(tcp(broker.port()).await, &mut rx0, &mut tx0, inbox.handler());
    watcher.connect(&ConnectOptions::new("watcher")).await.unwrap();
    watcher.subscribe("will/#", QoS::AtLeastOnce).await.unwrap();
    let will =
        |id| ConnectOptions::new(id).will("will/gone", id.as_bytes(), QoS::AtLeastOnce, false);

    // Clean: DISCONNECT, then wait for the broker to close the socket
    // (it decides about the will before that).
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut clean = Client::new(tcp(broker.port()).await, &mut rx, &mut tx, silent);
    clean.connect(&will("clean")).await.unwrap();
    clean.disconnect().await.unwrap();
    assert_eq!(clean.state(), State::Disconnected);
    let refused = clean.publish("x", b"", QoS::AtMostOnce, false).await.map_err(Error::from);
    assert!(matches!(refused, Err(Error::NotConnected)), "{refused:?}");
    let mut byte = [0u8; 1];
    assert_eq!(
        clean.transport_mut().read(&mut byte).await.unwrap(),
        0,
        "broker closes after DISCONNECT"
    );

    // Abrupt: the transport is dropped without DISCONNECT.
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut abrupt = Client::new(tcp(broker.port()).await, &mut rx, &mut tx, silent);
    abrupt.connect(&will("abrupt")).await.unwrap();
    drop(abrupt);

    next(&mut watcher).await;
    assert_eq!(
        inbox.take(),
        vec![("will/gone".into(), b"abrupt".to_vec(), QoS::AtLeastOnce, false)]
    );
}

#[tokio::test]
async fn second_connection_with_the_same_client_id_takes_over() {
    let broker = start();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 64], [0u8; 64], [0u8; 64], [0u8; 64]);
    let mut first = Client::new(tcp(broker.port()).await, &mut rx1, &mut tx1, silent);
    let mut second = Client::new(tcp(broker.port()).await, &mut rx2, &mut tx2, silent);
    first.connect(&ConnectOptions::new("same")).await.unwrap();
    second.connect(&ConnectOptions::new("same")).await.unwrap();
    let closed = tokio::time::timeout(WAIT, first.wait_msg()).await.expect("closed in time");
    assert!(matches!(closed, Err(Error::ConnectionClosed)), "{closed:?}");
    second.ping().await.unwrap();
}
