//! QoS 2 against a private Mosquitto per test (issue 11, section 4): round
//! trips both ways (umqtt → umqtt, `mosquitto_pub -q 2` → umqtt, umqtt →
//! `mosquitto_sub -q 2`), and the fault proxy cutting the connection after
//! PUBLISH, after PUBREC and after PUBREL, on the publisher's side and on
//! the subscriber's, with `clean_session = false`: each message is
//! delivered exactly once. Each test skips with one line when Mosquitto is
//! missing (see `common::Mosquitto::start`).

mod broker_support;
mod common;

use broker_support::{Inbox, Received, WAIT, next, silent};
use common::proxy::{Dir, Proxy};
use common::{Mosquitto, tcp};
use std::process::{Command, Stdio};
use umqtt::{Client, ConnectOptions, QoS, State};

/// A subscriber's options: persistent session, keepalive long enough that
/// no PINGREQ changes the byte counts the proxy kills at.
fn persistent(id: &str) -> ConnectOptions<'_> {
    ConnectOptions::new(id).clean_session(false).keep_alive_secs(60)
}

fn qos2(topic: &str, payload: &[u8]) -> Received {
    (topic.to_owned(), payload.to_vec(), QoS::ExactlyOnce, false)
}

#[tokio::test]
async fn qos2_round_trip_between_two_clients() {
    let Some(broker) = Mosquitto::start("qos2_round_trip", "") else { return };
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut slots = [0u16; 8];
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler())
        .receive_qos2(&mut slots);
    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    sub.connect(&ConnectOptions::new("q2-sub")).await.unwrap();
    publ.connect(&ConnectOptions::new("q2-pub")).await.unwrap();
    assert_eq!(sub.subscribe("q2/+", QoS::ExactlyOnce).await.unwrap(), QoS::ExactlyOnce);
    // Blocking publishes, then a pipelined pair in one window.
    for n in 1..=3u8 {
        publ.publish("q2/x", &[b'0' + n], QoS::ExactlyOnce, false).await.unwrap();
        assert_eq!(publ.in_flight(), 0, "publish returns at PUBCOMP");
    }
    let a = publ.publish_no_wait("q2/x", b"4", QoS::ExactlyOnce, false).await.unwrap();
    let b = publ.publish_no_wait("q2/x", b"5", QoS::ExactlyOnce, false).await.unwrap();
    assert_ne!(a, b);
    publ.wait_all_acked().await.unwrap();
    while inbox.len() < 5 {
        next(&mut sub).await;
    }
    let want: Vec<Received> = (1..=5u8).map(|n| qos2("q2/x", &[b'0' + n])).collect();
    assert_eq!(inbox.take(), want);
    // The broker answers each PUBREC with PUBREL before the PINGRESP that
    // follows them: the ping round trip takes every PUBREL.
    sub.ping().await.unwrap();
    sub.disconnect().await.unwrap();
    publ.disconnect().await.unwrap();
    drop(sub);
    assert_eq!(slots, [0; 8], "every PUBREL arrived before DISCONNECT was answered");
}

