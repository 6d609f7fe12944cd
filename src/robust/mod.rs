//! The always-connected client (MicroPython's `umqtt.robust`): a
//! [`Runner`] task that connects through a [`Connector`], reconnects by
//! itself with exponential [`Backoff`], resubscribes when the broker did not
//! keep the session, and resends the stored QoS 1 and 2 messages; and
//! [`Client`] handles, `Copy`, that any number of tasks use to publish,
//! subscribe and receive through its one connection. No heap: the caller
//! gives the buffers and the shared [`State`] (a `static`), on any
//! executor.
//!
//! The first connection and every reconnect take the same path: the runner
//! is created without a connection. Every failure — the connector failing
//! or hanging past [`Config::connect_timeout`], end of stream, an I/O
//! error, a keepalive timeout, a protocol error, a refused or missing
//! CONNACK — drops the transport, is reported as
//! [`Event::Disconnected`], and is followed by [`Event::ReconnectAttempt`]
//! with the delay. A refusal of the credentials (CONNACK 4 or 5) waits the
//! maximum delay, or stops the runner with
//! [`Config::stop_on_auth_refusal`].
//!
//! Calls made while the link is down wait: a QoS 1 or 2 publish returns
//! once acknowledged, after the reconnect; with `clean_session(false)` a
//! message stored before a connection broke is resent with DUP on the next
//! one, never lost.
//!
//! ```no_run
//! # async fn demo(connector: impl umqtt::connect::Connector) {
//! use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
//! use umqtt::robust::{Config, Runner, State};
//! use umqtt::{ConnectOptions, QoS};
//!
//! static STATE: State<CriticalSectionRawMutex, 256, 256, 128> = State::new();
//! let (mut rx, mut tx) = ([0u8; 256], [0u8; 1024]);
//! let opts = ConnectOptions::new("sensor-1").clean_session(false).keep_alive_secs(30);
//! let (mut runner, client) =
//!     Runner::new(connector, &STATE, &mut rx, &mut tx, opts, Config::default());
//! let app = async {
//!     client.subscribe("cmd/sensor-1", QoS::AtLeastOnce).await?;
//!     client.publish("telemetry/sensor-1", b"21.5", QoS::AtLeastOnce, false).await?;
//!     let mut buf = [0u8; 256];
//!     let msg = client.receive(&mut buf).await?;
//!     # let _ = msg;
//!     Ok::<(), umqtt::robust::Error>(())
//! };
//! // In firmware: the runner in its own task, the handles in others.
//! embassy_futures::select::select(runner.run(), app).await;
//! # }
//! ```

mod backoff;
mod client;
mod event;
mod link;
mod router;
mod state;
mod subs;

use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer, with_deadline};

pub use backoff::Backoff;
pub use client::{Client, Error, Message};
pub use event::{DisconnectReason, Event, LinkState, Stats};
pub use router::{Handler, Router};
pub use state::State;

use embassy_sync::blocking_mutex::raw::RawMutex;
use link::{Core, closing};
use state::lock;

use crate::connect::Connector;
use crate::engine::Engine;
use crate::packet::ConnectReturnCode;
use crate::store::{NoStore, Store, StoreError};
use crate::{ConnectOptions, Publish};

/// How the [`Runner`] reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// The delays between attempts.
    pub backoff: Backoff,
    /// Bound on opening a transport plus receiving CONNACK.
    pub connect_timeout: Duration,
    /// After CONNACK 4 (bad user name or password) or 5 (not authorized),
    /// stop instead of retrying at the maximum delay.
    pub stop_on_auth_refusal: bool,
}

impl Default for Config {
    /// [`Backoff::default`], a 10 s connect timeout, retry after refusals.
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            stop_on_auth_refusal: false,
        }
    }
}

/// What the application hooks into the [`Runner`]: its events and the
/// messages it receives. Both are called from the runner's task, in order.
pub trait Hooks {
    /// Something happened (connected, disconnected, next attempt).
    fn on_event(&mut self, event: &Event) {
        let _ = event;
    }

    /// A message arrived; `true` if it was handled here, `false` to put it
    /// into the mailbox for [`Client::receive`] (the default).
    fn on_message(&mut self, message: &Publish<'_>) -> bool {
        let _ = message;
        false
    }
}

/// No hooks: every message goes to the mailbox.
impl Hooks for () {}

/// Why [`Runner::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stop {
    /// [`Client::close`] was called.
    Closed,
    /// The broker refused the credentials and
    /// [`Config::stop_on_auth_refusal`] is set.
    Refused(ConnectReturnCode),
    /// The store given with [`Runner::with_store`] could not load the
    /// stored session (it does not fit the buffers, or the flash failed):
    /// the runner does not connect without it.
    Store(StoreError),
}

