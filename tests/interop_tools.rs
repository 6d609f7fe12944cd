//! Interoperability: messages exchanged in both directions with
//! `mosquitto_pub`/`mosquitto_sub` (Debian package mosquitto-clients) and
//! with the paho-mqtt Python client (`pip install paho-mqtt`), through a
//! private Mosquitto. A missing tool skips its test with one printed line,
//! unless UMQTT_REQUIRE_MOSQUITTO=1, which makes it a failure.

mod broker_support;
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use broker_support::{Inbox, next, silent};
use common::{Mosquitto, tcp};
use umqtt::{Client, ConnectOptions, ProtocolLevel, QoS};

/// Whether `tool` can run here; prints the skip line (or fails under
/// UMQTT_REQUIRE_MOSQUITTO=1) when it cannot.
fn available(test: &str, tool: &str, present: bool) -> bool {
    if !present {
        assert!(
            !common::mosquitto_required(),
            "{test}: {tool} missing and UMQTT_REQUIRE_MOSQUITTO=1"
        );
        println!("SKIPPED {test}: {tool} not installed");
    }
    present
}

fn paho_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import paho.mqtt.client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Lines a child prints on stdout, read by a thread.
struct Lines {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Lines {
    fn spawn(command: &mut Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line, failing the test after 10 s or at end of output.
    fn next(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(e) => {
                let _ = self.child.kill();
                let mut stderr = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
                }
                panic!("no line from child ({e}); stderr: {stderr}");
            }
        }
    }

