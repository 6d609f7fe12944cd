//! The client's sessions against a private Mosquitto per test: persistent
//! sessions (across reconnects and a broker restart), the DUP resend of an
//! unacknowledged QoS 1 PUBLISH after a reconnect, observed on the wire
//! through a recording proxy, and an oversize message that is acknowledged
//! so the resumed session does not redeliver it. Each test skips with one
//! line when Mosquitto is missing.

mod broker_support;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker_support::{Inbox, WAIT, next, silent};
use common::{Mosquitto, tcp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use umqtt::packet::{self, FixedHeader, Packet, PacketType};
use umqtt::{Client, ConnectOptions, Error, QoS, State};

#[tokio::test]
async fn persistent_session_receives_qos1_messages_queued_while_offline() {
    let Some(broker) = Mosquitto::start("persistent", "") else {
        return;
    };
    let inbox = Inbox::default();
    let opts = ConnectOptions::new("persistent-sub").clean_session(false);
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler());
    // Start from a clean slate, then open the persistent session.
    sub.connect(&ConnectOptions::new("persistent-sub")).await.unwrap();
    sub.disconnect().await.unwrap();
    assert!(!sub.reconnect(tcp(broker.port).await, &opts).await.unwrap().session_present);
    sub.subscribe("queued/#", QoS::AtLeastOnce).await.unwrap();
    sub.disconnect().await.unwrap();

    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    publ.connect(&ConnectOptions::new("persistent-pub")).await.unwrap();
    for n in 1..=3u8 {
        publ.publish("queued/a", &[b'0' + n], QoS::AtLeastOnce, false).await.unwrap();
    }
    publ.publish("queued/a", b"q0 is not queued", QoS::AtMostOnce, false).await.unwrap();

    let session_present =
        sub.reconnect(tcp(broker.port).await, &opts).await.unwrap().session_present;
    assert!(session_present, "mqtt_3_2_2_2: stored session resumed");
    while inbox.len() < 3 {
        next(&mut sub).await;
    }
    assert_eq!(inbox.payloads(), [b"1", b"2", b"3"]);
}

/// Stops `broker` with SIGTERM, so that it writes its persistence file,
/// and waits until the process has exited (Linux: gone or a zombie).
fn stop_gracefully(broker: &mut Mosquitto) {
    let pid = std::fs::read_to_string(broker.dir.join("mosquitto.pid")).unwrap();
    let pid = pid.trim();
    let status = std::process::Command::new("kill").args(["-TERM", pid]).status();
    assert!(status.unwrap().success());
    let exited = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z'))
        })
    };
    let deadline = std::time::Instant::now() + WAIT;
    while !exited() {
        assert!(std::time::Instant::now() < deadline, "mosquitto did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.kill(); // reaps the process
}

#[tokio::test]
async fn persistent_session_and_queued_messages_survive_a_broker_restart() {
    let dir = common::temp_dir("restart");
    let extra = format!(
        "persistence true\npersistence_location {}/\npid_file {}/mosquitto.pid\n",
        dir.display(),
        dir.display()
    );
    let Some(mut broker) = Mosquitto::start_in("restart", &dir, &extra) else {
        return;
    };
    let inbox = Inbox::default();
    let opts = ConnectOptions::new("restart-sub").clean_session(false);
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler());
    assert!(!sub.connect(&opts).await.unwrap().session_present);
    sub.subscribe("stored/#", QoS::AtLeastOnce).await.unwrap();
    sub.disconnect().await.unwrap();
    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    publ.connect(&ConnectOptions::new("restart-pub")).await.unwrap();
    publ.publish("stored/a", b"kept", QoS::AtLeastOnce, false).await.unwrap();
    publ.disconnect().await.unwrap();

    stop_gracefully(&mut broker);
    assert!(dir.join("mosquitto.db").exists(), "persistence file written");
    let Some(broker) = Mosquitto::start_in("restart", &dir, &extra) else {
        return;
    };
    assert!(
        sub.reconnect(tcp(broker.port).await, &opts).await.unwrap().session_present,
        "session restored"
    );
    next(&mut sub).await;
    assert_eq!(inbox.payloads(), [b"kept"]);
}

/// Client-to-broker packets seen by a [`Proxy`], one list per connection.
type Recorded = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

/// A TCP proxy in front of a broker that records every whole packet the
/// client sends, and swallows the first PUBLISH of all and closes both
/// sides: the broker never sees it, the client never gets its PUBACK.
struct Proxy {
    port: u16,
    recorded: Recorded,
}

