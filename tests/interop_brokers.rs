//! The same client features against every broker this machine can run,
//! each started by the test on its own ephemeral loopback ports:
//! Mosquitto, the in-process Rust broker of `examples/common/broker.rs`,
//! RabbitMQ's MQTT plugin (a private node) and nats-server's MQTT
//! listener. Features: QoS 0/1 round trip, retained message, last will,
//! persistent session (queued QoS 1 delivered on return), and 100
//! pipelined QoS 1 publishes; each with protocol level 3 (MQTT 3.1) and
//! level 4 (3.1.1).
//!
//! Prints a markdown table broker × feature (and writes it to the file
//! named by `UMQTT_INTEROP_REPORT`, if set). A broker that cannot start is
//! SKIPPED with its reason (Mosquitto fails the test instead when
//! `UMQTT_REQUIRE_MOSQUITTO=1`). A feature a broker does not offer is
//! reported as such, with what the broker did; any other failure fails the
//! test.

#[path = "../examples/common/broker.rs"]
mod broker;
mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::external::{Nats, RabbitMq};
use common::{Mosquitto, tcp};
use umqtt::packet::ConnectReturnCode;
use umqtt::{Client, ConnectOptions, Error, ProtocolLevel, Publish, QoS};

/// Bound on each feature run.
const FEATURE_LIMIT: Duration = Duration::from_secs(20);
/// Bound on waiting for one message.
const WAIT: Duration = Duration::from_secs(5);

type Msg = (String, Vec<u8>, QoS, bool);

#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Msg>>>);

impl Inbox {
    fn handler(&self) -> impl FnMut(&Publish<'_>) + use<> {
        let inbox = Arc::clone(&self.0);
        move |m: &Publish<'_>| {
            inbox.lock().unwrap().push((m.topic.to_owned(), m.payload.to_vec(), m.qos, m.retain))
        }
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn take(&self) -> Vec<Msg> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// A feature's result on one broker and protocol level.
#[derive(Debug, Clone)]
enum Outcome {
    Pass,
    /// The broker does not offer it; what it did instead.
    Unsupported(String),
    Fail(String),
}

type Res<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

/// Waits until `inbox` holds `n` messages.
async fn receive<T, H>(client: &mut Client<'_, T, H>, inbox: &Inbox, n: usize) -> Res<()>
where
    T: embedded_io_async::Read + embedded_io_async::Write,
    T::Error: std::fmt::Debug,
    H: FnMut(&Publish<'_>),
{
    while inbox.len() < n {
        match tokio::time::timeout(WAIT, client.wait_msg()).await {
            Ok(r) => r.map_err(err("wait_msg"))?,
            Err(_) => return Err(format!("{} of {n} messages within {WAIT:?}", inbox.len())),
        }
    }
    Ok(())
}

struct Ctx {
    port: u16,
    level: ProtocolLevel,
    /// Unique per broker, level and feature: client ids and topics.
    tag: String,
}

impl Ctx {
    fn opts<'a>(&self, id: &'a str) -> ConnectOptions<'a> {
        ConnectOptions::new(id).protocol(self.level).keep_alive_secs(30)
    }
}

async fn round_trip(c: &Ctx) -> Res<()> {
    let topic = format!("umqtt/{}/rt", c.tag);
    let (sub_id, pub_id) = (format!("{}-s", c.tag), format!("{}-p", c.tag));
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 512], [0u8; 512], [0u8; 512], [0u8; 512]);
    let mut sub = Client::new(tcp(c.port).await, &mut rx1, &mut tx1, inbox.handler());
    sub.connect(&c.opts(&sub_id)).await.map_err(err("subscriber connect"))?;
    let granted = sub.subscribe(&topic, QoS::AtLeastOnce).await.map_err(err("subscribe"))?;
    let mut publ = Client::new(tcp(c.port).await, &mut rx2, &mut tx2, |_: &Publish<'_>| {});
    publ.connect(&c.opts(&pub_id)).await.map_err(err("publisher connect"))?;
    publ.publish(&topic, b"qos0", QoS::AtMostOnce, false).await.map_err(err("publish QoS 0"))?;
    publ.publish(&topic, b"qos1", QoS::AtLeastOnce, false).await.map_err(err("publish QoS 1"))?;
    receive(&mut sub, &inbox, 2).await?;
    let mut got = inbox.take();
    // Order is only promised among messages of one QoS (4.6): RabbitMQ
    // sometimes delivers the QoS 1 message first. Each must arrive once,
    // whole, at its QoS.
    got.sort_by(|a, b| a.1.cmp(&b.1));
    let want = [
        (topic.clone(), b"qos0".to_vec(), QoS::AtMostOnce, false),
        (topic.clone(), b"qos1".to_vec(), granted.min(QoS::AtLeastOnce), false),
    ];
    if got != want {
        return Err(format!("received {got:?}"));
    }
    sub.unsubscribe(&topic).await.map_err(err("unsubscribe"))?;
    publ.ping().await.map_err(err("ping"))?;
    publ.disconnect().await.map_err(err("disconnect"))?;
    sub.disconnect().await.map_err(err("disconnect"))?;
    Ok(())
}