#[tokio::test]
async fn mosquitto_pub_qos2_to_umqtt() {
    if !common::on_path("mosquitto_pub") {
        assert!(!common::mosquitto_required(), "mosquitto_pub missing");
        println!("SKIPPED mosquitto_pub_qos2_to_umqtt: mosquitto_pub not installed");
        return;
    }
    let Some(broker) = Mosquitto::start("mosquitto_pub_qos2", "") else { return };
    let inbox = Inbox::default();
    let (mut rx, mut tx, mut slots) = ([0u8; 256], [0u8; 256], [0u16; 4]);
    let mut client = Client::new(tcp(broker.port).await, &mut rx, &mut tx, inbox.handler())
        .receive_qos2(&mut slots);
    client.connect(&ConnectOptions::new("umqtt-q2-sub")).await.unwrap();
    client.subscribe("interop/q2", QoS::ExactlyOnce).await.unwrap();
    for payload in ["two 1", "two 2"] {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "2"])
            .args(["-t", "interop/q2", "-m", payload])
            .status()
            .unwrap();
        assert!(status.success());
        next(&mut client).await;
    }
    assert_eq!(inbox.take(), [qos2("interop/q2", b"two 1"), qos2("interop/q2", b"two 2")]);
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn umqtt_qos2_to_mosquitto_sub() {
    if !common::on_path("mosquitto_sub") {
        assert!(!common::mosquitto_required(), "mosquitto_sub missing");
        println!("SKIPPED umqtt_qos2_to_mosquitto_sub: mosquitto_sub not installed");
        return;
    }
    let Some(broker) = Mosquitto::start("umqtt_qos2_to_mosquitto_sub", "") else { return };
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(tcp(broker.port).await, &mut rx, &mut tx, silent);
    client.connect(&ConnectOptions::new("umqtt-q2-pub")).await.unwrap();
    // A retained message tells when mosquitto_sub's subscription is live.
    client.publish("interop/q2b", b"ready", QoS::ExactlyOnce, true).await.unwrap();
    let child = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "2", "-v", "-d"])
        .args(["-t", "interop/q2b", "-C", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = LineReader::new(child);
    lines.until("interop/q2b ready");
    client.publish("interop/q2b", b"qos 2 a", QoS::ExactlyOnce, false).await.unwrap();
    client.publish("interop/q2b", b"qos 2 b", QoS::ExactlyOnce, false).await.unwrap();
    let rest = lines.finish();
    // mosquitto_sub -d logs each packet; the messages arrive at QoS 2 and
    // each once.
    let got: Vec<&str> = rest.lines().filter(|l| l.starts_with("interop/q2b ")).collect();
    assert_eq!(got, ["interop/q2b qos 2 a", "interop/q2b qos 2 b"], "output:\n{rest}");
    assert_eq!(
        rest.lines().filter(|l| l.contains("received PUBLISH") && l.contains("q2, ")).count(),
        2,
        "two QoS 2 PUBLISHes; output:\n{rest}"
    );
    assert_eq!(rest.lines().filter(|l| l.contains("sending PUBCOMP")).count(), 2, "{rest}");
    client.disconnect().await.unwrap();
}

/// Lines of a child's stdout, read by a thread.
struct LineReader {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl LineReader {
    fn new(mut child: std::process::Child) -> Self {
        use std::io::BufRead as _;
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, seen: String::new() }
    }

    /// Reads until a line equal to `want`, failing after [`WAIT`].
    fn until(&mut self, want: &str) {
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("no {want:?} ({e}); output so far:\n{}", self.seen));
            let done = line == want;
            self.seen.push_str(&line);
            self.seen.push('\n');
            if done {
                return;
            }
        }
    }

    /// Waits for a successful exit and returns what it printed after the
    /// last `until`.
    fn finish(mut self) -> String {
        let start = self.seen.len();
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "mosquitto_sub exited with {status}; output:\n{}", self.seen);
        self.seen.split_off(start)
    }
}

impl Drop for LineReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the fault proxy ----

/// After which packet of the QoS 2 flow the proxy cuts the connection.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// The PUBLISH arrived; its PUBREC is lost.
    Publish,
    /// PUBLISH and PUBREC arrived; the PUBREL is lost.
    PubRec,
    /// PUBLISH, PUBREC and PUBREL arrived; the PUBCOMP is lost.
    PubRel,
}

const TOPIC: &str = "q2/cut";
const PAYLOAD: &[u8] = b"exactly once";

/// Bytes of the PUBLISH of [`PAYLOAD`] to [`TOPIC`] at QoS 2: fixed header
/// 2, topic 2 + 6, packet id 2, payload 12.
const PUBLISH_LEN: u64 = 2 + 2 + TOPIC.len() as u64 + 2 + PAYLOAD.len() as u64;

