//! Broker restart: Mosquitto with persistence is stopped and started again
//! on the same port and the same persistence directory. A subscriber with
//! a persistent session (offline meanwhile) reconnects, learns that its
//! session survived (`session_present`), and receives the QoS 1 messages
//! that were queued for it before the restart.
//!
//! What makes queued messages survive in Mosquitto 2.0: it keeps its
//! database in memory and writes `mosquitto.db` only on a clean shutdown
//! (SIGTERM/SIGINT), every `autosave_interval` seconds (default 1800), on
//! SIGUSR1, or, with `autosave_on_changes true`, at the end of the event
//! loop iteration in which the number of changes (subscriptions, retained
//! and queued messages) reached `autosave_interval`. So a SIGKILL loses
//! everything queued since the last save unless `autosave_on_changes true`
//! with `autosave_interval 1` is set, and even then the save happens just
//! after the PUBACK is written: the publisher makes one more round trip
//! (PINGREQ/PINGRESP), which the broker can only answer in a later loop
//! iteration, after the save. SIGTERM always saves.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Mosquitto, Tcp, tcp, temp_dir};
use umqtt::{Client, ConnectOptions, Error, Publish, QoS};

const TOPIC: &str = "restart/queued";
const MESSAGES: u32 = 50;

fn persistence_conf(dir: &Path, extra: &str) -> String {
    format!("persistence true\npersistence_location {}/\n{extra}", dir.display())
}

/// Sends SIGTERM to the Mosquitto whose command line names `dir`'s
/// config (the one this test started) and waits until it has exited.
fn terminate(dir: &Path) {
    let config = dir.join("mosquitto.conf");
    let config = config.to_str().unwrap();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"mosquitto"))
            && args.contains(&config.as_bytes())
        {
            pids.push(pid);
        }
    }
    assert_eq!(pids.len(), 1, "expected one mosquitto for {config}, found {pids:?}");
    let status =
        std::process::Command::new("kill").arg("-TERM").arg(pids[0].to_string()).status().unwrap();
    assert!(status.success());
    let proc_dir = format!("/proc/{}", pids[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // A zombie until the harness reaps it: wait for state Z or gone.
    while std::fs::read_to_string(format!("{proc_dir}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(std::time::Instant::now() < deadline, "mosquitto did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sub_opts() -> ConnectOptions<'static> {
    ConnectOptions::new("restart-sub").clean_session(false).keep_alive_secs(30)
}

async fn subscribe_then_go_offline(port: u16) {
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut sub = Client::new(tcp(port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    // Start from a clean slate, then keep the session.
    sub.connect(&ConnectOptions::new("restart-sub").clean_session(true)).await.unwrap();
    sub.disconnect().await.unwrap();
    sub.reconnect(tcp(port).await, &sub_opts()).await.unwrap();
    assert_eq!(sub.subscribe(TOPIC, QoS::AtLeastOnce).await.unwrap(), QoS::AtLeastOnce);
    sub.disconnect().await.unwrap();
}

/// Publishes the messages the offline subscriber must get, then makes one
/// more round trip (see the module docs).
async fn publish_queued<H: FnMut(&Publish<'_>)>(publisher: &mut Client<'_, Tcp, H>) {
    for i in 0..MESSAGES {
        publisher
            .publish(TOPIC, format!("queued-{i}").as_bytes(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    publisher.ping().await.unwrap();
}

/// Reconnects the subscriber after the restart and collects what it gets.
async fn receive_after_restart(port: u16) -> (bool, Vec<String>) {
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut got = Vec::new();
    let mut sub = Client::new(tcp(port).await, &mut rx, &mut tx, |m: &Publish<'_>| {
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
    });
    let session_present = sub.connect(&sub_opts()).await.unwrap().session_present;
    for _ in 0..MESSAGES {
        match tokio::time::timeout(Duration::from_secs(5), sub.wait_msg()).await {
            Ok(r) => r.unwrap(),
            Err(_) => break, // fewer arrived; the caller reports which
        }
    }
    sub.disconnect().await.unwrap();
    drop(sub);
    (session_present, got)
}

async fn restart_scenario(test: &str, extra: &str, stop: impl FnOnce(&mut Mosquitto)) {
    let dir = temp_dir(test);
    let conf = persistence_conf(&dir, extra);
    let Some(mut broker) = Mosquitto::start_in(test, &dir, &conf) else { return };
    let port = broker.port;
    subscribe_then_go_offline(port).await;

    let (mut rx, mut tx) = ([0u8; 256], [0u8; 512]);
    let pub_opts = ConnectOptions::new("restart-pub").clean_session(false).keep_alive_secs(30);
    let mut publisher = Client::new(tcp(port).await, &mut rx, &mut tx, |_: &Publish<'_>| {});
    publisher.connect(&pub_opts).await.unwrap();
    publish_queued(&mut publisher).await;

    stop(&mut broker);
    // The connected publisher learns that the broker went away.
    let gone = tokio::time::timeout(Duration::from_secs(5), publisher.wait_msg())
        .await
        .expect("no error after the broker died");
    assert!(matches!(gone, Err(Error::ConnectionClosed | Error::Transport(_))), "got {gone:?}");
    drop(broker);

    let restarted = Mosquitto::start_on(test, &dir, port, &conf).expect("mosquitto restarts");
    // The publisher's persistent session survived too.
    assert!(
        publisher.reconnect(tcp(port).await, &pub_opts).await.unwrap().session_present,
        "publisher session lost"
    );
    let (session_present, got) = receive_after_restart(port).await;
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("queued-{i}")).collect();
    println!(
        "{test}: session_present {session_present}, {} of {MESSAGES} queued messages after restart",
        got.len()
    );
    assert!(session_present, "subscriber session lost; broker log:\n{}", restarted.log());
    assert_eq!(got, expected, "queued QoS 1 messages lost or reordered across the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_qos1_messages_survive_sigkill_with_autosave_on_changes() {
    restart_scenario(
        "restart-sigkill",
        "autosave_on_changes true\nautosave_interval 1\n",
        Mosquitto::kill,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_qos1_messages_survive_sigterm_with_default_autosave() {
    restart_scenario("restart-sigterm", "", |b: &mut Mosquitto| terminate(&b.dir)).await;
}
