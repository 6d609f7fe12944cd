//! The always-connected client (`umqtt::robust`) under the embassy-time
//! mock driver, over a scripted connector: the backoff schedule to the
//! millisecond, reconnects after every kind of failure (the connector
//! failing or hanging, a transport closing at once, a CONNACK never sent,
//! a refused CONNACK), resubscription only when the broker kept no
//! session, events in order, and a QoS 1 message that survives a broken
//! connection `[MQTT-4.4.0-1]`.

#[path = "../../mock_support/mod.rs"]
mod mock_support;

use std::cell::RefCell;
use std::future::pending;
use std::rc::Rc;

use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Timer};
use mock_support::*;
use umqtt::connect::Connector;
use umqtt::mock::MockTransport;
use umqtt::packet::ConnectReturnCode;
use umqtt::robust::{
    Backoff, Config, DisconnectReason, Event, Hooks, LinkState, Router, Runner, State, Stop,
};
use umqtt::{ConnectOptions, QoS, SubscribeReturnCode};
use umqtt_mock_time_tests::{clock, now_ms, run_ms};

type TestState = State<CriticalSectionRawMutex, 128, 128, 128, 4>;

/// One connection attempt of the script.
enum Attempt {
    /// The connector fails at once.
    Fail,
    /// The connector never returns.
    Hang,
    /// The connector opens this scripted transport.
    Open(MockTransport),
}

/// A connector that plays one [`Attempt`] per call and records when each
/// call came (ms); past the script it hangs.
struct Script {
    attempts: Vec<Attempt>,
    next: usize,
    at_ms: Vec<u64>,
}

impl Script {
    fn new(attempts: Vec<Attempt>) -> Self {
        Self { attempts, next: 0, at_ms: Vec::new() }
    }

    /// Every scripted transport played its script to the end.
    fn assert_done(&self) {
        assert_eq!(self.next, self.attempts.len(), "attempts made");
        for a in &self.attempts {
            if let Attempt::Open(mock) = a {
                mock.assert_done();
            }
        }
    }
}

impl Connector for Script {
    type Transport<'c> = &'c mut MockTransport;
    type Error = &'static str;

    async fn connect(&mut self) -> Result<&mut MockTransport, &'static str> {
        self.at_ms.push(now_ms());
        let i = self.next;
        self.next += 1;
        match self.attempts.get_mut(i) {
            Some(Attempt::Fail) => Err("connection refused"),
            Some(Attempt::Open(mock)) => Ok(mock),
            Some(Attempt::Hang) | None => pending().await,
        }
    }
}

/// Records every event with the instant it came.
#[derive(Clone, Default)]
struct Events(Rc<RefCell<Vec<(u64, Event)>>>);

impl Hooks for Events {
    fn on_event(&mut self, event: &Event) {
        self.0.borrow_mut().push((now_ms(), *event));
    }
}

impl Events {
    fn all(&self) -> Vec<(u64, Event)> {
        self.0.borrow().clone()
    }

    fn delays_ms(&self) -> Vec<u64> {
        self.all()
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ReconnectAttempt { delay } => Some(delay.as_millis()),
                _ => None,
            })
            .collect()
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.0.borrow().iter().filter(|(_, e)| f(e)).count()
    }
}

fn config() -> Config {
    Config {
        backoff: Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(8),
            factor: 2,
            jitter_percent: 0,
            stable_after: Duration::from_secs(5),
        },
        connect_timeout: Duration::from_secs(2),
        stop_on_auth_refusal: false,
    }
}

fn opened(o: &ConnectOptions<'_>) -> MockTransport {
    MockTransport::new().expect(&connect(o))
}

/// Waits (on the mock clock) until `cond` holds.
async fn until(cond: impl Fn() -> bool) {
    while !cond() {
        Timer::after_millis(1).await;
    }
}

fn disconnected(reason: DisconnectReason) -> Event {
    Event::Disconnected { reason }
}

fn attempt_in(secs: u64) -> Event {
    Event::ReconnectAttempt { delay: Duration::from_secs(secs) }
}