/// Arms `proxy` to cut the flow at `cut`, counting bytes from now in the
/// direction of the sender (`up` for the side behind the proxy sending
/// the PUBLISH) on a connection where nothing else is under way.
fn arm(proxy: &Proxy, cut: Cut, behind_is_sender: bool) {
    let (towards_receiver, towards_sender) =
        if behind_is_sender { (Dir::Up, Dir::Down) } else { (Dir::Down, Dir::Up) };
    match cut {
        Cut::Publish => proxy.kill_after(towards_sender, 0),
        Cut::PubRec => proxy.kill_after(towards_receiver, PUBLISH_LEN),
        Cut::PubRel => proxy.kill_after(towards_sender, 4),
    }
}

/// The publisher behind the proxy: `publish` fails when the proxy cuts,
/// saying the message is stored; the reconnect with the session finishes
/// the flow (PUBLISH DUP=1 or PUBREL again), and the subscriber gets the
/// message once, then the next one.
async fn publisher_cut(cut: Cut) {
    let test = format!("qos2_pub_cut_{cut:?}");
    let Some(broker) = Mosquitto::start(&test, "log_type all\n") else { return };
    let proxy = Proxy::start(broker.port, 11).await;
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut slots = [0u16; 4];
    let mut sub = Client::new(tcp(broker.port).await, &mut rx1, &mut tx1, inbox.handler())
        .receive_qos2(&mut slots);
    sub.connect(&persistent("cut-sub")).await.unwrap();
    sub.subscribe(TOPIC, QoS::ExactlyOnce).await.unwrap();

    let o = persistent("cut-pub");
    let mut publ = Client::new(tcp(proxy.port).await, &mut rx2, &mut tx2, silent);
    publ.connect(&o).await.unwrap();
    arm(&proxy, cut, true);
    let err = tokio::time::timeout(WAIT, publ.publish(TOPIC, PAYLOAD, QoS::ExactlyOnce, false))
        .await
        .expect("the cut ends the publish")
        .unwrap_err();
    assert!(err.error.is_fatal(), "{cut:?}: {err:?}");
    let id = err.stored.expect("the message is stored for resend");
    assert!(publ.is_in_flight(id));
    assert_eq!(proxy.kills(), 1, "{cut:?}: the armed cut fired");

    let connected = publ.reconnect(tcp(proxy.port).await, &o).await.unwrap();
    assert!(connected.session_present);
    tokio::time::timeout(WAIT, publ.wait_all_acked()).await.expect("flow finished").unwrap();
    assert!(!publ.is_in_flight(id));
    publ.publish(TOPIC, b"next", QoS::ExactlyOnce, false).await.unwrap();
    while inbox.len() < 2 {
        next(&mut sub).await;
    }
    assert_eq!(inbox.take(), [qos2(TOPIC, PAYLOAD), qos2(TOPIC, b"next")], "{cut:?}");
    assert_eq!(proxy.kills(), 1);
    publ.disconnect().await.unwrap();
    sub.disconnect().await.unwrap();
    // What the broker saw of the resend: the PUBLISH again (DUP=1) only
    // while it had not answered it, the PUBREL again after a cut PUBREC
    // answer or a lost PUBCOMP.
    let (dup_publish, pubrel) = match cut {
        Cut::Publish => (1, 1),
        Cut::PubRec => (0, 1),
        Cut::PubRel => (0, 2),
    };
    let log = broker.log();
    let count = |needle: &str| log.matches(needle).count();
    assert_eq!(count("Received PUBLISH from cut-pub (d1, q2"), dup_publish, "{cut:?}: {log}");
    assert_eq!(count("Received PUBREL from cut-pub (Mid: 1)"), pubrel, "{cut:?}: {log}");
}

