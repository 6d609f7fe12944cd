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
mod router;
mod state;
mod subs;

use core::convert::Infallible;
use core::future::poll_fn;
use core::task::Poll;

use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer, with_deadline};
use embedded_io_async::{Error as _, Read, Write};

pub use backoff::Backoff;
pub use client::{Client, Error, Message};
pub use event::{DisconnectReason, Event, LinkState, Stats};
pub use router::{Handler, Router};
pub use state::State;

use crate::connect::Connector;
use crate::engine::{Engine, Event as EngineEvent, Transmit};
use crate::packet::{ConnectReturnCode, SubscribeReturnCode};
use crate::{ConnectOptions, Error as ClientError, Publish, SubscribeTopic};
use embassy_sync::blocking_mutex::raw::RawMutex;
use state::{CmdKind, Mail, Shared, Want, lock};

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
}

/// The always-connected client's task: owns the connector, the engine
/// (over the caller's `rx` and `tx`) and the reconnect schedule. Run
/// [`run`](Self::run) in one task, in the manner of embassy-net's `Runner`.
pub struct Runner<'r, C, R = fn() -> u32, H = ()> {
    connector: C,
    core: Core<'r, R, H>,
}

/// The SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgment.
#[derive(Clone, Copy)]
struct Pending {
    id: u16,
    /// Offset of the remembered subscription a SUBSCRIBE is for.
    at: usize,
    unsubscribe: bool,
}

/// Everything of the runner but the connector, so that a transport
/// borrowing the connector and this can be used together.
struct Core<'r, R, H> {
    engine: Engine<'r>,
    shared: &'r dyn Shared,
    opts: ConnectOptions<'r>,
    config: Config,
    rng: R,
    hooks: H,
    pending: Option<Pending>,
    /// Offset of the next remembered subscription to check for resending.
    resub: Option<usize>,
    /// A command found no room: retried after the next progress.
    blocked: bool,
    /// The resend of the stored messages waits until the subscriptions
    /// are back ([`Engine::hold_resend`]).
    holding: bool,
    /// Subscriptions sent again since the last CONNACK.
    resent: u16,
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
            pending: None,
            resub: None,
            blocked: false,
            holding: false,
            resent: 0,
        };
        (Self { connector, core }, Client { shared: state })
    }
}

