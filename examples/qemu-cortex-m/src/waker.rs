//! A waker slot shared between a task and an interrupt handler.
use core::cell::RefCell;
use core::task::Waker;

use critical_section::{CriticalSection, Mutex};

pub(crate) struct WakerSlot(Mutex<RefCell<Option<Waker>>>);

impl WakerSlot {
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(RefCell::new(None)))
    }

    pub(crate) fn register(&self, cs: CriticalSection<'_>, waker: &Waker) {
        let mut slot = self.0.borrow_ref_mut(cs);
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    pub(crate) fn wake(&self, cs: CriticalSection<'_>) {
        if let Some(w) = self.0.borrow_ref_mut(cs).take() {
            w.wake();
        }
    }
}
