//! The always-connected client over real loopback TCP against peers that
//! misbehave: nothing listening, a listener that accepts and never sends
//! CONNACK (bounded by the connect timeout), one that closes at once, one
//! that answers CONNECT with a malformed CONNACK. Each is
//! a reported reconnect, never a hang or a panic.

mod robust_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use robust_support::{Forward, TokioTcp};
use umqtt::ConnectOptions;
use umqtt::ProtocolError;
use umqtt::packet::Malformed;
use umqtt::robust::{Backoff, Config, DisconnectReason, Event, LinkState, Runner, State, Stop};

type Shared = State<CriticalSectionRawMutex, 64, 64, 64, 2>;

/// Runs a runner against `port` until it reported three ended attempts;
/// returns their reasons and how long that took.
fn three_reasons(port: u16, state: &'static Shared) -> (Vec<DisconnectReason>, Duration) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (events_tx, events) = channel();
    let config = Config {
        backoff: Backoff {
            min: embassy_time::Duration::from_millis(10),
            max: embassy_time::Duration::from_millis(40),
            factor: 2,
            jitter_percent: 0,
            stable_after: embassy_time::Duration::from_secs(10),
        },
        connect_timeout: embassy_time::Duration::from_millis(300),
        stop_on_auth_refusal: false,
    };
    let rx: &'static mut [u8] = Box::leak(vec![0u8; 256].into_boxed_slice());
    let tx: &'static mut [u8] = Box::leak(vec![0u8; 256].into_boxed_slice());
    let opts = ConnectOptions::new("bad-input").keep_alive_secs(5);
    let (runner, client) = Runner::new(TokioTcp { port }, state, rx, tx, opts, config);
    let mut runner = runner.with_hooks(Forward(events_tx));
    let started = Instant::now();
    let task = rt.spawn(async move { runner.run().await });
    let reasons = collect(&events, 3);
    let took = started.elapsed();
    assert_ne!(client.state(), LinkState::Failed);
    rt.block_on(client.close());
    // The runner ended by `close`, not by a panic.
    assert_eq!(rt.block_on(task).expect("runner did not panic"), Stop::Closed);
    (reasons, took)
}

/// The reasons of the first `n` `Disconnected` events, each followed by
/// its `ReconnectAttempt`.
fn collect(events: &Receiver<(Instant, Event)>, n: usize) -> Vec<DisconnectReason> {
    let mut reasons = Vec::new();
    while reasons.len() < n {
        let (_, e) = events.recv_timeout(Duration::from_secs(10)).expect("an event, not a hang");
        match e {
            Event::Disconnected { reason } => reasons.push(reason),
            Event::ReconnectAttempt { .. }
            | Event::Connected { .. }
            | Event::Resubscribed { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    reasons
}

/// A listener whose every accepted connection is handed to `serve` on its
/// own thread.
fn listener(serve: fn(std::net::TcpStream)) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    port
}

#[test]
fn nothing_listening_is_a_failed_connect_each_time() {
    static STATE: Shared = State::new();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (reasons, _) = three_reasons(port, &STATE);
    assert_eq!(reasons, [DisconnectReason::ConnectFailed; 3]);
}

#[test]
fn a_listener_that_never_sends_connack_is_a_connect_timeout_each_time() {
    static STATE: Shared = State::new();
    let port = listener(|mut s| {
        // Read the CONNECT and never answer; hold the socket open.
        let mut buf = [0u8; 256];
        while s.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    let (reasons, took) = three_reasons(port, &STATE);
    assert_eq!(reasons, [DisconnectReason::ConnectTimeout; 3]);
    // Three 300 ms timeouts: bounded, not a hang.
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

#[test]
fn a_peer_that_closes_at_once_is_a_reported_reconnect() {
    static STATE: Shared = State::new();
    let port = listener(drop);
    let (reasons, _) = three_reasons(port, &STATE);
    for r in reasons {
        assert!(
            matches!(r, DisconnectReason::Closed | DisconnectReason::Io(_)),
            "closed at once: {r:?}"
        );
    }
}

#[test]
fn a_malformed_connack_is_a_protocol_error_and_a_reconnect() {
    static STATE: Shared = State::new();
    let port = listener(|mut s| {
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        // Return code 7 does not exist.
        let _ = s.write_all(&[0x20, 0x02, 0x00, 0x07]);
        while s.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    let (reasons, _) = three_reasons(port, &STATE);
    let malformed =
        DisconnectReason::Protocol(ProtocolError::Malformed(Malformed::InvalidConnectReturnCode));
    assert_eq!(reasons, [malformed; 3]);
}