impl<'r, C: Connector, R: FnMut() -> u32, H: Hooks> Runner<'r, C, R, H> {
    /// Takes the jitter from `rng` (e.g. `|| rng.next_u32()` of a
    /// `rand_core::RngCore`); without it there is none.
    pub fn with_rng<R2: FnMut() -> u32>(self, rng: R2) -> Runner<'r, C, R2, H> {
        let Core {
            engine,
            shared,
            opts,
            config,
            hooks,
            pending,
            resub,
            blocked,
            holding,
            resent,
            ..
        } = self.core;
        let core = Core {
            engine,
            shared,
            opts,
            config,
            rng,
            hooks,
            pending,
            resub,
            blocked,
            holding,
            resent,
        };
        Runner { connector: self.connector, core }
    }

    /// Calls `hooks` with the events and messages (a [`Router`], or the
    /// application's own [`Hooks`]).
    pub fn with_hooks<H2: Hooks>(self, hooks: H2) -> Runner<'r, C, R, H2> {
        let Core {
            engine,
            shared,
            opts,
            config,
            rng,
            pending,
            resub,
            blocked,
            holding,
            resent,
            ..
        } = self.core;
        let core = Core {
            engine,
            shared,
            opts,
            config,
            rng,
            hooks,
            pending,
            resub,
            blocked,
            holding,
            resent,
        };
        Runner { connector: self.connector, core }
    }

    /// Enables QoS 2 reception, see [`Engine::receive_qos2`].
    pub fn receive_qos2(&mut self, slots: &'r mut [u16]) {
        self.core.engine.receive_qos2(slots);
    }

    /// The connector, e.g. to point it at another broker for the next
    /// connection.
    pub fn connector_mut(&mut self) -> &mut C {
        &mut self.connector
    }

    /// The hooks, e.g. to read what a handler recorded.
    pub fn hooks_mut(&mut self) -> &mut H {
        &mut self.core.hooks
    }

    /// Connects and stays connected: never returns, except after
    /// [`Client::close`] or, with [`Config::stop_on_auth_refusal`], a
    /// refusal of the credentials.
    pub async fn run(&mut self) -> Stop {
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

impl<R, H: Hooks> Core<'_, R, H> {
    fn emit(&mut self, event: &Event) {
        self.hooks.on_event(event);
    }

    /// The connection ended for `reason`.
    fn lost(&mut self, reason: DisconnectReason) {
        self.pending = None;
        self.resub = None;
        self.blocked = false;
        self.holding = false;
        lock(self.shared, (), |v| {
            v.head.link = LinkState::Disconnected;
            v.head.stats.last_error = Some(reason);
            let unanswered = |w| matches!(w, Want::Flush | Want::SubAck(_) | Want::UnsubAck(_));
            v.finish(unanswered, Err(Error::ConnectionLost));
            v.head.handles.wake();
        });
        self.emit(&Event::Disconnected { reason });
    }

    /// The runner stops: every waiting call ends.
    fn stop(&mut self, stop: Stop) -> Stop {
        lock(self.shared, (), |v| {
            v.head.link = LinkState::Failed;
            v.head.cmd = None;
            v.finish(|_| true, Err(Error::Stopped));
            v.head.handles.wake();
        });
        stop
    }

    /// Drives one connection until it fails (the transport is open and
    /// nothing is queued yet).
    async fn drive<T: Read + Write>(
        &mut self,
        t: &mut T,
        connack_by: Instant,
        up: &mut Option<Instant>,
    ) -> Result<Infallible, DisconnectReason> {
        use DisconnectReason as Reason;
        self.engine.connect(&self.opts, Instant::now()).map_err(Reason::from_engine)?;
        let mut disconnecting = false;
        loop {
            // Write what is queued, whole, before anything else.
            if let Some(transmit) = self.engine.poll_transmit() {
                // Bounded by the ack timeout, and before CONNACK by the
                // connect timeout too.
                let ack = self.engine.ack_deadline(Instant::now());
                let deadline = if up.is_some() { ack } else { ack.min(connack_by) };
                let io = async {
                    match transmit {
                        Transmit::Write(bytes) => t.write(bytes).await,
                        Transmit::Flush => t.flush().await.map(|()| 0),
                    }
                };
                let result = with_deadline(deadline, io).await;
                match result {
                    Err(_) if up.is_none() => return Err(Reason::ConnectTimeout),
                    Err(_) => return Err(Reason::WriteTimeout),
                    Ok(Err(e)) => return Err(Reason::Io(e.kind())),
                    Ok(Ok(_)) if transmit_is_flush(&self.engine) => {
                        self.engine.on_flushed(Instant::now());
                        lock(self.shared, (), |v| v.finish(|w| w == Want::Flush, Ok(())));
                    }
                    Ok(Ok(n)) => self.engine.on_written(n).map_err(Reason::from_engine)?,
                }
                self.blocked = false;
                continue;
            }
            if disconnecting {
                return Err(Reason::Requested);
            }
            // One received packet.
            let now = Instant::now();
            let mut connack = None;
            let mut acked = None;
            match self.engine.poll(now).map_err(Reason::from_engine)? {
                None => {}
                Some(event) => {
                    match event {
                        EngineEvent::Message(message) => {
                            let handled = self.hooks.on_message(&message);
                            if !handled {
                                deliver(self.shared, &message).await;
                            }
                        }
                        EngineEvent::ConnAck { session_present } => connack = Some(session_present),
                        EngineEvent::Published(id) => {
                            let id = id.get();
                            lock(self.shared, (), |v| v.finish(|w| w == Want::Ack(id), Ok(())));
                        }
                        EngineEvent::SubAck(ack) => {
                            let granted = ack
                                .return_codes
                                .iter()
                                .next()
                                .is_some_and(|c| c != SubscribeReturnCode::Failure);
                            acked = Some((ack.packet_id.get(), granted));
                        }
                        EngineEvent::UnsubAck(id) => acked = Some((id.get(), true)),
                        _ => {}
                    }
                    self.blocked = false;
                    if let Some(session_present) = connack {
                        *up = Some(now);
                        self.connected(session_present);
                    }
                    if let Some((id, granted)) = acked {
                        self.acknowledged(id, granted);
                    }
                    continue;
                }
            }
            // Handle commands and resubscriptions, once connected.
            if self.engine.state() == crate::State::Connected && !self.blocked {
                if self.pending.is_none() && self.resubscribe()? {
                    continue;
                }
                if !self.holding && self.take_command() {
                    continue;
                }
            }
            if lock(self.shared, false, |v| v.head.close) {
                disconnecting = self.engine.disconnect().is_ok();
                if !disconnecting {
                    return Err(Reason::Requested);
                }
                continue;
            }
            // Timers: keepalive, and the CONNACK deadline.
            let next = self.engine.handle_timeout(now).map_err(Reason::from_engine)?;
            if self.engine.poll_transmit().is_some() {
                continue;
            }
            let wake = match up {
                Some(_) => next,
                None if now >= connack_by => return Err(Reason::ConnectTimeout),
                None => Some(connack_by),
            };
            // Wait for bytes, a handle, or the timer.
            let shared = self.shared;
            let buf = self.engine.read_buf().map_err(Reason::from_engine)?;
            let read = select(t.read(buf), kicked(shared));
            let woke = with_deadline(wake.unwrap_or(Instant::MAX), read).await.ok();
            match woke {
                Some(Either::First(Ok(n))) => {
                    self.engine.on_read(n, Instant::now()).map_err(Reason::from_engine)?;
                }
                Some(Either::First(Err(e))) => return Err(Reason::Io(e.kind())),
                Some(Either::Second(())) | None => {}
            }
        }
    }

    /// CONNACK accepted the connection.
    fn connected(&mut self, session_present: bool) {
        let discarded = self.engine.discarded() > 0;
        let subscribed = lock(self.shared, false, |v| {
            let stats = &mut v.head.stats;
            stats.connects = stats.connects.saturating_add(1);
            stats.reconnects = stats.connects.saturating_sub(1);
            v.head.link = LinkState::Connected;
            if discarded {
                v.finish(|w| matches!(w, Want::Ack(_)), Err(Error::Discarded));
            }
            if !session_present {
                subs::clear_acked(v.subs, v.head.subs_len);
            }
            v.head.handles.wake();
            v.head.subs_len > 0
        });
        // A broker without the session must have the subscriptions before
        // the resent messages, or it routes them to nobody.
        self.holding = !session_present && subscribed && self.engine.hold_resend();
        self.resent = 0;
        self.resub = Some(0);
        self.emit(&Event::Connected { session_present });
    }

    /// SUBACK (`granted`: not 0x80) or UNSUBACK for `id`.
    fn acknowledged(&mut self, id: u16, granted: bool) {
        let Some(pending) = self.pending.filter(|p| p.id == id) else { return };
        self.pending = None;
        let resub = &mut self.resub;
        lock(self.shared, (), |v| {
            if pending.unsubscribe {
                v.finish(|w| w == Want::UnsubAck(id), Ok(()));
                return;
            }
            if granted {
                subs::mark_acked(v.subs, pending.at);
            } else {
                let before = v.head.subs_len;
                subs::remove_at(v.subs, &mut v.head.subs_len, pending.at);
                // The entries after it moved down.
                if let Some(next) = resub.as_mut().filter(|next| **next > pending.at) {
                    *next -= before - v.head.subs_len;
                }
            }
            let outcome = if granted { Ok(()) } else { Err(Error::SubscribeRefused) };
            v.finish(|w| w == Want::SubAck(id), outcome);
        });
    }

    /// Sends the next remembered subscription the broker does not have;
    /// `true` if one was queued.
    fn resubscribe(&mut self) -> Result<bool, DisconnectReason> {
        let Some(mut at) = self.resub else { return Ok(false) };
        let (engine, pending, blocked) = (&mut self.engine, &mut self.pending, &mut self.blocked);
        let resent = &mut self.resent;
        let queued = lock(self.shared, Ok(None), |v| {
            let list = v.subs.get(..v.head.subs_len).unwrap_or_default();
            while let Some(entry) = subs::entry(list, at) {
                if entry.acked {
                    at = entry.next;
                    continue;
                }
                let topic = SubscribeTopic { filter: entry.filter, qos: entry.qos };
                return match engine.subscribe(&[topic]) {
                    Ok(id) => {
                        *resent = resent.saturating_add(1);
                        *pending = Some(Pending { id: id.get(), at, unsubscribe: false });
                        Ok(Some(entry.next))
                    }
                    Err(ClientError::WouldBlock | ClientError::NoPacketId) => {
                        *blocked = true;
                        Ok(Some(at))
                    }
                    Err(e) => Err(DisconnectReason::from_engine(e)),
                };
            }
            Ok(None)
        })?;
        self.resub = queued;
        if queued.is_some() {
            return Ok(!self.blocked);
        }
        // Every subscription is back: now the held resend, then tell.
        if self.holding {
            match self.engine.resend() {
                Ok(()) => self.holding = false,
                Err(ClientError::WouldBlock) => {
                    self.resub = Some(at);
                    return Ok(false);
                }
                Err(e) => return Err(DisconnectReason::from_engine(e)),
            }
        }
        self.emit(&Event::Resubscribed { count: self.resent });
        Ok(true)
    }

    /// Queues the command in the slot, if any and if it fits now; `true`
    /// if it was taken.
    fn take_command(&mut self) -> bool {
        let (engine, pending, blocked) = (&mut self.engine, &mut self.pending, &mut self.blocked);
        let sub_busy = pending.is_some() || self.resub.is_some();
        lock(self.shared, false, |v| {
            let Some(cmd) = v.head.cmd else { return false };
            let (topic, rest) = v.cmd.split_at(cmd.topic_len.min(v.cmd.len()));
            let payload = rest.get(..cmd.payload_len).unwrap_or_default();
            let Ok(topic) = core::str::from_utf8(topic) else { return false };
            let result = match cmd.kind {
                CmdKind::Publish { qos, retain } => engine
                    .publish(topic, payload, qos, retain)
                    .map(|id| id.map_or(Want::Flush, |id| Want::Ack(id.get()))),
                CmdKind::Subscribe(_) | CmdKind::Unsubscribe if sub_busy => return false,
                CmdKind::Subscribe(qos) => {
                    if !subs::insert(v.subs, &mut v.head.subs_len, topic, qos) {
                        Err(ClientError::BufferTooSmall { needed: 0 })
                    } else {
                        let at = v.head.subs_len - 3 - topic.len();
                        let result = engine.subscribe(&[SubscribeTopic { filter: topic, qos }]);
                        if result.is_err() {
                            subs::remove_at(v.subs, &mut v.head.subs_len, at);
                        }
                        result.map(|id| {
                            *pending = Some(Pending { id: id.get(), at, unsubscribe: false });
                            Want::SubAck(id.get())
                        })
                    }
                }
                CmdKind::Unsubscribe => engine.unsubscribe(&[topic]).map(|id| {
                    subs::remove(v.subs, &mut v.head.subs_len, topic);
                    *pending = Some(Pending { id: id.get(), at: 0, unsubscribe: true });
                    Want::UnsubAck(id.get())
                }),
            };
            let outcome = match result {
                Err(ClientError::WouldBlock | ClientError::NoPacketId) => {
                    *blocked = true;
                    return false;
                }
                Err(ClientError::NotConnected) => return false,
                Ok(want) => Ok(want),
                Err(ClientError::InvalidArgument(m)) => Err(Error::InvalidArgument(m)),
                Err(ClientError::BufferTooSmall { needed: 0 }) => Err(Error::SubscriptionsFull),
                Err(ClientError::BufferTooSmall { needed }) => {
                    Err(Error::BufferTooSmall { needed })
                }
                Err(_) => Err(Error::ConnectionLost),
            };
            v.head.cmd = None;
            if let Some(w) = v.waiter(cmd.ticket) {
                match outcome {
                    Ok(want) => w.want = want,
                    Err(e) => w.outcome = Some(Err(e)),
                }
            }
            v.head.handles.wake();
            true
        })
    }
}

