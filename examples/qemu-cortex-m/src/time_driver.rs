//! embassy-time driver: time from a free-running hardware counter, alarms
//! checked by a 1 kHz SysTick interrupt.
//!
//! - Time: CMSDK APB timer 0 (0x4000_0000) counts down from `u32::MAX` at
//!   25 MHz and reloads; `now()` reads it and extends it to 64 bits (the
//!   SysTick handler reads it every millisecond, far more often than the
//!   171 s wrap). QEMU computes the counter from its virtual clock on each
//!   read, so emulated time keeps pace with the host even when the host is
//!   loaded and the guest misses periodic interrupts. (Counting SysTick
//!   interrupts instead loses ticks then: QEMU merges expiries that the vCPU
//!   did not take in time: on a busy 2-core host one run counted 6.6 s
//!   while 9.4 s passed, enough to break a 3 s keepalive.)
//! - Alarms: SysTick interrupts every millisecond; its handler compares
//!   `now()` with the earliest deadline and lets the timer queue wake what
//!   expired. So a timer fires within about 1 ms after its deadline.
//!   The queue is embassy-time-queue-utils' default, integrated one: its
//!   entries live inside the executor's task headers, so any number of
//!   timers costs no extra RAM.
//! - The periodic interrupt has a second use on QEMU: every SysTick expiry
//!   runs QEMU's main loop, which is where the UART model takes its next
//!   received byte from the TCP socket (see `uart.rs`).
use core::cell::{Cell, RefCell};
use core::ptr::{read_volatile, write_volatile};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::{Driver, TICK_HZ};
use embassy_time_queue_utils::Queue;

use crate::SYSCLK_HZ;

const TIMER0_CTRL: usize = 0x4000_0000;
const TIMER0_VALUE: usize = 0x4000_0004;
const TIMER0_RELOAD: usize = 0x4000_0008;
const TIMER_CTRL_ENABLE: u32 = 1 << 0;

/// Counter cycles per embassy-time tick.
const CYCLES_PER_TICK: u64 = {
    assert!(
        SYSCLK_HZ as u64 / TICK_HZ * TICK_HZ == SYSCLK_HZ as u64,
        "TICK_HZ must divide SYSCLK_HZ"
    );
    SYSCLK_HZ as u64 / TICK_HZ
};

/// SysTick reload for a 1 kHz alarm check.
const SYSTICK_RELOAD: u32 = SYSCLK_HZ / 1000 - 1;

/// The 32-bit hardware count extended to 64 bits.
struct Counter {
    /// Wraps of the 32-bit count so far.
    high: u32,
    /// Last 32-bit count read (cycles since start, modulo 2^32).
    last: u32,
}

struct TimerDriver {
    counter: Mutex<RefCell<Counter>>,
    /// Earliest deadline in the queue, in ticks (`u64::MAX`: none).
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: TimerDriver = TimerDriver {
    counter: Mutex::new(RefCell::new(Counter { high: 0, last: 0 })),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl TimerDriver {
    fn now_in(&self, cs: CriticalSection<'_>) -> u64 {
        // Safety: TIMER0_VALUE is the timer's read-only count register.
        let value = unsafe { read_volatile(TIMER0_VALUE as *const u32) };
        let cycles = !value; // counts down from u32::MAX: cycles since start
        let mut c = self.counter.borrow_ref_mut(cs);
        if cycles < c.last {
            c.high += 1;
        }
        c.last = cycles;
        ((u64::from(c.high) << 32) | u64::from(cycles)) / CYCLES_PER_TICK
    }

    fn on_systick(&self) {
        critical_section::with(|cs| {
            let now = self.now_in(cs);
            let alarm = self.alarm.borrow(cs);
            if now >= alarm.get() {
                let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
                alarm.set(next);
            }
        })
    }
}

impl Driver for TimerDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_in(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                // Wakes whatever already expired (including `at <= now`) and
                // returns the next deadline.
                let now = self.now_in(cs);
                self.alarm.borrow(cs).set(queue.next_expiration(now));
            }
        })
    }
}

pub(crate) fn init(syst: &mut SYST) {
    // Safety: timer 0 belongs to this driver; these are its registers.
    unsafe {
        write_volatile(TIMER0_CTRL as *mut u32, 0);
        write_volatile(TIMER0_RELOAD as *mut u32, u32::MAX);
        write_volatile(TIMER0_VALUE as *mut u32, u32::MAX);
        write_volatile(TIMER0_CTRL as *mut u32, TIMER_CTRL_ENABLE);
    }
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSTICK_RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    DRIVER.on_systick();
}