#[test]
fn every_failure_is_a_reported_reconnect_on_the_backoff_schedule() {
    let _clock = clock();
    let o = opts();
    let script = Script::new(vec![
        Attempt::Fail,
        Attempt::Hang,
        Attempt::Open(opened(&o).step(umqtt::mock::Step::Eof)),
        Attempt::Open(opened(&o)), // never sends CONNACK
        Attempt::Open(opened(&o).send(&connack_code(false, ConnectReturnCode::NotAuthorized))),
        Attempt::Open(opened(&o).send(&connack(false)).expect(&DISCONNECT)),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let mut runner = runner.with_hooks(events.clone());
    let stop = run_ms(async {
        let body = async {
            until(|| client.state() == LinkState::Connected).await;
            assert_eq!(client.stats().connects, 1);
            assert_eq!(client.stats().attempts, 6);
            client.close().await;
        };
        match select(runner.run(), body).await {
            Either::First(stop) => stop,
            Either::Second(()) => Stop::Closed,
        }
    });
    assert_eq!(stop, Stop::Closed);
    assert_eq!(client.state(), LinkState::Failed);
    // 1 s, 2 s, 4 s, 8 s (the cap), then 8 s again after CONNACK 5.
    assert_eq!(runner.connector_mut().at_ms, [0, 1_000, 5_000, 9_000, 19_000, 27_000]);
    let e = events.all();
    let expected = [
        (0, disconnected(DisconnectReason::ConnectFailed)),
        (0, attempt_in(1)),
        (3_000, disconnected(DisconnectReason::ConnectTimeout)),
        (3_000, attempt_in(2)),
        (5_000, disconnected(DisconnectReason::Closed)),
        (5_000, attempt_in(4)),
        (11_000, disconnected(DisconnectReason::ConnectTimeout)),
        (11_000, attempt_in(8)),
        (19_000, disconnected(DisconnectReason::Refused(ConnectReturnCode::NotAuthorized))),
        (19_000, attempt_in(8)),
        (27_000, Event::Connected { session_present: false }),
        (27_000, Event::Resubscribed { count: 0 }),
    ];
    assert_eq!(e[..expected.len()], expected);
    assert_eq!(e[expected.len()].1, disconnected(DisconnectReason::Requested));
    runner.connector_mut().assert_done();
}

#[test]
fn refused_connack_5_backs_off_straight_to_the_maximum_and_never_spins() {
    let _clock = clock();
    let o = opts();
    let refused =
        || Attempt::Open(opened(&o).send(&connack_code(false, ConnectReturnCode::NotAuthorized)));
    let script = Script::new(vec![refused(), refused(), refused()]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let mut runner = runner.with_hooks(events.clone());
    run_ms(async {
        let body = async {
            until(|| events.count(|e| matches!(e, Event::ReconnectAttempt { .. })) == 3).await;
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    assert_eq!(events.delays_ms(), [8_000, 8_000, 8_000]);
    assert_eq!(runner.connector_mut().at_ms, [0, 8_000, 16_000]);
    assert_eq!(
        client.stats().last_error,
        Some(DisconnectReason::Refused(ConnectReturnCode::NotAuthorized))
    );
}

#[test]
fn refused_connack_4_stops_the_runner_when_configured() {
    let _clock = clock();
    let o = opts();
    let script = Script::new(vec![Attempt::Open(
        opened(&o).send(&connack_code(false, ConnectReturnCode::BadUserNameOrPassword)),
    )]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let cfg = Config { stop_on_auth_refusal: true, ..config() };
    let (mut runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, cfg);
    let stop = run_ms(runner.run());
    assert_eq!(stop, Stop::Refused(ConnectReturnCode::BadUserNameOrPassword));
    assert_eq!(client.state(), LinkState::Failed);
    let published = run_ms(client.publish("t", b"x", QoS::AtLeastOnce, false));
    assert_eq!(published, Err(umqtt::robust::Error::Stopped));
    runner.connector_mut().assert_done();
}

#[test]
fn jitter_stays_within_its_bounds_and_comes_from_the_caller_rng() {
    let backoff = Backoff { jitter_percent: 25, ..config().backoff };
    for attempt in 0..6 {
        let base = backoff.base(attempt).as_ticks();
        for random in [0, 1, u32::MAX / 3, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
            let d = backoff.delay(attempt, random).as_ticks();
            assert!(d <= base && d >= base - base / 4, "attempt {attempt}, {random}: {d}");
        }
        assert_eq!(backoff.delay(attempt, 0).as_ticks(), base);
        assert!(backoff.delay(attempt, u32::MAX).as_ticks() < base);
    }
    assert_eq!(backoff.base(0), Duration::from_secs(1));
    assert_eq!(backoff.base(3), Duration::from_secs(8));
    assert_eq!(backoff.base(40), Duration::from_secs(8));

    // The runner takes the random numbers from the caller: with 50 %
    // jitter and a random number of 2³¹, each delay is 3/4 of its base.
    let _clock = clock();
    let script = Script::new(vec![Attempt::Fail, Attempt::Fail, Attempt::Fail]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let mut cfg = config();
    cfg.backoff.jitter_percent = 50;
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, opts(), cfg);
    let mut runner = runner.with_rng(|| 1 << 31).with_hooks(events.clone());
    run_ms(async {
        let body = async {
            until(|| events.count(|e| matches!(e, Event::ReconnectAttempt { .. })) == 3).await;
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    assert_eq!(events.delays_ms(), [750, 1_500, 3_000]);
    assert_eq!(runner.connector_mut().at_ms, [0, 750, 2_250]);
}

#[test]
fn a_connection_up_for_stable_after_resets_the_backoff_to_its_minimum() {
    let _clock = clock();
    let o = opts().keep_alive_secs(2);
    let up = || Attempt::Open(opened(&o).send(&connack(false)).expect(&PINGREQ));
    let script =
        Script::new(vec![Attempt::Fail, Attempt::Fail, up(), Attempt::Fail, Attempt::Fail]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let mut cfg = config();
    cfg.backoff.stable_after = Duration::from_secs(3);
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, cfg);
    let mut runner = runner.with_hooks(events.clone());
    run_ms(async {
        let body = async {
            until(|| events.count(|e| matches!(e, Event::ReconnectAttempt { .. })) == 5).await;
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    // Fail 1 s, fail 2 s, up 3 s: reset, 1 s, fail 2 s, fail 4 s.
    assert_eq!(events.delays_ms(), [1_000, 2_000, 1_000, 2_000, 4_000]);
    let at = &runner.connector_mut().at_ms;
    assert_eq!(at[..3], [0, 1_000, 3_000]);
    runner.connector_mut().assert_done();
}

#[test]
fn subscriptions_are_sent_again_only_when_session_present_is_0() {
    let _clock = clock();
    let o = opts().clean_session(false);
    let ok = [SubscribeReturnCode::Success(QoS::AtLeastOnce)];
    let script = Script::new(vec![
        // Subscribed on the first connection, which then closes.
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(1, "cmd/#", QoS::AtLeastOnce))
                .send(&suback(1, &ok))
                .step(umqtt::mock::Step::Eof),
        ),
        // The broker kept the session: nothing is sent (a SUBSCRIBE would
        // fail the script).
        Attempt::Open(opened(&o).send(&connack(true)).step(umqtt::mock::Step::Eof)),
        // It did not: the subscription is sent again.
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(2, "cmd/#", QoS::AtLeastOnce))
                .send(&suback(2, &ok))
                .expect(&DISCONNECT),
        ),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let mut runner = runner.with_hooks(events.clone());
    run_ms(async {
        let body = async {
            client.subscribe("cmd/#", QoS::AtLeastOnce).await.unwrap();
            until(|| client.stats().connects == 3).await;
            Timer::after_millis(10).await;
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    let connected: Vec<_> = events
        .all()
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Connected { session_present } => Some(session_present),
            _ => None,
        })
        .collect();
    assert_eq!(connected, [false, true, false]);
    assert_eq!(client.stats().reconnects, 2);
    runner.connector_mut().assert_done();
}

#[test]
fn mqtt_4_4_0_1_a_qos1_message_survives_the_connection_and_one_published_while_down_waits() {
    let _clock = clock();
    let o = opts().clean_session(false);
    let script = Script::new(vec![
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&publish("t", b"1", Some(1), false))
                .step(umqtt::mock::Step::Eof),
        ),
        Attempt::Fail,
        // Resent with DUP and the same packet identifier, acknowledged;
        // then the one published while the link was down.
        Attempt::Open(
            opened(&o)
                .send(&connack(true))
                .expect(&publish("t", b"1", Some(1), true))
                .send(&puback(1))
                .expect(&publish("t", b"2", Some(2), false))
                .send(&puback(2))
                .expect(&DISCONNECT),
        ),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let (mut runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let done = Rc::new(RefCell::new(Vec::new()));
    run_ms(async {
        let first = async {
            client.publish("t", b"1", QoS::AtLeastOnce, false).await.unwrap();
            done.borrow_mut().push((1, now_ms()));
        };
        let second = async {
            until(|| client.stats().last_error.is_some()).await;
            assert_ne!(client.state(), LinkState::Connected);
            client.publish("t", b"2", QoS::AtLeastOnce, false).await.unwrap();
            done.borrow_mut().push((2, now_ms()));
            client.close().await;
        };
        select(runner.run(), join(first, second)).await;
    });
    // Both acknowledged on the third attempt, at 1 s + 2 s.
    assert_eq!(*done.borrow(), [(1, 3_000), (2, 3_000)]);
    runner.connector_mut().assert_done();
}

#[test]
fn messages_go_to_the_handler_of_their_filter_then_to_the_mailbox() {
    let _clock = clock();
    let o = opts();
    let script = Script::new(vec![Attempt::Open(
        opened(&o)
            .send(&connack(false))
            .send(&publish("sensors/1/temp", b"21", None, false))
            .send(&publish("other", b"x", Some(1), false))
            .expect(&puback(1))
            .send(&publish("sensors/2/temp", b"22", None, false))
            .expect(&DISCONNECT),
    )]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let mut temps = Vec::new();
    let mut on_temp = |p: &umqtt::Publish<'_>| temps.push(p.payload.to_vec());
    let mut router = Router::<2>::new();
    router.add("sensors/+/temp", &mut on_temp).unwrap();
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let mut runner = runner.with_hooks(router);
    run_ms(async {
        let body = async {
            let mut buf = [0u8; 64];
            let m = client.receive(&mut buf).await.unwrap();
            assert_eq!((m.topic, m.payload, m.qos), ("other", &b"x"[..], QoS::AtLeastOnce));
            Timer::after_millis(10).await;
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    runner.connector_mut().assert_done();
    drop(runner);
    assert_eq!(temps, [b"21".to_vec(), b"22".to_vec()]);
}

#[test]
fn without_a_session_the_subscriptions_go_before_the_resent_messages() {
    let _clock = clock();
    let o = opts().clean_session(false);
    let ok = [SubscribeReturnCode::Success(QoS::AtLeastOnce)];
    let script = Script::new(vec![
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(1, "t", QoS::AtLeastOnce))
                .send(&suback(1, &ok))
                .expect(&publish("t", b"1", Some(2), false))
                .step(umqtt::mock::Step::Eof),
        ),
        // The broker lost the session: SUBSCRIBE, its SUBACK, and only
        // then the message again (else the broker routes it to nobody).
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(3, "t", QoS::AtLeastOnce))
                .send(&suback(3, &ok))
                .expect(&publish("t", b"1", Some(2), true))
                .send(&puback(2))
                .expect(&DISCONNECT),
        ),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let mut runner = runner.with_hooks(events.clone());
    run_ms(async {
        let body = async {
            client.subscribe("t", QoS::AtLeastOnce).await.unwrap();
            client.publish("t", b"1", QoS::AtLeastOnce, false).await.unwrap();
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    assert_eq!(events.count(|e| *e == Event::Resubscribed { count: 1 }), 1);
    runner.connector_mut().assert_done();
}

#[test]
fn a_refused_or_unsubscribed_filter_is_forgotten_and_a_full_list_is_a_typed_error() {
    let _clock = clock();
    let o = opts();
    let ok = [SubscribeReturnCode::Success(QoS::AtMostOnce)];
    let script = Script::new(vec![
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(1, "refused/#", QoS::AtMostOnce))
                .send(&suback(1, &[SubscribeReturnCode::Failure]))
                .expect(&subscribe(2, "kept", QoS::AtMostOnce))
                .send(&suback(2, &ok))
                .expect(&subscribe(3, "dropped", QoS::AtMostOnce))
                .send(&suback(3, &ok))
                .expect(&unsubscribe(4, "dropped"))
                .send(&unsuback(4))
                .step(umqtt::mock::Step::Eof),
        ),
        // Only the filter still wanted comes back.
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(5, "kept", QoS::AtMostOnce))
                .send(&suback(5, &ok))
                .expect(&DISCONNECT),
        ),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let mut runner = runner.with_hooks(events.clone());
    run_ms(async {
        let body = async {
            use umqtt::robust::Error;
            assert_eq!(
                client.subscribe("refused/#", QoS::AtMostOnce).await,
                Err(Error::SubscribeRefused)
            );
            client.subscribe("kept", QoS::AtMostOnce).await.unwrap();
            client.subscribe("dropped", QoS::AtMostOnce).await.unwrap();
            client.unsubscribe("dropped").await.unwrap();
            // 128 bytes of storage: "kept" takes 7, a 122-byte filter does
            // not fit (nothing is sent: the script would fail).
            let long = "x".repeat(122);
            assert_eq!(
                client.subscribe(&long, QoS::AtMostOnce).await,
                Err(Error::SubscriptionsFull)
            );
            // Longer than the command slot: refused before it is copied.
            let longer = "y".repeat(200);
            assert_eq!(
                client.subscribe(&longer, QoS::AtMostOnce).await,
                Err(Error::BufferTooSmall { needed: 200 })
            );
            until(|| events.count(|e| *e == Event::Resubscribed { count: 1 }) == 1).await;
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    runner.connector_mut().assert_done();
}

#[test]
fn a_resubscription_the_broker_refuses_does_not_skip_the_next_one() {
    let _clock = clock();
    let o = opts();
    let ok = [SubscribeReturnCode::Success(QoS::AtMostOnce)];
    let script = Script::new(vec![
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(1, "a", QoS::AtMostOnce))
                .send(&suback(1, &ok))
                .expect(&subscribe(2, "b", QoS::AtMostOnce))
                .send(&suback(2, &ok))
                .step(umqtt::mock::Step::Eof),
        ),
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(3, "a", QoS::AtMostOnce))
                .send(&suback(3, &[SubscribeReturnCode::Failure]))
                .expect(&subscribe(4, "b", QoS::AtMostOnce))
                .send(&suback(4, &ok))
                .expect(&DISCONNECT),
        ),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let mut runner = runner.with_hooks(events.clone());
    run_ms(async {
        let body = async {
            client.subscribe("a", QoS::AtMostOnce).await.unwrap();
            client.subscribe("b", QoS::AtMostOnce).await.unwrap();
            until(|| events.count(|e| *e == Event::Resubscribed { count: 2 }) == 1).await;
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    runner.connector_mut().assert_done();
}

#[test]
fn mqtt_4_3_3_qos2_both_ways_through_the_runner() {
    let _clock = clock();
    let o = opts();
    let script = Script::new(vec![Attempt::Open(
        opened(&o)
            .send(&connack(false))
            .expect(&publish2("t", b"out", 1, false))
            .send(&pubrec(1))
            .expect(&pubrel(1))
            .send(&pubcomp(1))
            .send(&publish2("in", b"once", 7, false))
            .expect(&pubrec(7))
            // Redelivered before PUBREL: acknowledged, not delivered twice.
            .send(&publish2("in", b"once", 7, true))
            .expect(&pubrec(7))
            .send(&pubrel(7))
            .expect(&pubcomp(7))
            .expect(&DISCONNECT),
    )]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let mut slots = [0u16; 4];
    let (mut runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    runner.receive_qos2(&mut slots);
    run_ms(async {
        let body = async {
            client.publish("t", b"out", QoS::ExactlyOnce, false).await.unwrap();
            let mut buf = [0u8; 32];
            let m = client.receive(&mut buf).await.unwrap();
            assert_eq!((m.topic, m.payload, m.qos), ("in", &b"once"[..], QoS::ExactlyOnce));
            Timer::after_millis(10).await;
            let mut buf = [0u8; 32];
            assert_eq!(client.try_receive(&mut buf), Ok(None), "delivered once");
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    runner.connector_mut().assert_done();
}

#[test]
fn a_call_given_up_before_the_runner_took_it_sends_nothing_and_frees_its_place() {
    let _clock = clock();
    let o = opts();
    let script = Script::new(vec![
        Attempt::Fail,
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&publish("t", b"kept", Some(1), false))
                .send(&puback(1))
                .expect(&DISCONNECT),
        ),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let (mut runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    run_ms(async {
        let body = async {
            // Six calls given up while the link is down (1 s of backoff),
            // more than the 4 places for waiting calls: each frees its own.
            for _ in 0..6 {
                let call = client.publish("t", b"gone", QoS::AtLeastOnce, false);
                let gave_up = embassy_time::with_timeout(Duration::from_millis(100), call).await;
                assert!(gave_up.is_err());
            }
            assert_ne!(client.state(), LinkState::Connected);
            client.publish("t", b"kept", QoS::AtLeastOnce, false).await.unwrap();
            assert_eq!(now_ms(), 1_000);
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    runner.connector_mut().assert_done();
}

#[test]
fn without_room_for_a_subscribe_beside_the_stored_messages_they_go_first_rather_than_never() {
    let _clock = clock();
    let o = opts().clean_session(false);
    let ok = [SubscribeReturnCode::Success(QoS::AtLeastOnce)];
    // A 100-byte PUBLISH stored in a 128-byte `tx` leaves room for CONNECT
    // but not for the 47-byte SUBSCRIBE until it is acknowledged.
    let payload = [b'p'; 93];
    let filter = "f".repeat(40);
    let script = Script::new(vec![
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&subscribe(1, &filter, QoS::AtLeastOnce))
                .send(&suback(1, &ok))
                .expect(&publish("t", &payload, Some(2), false))
                .step(umqtt::mock::Step::Eof),
        ),
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&publish("t", &payload, Some(2), true))
                .send(&puback(2))
                // Identifiers 3 and 4 went to the attempts that found no
                // room (the engine takes one before encoding).
                .expect(&subscribe(5, &filter, QoS::AtLeastOnce))
                .send(&suback(5, &ok))
                .expect(&DISCONNECT),
        ),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let events = Events::default();
    let (runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    let mut runner = runner.with_hooks(events.clone());
    run_ms(async {
        let body = async {
            client.subscribe(&filter, QoS::AtLeastOnce).await.unwrap();
            client.publish("t", &payload, QoS::AtLeastOnce, false).await.unwrap();
            until(|| events.count(|e| *e == Event::Resubscribed { count: 1 }) == 1).await;
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    runner.connector_mut().assert_done();
}

#[test]
fn stored_messages_always_leave_room_for_the_connect_of_the_next_connection() {
    let _clock = clock();
    let o = opts().clean_session(false).keep_alive_secs(2);
    // Two 60-byte messages would fill the 128-byte `tx` so that no CONNECT
    // fits behind them: the second waits for the first's PUBACK.
    let (one, two) = ([b'1'; 53], [b'2'; 53]);
    let script = Script::new(vec![
        Attempt::Open(
            opened(&o)
                .send(&connack(false))
                .expect(&publish("t", &one, Some(1), false))
                // Unanswered: the connection ends at 3 s (keepalive).
                .expect(&PINGREQ),
        ),
        Attempt::Open(
            opened(&o)
                .send(&connack(true))
                .expect(&publish("t", &one, Some(1), true))
                .send(&puback(1))
                .expect(&publish("t", &two, Some(2), false))
                .send(&puback(2))
                .expect(&DISCONNECT),
        ),
    ]);
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let (mut runner, client) = Runner::new(script, &STATE, &mut rx, &mut tx, o, config());
    run_ms(async {
        let first = client.publish("t", &one, QoS::AtLeastOnce, false);
        let second = async {
            Timer::after_millis(1).await;
            client.publish("t", &two, QoS::AtLeastOnce, false).await
        };
        let body = async {
            let (a, b) = join(first, second).await;
            assert_eq!((a, b), (Ok(()), Ok(())));
            client.close().await;
        };
        select(runner.run(), body).await;
    });
    assert_eq!(client.stats().reconnects, 1);
    runner.connector_mut().assert_done();
}