/// The subscriber behind the proxy: it has the message (delivered on
/// PUBLISH) when the proxy cuts; after the reconnect the broker resends
/// the PUBLISH with DUP=1 (answered with PUBREC, not delivered again) or
/// the PUBREL (answered with PUBCOMP), and the next message arrives
/// after it, once.
async fn subscriber_cut(cut: Cut) {
    let test = format!("qos2_sub_cut_{cut:?}");
    let Some(broker) = Mosquitto::start(&test, "log_type all\n") else { return };
    let proxy = Proxy::start(broker.port, 12).await;
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let mut slots = [0u16; 4];
    let o = persistent("cut-sub");
    let mut sub = Client::new(tcp(proxy.port).await, &mut rx1, &mut tx1, inbox.handler())
        .receive_qos2(&mut slots);
    sub.connect(&o).await.unwrap();
    sub.subscribe(TOPIC, QoS::ExactlyOnce).await.unwrap();
    let mut publ = Client::new(tcp(broker.port).await, &mut rx2, &mut tx2, silent);
    publ.connect(&persistent("cut-pub")).await.unwrap();

    arm(&proxy, cut, false);
    publ.publish(TOPIC, PAYLOAD, QoS::ExactlyOnce, false).await.unwrap();
    next(&mut sub).await;
    assert_eq!(inbox.take(), [qos2(TOPIC, PAYLOAD)], "{cut:?}: delivered on PUBLISH");
    // Nothing else is published: the next wait ends with the cut.
    let err = tokio::time::timeout(WAIT, sub.wait_msg())
        .await
        .expect("the cut ends the wait")
        .unwrap_err();
    assert!(err.is_fatal(), "{cut:?}: {err:?}");
    assert_eq!(sub.state(), State::Failed);
    assert_eq!(proxy.kills(), 1, "{cut:?}: the armed cut fired");

    let connected = sub.reconnect(tcp(proxy.port).await, &o).await.unwrap();
    assert!(connected.session_present);
    publ.publish(TOPIC, b"next", QoS::ExactlyOnce, false).await.unwrap();
    next(&mut sub).await;
    assert_eq!(inbox.take(), [qos2(TOPIC, b"next")], "{cut:?}: no redelivery, then the next");
    // A round trip after it: anything the broker still resends is handled
    // by now, and delivers nothing.
    sub.ping().await.unwrap();
    while sub.check_msg().await.unwrap() {}
    assert!(inbox.is_empty(), "{cut:?}: delivered twice");
    assert_eq!(proxy.kills(), 1);
    sub.disconnect().await.unwrap();
    publ.disconnect().await.unwrap();
    drop(sub);
    assert_eq!(slots, [0; 4], "{cut:?}: every PUBREL arrived");
    // What the broker resent to the subscriber after the reconnect: the
    // PUBLISH (DUP=1) whose PUBREC it lacked, else the PUBREL (for the
    // first message; the second gets one PUBREL).
    let (dup_publish, pubrel) = match cut {
        Cut::Publish => (1, 2),
        Cut::PubRec | Cut::PubRel => (0, 3),
    };
    let log = broker.log();
    let count = |needle: &str| log.matches(needle).count();
    assert_eq!(count("Sending PUBLISH to cut-sub (d1, q2"), dup_publish, "{cut:?}: {log}");
    assert_eq!(count("Sending PUBREL to cut-sub"), pubrel, "{cut:?}: {log}");
}

#[tokio::test]
async fn mqtt_4_3_3_publisher_cut_after_publish_delivers_exactly_once() {
    publisher_cut(Cut::Publish).await;
}

#[tokio::test]
async fn mqtt_4_3_3_publisher_cut_after_pubrec_delivers_exactly_once() {
    publisher_cut(Cut::PubRec).await;
}

#[tokio::test]
async fn mqtt_4_3_3_publisher_cut_after_pubrel_delivers_exactly_once() {
    publisher_cut(Cut::PubRel).await;
}

#[tokio::test]
async fn mqtt_4_3_3_2_subscriber_cut_after_publish_delivers_exactly_once() {
    subscriber_cut(Cut::Publish).await;
}

#[tokio::test]
async fn mqtt_4_3_3_subscriber_cut_after_pubrec_delivers_exactly_once() {
    subscriber_cut(Cut::PubRec).await;
}

#[tokio::test]
async fn mqtt_4_3_3_subscriber_cut_after_pubrel_delivers_exactly_once() {
    subscriber_cut(Cut::PubRel).await;
}
