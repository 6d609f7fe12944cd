//! The `cli` example stays connected, as `mosquitto_sub` does: the built
//! binary against a private Mosquitto, behind an MQTT-aware proxy that
//! sees every packet on the wire and cuts a connection where the test says.
//!
//! - `pub -c -i ID -q 1` whose connection is cut after its PUBLISH reached
//!   the broker and before the PUBACK reached it: it reconnects, resends
//!   the PUBLISH with DUP=1 and the same packet identifier
//!   `[MQTT-3.3.1-1]` `[MQTT-4.4.0-1]`, exits 0 after the PUBACK, and a
//!   subscriber got the message;
//! - `sub` across a broker restart (SIGKILL, then a new broker on the same
//!   port, which kept no session): it subscribes again, and messages
//!   published after the restart are printed;
//! - `sub -c -i ID` whose connection is cut: the broker resumed the
//!   session (CONNACK session present) `[MQTT-3.1.2-4]`, so it is not
//!   subscribed again, and the QoS 1 message published while it was away
//!   is delivered;
//! - `sub` over TLS across a broker restart, the same;
//! - `pub --connect-retry SECS` started before the broker: it retries the
//!   first connection and publishes once the broker is up.
//!
//! Every wait is on an event: a line the CLI prints, a packet the proxy
//! saw, the process exiting, the broker accepting; never a sleep.

mod cli_support;
mod common;

use std::io::{BufRead, BufReader, Lines, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, ChildStderr, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};

use cli_support::{cli, finish, text};
use common::Mosquitto;

/// Direction of a packet through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Client to broker.
    Up,
    /// Broker to client.
    Down,
}

/// A packet the proxy saw: on which connection (0: the first), which way.
#[derive(Debug, Clone)]
struct Seen {
    conn: usize,
    dir: Dir,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Wire {
    seen: Vec<Seen>,
    /// Cut the connection at the broker's next PUBACK, instead of
    /// forwarding it.
    cut_at_puback: bool,
    /// Both sockets of every connection, to cut them all at once.
    open: Vec<TcpStream>,
    cuts: usize,
}

/// An MQTT-aware loopback proxy: forwards whole packets each way and
/// records them. Its threads end with the test process.
struct Proxy {
    port: u16,
    wire: Arc<Mutex<Wire>>,
}

impl Proxy {
    /// Listens on an ephemeral loopback port, forwarding to `upstream`.
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let wire = Arc::new(Mutex::new(Wire::default()));
        let shared = Arc::clone(&wire);
        std::thread::spawn(move || {
            for (conn, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { return };
                let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue; // broker down: the client sees the connection close
                };
                let open = [client.try_clone().unwrap(), broker.try_clone().unwrap()];
                shared.lock().unwrap().open.extend(open);
                for (dir, from, to) in [
                    (Dir::Up, client.try_clone().unwrap(), broker.try_clone().unwrap()),
                    (Dir::Down, broker.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    let wire = Arc::clone(&shared);
                    std::thread::spawn(move || pump(conn, dir, from, to, &wire));
                }
            }
        });
        Self { port, wire }
    }

    /// Cuts the connection at the broker's next PUBACK: the PUBLISH
    /// reached the broker, its PUBACK never reaches the client.
    fn cut_at_next_puback(&self) {
        self.wire.lock().unwrap().cut_at_puback = true;
    }

    /// Cuts every open connection now (both its sockets are shut down,
    /// which ends the pumps reading them).
    fn cut_now(&self) {
        let mut wire = self.wire.lock().unwrap();
        for s in std::mem::take(&mut wire.open) {
            let _ = s.shutdown(Shutdown::Both);
        }
        wire.cuts += 1;
    }

    /// Every packet seen so far.
    fn seen(&self) -> Vec<Seen> {
        self.wire.lock().unwrap().seen.clone()
    }

    fn cuts(&self) -> usize {
        self.wire.lock().unwrap().cuts
    }
}