async fn retained(c: &Ctx) -> Res<()> {
    let topic = format!("umqtt/{}/retained", c.tag);
    let (sub_id, pub_id) = (format!("{}-s", c.tag), format!("{}-p", c.tag));
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 512], [0u8; 512], [0u8; 512], [0u8; 512]);
    let mut publ = Client::new(tcp(c.port).await, &mut rx2, &mut tx2, |_: &Publish<'_>| {});
    publ.connect(&c.opts(&pub_id)).await.map_err(err("publisher connect"))?;
    publ.publish(&topic, b"last-known", QoS::AtLeastOnce, true)
        .await
        .map_err(err("publish retained"))?;
    let inbox = Inbox::default();
    let mut sub = Client::new(tcp(c.port).await, &mut rx1, &mut tx1, inbox.handler());
    sub.connect(&c.opts(&sub_id)).await.map_err(err("subscriber connect"))?;
    sub.subscribe(&topic, QoS::AtLeastOnce).await.map_err(err("subscribe"))?;
    receive(&mut sub, &inbox, 1).await?;
    let got = inbox.take();
    if got.first().map(|m| (&m.1[..], m.3)) != Some((&b"last-known"[..], true)) {
        return Err(format!("received {got:?}"));
    }
    // Clear it: an empty retained message.
    publ.publish(&topic, b"", QoS::AtLeastOnce, true).await.map_err(err("clear retained"))?;
    Ok(())
}

async fn will(c: &Ctx) -> Res<()> {
    let topic = format!("umqtt/{}/will", c.tag);
    let (watch_id, dying_id) = (format!("{}-w", c.tag), format!("{}-d", c.tag));
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 512], [0u8; 512], [0u8; 512], [0u8; 512]);
    let mut watcher = Client::new(tcp(c.port).await, &mut rx1, &mut tx1, inbox.handler());
    watcher.connect(&c.opts(&watch_id)).await.map_err(err("watcher connect"))?;
    watcher.subscribe(&topic, QoS::AtLeastOnce).await.map_err(err("subscribe"))?;
    let mut dying = Client::new(tcp(c.port).await, &mut rx2, &mut tx2, |_: &Publish<'_>| {});
    let opts = c.opts(&dying_id).will(&topic, b"gone", QoS::AtLeastOnce, false);
    dying.connect(&opts).await.map_err(err("connect with will"))?;
    dying.ping().await.map_err(err("ping"))?;
    drop(dying); // the socket closes without DISCONNECT
    receive(&mut watcher, &inbox, 1).await?;
    let got = inbox.take();
    if got.first().map(|m| &m.1[..]) != Some(&b"gone"[..]) {
        return Err(format!("received {got:?}"));
    }
    Ok(())
}

async fn persistent_session(c: &Ctx) -> Res<()> {
    let topic = format!("umqtt/{}/session", c.tag);
    let (sub_id, pub_id) = (format!("{}-s", c.tag), format!("{}-p", c.tag));
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 512], [0u8; 512], [0u8; 512], [0u8; 512]);
    let mut sub = Client::new(tcp(c.port).await, &mut rx1, &mut tx1, inbox.handler());
    let keep = c.opts(&sub_id).clean_session(false);
    sub.connect(&c.opts(&sub_id).clean_session(true)).await.map_err(err("clean connect"))?;
    sub.disconnect().await.map_err(err("disconnect"))?;
    if sub
        .reconnect(tcp(c.port).await, &keep)
        .await
        .map_err(err("persistent connect"))?
        .session_present
    {
        return Err("session present after a clean session".into());
    }
    sub.subscribe(&topic, QoS::AtLeastOnce).await.map_err(err("subscribe"))?;
    sub.disconnect().await.map_err(err("disconnect"))?;
    let mut publ = Client::new(tcp(c.port).await, &mut rx2, &mut tx2, |_: &Publish<'_>| {});
    publ.connect(&c.opts(&pub_id)).await.map_err(err("publisher connect"))?;
    for i in 0..5 {
        publ.publish(&topic, format!("queued-{i}").as_bytes(), QoS::AtLeastOnce, false)
            .await
            .map_err(err("publish"))?;
    }
    let present =
        sub.reconnect(tcp(c.port).await, &keep).await.map_err(err("reconnect"))?.session_present;
    // MQTT 3.1's CONNACK has no session-present flag (3.1.1 added it): at
    // level 3 only the queued messages prove that the session survived.
    if !present && c.level == ProtocolLevel::V311 {
        return Err("session_present false on return".into());
    }
    receive(&mut sub, &inbox, 5).await?;
    let got: Vec<Vec<u8>> = inbox.take().into_iter().map(|m| m.1).collect();
    let want: Vec<Vec<u8>> = (0..5).map(|i| format!("queued-{i}").into_bytes()).collect();
    if got != want {
        return Err(format!("received {got:?}"));
    }
    // Leave no session behind.
    sub.reconnect(tcp(c.port).await, &c.opts(&sub_id).clean_session(true))
        .await
        .map_err(err("clean up"))?;
    Ok(())
}

