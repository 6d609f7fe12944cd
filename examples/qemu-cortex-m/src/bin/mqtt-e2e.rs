//! The end-to-end scenario: the real `umqtt` client on an emulated
//! Cortex-M3, over the UART that QEMU wires to a TCP connection to a real
//! Mosquitto (driven by `scripts/qemu-e2e`).
//!
//! 1. connect (client id, keepalive, clean session, a will that must *not*
//!    be published because the session ends with DISCONNECT);
//! 2. subscribe QoS 1 to the command topic;
//! 3. publish QoS 0 `online`, then QoS 1 `ready` to the status topic (the
//!    host publishes its commands when it sees `ready`);
//! 4. receive the host's commands (`check_msg` polling for the first, then
//!    `wait_msg`) and echo each payload to the reply topic as `echo:<payload>`
//!    with QoS 1; commands that arrive while a reply waits for its PUBACK are
//!    delivered by the client meanwhile and queued here;
//! 5. stay idle in `wait_msg` for more than two keepalive periods: the
//!    client must send PINGREQ by itself (Mosquitto closes a connection that
//!    is silent for 1.5 x keepalive, and the script counts the PINGREQs in
//!    the broker log); the timer then drops the `wait_msg` future, which must
//!    leave the client usable (cancel safety);
//! 6. ping, publish QoS 1 `done`, disconnect;
//! 7. print the stack high-water mark and exit 0 (any error: exit 1).
#![no_std]
#![no_main]

use core::cell::RefCell;

use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer};
use heapless::{Deque, Vec};
use umqtt::{Client, ConnectOptions, Publish, QoS};
use umqtt_qemu_cortex_m::{self as board, println};

const CLIENT_ID: &str = "umqtt-qemu-m3";
const CMD_TOPIC: &str = "umqtt-qemu/cmd";
const STATUS_TOPIC: &str = "umqtt-qemu/status";
const REPLY_TOPIC: &str = "umqtt-qemu/reply";
/// Commands the host sends (see scripts/qemu-e2e).
const EXPECTED_COMMANDS: usize = 3;
/// Longest payload echoed; longer commands are a test failure.
const MAX_PAYLOAD: usize = 256;
/// Keepalive interval: short, so that step 5 sees the client ping by itself.
const KEEP_ALIVE_SECS: u16 = 3;
/// Idle time in step 5: a little over two keepalive periods.
const IDLE: Duration = Duration::from_millis(2 * 1000 * KEEP_ALIVE_SECS as u64 + 500);
/// Bound on every network step, so a hang is a failure, not a stuck CI job.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Commands received by the message handler, waiting to be echoed.
struct Inbox {
    queue: Deque<Vec<u8, MAX_PAYLOAD>, 4>,
    /// Set when something arrived that the test did not expect.
    fault: Option<&'static str>,
}

/// Fail the test: print why and leave QEMU with status 1.
fn fail(what: &str, why: &dyn core::fmt::Debug) -> ! {
    println!("e2e: FAIL {}: {:?}", what, why);
    report_stack();
    board::exit::failure();
}

fn report_stack() {
    let s = board::stack::usage();
    println!(
        "e2e: stack high-water mark {} bytes (stack region {} bytes, statics incl. task {} bytes)",
        s.used, s.size, s.statics
    );
}