/// Forwards whole packets from `from` to `to` until either side ends or
/// the proxy cuts the connection; then shuts both down.
fn pump(conn: usize, dir: Dir, mut from: TcpStream, mut to: TcpStream, wire: &Mutex<Wire>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    'read: loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(len) = packet_len(&pending) {
            let packet: Vec<u8> = pending.drain(..len).collect();
            let mut w = wire.lock().unwrap();
            let puback = dir == Dir::Down && packet[0] >> 4 == 4;
            if puback && w.cut_at_puback {
                w.cut_at_puback = false;
                w.cuts += 1;
                break 'read;
            }
            w.seen.push(Seen { conn, dir, bytes: packet.clone() });
            drop(w);
            if to.write_all(&packet).is_err() {
                break 'read;
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// The length of the whole packet at the start of `buf`, once it is all
/// there (fixed header: type and flags, then the remaining length in 1
/// to 4 bytes of 7 bits).
fn packet_len(buf: &[u8]) -> Option<usize> {
    let mut remaining = 0usize;
    for i in 1..5 {
        let byte = *buf.get(i)?;
        remaining |= usize::from(byte & 0x7f) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            let len = 1 + i + remaining;
            return (buf.len() >= len).then_some(len);
        }
    }
    panic!("malformed remaining length on the wire: {buf:02x?}");
}

/// Where the variable header of `packet` starts (after the fixed header).
fn body(packet: &[u8]) -> &[u8] {
    let mut i = 1;
    while packet[i] & 0x80 != 0 {
        i += 1;
    }
    &packet[i + 1..]
}

/// A QoS 1 PUBLISH as seen on the wire (read by hand, not by umqtt).
#[derive(Debug, PartialEq, Eq)]
struct WirePublish {
    dup: bool,
    qos: u8,
    topic: String,
    packet_id: u16,
    payload: Vec<u8>,
}

fn publish(packet: &[u8]) -> Option<WirePublish> {
    if packet[0] >> 4 != 3 {
        return None;
    }
    let (dup, qos) = (packet[0] & 0x08 != 0, (packet[0] >> 1) & 3);
    let b = body(packet);
    let topic_len = usize::from(u16::from_be_bytes([b[0], b[1]]));
    let topic = String::from_utf8(b[2..2 + topic_len].to_vec()).unwrap();
    let at = 2 + topic_len;
    let packet_id = u16::from_be_bytes([b[at], b[at + 1]]);
    Some(WirePublish { dup, qos, topic, packet_id, payload: b[at + 2..].to_vec() })
}

/// The Clean Session flag of a CONNECT (`None`: not a CONNECT).
fn connect_clean_session(packet: &[u8]) -> Option<bool> {
    // Protocol name (2 + 4 bytes "MQTT"), level, then the flags.
    (packet[0] == 0x10).then(|| body(packet)[7] & 0x02 != 0)
}

/// The packets of type `kind` (high nibble) seen in `dir`, with their
/// connection.
fn of_type(seen: &[Seen], dir: Dir, kind: u8) -> Vec<(usize, Vec<u8>)> {
    seen.iter()
        .filter(|s| s.dir == dir && s.bytes[0] >> 4 == kind)
        .map(|s| (s.conn, s.bytes.clone()))
        .collect()
}

/// Starts `cli args...` with piped output.
fn start(args: &[&str]) -> Child {
    cli().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// The lines a child prints, read one at a time.
fn lines_of(out: ChildStdout) -> Lines<BufReader<ChildStdout>> {
    BufReader::new(out).lines()
}

fn err_lines_of(err: ChildStderr) -> Lines<BufReader<ChildStderr>> {
    BufReader::new(err).lines()
}

/// Runs `cli pub` with `args` on `port` to completion, successfully.
fn publish_direct(port: u16, args: &[&str]) {
    let port = port.to_string();
    let output = finish(start(&[&["pub", "-p", &port][..], args].concat()));
    assert!(output.status.success(), "pub failed: {}", text(&output.stderr));
}

#[test]
fn mqtt_4_4_0_1_pub_resends_with_dup_and_same_id_after_a_cut_before_puback() {
    let Some(broker) = Mosquitto::start("cli_reconnect_pub", "log_type all\n") else {
        return;
    };
    let proxy = Proxy::start(broker.port);
    // The subscriber, straight to the broker: its first line (a retained
    // message) means it is subscribed to both filters.
    publish_direct(broker.port, &["-t", "cli/rc/ready", "-m", "ready", "-r"]);
    let port = broker.port.to_string();
    let mut sub = start(&[
        "sub",
        "-p",
        &port,
        "-t",
        "cli/rc/ready",
        "-t",
        "cli/rc/data",
        "-q",
        "1",
        "-C",
        "2",
        "-v",
    ]);
    let mut lines = lines_of(sub.stdout.take().unwrap());
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rc/ready ready");

    proxy.cut_at_next_puback();
    let proxy_port = proxy.port.to_string();
    let publisher = start(&[
        "pub",
        "-p",
        &proxy_port,
        "-c",
        "-i",
        "cli-rc-pub",
        "-q",
        "1",
        "-t",
        "cli/rc/data",
        "-m",
        "hello",
    ]);
    let output = finish(publisher);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "pub failed: {stderr}");
    // One reconnect, told on stderr.
    assert_eq!(stderr.lines().filter(|l| l.starts_with("warning: ")).count(), 1, "{stderr}");
    assert_eq!(proxy.cuts(), 1, "the proxy cut the first connection at its PUBACK");

    let seen = proxy.seen();
    let connects = of_type(&seen, Dir::Up, 1);
    assert_eq!(connects.len(), 2, "two connections: {seen:02x?}");
    for (conn, packet) in &connects {
        assert_eq!(
            connect_clean_session(packet),
            Some(false),
            "connection {conn} keeps the session"
        );
    }
    let publishes: Vec<(usize, WirePublish)> =
        of_type(&seen, Dir::Up, 3).iter().map(|(c, p)| (*c, publish(p).unwrap())).collect();
    assert_eq!(publishes.len(), 2, "the PUBLISH, then its resend: {publishes:?}");
    let (first, resent) = (&publishes[0], &publishes[1]);
    assert_eq!((first.0, resent.0), (0, 1), "one PUBLISH on each connection");
    assert!(!first.1.dup, "first sent with DUP=0 (the first occasion, 3.3.1.1)");
    assert!(resent.1.dup, "resent with DUP=1 [MQTT-3.3.1-1]");
    assert_eq!(resent.1.packet_id, first.1.packet_id, "resent with the same packet identifier");
    assert_eq!(
        (resent.1.qos, &resent.1.topic, &resent.1.payload[..]),
        (1, &first.1.topic, &b"hello"[..])
    );
    // The PUBACK of the resend reached the client, then it disconnected.
    let pubacks = of_type(&seen, Dir::Down, 4);
    let id = first.1.packet_id.to_be_bytes();
    assert_eq!(pubacks, [(1, vec![0x40, 2, id[0], id[1]])], "{pubacks:02x?}");
    let last_up = seen.iter().rfind(|s| s.dir == Dir::Up).unwrap();
    assert_eq!((last_up.conn, &last_up.bytes[..]), (1, &[0xe0, 0][..]), "DISCONNECT last");
    // The broker saw it the same way.
    let log = broker.log();
    assert!(log.contains("Received PUBLISH from cli-rc-pub (d0, q1, r0, m"), "{log}");
    assert!(log.contains("Received PUBLISH from cli-rc-pub (d1, q1, r0, m"), "{log}");

    assert_eq!(lines.next().unwrap().unwrap(), "cli/rc/data hello");
    let output = finish(sub);
    assert!(output.status.success(), "sub failed: {}", text(&output.stderr));
}

#[test]
fn sub_subscribes_again_after_a_broker_restart_and_prints_what_follows() {
    let Some(mut broker) = Mosquitto::start("cli_reconnect_sub", "") else {
        return;
    };
    let (port, dir) = (broker.port, broker.dir.clone());
    publish_direct(port, &["-t", "cli/rs/ready", "-m", "ready", "-r"]);
    let port_arg = port.to_string();
    let mut sub = start(&["sub", "-p", &port_arg, "-t", "cli/rs/#", "-q", "1", "-C", "3", "-v"]);
    let mut lines = lines_of(sub.stdout.take().unwrap());
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rs/ready ready");

    broker.kill(); // SIGKILL
    let broker = Mosquitto::start_on("cli_reconnect_sub", &dir, port, "log_type all\n").unwrap();
    // A new broker without the session (nor the retained "ready"): what
    // `sub` prints now it received through a new SUBSCRIBE. Retained
    // first, so it arrives whenever `sub` is back.
    publish_direct(port, &["-t", "cli/rs/after", "-m", "after restart", "-r", "-q", "1"]);
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rs/after after restart");
    // Subscribed again: a live message too.
    publish_direct(port, &["-t", "cli/rs/live", "-m", "live", "-q", "1"]);
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rs/live live");
    let output = finish(sub);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "sub failed: {stderr}");
    assert!(stderr.starts_with("warning: "), "the reconnect is told: {stderr}");
    assert_eq!(broker.log().matches("Received SUBSCRIBE from umqtt-sub-").count(), 1);
}