async fn qos1_pipelined(c: &Ctx) -> Res<()> {
    const N: usize = 100;
    let topic = format!("umqtt/{}/qos1", c.tag);
    let (sub_id, pub_id) = (format!("{}-s", c.tag), format!("{}-p", c.tag));
    let inbox = Inbox::default();
    let (mut rx1, mut tx1, mut rx2, mut tx2) = ([0u8; 512], [0u8; 512], [0u8; 512], [0u8; 2048]);
    let mut sub = Client::new(tcp(c.port).await, &mut rx1, &mut tx1, inbox.handler());
    sub.connect(&c.opts(&sub_id)).await.map_err(err("subscriber connect"))?;
    sub.subscribe(&topic, QoS::AtLeastOnce).await.map_err(err("subscribe"))?;
    let mut publ = Client::new(tcp(c.port).await, &mut rx2, &mut tx2, |_: &Publish<'_>| {});
    publ.connect(&c.opts(&pub_id).max_in_flight(16)).await.map_err(err("publisher connect"))?;
    for i in 0..N {
        publ.publish_no_wait(&topic, format!("m{i}").as_bytes(), QoS::AtLeastOnce, false)
            .await
            .map_err(err("publish_no_wait"))?;
    }
    publ.wait_all_acked().await.map_err(err("wait_all_acked"))?;
    receive(&mut sub, &inbox, N).await?;
    let got = inbox.take();
    let in_order = got
        .iter()
        .enumerate()
        .all(|(i, m)| m.1 == format!("m{i}").into_bytes() && m.2 == QoS::AtLeastOnce);
    if got.len() != N || !in_order {
        return Err(format!("{} messages, in order and QoS 1: {in_order}", got.len()));
    }
    Ok(())
}

const FEATURES: [&str; 5] =
    ["round trip QoS 0/1", "retained", "last will", "persistent session", "100 × QoS 1 pipelined"];

async fn run_feature(i: usize, c: &Ctx) -> Res<()> {
    match i {
        0 => round_trip(c).await,
        1 => retained(c).await,
        2 => will(c).await,
        3 => persistent_session(c).await,
        _ => qos1_pipelined(c).await,
    }
}

/// What a broker is known not to offer, so a failure there is reported as
/// such (the observed error is still shown).
fn known_gap(broker: &str, feature: usize) -> Option<&'static str> {
    match (broker, feature) {
        ("in-process", 3) => Some("keeps no sessions (by design)"),
        _ => None,
    }
}

/// Whether the broker turned the protocol level down at CONNECT.
async fn level_refused(port: u16, level: ProtocolLevel) -> Option<String> {
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    let result = tokio::time::timeout(
        WAIT,
        client.connect(&ConnectOptions::new("umqtt-level-probe").protocol(level)),
    )
    .await;
    match result {
        Ok(Ok(_)) => {
            let _ = client.disconnect().await;
            None
        }
        Ok(Err(Error::Refused(ConnectReturnCode::UnacceptableProtocolVersion))) => {
            Some("refuses it (CONNACK 0x01)".into())
        }
        Ok(Err(Error::ConnectionClosed | Error::Transport(_))) => {
            Some("closes the connection at CONNECT".into())
        }
        Ok(Err(e)) => Some(format!("CONNECT fails: {e:?}")),
        Err(_) => Some("no CONNACK".into()),
    }
}

type Row = (String, Vec<(ProtocolLevel, Vec<Outcome>)>);

