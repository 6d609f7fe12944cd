//! The `cli`, `demo` and `host_tokio` examples as a user runs them: the
//! built binaries against a private Mosquitto (and against nothing, for the
//! connection error), and the demo against its own in-process broker.

mod broker_support;
mod cli_support;
mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use broker_support::broker_with_subscribe_acl;
use cli_support::{build_example, cli, finish, text};
use common::Mosquitto;

/// Runs `cli` with `args` to completion (at most 20 s).
fn run(args: &[&str]) -> Output {
    let child = cli().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    finish(child)
}

/// Asserts the run failed with exactly one `error: ` line on stderr.
fn assert_error(output: &Output, contains: &str) {
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "expected failure, stderr: {stderr}");
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(contains), "{stderr:?} lacks {contains:?}");
}

/// Starts `cli sub -p PORT args...` with piped output.
fn start_sub(broker: &Mosquitto, args: &[&str]) -> Child {
    let port = broker.port.to_string();
    let mut all = vec!["sub", "-p", &port];
    all.extend_from_slice(args);
    cli().args(&all).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn sub_prints_what_pub_sends_and_exits_after_count() {
    let Some(broker) = Mosquitto::start("cli_sub_pub", "") else {
        return;
    };
    let port = broker.port.to_string();
    // The subscriber counts a retained message first, so it is certainly
    // subscribed before the live ones are sent.
    let retained = run(&["pub", "-p", &port, "-t", "cli/ready", "-m", "ready", "-r", "-q", "1"]);
    assert!(retained.status.success(), "{}", text(&retained.stderr));
    let mut sub =
        start_sub(&broker, &["-t", "cli/ready", "-t", "cli/data/+", "-q", "1", "-C", "4", "-v"]);
    let stdout = sub.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    assert_eq!(lines.next().unwrap().unwrap(), "cli/ready ready");
    let sent = run(&[
        "pub",
        "-p",
        &port,
        "-t",
        "cli/data/1",
        "-m",
        "hello world",
        "-q",
        "1",
        "--repeat",
        "3",
        "--interval-ms",
        "10",
        "-i",
        "cli-pub",
        "-k",
        "5",
    ]);
    assert!(sent.status.success(), "pub failed: {}", text(&sent.stderr));
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(rest, ["cli/data/1 hello world"; 3]);
    let output = finish(sub);
    assert!(output.status.success(), "sub failed: {}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "");
}

/// `-q 2` on both sides: `sub` subscribes at QoS 2 (so it must receive
/// QoS 2, `receive_qos2`) and prints each message once; the broker's log
/// shows the full QoS 2 flow on both connections.
#[test]
fn sub_and_pub_at_qos2_deliver_exactly_once() {
    // TCP_NODELAY on the broker: `sub` subscribes to each filter in turn,
    // so the PUBREL of the retained message follows a SUBACK, and Nagle
    // would hold it for `sub`'s delayed ACK (40 ms), long enough for the
    // whole publisher to run first.
    let Some(broker) = Mosquitto::start("cli_qos2", "log_type all\nset_tcp_nodelay true\n") else {
        return;
    };
    let port = broker.port.to_string();
    let retained = run(&[
        "pub",
        "-p",
        &port,
        "-t",
        "cli/ready",
        "-m",
        "ready",
        "-r",
        "-q",
        "2",
        "-i",
        "cli-r",
    ]);
    assert!(retained.status.success(), "{}", text(&retained.stderr));
    let mut sub = start_sub(
        &broker,
        &["-t", "cli/ready", "-t", "cli/q2", "-q", "2", "-C", "4", "-v", "-i", "cli-sub"],
    );
    let stdout = sub.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    assert_eq!(lines.next().unwrap().unwrap(), "cli/ready ready");
    // One message at a time, each published once `sub` printed the one
    // before, so that each exchange with `sub` is under way before the next
    // message comes (a burst lets `sub` take its fourth message, and exit,
    // before the PUBRELs of the earlier ones arrived).
    for _ in 0..3 {
        let sent =
            run(&["pub", "-p", &port, "-t", "cli/q2", "-m", "two", "-q", "2", "-i", "cli-pub"]);
        assert!(sent.status.success(), "pub failed: {}", text(&sent.stderr));
        assert_eq!(lines.next().unwrap().unwrap(), "cli/q2 two");
    }
    assert!(lines.next().is_none(), "sub printed more than 4 messages");
    let output = finish(sub);
    assert!(output.status.success(), "sub failed: {}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "");
    let log = broker.log();
    let count = |needle: &str| log.matches(needle).count();
    // One SUBSCRIBE per filter (the always-connected client remembers
    // each filter to send it again after a reconnect), each sent once.
    assert_eq!(count("Received SUBSCRIBE from cli-sub"), 2, "{log}");
    assert_eq!(count("cli-sub 2 cli/ready"), 1, "subscribed at QoS 2: {log}");
    assert_eq!(count("cli-sub 2 cli/q2"), 1, "subscribed at QoS 2: {log}");
    assert_eq!(count("Received PUBLISH from cli-pub (d0, q2"), 3, "{log}");
    assert_eq!(count("Received PUBREL from cli-pub"), 3, "{log}");
    assert_eq!(count("Sending PUBLISH to cli-sub (d0, q2"), 4, "{log}");
    assert_eq!(count("Received PUBREC from cli-sub"), 4, "{log}");
    // The last PUBREL may come after `sub` disconnected (it exits once the
    // fourth message is delivered, on PUBLISH): its clean session ends there.
    assert!((3..=4).contains(&count("Received PUBCOMP from cli-sub")), "{log}");
}

#[test]
fn sub_without_verbose_prints_payloads_only_with_protocol_3_1() {
    let Some(broker) = Mosquitto::start("cli_v31", "") else {
        return;
    };
    let port = broker.port.to_string();
    let retained = run(&["pub", "-p", &port, "-t", "t31", "-m", "old", "-r", "-V", "31"]);
    assert!(retained.status.success(), "{}", text(&retained.stderr));
    let output = run(&["sub", "-p", &port, "-t", "t31", "-C", "1", "-V", "31", "-i", "sub31"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "old\n");
}

#[test]
fn refused_subscription_prints_error_and_exits_non_zero() {
    let Some(broker) = broker_with_subscribe_acl("cli_refused") else {
        return;
    };
    let port = broker.port.to_string();
    let output = run(&["sub", "-p", &port, "-t", "denied/x", "-C", "1"]);
    assert_error(&output, "refused");
    assert_eq!(text(&output.stdout), "");
}

#[test]
fn refused_connection_prints_error_and_exits_non_zero() {
    let Some(broker) = broker_support::broker_with_password("cli_auth") else {
        return;
    };
    let port = broker.port.to_string();
    let output = run(&["pub", "-p", &port, "-t", "t", "-m", "x", "-u", "alice", "-P", "wrong"]);
    assert_error(&output, "connect: connection refused");
    let output = run(&["pub", "-p", &port, "-t", "t", "-m", "x", "-u", "alice", "-P", "secret"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn bad_port_prints_error_and_exits_non_zero() {
    let port = common::free_port().to_string(); // nothing listens there
    assert_error(&run(&["sub", "-p", &port, "-t", "a"]), "cannot connect");
    assert_error(&run(&["pub", "-p", &port, "-t", "a", "-m", "x"]), "cannot connect");
    assert_error(&run(&["sub", "-p", "70000", "-t", "a"]), "-p");
}

#[test]
fn usage_errors_print_one_error_line() {
    assert_error(&run(&[]), "missing command");
    assert_error(&run(&["sub"]), "-t is required");
    assert_error(&run(&["pub", "-t", "a"]), "-m");
    assert_error(&run(&["sub", "-t", "a", "-q", "3"]), "QoS");
    assert_error(&run(&["pub", "-t", "a", "-m", "x", "-q", "3"]), "QoS");
    assert_error(&run(&["sub", "-t", "a", "-c"]), "-i");
    assert_error(&run(&["sub", "-t", "a", "--bogus"]), "--bogus");
    let help = run(&["--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("cli sub -h HOST"));
}

/// Runs the `demo` example with `args` and checks it published, received
/// and printed each round, then disconnected.
fn assert_demo_runs(args: &[&str]) {
    let child = Command::new(build_example("demo"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = finish(child);
    assert!(output.status.success(), "demo failed: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for n in 1..=2 {
        assert!(stdout.contains(&format!("received umqtt/demo: {{\"msg\": {n}}}")), "{stdout}");
    }
    assert!(stdout.ends_with("disconnected\n"), "{stdout}");
}

#[test]
fn demo_runs_against_its_in_process_broker() {
    assert_demo_runs(&["--rounds", "2"]);
}

#[test]
fn demo_runs_against_mosquitto() {
    let Some(broker) = Mosquitto::start("demo_mosquitto", "") else {
        return;
    };
    let port = broker.port.to_string();
    assert_demo_runs(&["--host", "127.0.0.1", "--port", &port, "--rounds", "2"]);
}

/// Starts the `host_tokio` example against `broker` with `args` after the
/// host and port; the host is the name `localhost`, resolved by tokio.
fn start_host_tokio(broker: &Mosquitto, args: &[&str]) -> Child {
    Command::new(build_example("host_tokio"))
        .args(["localhost", &broker.port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The broker's log line for a client that sent DISCONNECT (Mosquitto
/// logs "closed its connection" when the socket closes without one).
fn sent_disconnect(broker: &Mosquitto, pid: u32) -> bool {
    broker.log().contains(&format!("Client umqtt-host-tokio-{pid} disconnected"))
}

/// Whether process `pid` has a handler for SIGINT (bit 1 of `SigCgt`).
fn catches_sigint(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).unwrap();
    u64::from_str_radix(caught.trim(), 16).unwrap() & (1 << 1) != 0
}

#[test]
fn host_tokio_receives_its_count_messages_then_sends_disconnect() {
    let Some(broker) = Mosquitto::start("host_tokio_count", "") else {
        return;
    };
    let child = start_host_tokio(&broker, &["3"]);
    let id = child.id();
    let output = finish(child);
    assert!(output.status.success(), "host_tokio failed: {}", text(&output.stderr));
    let expected: Vec<String> =
        (1..=3).map(|n| format!("umqtt/host_tokio/temp: {{\"msg\": {n}}}")).collect();
    assert_eq!(text(&output.stdout).lines().collect::<Vec<_>>(), expected);
    assert!(sent_disconnect(&broker, id), "{}", broker.log());
}

#[test]
fn host_tokio_sends_disconnect_on_ctrl_c() {
    let Some(broker) = Mosquitto::start("host_tokio_ctrl_c", "") else {
        return;
    };
    let mut child = start_host_tokio(&broker, &[]);
    // Its own message came back: it is in the wait_msg loop.
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    assert_eq!(lines.next().unwrap().unwrap(), "umqtt/host_tokio/temp: {\"msg\": 1}");
    assert!(!sent_disconnect(&broker, child.id()));
    // tokio installs its SIGINT handler when the loop first polls
    // `ctrl_c()`: wait until the process catches SIGINT (else the signal
    // would kill it).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !catches_sigint(child.id()) {
        assert!(Instant::now() < deadline, "host_tokio never installed a SIGINT handler");
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let id = child.id();
    let output = finish(child);
    assert!(output.status.success(), "host_tokio failed: {}", text(&output.stderr));
    assert!(sent_disconnect(&broker, id), "{}", broker.log());
}

#[cfg(feature = "tls")]
mod tls_common;

/// The TLS flags of the CLI against a private Mosquitto TLS 1.3 listener
/// with certificates generated for this run.
#[cfg(feature = "tls")]
mod tls {
    use super::tls_common::{have_openssl, pki};
    use super::*;

    /// A broker with a TLS listener presenting `cert`, and that listener's
    /// port; `None` (test skipped) without openssl.
    fn tls_broker(test: &str, cert: &str, key: &str) -> Option<(Mosquitto, String)> {
        if !have_openssl(test) {
            return None;
        }
        let port = common::free_port();
        Mosquitto::start(test, &pki().listener(port, cert, key, false))
            .map(|broker| (broker, port.to_string()))
    }

    fn pub_args<'a>(port: &'a str, tls: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["pub", "-h", "localhost", "-p", port, "-t", "cli/tls", "-m", "hi"];
        args.extend_from_slice(tls);
        args
    }

    #[test]
    fn cli_tls_with_cafile_verifies_the_server_and_delivers() {
        let Some((_broker, port)) = tls_broker("cli_tls_cafile", "server.pem", "server.key") else {
            return;
        };
        let ca = pki().path("ca.pem");
        let ca = ca.to_str().unwrap();
        // The subscriber gets a retained message first, so it is certainly
        // subscribed before the live one is sent.
        let retained = run(&[
            "pub",
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            ca,
            "-t",
            "cli/ready",
            "-m",
            "ready",
            "-r",
            "-q",
            "1",
        ]);
        assert!(retained.status.success(), "{}", text(&retained.stderr));
        let mut sub = cli()
            .args(["sub", "-h", "localhost", "-p", &port, "--cafile", ca, "-t", "cli/#", "-C", "2"])
            .args(["-q", "1", "-v"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = sub.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        assert_eq!(lines.next().unwrap().unwrap(), "cli/ready ready");
        let published = run(&pub_args(&port, &["--cafile", ca, "-q", "1"]));
        assert!(published.status.success(), "{}", text(&published.stderr));
        assert_eq!(lines.next().unwrap().unwrap(), "cli/tls hi");
        let output = finish(sub);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }

    #[test]
    fn cli_insecure_is_the_only_way_to_a_server_of_another_ca() {
        let Some((_broker, port)) = tls_broker("cli_tls_insecure", "rogue.pem", "rogue.key") else {
            return;
        };
        let ca = pki().path("ca.pem");
        let ca = ca.to_str().unwrap();
        assert_error(&run(&pub_args(&port, &["--cafile", ca])), "certificate");
        let plain = run(&pub_args(&port, &[]));
        assert!(!plain.status.success(), "plain MQTT to a TLS port must fail");
        let insecure = run(&pub_args(&port, &["--insecure"]));
        assert!(insecure.status.success(), "{}", text(&insecure.stderr));
    }
}