/// The always-connected client's task: owns the connector, the engine
/// (over the caller's `rx` and `tx`) and the reconnect schedule. Run
/// [`run`](Self::run) in one task, in the manner of embassy-net's `Runner`.
pub struct Runner<'r, C, R = fn() -> u32, H = (), S = NoStore> {
    connector: C,
    core: Core<'r, R, H, S>,
}

/// No randomness: no jitter (see [`Runner::with_rng`]).
fn no_jitter() -> u32 {
    0
}

impl<'r, C: Connector> Runner<'r, C> {
    /// A runner that will connect through `connector` with `opts`, and the
    /// first handle on it. Nothing happens before [`run`](Self::run).
    pub fn new<M, const CMD: usize, const MAIL: usize, const SUBS: usize, const WAITERS: usize>(
        connector: C,
        state: &'r State<M, CMD, MAIL, SUBS, WAITERS>,
        rx: &'r mut [u8],
        tx: &'r mut [u8],
        opts: ConnectOptions<'r>,
        config: Config,
    ) -> (Self, Client<'r>)
    where
        M: RawMutex + Sync,
    {
        let core = Core {
            engine: Engine::new(rx, tx),
            shared: state,
            opts,
            config,
            rng: no_jitter as fn() -> u32,
            hooks: (),
            store: NoStore,
            pending: None,
            resub: None,
            blocked: false,
            holding: false,
            resent: 0,
            connect_len: 0,
        };
        (Self { connector, core }, Client { shared: state })
    }
}

impl<'r, C: Connector, R: FnMut() -> u32, H: Hooks, S: Store> Runner<'r, C, R, H, S> {
    /// Takes the jitter from `rng` (e.g. `|| rng.next_u32()` of a
    /// `rand_core::RngCore`); without it there is none.
    ///
    /// ```no_run
    /// # async fn demo<'r>(runner: umqtt::robust::Runner<'r, impl umqtt::connect::Connector>) {
    /// let mut seed = 0x2545_f491_u32; // a hardware RNG on a board
    /// let mut runner = runner.with_rng(move || {
    ///     seed ^= seed << 13;
    ///     seed ^= seed >> 17;
    ///     seed ^= seed << 5;
    ///     seed
    /// });
    /// runner.run().await;
    /// # }
    /// ```
    pub fn with_rng<R2: FnMut() -> u32>(self, rng: R2) -> Runner<'r, C, R2, H, S> {
        let core = self.core.swap(|_, hooks, store| (rng, hooks, store));
        Runner { connector: self.connector, core }
    }

