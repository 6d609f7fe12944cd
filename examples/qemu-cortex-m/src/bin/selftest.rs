//! Board self-test, no MQTT: the time driver, the UART over TCP, semihosting
//! exit and the stack high-water mark.
//!
//! 1. Timers: `Timer::after` of 500 ms, then two timers of 300 ms and 200 ms
//!    joined (must take about 300 ms). Prints the elapsed ticks.
//! 2. UART echo: reads a 4-byte little-endian length N, then echoes N bytes
//!    back, and prints the time it took. Skipped when nothing arrives within
//!    2 s (for example under `cargo run`, whose runner has no UART peer).
//!
//! Run with a peer: start a TCP server that sends the length and payload and
//! checks the echo, then
//! `qemu-system-arm -machine mps2-an385 -nographic -monitor none
//!  -semihosting-config enable=on,target=native
//!  -chardev socket,id=u,host=127.0.0.1,port=PORT,nodelay=on -serial chardev:u
//!  -kernel selftest`.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read, Write};
use umqtt_qemu_cortex_m::{self as board, println};

/// How late a timer may fire: the alarm check runs every millisecond, and an
/// emulated CPU on a busy host runs late now and then.
const SLACK_MS: u64 = 100;

fn check(what: &str, elapsed: Duration, min_ms: u64, max_ms: u64) {
    let ms = elapsed.as_millis();
    println!("selftest: {} took {} ms", what, ms);
    if ms < min_ms || ms > max_ms {
        println!(
            "selftest: FAIL {}: {} ms not in [{}, {}]",
            what, ms, min_ms, max_ms
        );
        board::exit::failure();
    }
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let mut uart = board::init();
    println!("selftest: boot");

    let t0 = Instant::now();
    Timer::after_millis(500).await;
    check("Timer::after(500 ms)", t0.elapsed(), 500, 500 + SLACK_MS);

    let t0 = Instant::now();
    embassy_futures::join::join(Timer::after_millis(300), Timer::after_millis(200)).await;
    check("join(300 ms, 200 ms)", t0.elapsed(), 300, 300 + SLACK_MS);

    let mut len = [0u8; 4];
    match select(uart.read_exact(&mut len), Timer::after_secs(2)).await {
        Either::First(Ok(())) => {}
        Either::First(Err(e)) => {
            println!("selftest: FAIL reading the length: {:?}", e);
            board::exit::failure();
        }
        Either::Second(()) => {
            println!("selftest: no UART peer, echo test skipped");
            finish();
        }
    }
    let total = u32::from_le_bytes(len) as usize;
    println!("selftest: echoing {} bytes", total);
    let t0 = Instant::now();
    let mut buf = [0u8; 256];
    let mut done = 0;
    while done < total {
        let want = buf.len().min(total - done);
        let n = match uart.read(&mut buf[..want]).await {
            Ok(n) => n,
            Err(e) => {
                println!("selftest: FAIL read: {:?}", e);
                board::exit::failure();
            }
        };
        if uart.write_all(&buf[..n]).await.is_err() {
            println!("selftest: FAIL write");
            board::exit::failure();
        }
        done += n;
    }
    let _ = uart.flush().await;
    let ms = t0.elapsed().as_millis();
    println!("selftest: echoed {} bytes in {} ms", total, ms);

    finish();
}

fn finish() -> ! {
    let stack = board::stack::usage();
    println!(
        "selftest: stack high-water mark {} of {} bytes; statics {} bytes",
        stack.used, stack.size, stack.statics
    );
    println!("selftest: PASS");
    board::exit::success();
}
