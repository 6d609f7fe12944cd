//! The always-connected runner keeps its session in a store
//! (`Runner::with_store`) `[MQTT-3.1.2-4]`: a runner dropped ("reboot")
//! with unacknowledged QoS 1 and QoS 2 messages leaves them in a
//! `FlashStore` over a `RamFlash`; a new runner over the same flash resends
//! them after CONNACK (DUP=1, same identifiers; PUBREL for the one past
//! PUBREC), and nothing acknowledged is resent; an inbound QoS 2 message
//! delivered before the reboot and sent again after it is not delivered
//! twice `[MQTT-4.3.3-2]`. A store that refuses a
//! message fails its publish with a typed error and sends nothing; a
//! stored session that cannot be loaded stops the runner before it
//! connects.

#[path = "../../mock_support/mod.rs"]
mod mock_support;

use std::future::pending;

use embassy_futures::join::join3;
use embassy_futures::select::select;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Timer};
use mock_support::*;
use umqtt::connect::Connector;
use umqtt::engine::Engine;
use umqtt::mock::MockTransport;
use umqtt::robust::{Backoff, Config, Error, LinkState, Runner, State, Stop};
use umqtt::store::{FlashStore, RamFlash, Store, StoreError, StoreOp};
use umqtt::{ConnectOptions, QoS};
use umqtt_mock_time_tests::{clock, run_ms};

type TestState = State<CriticalSectionRawMutex, 128, 128, 128, 4>;

const PAGE: usize = 1024;
const PAGES: usize = 4;

/// A connector with one scripted transport (one boot): opened once, then
/// every further attempt hangs.
struct Once {
    mock: MockTransport,
    opened: bool,
}

impl Once {
    fn new(mock: MockTransport) -> Self {
        Self { mock, opened: false }
    }
}

impl Connector for Once {
    type Transport<'c> = &'c mut MockTransport;
    type Error = &'static str;

    async fn connect(&mut self) -> Result<&mut MockTransport, &'static str> {
        if std::mem::replace(&mut self.opened, true) {
            pending().await
        }
        Ok(&mut self.mock)
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

fn o() -> ConnectOptions<'static> {
    persistent()
}

/// One boot of the runner over `flash` with the connection `mock`, running
/// `app` on its handle; the runner is dropped when `app` returns.
fn boot<'f>(
    flash: RamFlash<'f, PAGE>,
    state: &'static TestState,
    mock: MockTransport,
    app: impl for<'c> AsyncFnOnce(umqtt::robust::Client<'c>),
) -> RamFlash<'f, PAGE> {
    let (mut rx, mut tx, mut slots, mut record) = ([0u8; 128], [0u8; 256], [0u16; 4], [0u8; 64]);
    let mut store = FlashStore::new(flash, 0..(PAGE * PAGES) as u32, &mut record).unwrap();
    {
        let (runner, client) = Runner::new(Once::new(mock), state, &mut rx, &mut tx, o(), config());
        let mut runner = runner.with_store(&mut store);
        runner.receive_qos2(&mut slots);
        run_ms(async {
            select(runner.run(), app(client)).await;
        });
        runner.connector_mut().mock.assert_done();
    }
    store.into_flash()
}

