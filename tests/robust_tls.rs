//! A TLS reconnect through the always-connected runner: the runner over
//! `tls::TlsConnector` over `TokioConnector` (by host name, `localhost`,
//! the server name for SNI and verification) to a real Mosquitto TLS 1.3
//! listener with certificates the test generates (`tls_common`). It
//! subscribes and round trips a QoS 1 message; the broker is SIGKILLed and
//! restarted on the same ports; the runner reconnects by itself over a new
//! TLS handshake (the connector's record buffers lent again), resubscribes
//! (the restarted broker kept no session), and a QoS 1 round trip works
//! after it `[MQTT-4.4.0-1]`.
#![cfg(feature = "tls")]

mod common;
mod tls_common;

use std::time::{Duration, Instant};

use common::{Mosquitto, free_port, temp_dir};
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use tls_common::{OsRng, SystemClock, have_openssl, pki};
use tokio::sync::mpsc;
use umqtt::connect::TokioConnector;
use umqtt::robust::{Backoff, Config, Event, Hooks, LinkState, Runner, State, Stop};
use umqtt::tls::{READ_RECORD_BUFFER, TLS_RECORD_OVERHEAD, TlsConnector, TlsOptions};
use umqtt::{ConnectOptions, QoS};

/// How long any one step may take.
const WAIT: Duration = Duration::from_secs(20);

/// Sends every event of the runner to the test, in order.
struct Events(mpsc::UnboundedSender<(Instant, Event)>);

impl Hooks for Events {
    fn on_event(&mut self, event: &Event) {
        let _ = self.0.send((Instant::now(), *event));
    }
}

/// Awaits `future` for at most [`WAIT`], naming what timed out.
async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in {WAIT:?}"))
}

/// Waits for an event `wanted` accepts; every event before it must be one
/// `may_skip` accepts.
async fn expect_event(
    events: &mut mpsc::UnboundedReceiver<(Instant, Event)>,
    wanted: impl Fn(&Event) -> bool,
    may_skip: impl Fn(&Event) -> bool,
) -> (Instant, Event) {
    loop {
        let (at, event) = bounded("the next event", events.recv()).await.expect("runner alive");
        println!("event: {event:?}");
        if wanted(&event) {
            return (at, event);
        }
        assert!(may_skip(&event), "unexpected event {event:?}");
    }
}

fn config() -> Config {
    Config {
        backoff: Backoff {
            min: embassy_time::Duration::from_millis(100),
            max: embassy_time::Duration::from_secs(2),
            ..Backoff::default()
        },
        connect_timeout: embassy_time::Duration::from_secs(10),
        stop_on_auth_refusal: true,
    }
}

#[tokio::test]
async fn tls_runner_reconnects_over_tls_after_a_broker_restart_and_round_trips_qos1() {
    const TEST: &str = "robust_tls_restart";
    if !have_openssl(TEST) {
        return;
    }
    let dir = temp_dir(TEST);
    let (plain, tls) = (free_port(), free_port());
    let listener = pki().listener(tls, "server.pem", "server.key", false);
    let Some(broker) = Mosquitto::start_on(TEST, &dir, plain, &listener) else { return };
    let mut broker = Some(broker);

    let ca = pki().cert_der("ca.pem");
    let (mut read, mut write) =
        (vec![0; READ_RECORD_BUFFER], vec![0; 2 * (1024 + TLS_RECORD_OVERHEAD)]);
    let options = TlsOptions::for_host(&ca).clock::<SystemClock>();
    let tcp = TokioConnector::new("localhost", tls);
    let connector = TlsConnector::new(tcp, options, &mut read, &mut write, OsRng);

    static STATE: State<CriticalSectionRawMutex, 256, 256, 128, 4> = State::new();
    let (mut rx, mut tx) = (vec![0u8; 1024], vec![0u8; 1024]);
    let opts = ConnectOptions::new("robust-tls").clean_session(false).keep_alive_secs(30);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (runner, client) = Runner::new(connector, &STATE, &mut rx, &mut tx, opts, config());
    let mut runner = runner.with_hooks(Events(events_tx));
    let topic = "robust/tls";
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    let app = async {
        let mut buf = [0u8; 64];
        expect_event(&mut events, connected, |_| false).await;
        bounded("SUBACK", client.subscribe(topic, QoS::AtLeastOnce)).await.unwrap();
        bounded("PUBACK", client.publish(topic, b"before", QoS::AtLeastOnce, false)).await.unwrap();
        let m = bounded("the message back", client.receive(&mut buf)).await.unwrap();
        assert_eq!((m.topic, m.payload), (topic, &b"before"[..]));

        // SIGKILL, then the same ports again.
        if let Some(mut old) = broker.take() {
            old.kill();
        }
        broker = Mosquitto::start_on(TEST, &dir, plain, &listener);
        assert!(broker.is_some(), "mosquitto restarted");
        let resubscribed = |e: &Event| matches!(e, Event::Resubscribed { .. });
        let (lost, reason) =
            expect_event(&mut events, |e| matches!(e, Event::Disconnected { .. }), resubscribed)
                .await;
        let attempt =
            |e: &Event| matches!(e, Event::ReconnectAttempt { .. } | Event::Disconnected { .. });
        let (up, again) = expect_event(&mut events, connected, attempt).await;
        assert_eq!(again, Event::Connected { session_present: false }, "no broker persistence");
        let (_, back) = expect_event(&mut events, resubscribed, |_| false).await;
        assert_eq!(back, Event::Resubscribed { count: 1 }, "the subscription is sent again");
        println!("{reason:?}; reconnected over TLS {:?} later", up - lost);
        assert_eq!(client.state(), LinkState::Connected);
        assert_eq!(client.stats().reconnects, 1);

        bounded("PUBACK", client.publish(topic, b"after", QoS::AtLeastOnce, false)).await.unwrap();
        let m = bounded("the message after", client.receive(&mut buf)).await.unwrap();
        assert_eq!((m.topic, m.payload), (topic, &b"after"[..]));
        client.close().await;
    };
    match bounded("the runner", select(runner.run(), app)).await {
        Either::First(stop) => assert_eq!(stop, Stop::Closed),
        Either::Second(()) => panic!("close returned before the runner stopped"),
    }
}