/// Whether the engine's pending transmit is the flush (checked after the
/// write or flush it asked for).
fn transmit_is_flush(engine: &Engine<'_>) -> bool {
    matches!(engine.poll_transmit(), Some(Transmit::Flush))
}

/// Waits until a handle has something for the runner.
async fn kicked(shared: &dyn Shared) {
    poll_fn(|cx| {
        lock(shared, Poll::Ready(()), |v| {
            if core::mem::take(&mut v.head.kick) {
                Poll::Ready(())
            } else {
                v.head.runner.register(cx.waker());
                Poll::Pending
            }
        })
    })
    .await;
}

/// Waits until [`Client::close`] is called.
async fn closing(shared: &dyn Shared) {
    poll_fn(|cx| {
        lock(shared, Poll::Ready(()), |v| {
            if v.head.close {
                Poll::Ready(())
            } else {
                v.head.runner.register(cx.waker());
                Poll::Pending
            }
        })
    })
    .await;
}

/// Copies `message` into the mailbox once it is free (backpressure: the
/// runner reads nothing more until then).
async fn deliver(shared: &dyn Shared, message: &Publish<'_>) {
    poll_fn(|cx| {
        lock(shared, Poll::Ready(()), |v| {
            match (v.head.mail.is_some(), v.head.close) {
                (true, false) => {
                    v.head.runner.register(cx.waker());
                    return Poll::Pending;
                }
                // Closing, and nobody takes the mailbox: the runner stops.
                (true, true) => return Poll::Ready(()),
                _ => {}
            }
            let (topic, payload) = (message.topic.as_bytes(), message.payload);
            let needed = topic.len() + payload.len();
            let fits = needed <= v.mail.len();
            if fits {
                for (d, s) in v.mail.iter_mut().zip(topic.iter().chain(payload)) {
                    *d = *s;
                }
            }
            let (qos, retain) = (message.qos, message.retain);
            v.head.mail = Some(Mail {
                topic_len: topic.len(),
                payload_len: payload.len(),
                qos,
                retain,
                fits,
            });
            v.head.handles.wake();
            Poll::Ready(())
        })
    })
    .await;
}