#[test]
fn mqtt_3_1_2_4_a_rebooted_runner_resends_the_stored_qos1_and_qos2_messages_and_nothing_acknowledged()
 {
    let _clock = clock();
    let mut bytes = vec![0xFF; PAGE * PAGES];
    let flash = RamFlash::<PAGE>::new(&mut bytes);

    // Boot 1: "a" (QoS 1) unacknowledged, "b" (QoS 2) past PUBREC, "c"
    // (QoS 1) acknowledged; then the power goes.
    static STATE1: TestState = State::new();
    let mock = MockTransport::new()
        .expect(&connect(&o()))
        .send(&connack(false))
        .expect(&publish("t", b"a", Some(1), false))
        .expect(&publish2("t", b"b", 2, false))
        .send(&pubrec(2))
        .expect(&pubrel(2))
        .expect(&publish("t", b"c", Some(3), false))
        .send(&puback(3))
        .send(&publish2("in", b"once", 7, false))
        .expect(&pubrec(7));
    let flash = boot(flash, &STATE1, mock, async |client| {
        let a = client.publish("t", b"a", QoS::AtLeastOnce, false);
        let b = async {
            Timer::after_millis(1).await;
            client.publish("t", b"b", QoS::ExactlyOnce, false).await
        };
        let c = async {
            Timer::after_millis(2).await;
            client.publish("t", b"c", QoS::AtLeastOnce, false).await.unwrap();
            let mut buf = [0u8; 32];
            let m = client.receive(&mut buf).await.unwrap();
            assert_eq!((m.topic, m.payload, m.qos), ("in", &b"once"[..], QoS::ExactlyOnce));
            Timer::after_millis(10).await;
        };
        // `c` ends the boot: `a` and `b` are still waiting.
        select(c, join3(a, b, pending::<()>())).await;
    });

    // Boot 2: after CONNACK, "a" again with DUP=1 and id 1, the PUBREL of
    // 2 (not its PUBLISH), and not "c".
    static STATE2: TestState = State::new();
    let mock = MockTransport::new()
        .expect(&connect(&o()))
        .send(&connack(true))
        .expect(&publish("t", b"a", Some(1), true))
        .expect(&pubrel(2))
        .send(&puback(1))
        .send(&pubcomp(2))
        // The broker had no PUBREC for 7 and sends it again: recognised
        // from the store, acknowledged, not delivered twice.
        .send(&publish2("in", b"once", 7, true))
        .expect(&pubrec(7))
        .send(&pubrel(7))
        .expect(&pubcomp(7))
        .expect(&DISCONNECT);
    let flash = boot(flash, &STATE2, mock, async |client| {
        while client.state() != LinkState::Connected {
            Timer::after_millis(1).await;
        }
        Timer::after_millis(10).await;
        let mut buf = [0u8; 32];
        assert_eq!(client.try_receive(&mut buf), Ok(None), "delivered once, before the reboot");
        client.close().await;
    });

    // Boot 3: both completed in boot 2: nothing is resent.
    static STATE3: TestState = State::new();
    let mock = MockTransport::new().expect(&connect(&o())).send(&connack(true)).expect(&DISCONNECT);
    boot(flash, &STATE3, mock, async |client| {
        while client.state() != LinkState::Connected {
            Timer::after_millis(1).await;
        }
        Timer::after_millis(10).await;
        client.close().await;
    });
}

/// A store that refuses every new message (full) and records the rest;
/// `load` fails with `load` when set.
struct Refusing {
    load: Option<StoreError>,
}

impl Store for Refusing {
    async fn load(&mut self, _: &mut Engine<'_>) -> Result<(), StoreError> {
        self.load.map_or(Ok(()), Err)
    }

    async fn record(&mut self, op: StoreOp<'_>) -> Result<(), StoreError> {
        match op {
            StoreOp::Publish { .. } => Err(StoreError::Full),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_full_store_fails_the_publish_with_a_typed_error_and_sends_nothing() {
    let _clock = clock();
    static STATE: TestState = State::new();
    let mock = MockTransport::new()
        .expect(&connect(&o()))
        .send(&connack(false))
        .expect(&publish("t", b"0", None, false))
        .expect(&DISCONNECT);
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 256]);
    let (runner, client) = Runner::new(Once::new(mock), &STATE, &mut rx, &mut tx, o(), config());
    let mut runner = runner.with_store(Refusing { load: None });
    run_ms(async {
        let app = async {
            let refused = client.publish("t", b"1", QoS::AtLeastOnce, false).await;
            assert_eq!(refused, Err(Error::Store(StoreError::Full)));
            // The link goes on: a QoS 0 message needs no record.
            client.publish("t", b"0", QoS::AtMostOnce, false).await.unwrap();
            client.close().await;
        };
        select(runner.run(), app).await;
    });
    runner.connector_mut().mock.assert_done();
}

#[test]
fn a_stored_session_that_cannot_be_loaded_stops_the_runner_before_it_connects() {
    let _clock = clock();
    static STATE: TestState = State::new();
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 256]);
    let connector = Once::new(MockTransport::new());
    let (runner, client) = Runner::new(connector, &STATE, &mut rx, &mut tx, o(), config());
    let mut runner = runner.with_store(Refusing { load: Some(StoreError::DoesNotFit) });
    assert_eq!(run_ms(runner.run()), Stop::Store(StoreError::DoesNotFit));
    assert!(!runner.connector_mut().opened, "no connection attempt");
    assert_eq!(client.state(), LinkState::Failed);
    let published = run_ms(client.publish("t", b"x", QoS::AtLeastOnce, false));
    assert_eq!(published, Err(Error::Stopped));
}