/// Run one client step with [`STEP_TIMEOUT`]; any error ends the test.
async fn step<T, E: core::fmt::Debug>(
    what: &str,
    fut: impl core::future::Future<Output = Result<T, E>>,
) -> T {
    match select(fut, Timer::after(STEP_TIMEOUT)).await {
        Either::First(Ok(v)) => v,
        Either::First(Err(e)) => fail(what, &e),
        Either::Second(()) => fail(what, &"timed out"),
    }
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let uart = board::init();
    let started = Instant::now();
    println!("e2e: boot, umqtt client over UART0 <-> QEMU TCP <-> Mosquitto");

    let inbox = RefCell::new(Inbox {
        queue: Deque::new(),
        fault: None,
    });
    let mut rx = [0u8; 1024];
    let mut tx = [0u8; 1024];
    let mut client = Client::new(uart, &mut rx, &mut tx, |msg: &Publish<'_>| {
        let mut inbox = inbox.borrow_mut();
        if msg.topic != CMD_TOPIC {
            inbox.fault = Some("message on an unexpected topic");
            return;
        }
        match Vec::from_slice(msg.payload) {
            Ok(payload) => {
                if inbox.queue.push_back(payload).is_err() {
                    inbox.fault = Some("more commands queued than expected");
                }
            }
            Err(_) => inbox.fault = Some("command payload too long"),
        }
    });

    let opts = ConnectOptions::new(CLIENT_ID)
        .keep_alive_secs(KEEP_ALIVE_SECS)
        .clean_session(true)
        .will(STATUS_TOPIC, b"offline", QoS::AtLeastOnce, false);
    let session_present = step("connect", client.connect(&opts)).await.session_present;
    println!("e2e: connected (session_present={})", session_present);
    if session_present {
        fail("connect", &"session present after a clean-session connect");
    }

    let granted = step("subscribe", client.subscribe(CMD_TOPIC, QoS::AtLeastOnce)).await;
    println!("e2e: subscribed to {} (granted {:?})", CMD_TOPIC, granted);
    if granted != QoS::AtLeastOnce {
        fail("subscribe", &granted);
    }

    step(
        "publish QoS 0",
        client.publish(STATUS_TOPIC, b"online", QoS::AtMostOnce, false),
    )
    .await;
    println!("e2e: published QoS 0 '{}' online", STATUS_TOPIC);
    step(
        "publish QoS 1",
        client.publish(STATUS_TOPIC, b"ready", QoS::AtLeastOnce, false),
    )
    .await;
    println!(
        "e2e: published QoS 1 '{}' ready (PUBACK received)",
        STATUS_TOPIC
    );

    // First command: poll with check_msg, the way a firmware main loop that
    // does other work would. check_msg must return at once when nothing came.
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut polls = 0u32;
    while inbox.borrow().queue.is_empty() {
        if Instant::now() > deadline {
            fail("check_msg", &"no command within the timeout");
        }
        let t0 = Instant::now();
        step("check_msg", client.check_msg()).await;
        if t0.elapsed() > Duration::from_millis(500) {
            fail("check_msg", &"check_msg blocked");
        }
        polls += 1;
        Timer::after_millis(5).await;
    }
    println!("e2e: first command seen after {} check_msg polls", polls);

    // Echo every command; receive the rest with wait_msg.
    let mut echoed = 0;
    let mut reply = [0u8; 5 + MAX_PAYLOAD];
    while echoed < EXPECTED_COMMANDS {
        let next = {
            let mut inbox = inbox.borrow_mut();
            if let Some(fault) = inbox.fault {
                fail("message handler", &fault);
            }
            inbox.queue.pop_front()
        };
        let Some(payload) = next else {
            step("wait_msg", client.wait_msg()).await;
            continue;
        };
        let len = 5 + payload.len();
        reply[..5].copy_from_slice(b"echo:");
        reply[5..len].copy_from_slice(&payload);
        step(
            "publish reply",
            client.publish(REPLY_TOPIC, &reply[..len], QoS::AtLeastOnce, false),
        )
        .await;
        echoed += 1;
        println!(
            "e2e: echoed command {} ({} bytes) to {}",
            echoed,
            payload.len(),
            REPLY_TOPIC
        );
    }

    println!(
        "e2e: idle in wait_msg for {} ms (keepalive {} s)",
        IDLE.as_millis(),
        KEEP_ALIVE_SECS
    );
    match select(client.wait_msg(), Timer::after(IDLE)).await {
        Either::First(Ok(())) => fail("idle wait_msg", &"unexpected message"),
        Either::First(Err(e)) => fail("idle wait_msg", &e),
        Either::Second(()) => {}
    }

    let t0 = Instant::now();
    step("ping", client.ping()).await;
    println!("e2e: ping answered in {} ms", t0.elapsed().as_millis());

    step(
        "publish done",
        client.publish(STATUS_TOPIC, b"done", QoS::AtLeastOnce, false),
    )
    .await;
    step("disconnect", client.disconnect()).await;
    if let Some(fault) = inbox.borrow().fault {
        fail("message handler", &fault);
    }
    println!(
        "e2e: disconnected after {} ms",
        started.elapsed().as_millis()
    );
    report_stack();
    println!("e2e: PASS");
    board::exit::success();
}