impl Proxy {
    async fn start(broker_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let recorded = Recorded::default();
        let record = recorded.clone();
        tokio::spawn(async move {
            let armed = Arc::new(AtomicBool::new(true));
            while let Ok((client, _)) = listener.accept().await {
                let broker =
                    tokio::net::TcpStream::connect(("127.0.0.1", broker_port)).await.unwrap();
                let connection = {
                    let mut all = record.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                tokio::spawn(Self::relay(
                    client,
                    broker,
                    record.clone(),
                    connection,
                    armed.clone(),
                ));
            }
        });
        Self { port, recorded }
    }

    async fn relay(
        mut client: tokio::net::TcpStream,
        mut broker: tokio::net::TcpStream,
        record: Recorded,
        connection: usize,
        armed: Arc<AtomicBool>,
    ) {
        let (mut upstream, mut chunk, mut down) = (Vec::new(), [0u8; 4096], [0u8; 4096]);
        loop {
            tokio::select! {
                read = client.read(&mut chunk) => {
                    let Ok(n @ 1..) = read else { return };
                    upstream.extend_from_slice(&chunk[..n]);
                    while let Ok(header) = FixedHeader::parse(&upstream) {
                        let len = header.packet_len();
                        if upstream.len() < len {
                            break;
                        }
                        let bytes: Vec<u8> = upstream.drain(..len).collect();
                        record.lock().unwrap()[connection].push(bytes.clone());
                        if header.packet_type == PacketType::Publish && armed.swap(false, Ordering::SeqCst) {
                            return; // drops both sockets
                        }
                        if broker.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                }
                read = broker.read(&mut down) => {
                    let Ok(n @ 1..) = read else { return };
                    if client.write_all(&down[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// The PUBLISH packets the client sent on `connection`.
    fn publishes(&self, connection: usize) -> Vec<Vec<u8>> {
        let all = self.recorded.lock().unwrap();
        all[connection].iter().filter(|p| p[0] >> 4 == PacketType::Publish as u8).cloned().collect()
    }
}

#[tokio::test]
async fn mqtt_4_4_0_1_unacked_publish_is_resent_with_dup_and_the_same_packet_id() {
    let Some(broker) = Mosquitto::start("dup_resend", "") else {
        return;
    };
    let proxy = Proxy::start(broker.port).await;
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler());
    sub.connect(&ConnectOptions::new("dup-sub")).await.unwrap();
    sub.subscribe("dup/t", QoS::AtLeastOnce).await.unwrap();

    let opts = ConnectOptions::new("dup-pub").clean_session(false);
    let mut publ = Client::new(tcp(proxy.port).await, &mut rx2, &mut tx2, silent);
    publ.connect(&ConnectOptions::new("dup-pub")).await.unwrap(); // discard any old session
    publ.disconnect().await.unwrap();
    publ.reconnect(tcp(proxy.port).await, &opts).await.unwrap();
    let id = publ.publish_no_wait("dup/t", b"resent", QoS::AtLeastOnce, false).await.unwrap();
    let lost = tokio::time::timeout(WAIT, publ.wait_acked(id)).await.expect("cut in time");
    assert!(matches!(lost, Err(Error::ConnectionClosed)), "{lost:?}");
    assert!(publ.is_in_flight(id));

    assert!(
        publ.reconnect(tcp(proxy.port).await, &opts).await.unwrap().session_present,
        "session present"
    );
    tokio::time::timeout(WAIT, publ.wait_all_acked()).await.expect("acked in time").unwrap();
    assert_eq!(publ.in_flight(), 0);

    next(&mut sub).await;
    assert_eq!(inbox.payloads(), [b"resent"], "delivered once, by the resend");
    let original = proxy.publishes(1);
    let resent = proxy.publishes(2);
    assert_eq!((original.len(), resent.len()), (1, 1));
    let decode = |bytes: &[u8]| match packet::decode(bytes).unwrap().packet {
        Packet::Publish(p) => (p.dup, p.packet_id, p.payload.to_vec()),
        other => panic!("not a publish: {other:?}"),
    };
    assert_eq!(decode(&original[0]), (false, Some(id), b"resent".to_vec()));
    assert_eq!(decode(&resent[0]), (true, Some(id), b"resent".to_vec()));
}

#[tokio::test]
async fn oversize_message_is_acknowledged_skipped_and_not_redelivered() {
    let Some(broker) = Mosquitto::start("oversize", "") else {
        return;
    };
    let inbox = Inbox::default();
    let opts = ConnectOptions::new("small-sub").clean_session(false);
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 128], [0u8; 128], [0u8; 2048], [0u8; 2048]);
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler());
    sub.connect(&ConnectOptions::new("small-sub")).await.unwrap();
    sub.disconnect().await.unwrap();
    sub.reconnect(tcp(broker.port).await, &opts).await.unwrap();
    sub.subscribe("big/+", QoS::AtLeastOnce).await.unwrap();
    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    publ.connect(&ConnectOptions::new("big-pub")).await.unwrap();
    publ.publish("big/1", &[b'x'; 1000], QoS::AtLeastOnce, false).await.unwrap();
    publ.publish("big/2", b"small", QoS::AtLeastOnce, false).await.unwrap();

    let oversize = tokio::time::timeout(WAIT, sub.wait_msg()).await.expect("in time");
    let Err(Error::PacketTooLarge(o)) = oversize else { panic!("{oversize:?}") };
    assert_eq!((o.packet_type, o.topic_len, o.acknowledged), (PacketType::Publish, Some(5), true));
    assert!(o.size > 1000);
    assert_eq!(sub.state(), State::Connected);
    next(&mut sub).await;
    assert_eq!(inbox.payloads(), [b"small"]);

    // Mosquitto got the PUBACK: the resumed session does not redeliver it.
    sub.disconnect().await.unwrap();
    assert!(sub.reconnect(tcp(broker.port).await, &opts).await.unwrap().session_present);
    publ.publish("big/3", b"marker", QoS::AtLeastOnce, false).await.unwrap();
    let after = tokio::time::timeout(WAIT, sub.wait_msg()).await.expect("in time");
    assert!(after.is_ok(), "no oversize redelivery expected: {after:?}");
    assert_eq!(inbox.payloads(), [b"marker"]);
}