async fn run_broker(name: &str, short: &str, port: u16) -> Row {
    let mut levels = Vec::new();
    for level in [ProtocolLevel::V31, ProtocolLevel::V311] {
        let v = if level == ProtocolLevel::V31 { "31" } else { "311" };
        let outcomes = match level_refused(port, level).await {
            Some(why) => vec![
                Outcome::Unsupported(format!(
                    "protocol level {}: {why}",
                    if level == ProtocolLevel::V31 { 3 } else { 4 }
                ));
                FEATURES.len()
            ],
            None => {
                let mut outcomes = Vec::new();
                for (i, _) in FEATURES.iter().enumerate() {
                    let c =
                        Ctx { port, level, tag: format!("{short}{v}f{i}-{}", std::process::id()) };
                    let result = tokio::time::timeout(FEATURE_LIMIT, run_feature(i, &c))
                        .await
                        .unwrap_or_else(|_| Err(format!("not done within {FEATURE_LIMIT:?}")));
                    outcomes.push(match (result, known_gap(name, i)) {
                        (Ok(()), _) => Outcome::Pass,
                        (Err(e), Some(gap)) => {
                            Outcome::Unsupported(format!("{gap}; observed: {e}"))
                        }
                        (Err(e), None) => Outcome::Fail(e),
                    });
                }
                outcomes
            }
        };
        levels.push((level, outcomes));
    }
    (name.to_owned(), levels)
}

fn level_name(level: ProtocolLevel) -> &'static str {
    if level == ProtocolLevel::V31 { "3.1" } else { "3.1.1" }
}

fn table(rows: &[Row], skipped: &[(String, String)], notes: &[String]) -> String {
    let mut out = String::from("| broker | MQTT |");
    for f in FEATURES {
        let _ = write!(out, " {f} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(FEATURES.len()));
    out.push('\n');
    let mut footnotes = Vec::new();
    for (name, levels) in rows {
        for (level, outcomes) in levels {
            let _ = write!(out, "| {name} | {} |", level_name(*level));
            for o in outcomes {
                let cell = match o {
                    Outcome::Pass => "pass".to_owned(),
                    Outcome::Unsupported(why) | Outcome::Fail(why) => {
                        let word =
                            if matches!(o, Outcome::Fail(_)) { "FAIL" } else { "unsupported" };
                        let n = match footnotes.iter().position(|f| f == why) {
                            Some(n) => n + 1,
                            None => {
                                footnotes.push(why.clone());
                                footnotes.len()
                            }
                        };
                        format!("{word} [{n}]")
                    }
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
    }
    for (name, why) in skipped {
        let _ = writeln!(out, "| {name} | – | SKIPPED: {why} |{}", " |".repeat(FEATURES.len() - 1));
    }
    out.push('\n');
    for (n, f) in footnotes.iter().enumerate() {
        let _ = writeln!(out, "[{}] {f}  ", n + 1);
    }
    for note in notes {
        let _ = writeln!(out, "{note}  ");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_with_every_available_broker() {
    let started = Instant::now();
    // RabbitMQ takes many seconds to boot: start it while the others run.
    let rabbit = std::thread::spawn(|| RabbitMq::start("interop"));
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut notes = Vec::new();

    match Mosquitto::start("interop", "") {
        Some(m) => rows.push(run_broker("Mosquitto 2", "mq", m.port).await),
        None => skipped.push(("Mosquitto".to_owned(), "mosquitto not on PATH".to_owned())),
    }
    match broker::Broker::start() {
        Ok(b) => rows.push(run_broker("in-process", "ip", b.port()).await),
        Err(e) => skipped.push(("in-process".to_owned(), e.to_string())),
    }
    match Nats::start("interop-nats") {
        Ok(n) => rows.push(run_broker("NATS (MQTT)", "na", n.port).await),
        Err(e) => skipped.push(("NATS (MQTT)".to_owned(), e)),
    }
    match rabbit.join().unwrap() {
        Ok(r) => {
            notes.push(format!("RabbitMQ node start-up: {:.1} s.", r.startup.as_secs_f64()));
            rows.push(run_broker("RabbitMQ (MQTT plugin)", "rb", r.port).await);
        }
        Err(e) => skipped.push(("RabbitMQ (MQTT plugin)".to_owned(), e)),
    }
    notes.push("Persistent session at MQTT 3.1: CONNACK has no session-present flag in 3.1, so only the queued messages are checked.".to_owned());
    notes.push(format!("Whole interop run: {:.1} s.", started.elapsed().as_secs_f64()));

    let report = table(&rows, &skipped, &notes);
    println!("{report}");
    if let Ok(path) = std::env::var("UMQTT_INTEROP_REPORT") {
        std::fs::write(&path, &report).expect("write UMQTT_INTEROP_REPORT");
    }
    let failures: Vec<String> = rows
        .iter()
        .flat_map(|(name, levels)| {
            levels.iter().flat_map(move |(level, outcomes)| {
                outcomes.iter().zip(FEATURES).filter_map(move |(o, f)| match o {
                    Outcome::Fail(e) => {
                        Some(format!("{name} MQTT {} {f}: {e}", level_name(*level)))
                    }
                    _ => None,
                })
            })
        })
        .collect();
    assert!(failures.is_empty(), "interop failures:\n{}", failures.join("\n"));
    assert!(
        rows.iter().any(|(name, _)| name.starts_with("Mosquitto")) || !common::mosquitto_required(),
        "Mosquitto is required"
    );
}
