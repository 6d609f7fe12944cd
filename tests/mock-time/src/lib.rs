//! A tiny deterministic executor for testing the umqtt client under the
//! embassy-time mock driver: it polls a future, and whenever the future
//! waits without having woken itself, advances the mock clock by one step
//! until a timer wakes it. No real sleeps, no threads.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use embassy_time::{Duration, Instant, MockDriver};

/// The mock clock is global: tests that use it run one at a time.
static CLOCK: Mutex<()> = Mutex::new(());

/// Takes the mock clock for one test and resets it to 0.
pub fn clock() -> MutexGuard<'static, ()> {
    let guard = CLOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    MockDriver::get().reset();
    guard
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `fut` to completion, advancing the mock clock in steps of `step`
/// whenever it waits, and fails if it is still waiting at `limit` after
/// the start. The returned output is produced at `Instant::now()`.
pub fn run<F: Future>(fut: F, step: Duration, limit: Instant) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        while !flag.0.swap(false, Ordering::SeqCst) {
            assert!(Instant::now() < limit, "still waiting at {} ms", Instant::now().as_millis());
            MockDriver::get().advance(step);
        }
    }
}

/// [`run`] with 1 ms steps and a 10-minute limit.
pub fn run_ms<F: Future>(fut: F) -> F::Output {
    run(fut, Duration::from_millis(1), Instant::from_secs(600))
}

/// Milliseconds on the mock clock.
pub fn now_ms() -> u64 {
    Instant::now().as_millis()
}
