//! The storage the runner and its handles share: one command slot, one
//! message mailbox, the remembered subscriptions, the waiting calls. The
//! caller provides it (a `static`), sized by const parameters; behind
//! [`Shared`] the runner and the handles see it without those parameters.

use core::cell::RefCell;
use core::task::Waker;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::waitqueue::WakerRegistration;

use super::{Error, LinkState, Stats};
use crate::QoS;

/// Storage shared by a [`Runner`](super::Runner) and its
/// [`Client`](super::Client) handles, under the caller's `RawMutex` `M`
/// (`CriticalSectionRawMutex`, or `ThreadModeRawMutex` when every task
/// runs in thread mode): handles may be used from any task or thread.
///
/// - `CMD`: bytes of the command slot: the longest topic plus payload a
///   handle publishes (or filter it subscribes to);
/// - `MAIL`: bytes of the mailbox a received message waits in for
///   [`Client::receive`](super::Client::receive): its topic plus payload
///   (give it the size of `rx` and every message fits);
/// - `SUBS`: bytes of the remembered subscriptions, 3 plus the filter's
///   length each;
/// - `WAITERS`: calls that can wait at once for their acknowledgment (a
///   call beyond that waits for a free place first).
///
/// ```
/// use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
/// use umqtt::robust::State;
///
/// static STATE: State<CriticalSectionRawMutex, 256, 256, 128> = State::new();
/// ```
pub struct State<
    M: RawMutex,
    const CMD: usize,
    const MAIL: usize,
    const SUBS: usize,
    const WAITERS: usize = 8,
> {
    inner: Mutex<M, RefCell<Inner<CMD, MAIL, SUBS, WAITERS>>>,
}

struct Inner<const CMD: usize, const MAIL: usize, const SUBS: usize, const WAITERS: usize> {
    head: Header,
    cmd: [u8; CMD],
    mail: [u8; MAIL],
    subs: [u8; SUBS],
    waiters: [Waiter; WAITERS],
}

impl<M: RawMutex, const CMD: usize, const MAIL: usize, const SUBS: usize, const WAITERS: usize>
    State<M, CMD, MAIL, SUBS, WAITERS>
{
    /// Empty storage: not connected, nothing subscribed.
    pub const fn new() -> Self {
        Self {
            inner: Mutex::new(RefCell::new(Inner {
                head: Header::new(),
                cmd: [0; CMD],
                mail: [0; MAIL],
                subs: [0; SUBS],
                waiters: [Waiter::FREE; WAITERS],
            })),
        }
    }
}

impl<M: RawMutex, const CMD: usize, const MAIL: usize, const SUBS: usize, const WAITERS: usize>
    Default for State<M, CMD, MAIL, SUBS, WAITERS>
{
    fn default() -> Self {
        Self::new()
    }
}

