//! The always-connected client (`umqtt::robust::Runner`) over embassy-net
//! for real: embassy-net's `TcpClient` and `DnsSocket` through
//! `umqtt::connect::TcpConnector`, on a TAP device (`embassy-net-tuntap`)
//! inside a network namespace the test creates, to a Mosquitto inside that
//! namespace, the host name resolved by a dnsmasq there through
//! embassy-net's DNS socket. The runner connects by name, subscribes and
//! round trips a QoS 1 message; the broker is killed (SIGKILL) and
//! restarted; the runner reconnects by itself through the same connector
//! (its events say so) and resubscribes, a QoS 1 publish made during the
//! outage completes after the reconnect, and messages published after the
//! restart arrive. Before that, a connect that cannot complete is dropped, and
//! the `TcpClient`'s only socket must come back to its pool.
//!
//! The test re-executes itself inside the namespace (`ip netns exec`), so
//! the TAP device and the broker are private to it. It needs root (or
//! CAP_NET_ADMIN), `ip` (iproute2), `/dev/net/tun`, `mosquitto` and
//! `dnsmasq`; where any is missing it skips with one line, except under
//! CI (`UMQTT_REQUIRE_MOSQUITTO=1`), where that is a failure.

#[path = "../../common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Mosquitto, mosquitto_required, on_path, temp_dir};
use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_net::dns::DnsSocket;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_net::{Config, Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use tokio::sync::mpsc;
use umqtt::connect::{Connector, TcpConnector};
use umqtt::robust::{
    Backoff, Config as RobustConfig, Event, Hooks, LinkState, Runner, State, Stop,
};
use umqtt::{ConnectOptions, QoS};

/// The kernel's end of the TAP link, where Mosquitto and dnsmasq listen.
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
/// embassy-net's end.
const STACK: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 2);
/// An address on the TAP link nobody answers ARP for: a connect to it
/// never completes.
const NOBODY: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 3);
/// The broker's name, known only to the namespace's dnsmasq.
const BROKER_NAME: &str = "broker.umqtt.test";
/// The TAP device inside the namespace.
const TAP: &str = "tap0";
/// Set in the re-executed child, inside the namespace.
const CHILD: &str = "UMQTT_EMBASSY_NET_CHILD";
/// How long any one step may take.
const WAIT: Duration = Duration::from_secs(20);

#[test]
fn embassy_net_runner_reconnects_by_itself_after_a_broker_restart_and_resubscribes() {
    const TEST: &str =
        "embassy_net_runner_reconnects_by_itself_after_a_broker_restart_and_resubscribes";
    if std::env::var_os(CHILD).is_some() {
        in_namespace(TEST);
        return;
    }
    let namespace = match Namespace::create() {
        Ok(namespace) => namespace,
        Err(why) => return skip(TEST, &why),
    };
    if !on_path("mosquitto") && !Path::new("/usr/sbin/mosquitto").exists() {
        return skip(TEST, "mosquitto not installed (Debian package mosquitto)");
    }
    if dnsmasq().is_none() {
        return skip(TEST, "dnsmasq not installed (Debian package dnsmasq-base)");
    }
    let output = Command::new("ip")
        .args(["netns", "exec", &namespace.name])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("run the test inside the namespace");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the test failed inside namespace {}", namespace.name);
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"), "the child ran no test");
}

/// Skips with one line, or fails under CI.
fn skip(test: &str, why: &str) {
    assert!(!mosquitto_required(), "{test}: {why} (UMQTT_REQUIRE_MOSQUITTO=1: must run)");
    println!("SKIPPED {test}: {why}");
}

/// A network namespace with a TAP device addressed [`HOST`]/24 and its
/// loopback up, deleted (with the device) on drop.
struct Namespace {
    name: String,
}