    /// Calls `hooks` with the events and messages (a [`Router`], or the
    /// application's own [`Hooks`]).
    ///
    /// ```no_run
    /// # async fn demo<'r>(runner: umqtt::robust::Runner<'r, impl umqtt::connect::Connector>) {
    /// use umqtt::robust::{Event, Hooks};
    ///
    /// struct Log;
    /// impl Hooks for Log {
    ///     fn on_event(&mut self, event: &Event) {
    ///         println!("mqtt: {event:?}");
    ///     }
    /// }
    /// let mut runner = runner.with_hooks(Log);
    /// runner.run().await;
    /// # }
    /// ```
    pub fn with_hooks<H2: Hooks>(self, hooks: H2) -> Runner<'r, C, R, H2, S> {
        let core = self.core.swap(|rng, _, store| (rng, hooks, store));
        Runner { connector: self.connector, core }
    }

    /// Keeps the session in `store` too, so that it survives a reboot
    /// (see [`crate::store`]): [`run`](Self::run) loads the stored session
    /// before the first connect, and every step of it is durable before
    /// the wire goes on. With `clean_session(false)` the loaded messages
    /// are resent after CONNACK (DUP=1, same identifiers; PUBREL for
    /// those past PUBREC). A full store makes a QoS 1 or 2
    /// [`Client::publish`] fail with [`Error::Store`].
    ///
    /// ```no_run
    /// # async fn demo<'r>(
    /// #     runner: umqtt::robust::Runner<'r, impl umqtt::connect::Connector>,
    /// #     store: impl umqtt::store::Store,
    /// # ) {
    /// let mut runner = runner.with_store(store);
    /// runner.run().await;
    /// # }
    /// ```
    pub fn with_store<S2: Store>(self, store: S2) -> Runner<'r, C, R, H, S2> {
        let mut core = self.core.swap(|rng, hooks, _| (rng, hooks, store));
        if S2::PERSISTS {
            core.engine.persist();
        }
        Runner { connector: self.connector, core }
    }

    /// Enables QoS 2 reception, see [`Engine::receive_qos2`].
    ///
    /// ```no_run
    /// # fn demo<'r>(runner: &mut umqtt::robust::Runner<'r, impl umqtt::connect::Connector>, slots: &'r mut [u16; 16]) {
    /// runner.receive_qos2(slots); // then QoS 2 subscriptions are exactly once
    /// # }
    /// ```
    pub fn receive_qos2(&mut self, slots: &'r mut [u16]) {
        self.core.engine.receive_qos2(slots);
    }

    /// The connector, e.g. to point it at another broker for the next
    /// connection.
    ///
    /// ```no_run
    /// # fn demo<C: umqtt::connect::Connector>(runner: &mut umqtt::robust::Runner<'_, C>) {
    /// let _connector = runner.connector_mut(); // e.g. to change the broker's address
    /// # }
    /// ```
    pub fn connector_mut(&mut self) -> &mut C {
        &mut self.connector
    }

    /// The hooks, e.g. to read what a handler recorded.
    ///
    /// ```no_run
    /// # fn demo<C: umqtt::connect::Connector, H: umqtt::robust::Hooks>(runner: &mut umqtt::robust::Runner<'_, C, fn() -> u32, H>) {
    /// let _hooks: &mut H = runner.hooks_mut();
    /// # }
    /// ```
    pub fn hooks_mut(&mut self) -> &mut H {
        &mut self.core.hooks
    }

    /// Connects and stays connected: never returns, except after
    /// [`Client::close`], with [`Config::stop_on_auth_refusal`] a refusal
    /// of the credentials, or a stored session that cannot be loaded.
    ///
    /// ```no_run
    /// # async fn demo(mut runner: umqtt::robust::Runner<'_, impl umqtt::connect::Connector>) {
    /// match runner.run().await {
    ///     umqtt::robust::Stop::Closed => {} // after Client::close
    ///     other => println!("mqtt stopped: {other:?}"),
    /// }
    /// # }
    /// ```
    pub async fn run(&mut self) -> Stop {
        // The stored session, before the first connect (loaded once).
        if S::PERSISTS {
            if let Err(e) = self.core.store.load(&mut self.core.engine).await {
                return self.core.stop(Stop::Store(e));
            }
        }
        let mut attempt: u32 = 0;
        loop {
            let (reason, up) = self.connect_once().await;
            let core = &mut self.core;
            let stable = core.config.backoff.stable_after;
            if up.is_some_and(|t| Instant::now().saturating_duration_since(t) >= stable) {
                attempt = 0;
            }
            core.lost(reason);
            if reason == DisconnectReason::Requested {
                return core.stop(Stop::Closed);
            }
            let delay = match reason {
                DisconnectReason::Refused(code) if reason.is_auth_refusal() => {
                    if core.config.stop_on_auth_refusal {
                        return core.stop(Stop::Refused(code));
                    }
                    core.config.backoff.max
                }
                _ => core.config.backoff.delay(attempt, (core.rng)()),
            };
            attempt = attempt.saturating_add(1);
            core.emit(&Event::ReconnectAttempt { delay });
            let shared = core.shared;
            if let Either::Second(()) = select(
                Timer::at(Instant::now().checked_add(delay).unwrap_or(Instant::MAX)),
                closing(shared),
            )
            .await
            {
                core.emit(&Event::Disconnected { reason: DisconnectReason::Requested });
                return core.stop(Stop::Closed);
            }
        }
    }

    /// One connection, from opening the transport to its end: why it
    /// ended, and since when it was up (CONNACK), if it was.
    async fn connect_once(&mut self) -> (DisconnectReason, Option<Instant>) {
        let core = &mut self.core;
        let closing = lock(core.shared, true, |v| {
            v.head.link = LinkState::Connecting;
            v.head.stats.attempts = v.head.stats.attempts.saturating_add(1);
            v.head.handles.wake();
            v.head.close
        });
        if closing {
            return (DisconnectReason::Requested, None);
        }
        let deadline =
            Instant::now().checked_add(core.config.connect_timeout).unwrap_or(Instant::MAX);
        let mut transport = match with_deadline(deadline, self.connector.connect()).await {
            Err(_) => return (DisconnectReason::ConnectTimeout, None),
            Ok(Err(_e)) => {
                crate::fmt::log_warn!("connector failed");
                return (DisconnectReason::ConnectFailed, None);
            }
            Ok(Ok(transport)) => transport,
        };
        let mut up = None;
        let Err(reason) = core.drive(&mut transport, deadline, &mut up).await;
        core.engine.on_transport_error();
        (reason, up)
    }
}