#[test]
fn mqtt_3_1_2_4_sub_with_a_kept_session_is_not_subscribed_again_and_gets_what_came_meanwhile() {
    let Some(broker) = Mosquitto::start("cli_reconnect_session", "log_type all\n") else {
        return;
    };
    let proxy = Proxy::start(broker.port);
    publish_direct(broker.port, &["-t", "cli/rk/ready", "-m", "ready", "-r"]);
    let proxy_port = proxy.port.to_string();
    let mut sub = start(&[
        "sub",
        "-p",
        &proxy_port,
        "-c",
        "-i",
        "cli-rk-sub",
        "-t",
        "cli/rk/#",
        "-q",
        "1",
        "-C",
        "2",
        "-v",
    ]);
    let mut lines = lines_of(sub.stdout.take().unwrap());
    let mut errors = err_lines_of(sub.stderr.take().unwrap());
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rk/ready ready");

    // Cut: `sub` learns of it at once (its socket is shut down under it)
    // and tells it on stderr; the broker too, when its socket closes.
    proxy.cut_now();
    let warning = errors.next().unwrap().unwrap();
    assert!(warning.starts_with("warning: connection lost"), "{warning}");
    // Published while `sub` is away (or, if the broker has not noticed
    // yet, sent into the dead connection): the session holds it.
    publish_direct(broker.port, &["-t", "cli/rk/data", "-m", "while away", "-q", "1"]);
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rk/data while away");
    let output = finish(sub);
    assert!(output.status.success(), "sub failed");

    let seen = proxy.seen();
    let connacks = of_type(&seen, Dir::Down, 2);
    assert_eq!(connacks.len(), 2, "{seen:02x?}");
    assert_eq!(connacks[1].1, [0x20, 2, 1, 0], "session present on the reconnect");
    let subscribes = of_type(&seen, Dir::Up, 8);
    assert_eq!(subscribes.iter().map(|s| s.0).collect::<Vec<_>>(), [0], "not subscribed again");
}