impl Namespace {
    fn create() -> Result<Self, String> {
        if !on_path("ip") && !Path::new("/usr/sbin/ip").exists() {
            return Err("`ip` not installed (Debian package iproute2)".into());
        }
        if !Path::new("/dev/net/tun").exists() {
            return Err("no /dev/net/tun".into());
        }
        let name = format!("umqtt-en-{}", std::process::id());
        run(&["ip", "netns", "add", &name])
            .map_err(|e| format!("cannot create a namespace: {e}"))?;
        let namespace = Self { name };
        let host = format!("{HOST}/24");
        for step in [
            &["ip", "link", "set", "lo", "up"][..],
            &["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
            &["ip", "addr", "add", &host, "dev", TAP],
            &["ip", "link", "set", TAP, "up"],
        ] {
            let mut command = vec!["ip", "netns", "exec", &namespace.name];
            command.extend_from_slice(step);
            run(&command).map_err(|e| format!("cannot set up the TAP device: {e}"))?;
        }
        Ok(namespace)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// Runs a command, its stderr as the error.
fn run(command: &[&str]) -> Result<(), String> {
    let out = Command::new(command[0])
        .args(&command[1..])
        .output()
        .map_err(|e| format!("{}: {e}", command[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn dnsmasq() -> Option<PathBuf> {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// dnsmasq on [`HOST`]:53 answering [`BROKER_NAME`] with [`HOST`] and
/// nothing else; killed on drop.
struct Resolver(Child);

impl Resolver {
    fn start(dir: &Path) -> Self {
        let child = Command::new(dnsmasq().expect("dnsmasq"))
            .args(["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts"])
            .args(["--bind-interfaces", "--user=root", "--port=53"])
            .arg(format!("--listen-address={HOST}"))
            .arg(format!("--address=/{BROKER_NAME}/{HOST}"))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dnsmasq");
        let resolver = Self(child);
        resolver.wait_ready();
        resolver
    }

    /// Blocks until it answers a query for [`BROKER_NAME`].
    fn wait_ready(&self) {
        let socket = UdpSocket::bind((HOST, 0)).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut query = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in BROKER_NAME.split('.') {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
        let deadline = Instant::now() + WAIT;
        let mut answer = [0u8; 512];
        loop {
            if socket.send_to(&query, (HOST, 53)).is_ok()
                && let Ok(n) = socket.recv(&mut answer)
                && n > 12
                && answer[..2] == [0x12, 0x34]
            {
                return;
            }
            assert!(Instant::now() < deadline, "dnsmasq did not answer");
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The broker inside the namespace: listening on [`HOST`]:`port` (and on
/// loopback, where readiness is checked), restartable on the same port.
struct Broker {
    test: &'static str,
    dir: PathBuf,
    port: u16,
    mosquitto: Option<Mosquitto>,
}

impl Broker {
    fn start(test: &'static str) -> Self {
        let dir = temp_dir(test);
        let port = std::net::TcpListener::bind((HOST, 0)).unwrap().local_addr().unwrap().port();
        let mut broker = Self { test, dir, port, mosquitto: None };
        broker.restart();
        broker
    }

    /// Kills the broker with SIGKILL (if running) and starts it again.
    fn restart(&mut self) {
        if let Some(mut old) = self.mosquitto.take() {
            old.kill();
        }
        let loopback = common::free_port();
        let extra = format!("listener {} {HOST}\n", self.port);
        self.mosquitto = Mosquitto::start_on(self.test, &self.dir, loopback, &extra);
        assert!(self.mosquitto.is_some(), "mosquitto did not start");
    }
}

/// Inside the namespace: the resolver, the broker, embassy-net on the TAP
/// device, and the client part.
fn in_namespace(test: &'static str) {
    let dir = temp_dir(test);
    let _resolver = Resolver::start(&dir);
    let mut broker = Broker::start(test);

    let device = TunTapDevice::new(TAP).expect("open the TAP device");
    let mut config = StaticConfigV4 {
        address: Ipv4Cidr::new(STACK, 24),
        gateway: Some(HOST),
        dns_servers: Default::default(),
    };
    config.dns_servers.push(HOST).unwrap();
    let resources = Box::leak(Box::new(StackResources::<4>::new()));
    let (stack, mut runner) =
        embassy_net::new(device, Config::ipv4_static(config), resources, 0x5eed);
    // 'static, as on firmware (static_cell there).
    let state = Box::leak(Box::new(TcpClientState::<1, 2048, 2048>::new()));
    let tcp = Box::leak(Box::new(TcpClient::new(stack, state)));
    tcp.set_timeout(Some(embassy_time::Duration::from_secs(10)));
    let dns = Box::leak(Box::new(DnsSocket::new(stack)));
    let connector = TcpConnector::new(&*tcp, &*dns, BROKER_NAME, broker.port);
    let nobody = NOBODY.to_string();
    let unanswered = TcpConnector::new(&*tcp, &*dns, &nobody, broker.port);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async {
            dropped_connect_returns_its_socket(unanswered).await;
            // The pool has one socket: this connects only if the dropped
            // attempt gave it back.
            bounded("the client part", client_part(connector, &mut broker)).await;
        };
        match select(runner.run(), tokio::time::timeout(4 * WAIT, client)).await {
            Either::First(never) => match never {},
            Either::Second(done) => done.expect("the client part finished in time"),
        }
    });
}

/// A connect that cannot complete (ARP unanswered), dropped: the
/// `TcpClient`'s only socket must go back to its pool.
async fn dropped_connect_returns_its_socket<K: Connector>(mut connector: K) {
    let attempt = connector.connect();
    let dropped = tokio::time::timeout(Duration::from_millis(200), attempt).await;
    assert!(dropped.is_err(), "a connect to {NOBODY} (no such host) completed");
    println!("a connect to {NOBODY} dropped while pending");
}

/// Sends every event of the runner to the test, in order.
struct Events(mpsc::UnboundedSender<(Instant, Event)>);

impl Hooks for Events {
    fn on_event(&mut self, event: &Event) {
        let _ = self.0.send((Instant::now(), *event));
    }
}

/// The next event the runner reports.
async fn next_event(events: &mut mpsc::UnboundedReceiver<(Instant, Event)>) -> (Instant, Event) {
    let next = bounded("the next event", events.recv()).await;
    let (at, event) = next.expect("the runner stopped reporting");
    println!("event: {event:?}");
    (at, event)
}

/// Waits for the event `wanted`, skipping others that `may_skip` allows.
async fn expect_event(
    events: &mut mpsc::UnboundedReceiver<(Instant, Event)>,
    wanted: Event,
    may_skip: impl Fn(&Event) -> bool,
) -> Instant {
    loop {
        let (at, event) = next_event(events).await;
        if event == wanted {
            return at;
        }
        assert!(may_skip(&event), "expected {wanted:?}, the runner reported {event:?}");
    }
}

/// The client part: the always-connected runner over `connector`
/// subscribes and round trips a QoS 1 message; the broker is killed and
/// restarted; the runner reconnects by itself (its events say so) and
/// resubscribes (the restarted broker kept no session); a QoS 1 publish
/// made while the link was down completes after the reconnect, and it and
/// a message published after it arrive through the subscription.
async fn client_part<K: Connector>(connector: K, broker: &mut Broker) {
    static STATE: State<CriticalSectionRawMutex, 256, 256, 128, 4> = State::new();
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let opts = ConnectOptions::new("embassy-net").clean_session(false).keep_alive_secs(30);
    let config = RobustConfig {
        backoff: Backoff {
            min: embassy_time::Duration::from_millis(200),
            max: embassy_time::Duration::from_secs(2),
            ..Backoff::default()
        },
        connect_timeout: embassy_time::Duration::from_secs(10),
        stop_on_auth_refusal: true,
    };
    let (tx_events, mut events) = mpsc::unbounded_channel();
    let (runner, client) = Runner::new(connector, &STATE, &mut rx, &mut tx, opts, config);
    let mut runner = runner.with_hooks(Events(tx_events));
    let topic = "embassy-net/robust";
    let app = async {
        let mut buf = [0u8; 64];
        expect_event(&mut events, Event::Connected { session_present: false }, |_| false).await;
        bounded("SUBACK", client.subscribe(topic, QoS::AtLeastOnce)).await.unwrap();
        bounded("PUBACK", client.publish(topic, &[1], QoS::AtLeastOnce, false)).await.unwrap();
        let m = bounded("the message back", client.receive(&mut buf)).await.unwrap();
        assert_eq!((m.topic, m.payload), (topic, &[1u8][..]));

        broker.restart();
        let lost = loop {
            match next_event(&mut events).await {
                (at, Event::Disconnected { reason }) => break (at, reason),
                (_, other) => assert!(matches!(other, Event::Resubscribed { .. }), "{other:?}"),
            }
        };
        println!("broker killed and restarted; the connection ended with {:?}", lost.1);
        // The link is down (nothing runs between this check and the call):
        // the QoS 1 publish waits for the reconnect.
        assert_ne!(client.state(), LinkState::Connected);
        let during_outage = client.publish(topic, &[2], QoS::AtLeastOnce, false);
        let reconnected = async {
            let attempt = |e: &Event| {
                matches!(e, Event::ReconnectAttempt { .. } | Event::Disconnected { .. })
            };
            let at =
                expect_event(&mut events, Event::Connected { session_present: false }, attempt)
                    .await;
            expect_event(&mut events, Event::Resubscribed { count: 1 }, |_| false).await;
            at
        };
        let (published, up) = bounded("the reconnect", join(during_outage, reconnected)).await;
        published.expect("the QoS 1 publish made during the outage completes");
        println!("reconnected {:?} after the link dropped", up - lost.0);
        assert!(client.stats().reconnects >= 1, "{:?}", client.stats());
        // The subscription came back: the message published during the
        // outage, then one published after the reconnect.
        let m = bounded("the outage message", client.receive(&mut buf)).await.unwrap();
        assert_eq!((m.topic, m.payload), (topic, &[2u8][..]));
        bounded("PUBACK", client.publish(topic, &[3], QoS::AtLeastOnce, false)).await.unwrap();
        let m = bounded("the message after", client.receive(&mut buf)).await.unwrap();
        assert_eq!((m.topic, m.payload), (topic, &[3u8][..]));
        client.close().await;
    };
    match bounded("the runner", select(runner.run(), app)).await {
        Either::First(stop) => assert_eq!(stop, Stop::Closed),
        Either::Second(()) => panic!("close returned before the runner stopped"),
    }
}

/// Awaits `future` for at most [`WAIT`], naming what timed out.
async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in {WAIT:?}"))
}
