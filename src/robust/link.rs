//! One connection of the [`Runner`](super::Runner), driven over the
//! engine: writing, reading, the handle commands, resubscription, the
//! mailbox. Everything of the runner but the connector, so that a
//! transport borrowing the connector and this can be used together.

use core::convert::Infallible;
use core::future::poll_fn;
use core::task::Poll;

use embassy_futures::select::{Either, select};
use embassy_time::{Instant, with_deadline};
use embedded_io_async::{Error as _, Read, Write};

use super::state::{CmdKind, Mail, Shared, Want, lock};
use super::{Config, DisconnectReason, Error, Event, Hooks, LinkState, Stop, subs};
use crate::engine::CONTROL_RESERVE;
use crate::engine::{Engine, Event as EngineEvent, Transmit};
use crate::packet::SubscribeReturnCode;
use crate::store::Store;
use crate::{ConnectOptions, Error as ClientError, Publish, QoS, SubscribeTopic};

/// The SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgment.
#[derive(Clone, Copy)]
pub(super) struct Pending {
    id: u16,
    /// Offset of the remembered subscription a SUBSCRIBE is for.
    at: usize,
    unsubscribe: bool,
}

/// Everything of the runner but the connector, so that a transport
/// borrowing the connector and this can be used together.
pub(super) struct Core<'r, R, H, S> {
    pub(super) engine: Engine<'r>,
    pub(super) shared: &'r dyn Shared,
    pub(super) opts: ConnectOptions<'r>,
    pub(super) config: Config,
    pub(super) rng: R,
    pub(super) hooks: H,
    /// Where the session is kept ([`NoStore`](crate::store::NoStore): RAM only).
    pub(super) store: S,
    pub(super) pending: Option<Pending>,
    /// Offset of the next remembered subscription to check for resending.
    pub(super) resub: Option<usize>,
    /// A command found no room: retried after the next progress.
    pub(super) blocked: bool,
    /// The resend of the stored messages waits until the subscriptions
    /// are back ([`Engine::hold_resend`]).
    pub(super) holding: bool,
    /// Subscriptions sent again since the last CONNACK.
    pub(super) resent: u16,
    /// Bytes of CONNECT, measured when it is queued.
    pub(super) connect_len: usize,
}

impl<'r, R, H, S> Core<'r, R, H, S> {
    /// The same core with its jitter source, hooks and store replaced by
    /// `swap` (the one place that moves every field).
    pub(super) fn swap<R2, H2, S2>(
        self,
        swap: impl FnOnce(R, H, S) -> (R2, H2, S2),
    ) -> Core<'r, R2, H2, S2> {
        let Core {
            engine,
            shared,
            opts,
            config,
            rng,
            hooks,
            store,
            pending,
            resub,
            blocked,
            holding,
            resent,
            connect_len,
        } = self;
        let (rng, hooks, store) = swap(rng, hooks, store);
        Core {
            engine,
            shared,
            opts,
            config,
            rng,
            hooks,
            store,
            pending,
            resub,
            blocked,
            holding,
            resent,
            connect_len,
        }
    }
}

impl<R, H: Hooks, S: Store> Core<'_, R, H, S> {
    pub(super) fn emit(&mut self, event: &Event) {
        self.hooks.on_event(event);
    }

    /// The connection ended for `reason`.
    pub(super) fn lost(&mut self, reason: DisconnectReason) {
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
    pub(super) fn stop(&mut self, stop: Stop) -> Stop {
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
    pub(super) async fn drive<T: Read + Write>(
        &mut self,
        t: &mut T,
        connack_by: Instant,
        up: &mut Option<Instant>,
    ) -> Result<Infallible, DisconnectReason> {
        use DisconnectReason as Reason;
        self.engine.connect(&self.opts, Instant::now()).map_err(Reason::from_engine)?;
        // A clean session clears the store before CONNECT goes out.
        self.record().await?;
        // What is queued now is the CONNECT alone: its length is the room
        // stored messages must leave for the next one.
        if let Some(Transmit::Write(connect)) = self.engine.poll_transmit() {
            self.connect_len = connect.len();
        }
        let mut disconnecting = false;
        loop {
            // A step of the session is durable before the wire goes on.
            if S::PERSISTS && self.engine.store_pending() {
                self.record().await?;
                continue;
            }
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
            // An inbound QoS 2 message waits in `rx` for its record.
            if S::PERSISTS && self.engine.store_pending() {
                continue;
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

    /// Records the engine's pending store operation, if any (see
    /// [`crate::store`]). A new message the store refuses is taken back and
    /// its publish fails with [`Error::Store`]; any other operation that
    /// fails ends the connection, to be tried again first on the next one.
    async fn record(&mut self) -> Result<(), DisconnectReason> {
        if !S::PERSISTS {
            return Ok(());
        }
        let Some(op) = self.engine.poll_store() else { return Ok(()) };
        let result = self.store.record(op).await;
        self.blocked = false;
        match result {
            Ok(()) => self.engine.on_stored(),
            Err(e) => {
                let Some(id) = self.engine.on_store_failed() else {
                    return Err(DisconnectReason::Store(e));
                };
                let id = id.get();
                lock(self.shared, (), |v| v.finish(|w| w == Want::Ack(id), Err(Error::Store(e))));
            }
        }
        Ok(())
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
        if queued.is_some() && self.blocked && self.holding && self.pending.is_none() {
            // No room for a SUBSCRIBE beside the stored messages: they
            // go first after all (the subscriptions follow once their
            // acknowledgments make room), rather than never.
            self.engine.resend().map_err(DisconnectReason::from_engine)?;
            self.holding = false;
            self.blocked = false;
            return Ok(true);
        }
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
        let connect_len = self.connect_len;
        let (engine, pending, blocked) = (&mut self.engine, &mut self.pending, &mut self.blocked);
        let sub_busy = pending.is_some() || self.resub.is_some();
        lock(self.shared, false, |v| {
            let Some(cmd) = v.head.cmd else { return false };
            let (topic, rest) = v.cmd.split_at(cmd.topic_len.min(v.cmd.len()));
            let payload = rest.get(..cmd.payload_len).unwrap_or_default();
            let Ok(topic) = core::str::from_utf8(topic) else { return false };
            let result = match cmd.kind {
                // A stored message must leave room for the CONNECT of the
                // next connection, queued behind the stored messages.
                CmdKind::Publish { qos, retain } if qos != QoS::AtMostOnce => {
                    let len = stored_publish_len(topic, payload);
                    let needed = len.saturating_add(connect_len).saturating_add(CONTROL_RESERVE);
                    match engine.stored_len().saturating_add(needed) <= engine.tx_capacity() {
                        true => engine.publish(topic, payload, qos, retain),
                        false if engine.stored_len() > 0 => Err(ClientError::WouldBlock),
                        false => Err(ClientError::BufferTooSmall { needed }),
                    }
                    .map(|id| id.map_or(Want::Flush, |id| Want::Ack(id.get())))
                }
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

/// Bytes of a QoS 1 or 2 PUBLISH of `topic` and `payload`: fixed header,
/// topic, packet identifier, payload.
fn stored_publish_len(topic: &str, payload: &[u8]) -> usize {
    let remaining =
        2usize.saturating_add(topic.len()).saturating_add(2).saturating_add(payload.len());
    let length_bytes = match remaining {
        0..128 => 1,
        128..16_384 => 2,
        16_384..2_097_152 => 3,
        _ => 4,
    };
    1 + length_bytes + remaining
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
pub(super) async fn closing(shared: &dyn Shared) {
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