#[test]
fn pub_with_connect_retry_waits_for_a_broker_that_starts_later() {
    let port = common::free_port();
    let port_arg = port.to_string();
    let mut publisher = start(&[
        "pub",
        "-p",
        &port_arg,
        "--connect-retry",
        "20",
        "-i",
        "cli-retry",
        "-q",
        "1",
        "-t",
        "cli/retry",
        "-m",
        "late",
    ]);
    // Its first attempt failed (nothing listens): told, not fatal.
    let mut errors = err_lines_of(publisher.stderr.take().unwrap());
    let warning = errors.next().unwrap().unwrap();
    assert!(warning.starts_with("warning: cannot connect to 127.0.0.1:"), "{warning}");
    let dir = common::temp_dir("cli_reconnect_retry");
    let broker = Mosquitto::start_on("cli_reconnect_retry", &dir, port, "log_type all\n");
    let Some(broker) = broker else {
        let _ = publisher.kill();
        let _ = publisher.wait();
        return;
    };
    let output = finish(publisher);
    assert!(output.status.success(), "pub failed");
    let log = broker.log();
    assert!(log.contains("Received PUBLISH from cli-retry (d0, q1, r0, m1, 'cli/retry'"), "{log}");
}

#[cfg(feature = "tls")]
mod tls_common;

/// The same over TLS (`umqtt::tls::TlsConnector`): a new handshake on
/// each connection, checked against the CA as `localhost`.
#[cfg(feature = "tls")]
#[test]
fn sub_over_tls_subscribes_again_after_a_broker_restart() {
    use tls_common::{have_openssl, pki};
    if !have_openssl("cli_reconnect_tls") {
        return;
    }
    let tls_port = common::free_port();
    let listener = pki().listener(tls_port, "server.pem", "server.key", false);
    let Some(mut broker) = Mosquitto::start("cli_reconnect_tls", &listener) else {
        return;
    };
    let (port, dir) = (broker.port, broker.dir.clone());
    publish_direct(port, &["-t", "cli/rt/ready", "-m", "ready", "-r"]);
    let ca = pki().path("ca.pem");
    let tls_port_arg = tls_port.to_string();
    let mut sub = start(&[
        "sub",
        "-h",
        "localhost",
        "-p",
        &tls_port_arg,
        "--cafile",
        ca.to_str().unwrap(),
        "-t",
        "cli/rt/#",
        "-q",
        "1",
        "-C",
        "3",
        "-v",
    ]);
    let mut lines = lines_of(sub.stdout.take().unwrap());
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rt/ready ready");

    broker.kill(); // SIGKILL
    let _broker = Mosquitto::start_on("cli_reconnect_tls", &dir, port, &listener).unwrap();
    publish_direct(port, &["-t", "cli/rt/after", "-m", "after restart", "-r", "-q", "1"]);
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rt/after after restart");
    publish_direct(port, &["-t", "cli/rt/live", "-m", "live", "-q", "1"]);
    assert_eq!(lines.next().unwrap().unwrap(), "cli/rt/live live");
    let output = finish(sub);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "sub failed: {stderr}");
    assert!(stderr.starts_with("warning: "), "the reconnect is told: {stderr}");
}