    /// Waits for a successful exit.
    fn success(mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "child exited with {status}");
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn mosquitto_pub_to_umqtt() {
    if !available("mosquitto_pub_to_umqtt", "mosquitto_pub", common::on_path("mosquitto_pub")) {
        return;
    }
    let Some(broker) = Mosquitto::start("mosquitto_pub_to_umqtt", "") else {
        return;
    };
    let inbox = Inbox::default();
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(tcp(broker.port).await, &mut rx, &mut tx, inbox.handler());
    client.connect(&ConnectOptions::new("umqtt-sub")).await.unwrap();
    client.subscribe("interop/+", QoS::AtLeastOnce).await.unwrap();
    for (qos, payload) in [("0", "zéro"), ("1", "one 1")] {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", qos])
            .args(["-t", "interop/a", "-m", payload])
            .status()
            .unwrap();
        assert!(status.success());
        next(&mut client).await;
    }
    let got: Vec<_> = inbox
        .take()
        .into_iter()
        .map(|(t, p, q, _)| (t, String::from_utf8(p).unwrap(), q))
        .collect();
    assert_eq!(
        got,
        [
            ("interop/a".into(), "zéro".into(), QoS::AtMostOnce),
            ("interop/a".into(), "one 1".into(), QoS::AtLeastOnce)
        ]
    );
}

#[tokio::test]
async fn umqtt_to_mosquitto_sub() {
    if !available("umqtt_to_mosquitto_sub", "mosquitto_sub", common::on_path("mosquitto_sub")) {
        return;
    }
    let Some(broker) = Mosquitto::start("umqtt_to_mosquitto_sub", "") else {
        return;
    };
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(tcp(broker.port).await, &mut rx, &mut tx, silent);
    client.connect(&ConnectOptions::new("umqtt-pub")).await.unwrap();
    // A retained message tells when mosquitto_sub's subscription is live.
    client.publish("interop/b", b"ready", QoS::AtLeastOnce, true).await.unwrap();
    let mut sub = Lines::spawn(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1", "-v"])
            .args(["-t", "interop/b", "-C", "3"]),
    );
    assert_eq!(sub.next(), "interop/b ready");
    client.publish("interop/b", b"qos 1 from umqtt", QoS::AtLeastOnce, false).await.unwrap();
    client.publish("interop/b", b"qos 0 from umqtt", QoS::AtMostOnce, false).await.unwrap();
    assert_eq!(sub.next(), "interop/b qos 1 from umqtt");
    assert_eq!(sub.next(), "interop/b qos 0 from umqtt");
    sub.success();
    client.disconnect().await.unwrap();
}

/// Makes a paho client `c` for paho-mqtt 1.x and 2.x alike.
const PAHO_CLIENT: &str = r#"
import sys, paho.mqtt.client as mqtt
def make_client(client_id, protocol):
    try:
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    except AttributeError:
        return mqtt.Client(client_id=client_id, protocol=protocol)
"#;

#[tokio::test]
async fn paho_to_umqtt() {
    if !available("paho_to_umqtt", "python3 paho-mqtt", paho_installed()) {
        return;
    }
    let Some(broker) = Mosquitto::start("paho_to_umqtt", "") else {
        return;
    };
    let inbox = Inbox::default();
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(tcp(broker.port).await, &mut rx, &mut tx, inbox.handler());
    let opts = ConnectOptions::new("umqtt-sub").protocol(ProtocolLevel::V31);
    client.connect(&opts).await.unwrap();
    client.subscribe("interop/paho/#", QoS::AtLeastOnce).await.unwrap();
    let script = format!(
        "{PAHO_CLIENT}
c = make_client('paho-pub', mqtt.MQTTv311)
c.connect('127.0.0.1', {port})
c.loop_start()
c.publish('interop/paho/1', b'from paho qos1', qos=1).wait_for_publish()
c.publish('interop/paho/0', b'from paho qos0', qos=0).wait_for_publish()
c.disconnect()
c.loop_stop()
",
        port = broker.port
    );
    let status = Command::new("python3").args(["-c", &script]).status().unwrap();
    assert!(status.success(), "paho publisher failed");
    while inbox.len() < 2 {
        next(&mut client).await;
    }
    let got: Vec<_> = inbox.take().into_iter().map(|(t, p, q, _)| (t, p, q)).collect();
    assert_eq!(
        got,
        [
            ("interop/paho/1".into(), b"from paho qos1".to_vec(), QoS::AtLeastOnce),
            ("interop/paho/0".into(), b"from paho qos0".to_vec(), QoS::AtMostOnce)
        ]
    );
}

#[tokio::test]
async fn umqtt_to_paho() {
    if !available("umqtt_to_paho", "python3 paho-mqtt", paho_installed()) {
        return;
    }
    let Some(broker) = Mosquitto::start("umqtt_to_paho", "") else {
        return;
    };
    let script = format!(
        "{PAHO_CLIENT}
received = []
def on_subscribe(client, userdata, mid, *rest):
    print('ready', flush=True)
def on_message(client, userdata, msg):
    print(msg.topic, msg.qos, msg.payload.decode(), flush=True)
    received.append(msg)
    if len(received) == 2:
        client.disconnect()
c = make_client('paho-sub', mqtt.MQTTv311)
c.on_subscribe = on_subscribe
c.on_message = on_message
c.connect('127.0.0.1', {port})
c.subscribe('interop/umqtt/+', qos=1)
c.loop_forever()
",
        port = broker.port
    );
    let mut paho = Lines::spawn(Command::new("python3").args(["-c", &script]));
    assert_eq!(paho.next(), "ready");
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(tcp(broker.port).await, &mut rx, &mut tx, silent);
    client.connect(&ConnectOptions::new("umqtt-pub")).await.unwrap();
    client.publish("interop/umqtt/1", b"from umqtt qos1", QoS::AtLeastOnce, false).await.unwrap();
    client.publish("interop/umqtt/0", b"from umqtt qos0", QoS::AtMostOnce, false).await.unwrap();
    assert_eq!(paho.next(), "interop/umqtt/1 1 from umqtt qos1");
    assert_eq!(paho.next(), "interop/umqtt/0 0 from umqtt qos0");
    paho.success();
    client.disconnect().await.unwrap();
}