/// The shared storage without its sizes.
pub(crate) trait Shared: Sync {
    /// Runs `f` on the storage, under the mutex.
    fn with(&self, f: &mut dyn FnMut(&mut View<'_>));
}

impl<
    M: RawMutex + Sync,
    const CMD: usize,
    const MAIL: usize,
    const SUBS: usize,
    const WAITERS: usize,
> Shared for State<M, CMD, MAIL, SUBS, WAITERS>
{
    fn with(&self, f: &mut dyn FnMut(&mut View<'_>)) {
        self.inner.lock(|cell| {
            // Never borrowed twice: `with` is not called from inside `f`.
            if let Ok(mut inner) = cell.try_borrow_mut() {
                let Inner { head, cmd, mail, subs, waiters } = &mut *inner;
                f(&mut View { head, cmd, mail, subs, waiters });
            }
        });
    }
}

/// Runs `f` under the mutex and returns what it returns (`init` if the
/// storage could not be borrowed, which does not happen).
pub(crate) fn lock<T>(shared: &dyn Shared, init: T, f: impl FnOnce(&mut View<'_>) -> T) -> T {
    let mut out = init;
    let mut f = Some(f);
    shared.with(&mut |view| {
        if let Some(f) = f.take() {
            out = f(view);
        }
    });
    out
}

/// The shared storage, borrowed.
pub(crate) struct View<'a> {
    pub(crate) head: &'a mut Header,
    pub(crate) cmd: &'a mut [u8],
    pub(crate) mail: &'a mut [u8],
    pub(crate) subs: &'a mut [u8],
    pub(crate) waiters: &'a mut [Waiter],
}

impl View<'_> {
    /// The waiter of `ticket`.
    pub(crate) fn waiter(&mut self, ticket: u32) -> Option<&mut Waiter> {
        self.waiters.iter_mut().find(|w| w.ticket == ticket && ticket != 0)
    }

    /// Ends every waiting call that `matches`, with `outcome`.
    pub(crate) fn finish(&mut self, matches: impl Fn(Want) -> bool, outcome: Result<(), Error>) {
        let mut any = false;
        for w in self.waiters.iter_mut().filter(|w| w.ticket != 0 && w.outcome.is_none()) {
            if matches(w.want) {
                w.outcome = Some(outcome);
                any = true;
            }
        }
        if any {
            self.head.handles.wake();
        }
    }
}

/// The fixed part of the shared storage.
pub(crate) struct Header {
    pub(crate) link: LinkState,
    pub(crate) stats: Stats,
    next_ticket: u32,
    /// The command in the slot, waiting for the runner.
    pub(crate) cmd: Option<Cmd>,
    /// The message in the mailbox, waiting for a handle.
    pub(crate) mail: Option<Mail>,
    /// Bytes of the remembered subscriptions in use.
    pub(crate) subs_len: usize,
    /// Something for the runner: a command, a free mailbox, `close`.
    pub(crate) kick: bool,
    pub(crate) close: bool,
    pub(crate) runner: WakerRegistration,
    pub(crate) handles: Wakers,
}

impl Header {
    const fn new() -> Self {
        Self {
            link: LinkState::Disconnected,
            stats: Stats { connects: 0, attempts: 0, reconnects: 0, last_error: None },
            next_ticket: 1,
            cmd: None,
            mail: None,
            subs_len: 0,
            kick: false,
            close: false,
            runner: WakerRegistration::new(),
            handles: Wakers::new(),
        }
    }

    /// A new ticket (never 0).
    pub(crate) fn ticket(&mut self) -> u32 {
        let t = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1).max(1);
        t
    }

    /// Tells the runner something changed.
    pub(crate) fn kick(&mut self) {
        self.kick = true;
        self.runner.wake();
    }

    /// A handle waits for a change.
    pub(crate) fn park(&mut self, waker: &Waker) {
        self.handles.register(waker);
    }
}

/// A command copied into the slot: its arguments are `cmd[..topic_len]`
/// (topic or filter) and `cmd[topic_len..topic_len + payload_len]`.
#[derive(Clone, Copy)]
pub(crate) struct Cmd {
    pub(crate) ticket: u32,
    pub(crate) kind: CmdKind,
    pub(crate) topic_len: usize,
    pub(crate) payload_len: usize,
}

/// What a command does.
#[derive(Clone, Copy)]
pub(crate) enum CmdKind {
    Publish { qos: QoS, retain: bool },
    Subscribe(QoS),
    Unsubscribe,
}

/// A received message in the mailbox: `mail[..topic_len]` and the
/// payload after it; `fits` false when it was larger than the mailbox.
#[derive(Clone, Copy)]
pub(crate) struct Mail {
    pub(crate) topic_len: usize,
    pub(crate) payload_len: usize,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) fits: bool,
}

/// What a waiting call waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Its command is in the slot.
    Taken,
    /// Its packet to be written and flushed (QoS 0).
    Flush,
    /// PUBACK or PUBCOMP for this packet identifier.
    Ack(u16),
    /// SUBACK for this packet identifier.
    SubAck(u16),
    /// UNSUBACK for this packet identifier.
    UnsubAck(u16),
}

/// A call waiting for its outcome.
#[derive(Clone, Copy)]
pub(crate) struct Waiter {
    /// 0: a free place.
    pub(crate) ticket: u32,
    pub(crate) want: Want,
    pub(crate) outcome: Option<Result<(), Error>>,
}

impl Waiter {
    const FREE: Self = Self { ticket: 0, want: Want::Taken, outcome: None };
}

/// The handles waiting for a change: up to 8 wakers (one per waiting
/// task); when they are all taken, a new one wakes them all first (they
/// register again: more tasks work, with extra wakeups). Like
/// embassy-sync's `MultiWakerRegistration`, with no panic path.
pub(crate) struct Wakers([Option<Waker>; 8]);

impl Wakers {
    const fn new() -> Self {
        Self([const { None }; 8])
    }

    fn register(&mut self, waker: &Waker) {
        if self.0.iter().flatten().any(|w| w.will_wake(waker)) {
            return;
        }
        if self.0.iter().all(Option::is_some) {
            self.wake();
        }
        if let Some(free) = self.0.iter_mut().find(|w| w.is_none()) {
            *free = Some(waker.clone());
        }
    }

    /// Wakes every waiting handle.
    pub(crate) fn wake(&mut self) {
        for waker in self.0.iter_mut().filter_map(Option::take) {
            waker.wake();
        }
    }
}
