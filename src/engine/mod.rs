//! The sans-I/O protocol engine: every protocol decision of the client,
//! and no I/O, no clock, no handler.
//!
//! [`Engine`] owns the connection and session state and the caller's
//! buffers. A driver (the async [`Client`](crate::Client), the
//! [`blocking::Client`](crate::blocking::Client), or a firmware's own loop)
//! moves bytes and time in and out:
//!
//! - received bytes go into [`read_buf`](Engine::read_buf), announced by
//!   [`on_read`](Engine::on_read);
//! - [`poll`](Engine::poll) handles the next complete packet and returns
//!   its [`Event`] (a message to deliver, an acknowledgment, ...), having
//!   queued whatever the protocol answers;
//! - [`poll_transmit`](Engine::poll_transmit) says what must be written
//!   next, [`on_written`](Engine::on_written) and
//!   [`on_flushed`](Engine::on_flushed) report progress;
//! - [`handle_timeout`](Engine::handle_timeout) runs keepalive at `now` and
//!   returns the next instant it must run again.
//!
//! Commands ([`connect`](Engine::connect), [`publish`](Engine::publish),
//! [`subscribe`](Engine::subscribe), ...) only encode a packet into `tx`:
//! they never wait. When one cannot be queued now it answers
//! [`Error::WouldBlock`]; the driver then writes what is pending, or waits
//! for an acknowledgment, and asks again.
//!
//! ```
//! use embassy_time::Instant;
//! use umqtt::engine::{Engine, Event, Transmit};
//! use umqtt::{ConnectOptions, State};
//!
//! let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
//! let mut engine = Engine::new(&mut rx, &mut tx);
//! let now = Instant::from_millis(0);
//! engine.connect(&ConnectOptions::new("e1"), now)?;
//! let Some(Transmit::Write(connect)) = engine.poll_transmit() else { unreachable!() };
//! let n = connect.len();
//! engine.on_written(n)?;
//! engine.on_flushed(now);
//! // The broker accepts: CONNACK.
//! engine.read_buf()?[..4].copy_from_slice(&[0x20, 0x02, 0x00, 0x00]);
//! engine.on_read(4, now)?;
//! assert!(matches!(engine.poll(now)?, Some(Event::ConnAck { session_present: false })));
//! assert_eq!(engine.state(), State::Connected);
//! # Ok::<(), umqtt::Error<core::convert::Infallible>>(())
//! ```

mod drain;
mod inbound;
mod journal;
#[cfg(test)]
mod tests;

use core::convert::Infallible;

use embassy_time::{Duration, Instant};

use crate::client::{ConnectOptions, Error, Oversize, ProtocolError, State};
use crate::fmt::{log_debug, log_warn};
use crate::packet::{
    self, ConnectReturnCode, FixedHeader, List, Malformed, Packet, PacketId, PacketType, Publish,
    QoS, SubAck, Subscribe, SubscribeTopic, Unsubscribe,
};
use crate::session::{KeepAlive, KeepAliveAction, Outbox, PacketIds, Stage, move_down};
use drain::Drain;
use inbound::AwaitingRelease;
use journal::Journal;
pub use journal::StoreOp;

/// An engine error: an [`Error`] without a transport error, since the
/// engine does no I/O.
pub type EngineError = Error<Infallible>;

/// Bytes always kept free after the stored messages in `tx`, so a PUBACK,
/// PUBREC, PUBCOMP, PINGREQ or DISCONNECT can be queued whatever the outbox
/// holds.
pub const CONTROL_RESERVE: usize = 4;

/// Most topic filters in one SUBSCRIBE or UNSUBSCRIBE.
pub const MAX_SUBSCRIBE_TOPICS: usize = 16;

/// What one inbound packet meant to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// A message to deliver, borrowed from `rx`. Its acknowledgment
    /// (PUBACK, or PUBREC for QoS 2) is already queued, to be written
    /// after the driver has handed the message over `[MQTT-4.3.2-2]`.
    Message(Publish<'a>),
    /// CONNACK accepted the connection. The stored messages are queued
    /// for resend; the state is [`State::Connected`] once they are written.
    ConnAck {
        /// Whether the broker resumed a stored session.
        session_present: bool,
    },
    /// An outbound message is complete: PUBACK for QoS 1, PUBCOMP for
    /// QoS 2. Its packet identifier is free again.
    Published(PacketId),
    /// SUBACK for the pending SUBSCRIBE: one return code per filter.
    SubAck(SubAck<'a>),
    /// UNSUBACK for the pending UNSUBSCRIBE.
    UnsubAck(PacketId),
    /// PINGRESP.
    PingResp,
    /// An inbound packet larger than `rx` was drained (and a QoS 1 or 2
    /// PUBLISH acknowledged); [`take_oversize`](Engine::take_oversize)
    /// has the details until the next one.
    Oversize(Oversize),
    /// A packet that needs nothing from the application: PUBREC (PUBREL
    /// queued), PUBREL (PUBCOMP queued, also for an identifier not awaiting
    /// release), a QoS 2 PUBLISH already delivered (PUBREC queued again), a
    /// PUBACK, PUBCOMP, SUBACK or UNSUBACK for an identifier not pending.
    Handled,
}

/// What the driver must do with the transport next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Transmit<'a> {
    /// Write these bytes (then report with [`Engine::on_written`]).
    Write(&'a [u8]),
    /// Everything is written: flush (then call [`Engine::on_flushed`]).
    Flush,
}

/// The client side of an MQTT session, kept between two engines (one per
/// connection): the packet identifier allocator and where the unfinished
/// QoS 1 and QoS 2 messages lie in `tx`. A few bytes, `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Session {
    outbox: Outbox,
    ids: PacketIds,
}

impl Session {
    /// Number of unfinished outbound QoS 1 and QoS 2 messages.
    pub fn in_flight(&self) -> usize {
        self.outbox.count()
    }
}

/// Where the connection is; [`State`] is its public face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Disconnected,
    /// CONNECT queued or sent, CONNACK awaited.
    AwaitingConnAck,
    /// CONNACK accepted; the stored messages are being resent.
    Resending,
    Connected,
    Failed,
}

/// The receive side: `buf[start..end]` holds received bytes not yet
/// handled.
struct Rx<'b> {
    buf: &'b mut [u8],
    start: usize,
    end: usize,
    /// Progress through an oversize inbound packet being discarded.
    drain: Option<Drain>,
}

/// The transmit side: the stored messages at the front of `buf`, then
/// the bytes being written.
struct Tx<'b> {
    buf: &'b mut [u8],
    outbox: Outbox,
    /// Range of `buf` to write; `start == end` means a flush is due.
    write: Pending,
}

/// `Option<(usize, usize)>` in 8 bytes on 32-bit targets (it takes 12):
/// the range of `tx` being written, if any.
#[derive(Debug, Clone, Copy)]
struct Pending {
    start: usize,
    end: usize,
}

impl Pending {
    /// No write pending.
    const NONE: Self = Self { start: usize::MAX, end: 0 };

    fn get(self) -> Option<(usize, usize)> {
        (self.start <= self.end).then_some((self.start, self.end))
    }

    fn is_none(self) -> bool {
        self.get().is_none()
    }

    fn is_some(self) -> bool {
        self.get().is_some()
    }
}

impl From<Option<(usize, usize)>> for Pending {
    fn from(range: Option<(usize, usize)>) -> Self {
        range.map_or(Self::NONE, |(start, end)| Self { start, end })
    }
}

impl Tx<'_> {
    /// Where the next packet is encoded: after the stored messages, or
    /// after the pending write when that ends there or later (so that
    /// acknowledgments and queued publishes go out in one write). `None`
    /// while a write inside the stored messages is pending.
    fn tail(&self) -> Option<usize> {
        match self.write.get() {
            None => Some(self.outbox.len()),
            Some((_, end)) if end >= self.outbox.len() => Some(end),
            Some(_) => None,
        }
    }

    /// Whether a packet of `len` bytes can be queued now.
    fn has_room(&self, len: usize) -> bool {
        self.tail().is_some_and(|at| at + len <= self.buf.len())
    }

    /// Whether the pending write, if any, lies outside the stored messages,
    /// so the outbox may change under it.
    fn outbox_free(&self) -> bool {
        self.write.get().is_none_or(|(start, _)| start >= self.outbox.len())
    }

    /// Encodes `packet` at the tail, with `reserve` bytes to spare after
    /// it, and adds it to the pending write. Compacts the outbox first when
    /// that makes room. Returns the packet's range.
    fn queue(
        &mut self,
        packet: &Packet<'_>,
        reserve: usize,
    ) -> Result<(usize, usize), EngineError> {
        let at = self.tail().ok_or(Error::WouldBlock)?;
        let mut encoded = self.encode_at(at, packet, reserve);
        if matches!(encoded, Err(Error::BufferTooSmall { .. }))
            && self.write.is_none()
            && self.outbox.compact(self.buf)
        {
            encoded = self.encode_at(self.outbox.len(), packet, reserve);
        }
        let (start, end) = encoded?;
        self.write = Some((self.write.get().map_or(start, |(pending, _)| pending), end)).into();
        Ok((start, end))
    }

    /// Encodes `packet` into `buf` from `at` on, leaving `reserve` bytes
    /// free after it; `BufferTooSmall` counts every byte that would need.
    fn encode_at(
        &mut self,
        at: usize,
        packet: &Packet<'_>,
        reserve: usize,
    ) -> Result<(usize, usize), EngineError> {
        let free = self.buf.get_mut(at..).unwrap_or_default();
        let capacity = free.len();
        let too_small = |len: usize| Error::BufferTooSmall { needed: at + len + reserve };
        let len = packet::encode_to_server(packet, free).map_err(|e| match Error::from(e) {
            Error::BufferTooSmall { needed } => too_small(needed),
            other => other,
        })?;
        if len + reserve > capacity {
            return Err(too_small(len));
        }
        Ok((at, at + len))
    }
}

/// The MQTT 3.1.1 client protocol over caller buffers; see the [module
/// docs](self).
///
/// `rx` holds received bytes (one inbound packet at least; larger ones are
/// drained and reported); `tx` holds the unfinished outbound QoS 1 and 2
/// messages, kept for resend, followed by the packets being written.
pub struct Engine<'b> {
    rx: Rx<'b>,
    tx: Tx<'b>,
    awaiting_release: AwaitingRelease<'b>,
    keep_alive: KeepAlive,
    /// The ack timeout in ticks (`u32`: a small engine; no division to
    /// convert it).
    ack_timeout_ticks: u32,
    ids: PacketIds,
    /// Packet identifier of the SUBSCRIBE or UNSUBSCRIBE awaiting its ack
    /// (0: none), reserved against the allocator.
    pending_ack: u16,
    /// Topic filters in that SUBSCRIBE, to check the SUBACK against; 0 for
    /// an UNSUBSCRIBE (a SUBSCRIBE has at least one).
    pending_topics: u8,
    phase: Phase,
    session_present: bool,
    /// Messages the last clean-session connect discarded.
    discarded: u16,
    max_in_flight: u16,
    /// The store operation that must be durable before the wire goes on.
    journal: Journal,
}

impl<'b> Engine<'b> {
    /// An engine over `rx` and `tx`, not connected, receiving QoS 0 and 1
    /// (see [`receive_qos2`](Self::receive_qos2) for QoS 2).
    pub fn new(rx: &'b mut [u8], tx: &'b mut [u8]) -> Self {
        Self {
            rx: Rx { buf: rx, start: 0, end: 0, drain: None },
            tx: Tx { buf: tx, outbox: Outbox::default(), write: Pending::NONE },
            awaiting_release: AwaitingRelease::new(&mut []),
            keep_alive: KeepAlive::new(0, Instant::from_ticks(0)),
            ack_timeout_ticks: 0,
            ids: PacketIds::new(),
            pending_ack: 0,
            pending_topics: 0,
            phase: Phase::Disconnected,
            session_present: false,
            discarded: 0,
            max_in_flight: 16,
            journal: Journal::Off,
        }
    }

    /// Enables QoS 2 reception: `slots` holds the packet identifiers of the
    /// QoS 2 messages delivered and awaiting PUBREL (0: a free slot), so a
    /// redelivered PUBLISH is acknowledged without being delivered twice.
    /// One slot per QoS 2 message the broker may have in flight to this
    /// client at once. Brokers bound it (Mosquitto's
    /// `max_inflight_messages`, default 20), but after reconnects Mosquitto
    /// 2.0.11 was seen with up to 71 awaiting PUBREC, so give more than the
    /// bound. When all are taken the connection fails with
    /// [`Error::ReceiveSlotsFull`]; nothing is lost, the broker redelivers
    /// after the reconnect. Pass the same slots to the next engine of the session
    /// (they hold its state); zero them for a new session.
    pub fn receive_qos2(&mut self, slots: &'b mut [u16]) {
        self.awaiting_release = AwaitingRelease::new(slots);
    }

    /// The session to hand to the next engine, see [`resume`](Self::resume).
    pub fn session(&self) -> Session {
        Session { outbox: self.tx.outbox, ids: self.ids }
    }

    /// Continues `session`, left by an engine over the same `tx`,
    /// unchanged since: its stored messages are resent by the next
    /// [`connect`](Self::connect) with `clean_session` false. If `tx` does
    /// not hold what `session` records, the stored messages are forgotten
    /// (never misread).
    pub fn resume(&mut self, session: Session) {
        if session.outbox.matches(self.tx.buf) {
            self.tx.outbox = session.outbox;
        }
        self.ids = session.ids;
    }

    // ---- persistence ----

    /// Turns persistence on: from now on every change of the session state
    /// that must survive a reboot is handed out by
    /// [`poll_store`](Self::poll_store), and the wire waits until the
    /// driver reports it durable with [`on_stored`](Self::on_stored). See
    /// [`crate::store`] for the ordering rules.
    pub fn persist(&mut self) {
        if !self.journal.is_on() {
            self.journal = Journal::Idle;
        }
    }

    /// Whether persistence is on ([`persist`](Self::persist)).
    pub fn persists(&self) -> bool {
        self.journal.is_on()
    }

    /// Whether a store operation waits ([`poll_store`](Self::poll_store)
    /// is `Some`): cheaper to ask than `poll_store`.
    pub fn store_pending(&self) -> bool {
        self.journal.is_pending()
    }

    /// The store operation to record before anything else happens, if
    /// any. While one is pending, [`poll_transmit`](Self::poll_transmit)
    /// and [`poll`](Self::poll) give nothing and commands answer
    /// [`Error::WouldBlock`].
    pub fn poll_store(&self) -> Option<StoreOp<'_>> {
        let stored = |id| {
            self.tx
                .outbox
                .find(self.tx.buf, id)
                .and_then(|e| self.tx.buf.get(e.start..e.end))
                .unwrap_or_default()
        };
        Some(match self.journal {
            Journal::Off | Journal::Idle | Journal::Received(_) => return None,
            Journal::Publish(id) => StoreOp::Publish { id, packet: stored(id) },
            Journal::Release(id) => StoreOp::Release { id, packet: stored(id) },
            Journal::Complete(id) => StoreOp::Complete(id),
            Journal::Receive(id) | Journal::ReceiveDrained(id) => StoreOp::Receive(id),
            Journal::Released(id) => StoreOp::Released(id),
            Journal::ClearReceived => StoreOp::ClearReceived,
            Journal::Clear => StoreOp::Clear,
        })
    }

    /// The operation [`poll_store`](Self::poll_store) gave is durable: the
    /// wire may go on (and an inbound QoS 2 message waiting for its record
    /// is delivered by the next [`poll`](Self::poll)).
    pub fn on_stored(&mut self) {
        self.journal = match self.journal {
            Journal::Receive(id) => {
                // A free slot was checked when the operation was made.
                if !self.awaiting_release.contains(id) && !self.awaiting_release.insert(id) {
                    self.phase = Phase::Failed;
                }
                Journal::Received(id)
            }
            Journal::Off => Journal::Off,
            _ => Journal::Idle,
        };
    }

    /// The store could not record the pending operation. A new message
    /// ([`StoreOp::Publish`]) is taken back, unsent, and its identifier
    /// returned: the publish failed and nothing was stored. Any other
    /// operation stays pending, to be recorded by a later try (the wire
    /// waits until then).
    pub fn on_store_failed(&mut self) -> Option<PacketId> {
        let Journal::Publish(id) = self.journal else { return None };
        let tx = &mut self.tx;
        if let Some(entry) = tx.outbox.find(tx.buf, id) {
            tx.outbox.remove_entry(tx.buf, entry);
            tx.write = match tx.write.get() {
                Some((start, _)) if start < entry.start => Some((start, entry.start)).into(),
                _ => Pending::NONE,
            };
        }
        self.journal = Journal::Idle;
        Some(id)
    }

    /// Loads one outbound message a store recorded, the next in the
    /// stored order: `packet` is its PUBLISH (QoS 1 or 2) or its PUBREL.
    /// Before the first [`connect`](Self::connect); the next connect with
    /// `clean_session` false resends it as after a reconnect.
    /// [`Error::BufferTooSmall`] when it does not fit `tx`,
    /// [`Error::InvalidArgument`] when it is not such a packet.
    pub fn restore_outbound(&mut self, packet: &[u8]) -> Result<PacketId, EngineError> {
        if self.phase != Phase::Disconnected || self.tx.write.is_some() {
            return Err(Error::WouldBlock);
        }
        let tx = &mut self.tx;
        let needed = tx.outbox.len() + packet.len() + CONTROL_RESERVE;
        if needed > tx.buf.len() {
            return Err(Error::BufferTooSmall { needed });
        }
        let id = tx
            .outbox
            .push_stored(tx.buf, packet, CONTROL_RESERVE)
            .ok_or(Error::InvalidArgument(Malformed::Truncated))?;
        self.ids = PacketIds::after(id);
        Ok(id)
    }

    /// The stored outbound messages still to be published, oldest first:
    /// each QoS 1 or QoS 2 PUBLISH awaiting PUBACK or PUBREC (a QoS 2
    /// message past PUBREC is the broker's, its PUBREL alone is left). For
    /// an application that resumes its own numbering after loading a
    /// store.
    pub fn stored_publishes(&self) -> impl Iterator<Item = Publish<'_>> {
        let buf = &*self.tx.buf;
        self.tx.outbox.entries(buf).filter_map(move |e| {
            match packet::decode(buf.get(e.start..e.end)?).ok()?.packet {
                Packet::Publish(p) => Some(p),
                _ => None,
            }
        })
    }

    /// Loads one inbound QoS 2 identifier a store recorded as awaiting
    /// PUBREL (into the [`receive_qos2`](Self::receive_qos2) slots).
    pub fn restore_inbound(&mut self, id: PacketId) -> Result<(), EngineError> {
        let slots = &mut self.awaiting_release;
        if !slots.is_enabled() {
            return Err(Error::InvalidArgument(Malformed::InvalidQoS));
        }
        if slots.contains(id) || slots.insert(id) { Ok(()) } else { Err(Error::ReceiveSlotsFull) }
    }

    /// The connection state.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Disconnected => State::Disconnected,
            Phase::AwaitingConnAck | Phase::Resending => State::Connecting,
            Phase::Connected => State::Connected,
            Phase::Failed => State::Failed,
        }
    }

    /// What the last CONNACK said: whether the broker resumed a session.
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// How many unfinished QoS 1 and QoS 2 messages the last
    /// [`connect`](Self::connect) discarded because it started a clean
    /// session `[MQTT-3.1.2-6]`.
    pub fn discarded(&self) -> u16 {
        self.discarded
    }

    /// Number of unfinished outbound QoS 1 and QoS 2 messages.
    pub fn in_flight(&self) -> usize {
        self.tx.outbox.count()
    }

    /// Whether the outbound message `id` awaits PUBACK, PUBREC or PUBCOMP.
    pub fn is_in_flight(&self, id: PacketId) -> bool {
        self.tx.outbox.contains(self.tx.buf, id)
    }

    /// Whether QoS 2 messages can be received
    /// ([`receive_qos2`](Self::receive_qos2) was given slots).
    pub fn receives_qos2(&self) -> bool {
        self.awaiting_release.is_enabled()
    }

    /// The instant an acknowledgment awaited from `now` on is late.
    pub fn ack_deadline(&self, now: Instant) -> Instant {
        now.checked_add(Duration::from_ticks(u64::from(self.ack_timeout_ticks)))
            .unwrap_or(Instant::MAX)
    }

    /// Whether `max_in_flight` messages are unfinished.
    fn window_full(&self) -> bool {
        self.tx.outbox.count() >= usize::from(self.max_in_flight)
    }

    fn ensure_connected(&self) -> Result<(), EngineError> {
        if self.phase == Phase::Connected { Ok(()) } else { Err(Error::NotConnected) }
    }

    /// Marks the connection broken and hands `err` back.
    fn fail(&mut self, err: EngineError) -> EngineError {
        fail(&mut self.phase, err)
    }

    /// The transport failed (or reached end of stream): the connection is
    /// over.
    pub fn on_transport_error(&mut self) {
        self.phase = Phase::Failed;
    }

    /// A packet identifier free for a new packet.
    fn next_packet_id(&mut self) -> Result<PacketId, EngineError> {
        let (outbox, tx, pending) = (&self.tx.outbox, &*self.tx.buf, self.pending_ack);
        self.ids
            .allocate(|id| id.get() == pending || outbox.contains(tx, id))
            .ok_or(Error::NoPacketId)
    }

    // ---- commands ----

    /// Starts a connection: resets the connection state and queues
    /// CONNECT. With `clean_session` the stored messages and the inbound
    /// QoS 2 state are discarded `[MQTT-3.1.2-6]` (counted by
    /// [`discarded`](Self::discarded)); without it they are resent after
    /// CONNACK. A CONNACK without session present forgets the inbound QoS 2
    /// state all the same: the broker will send no PUBREL for it.
    pub fn connect(&mut self, opts: &ConnectOptions<'_>, now: Instant) -> Result<(), EngineError> {
        self.rx.start = 0;
        self.rx.end = 0;
        self.rx.drain = None;
        self.tx.write = Pending::NONE;
        self.pending_ack = 0;
        self.session_present = false;
        self.ack_timeout_ticks = u32::try_from(opts.ack_timeout.as_ticks()).unwrap_or(u32::MAX);
        self.max_in_flight = opts.max_in_flight;
        self.keep_alive = KeepAlive::new(opts.keep_alive_secs, now);
        self.discarded = 0;
        match self.journal {
            // The PUBLISH it was for is gone with `rx`: the broker sends it
            // again, to be delivered then, so its identifier must go.
            Journal::Received(id) | Journal::Receive(id) => {
                self.awaiting_release.remove(id);
                self.journal = Journal::Released(id);
            }
            _ => {}
        }
        if opts.clean_session && self.journal.is_on() {
            self.journal = Journal::Clear;
        }
        if opts.clean_session {
            self.discarded = u16::try_from(self.tx.outbox.count()).unwrap_or(u16::MAX);
            if self.discarded > 0 {
                log_warn!("clean session: {} unfinished messages discarded", self.discarded);
            }
            self.tx.outbox.clear();
            self.awaiting_release.clear();
        }
        self.phase = Phase::Disconnected;
        self.tx.queue(&Packet::Connect(opts.to_connect()), 0)?;
        self.phase = Phase::AwaitingConnAck;
        Ok(())
    }

    /// Queues a PUBLISH. QoS 1 and 2 messages are stored in `tx` until
    /// complete (resent after a reconnect) and get a packet identifier,
    /// returned; QoS 0 returns `None`.
    ///
    /// [`Error::WouldBlock`] when it cannot be queued now: the in-flight
    /// window or `tx` is full (until an acknowledgment), or a packet other
    /// than queued publishes is being written, or a QoS 1/2 message would
    /// land behind a queued QoS 0 one (the stored messages must stay
    /// contiguous). [`Error::BufferTooSmall`] when it could never fit.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<PacketId>, EngineError> {
        self.ensure_connected()?;
        if self.journal.blocks_commands() {
            return Err(Error::WouldBlock);
        }
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce | QoS::ExactlyOnce => {
                if self.tx.tail() != Some(self.tx.outbox.len()) || self.window_full() {
                    return Err(Error::WouldBlock);
                }
                Some(self.next_packet_id()?)
            }
        };
        let publish = Publish { dup: false, qos, retain, topic, packet_id, payload };
        // A stored message leaves room for the acknowledgments that keep
        // the connection going.
        let reserve = if packet_id.is_some() { CONTROL_RESERVE } else { 0 };
        let (start, end) = match self.tx.queue(&Packet::Publish(publish), reserve) {
            Ok(range) => range,
            Err(Error::BufferTooSmall { .. })
                if !self.tx.outbox.is_empty() || self.tx.write.is_some() =>
            {
                return Err(Error::WouldBlock);
            }
            Err(e) => return Err(e),
        };
        if let Some(id) = packet_id {
            self.tx.outbox.push_publish(self.tx.buf, end - start);
            if self.journal.is_on() {
                self.journal = Journal::Publish(id);
            }
        }
        Ok(packet_id)
    }

    /// Queues a SUBSCRIBE for up to [`MAX_SUBSCRIBE_TOPICS`] filters and
    /// returns its packet identifier; [`Event::SubAck`] answers it. A
    /// filter at QoS 2 needs [`receive_qos2`](Self::receive_qos2).
    pub fn subscribe(&mut self, topics: &[SubscribeTopic<'_>]) -> Result<PacketId, EngineError> {
        self.ensure_connected()?;
        if topics.len() > MAX_SUBSCRIBE_TOPICS {
            return Err(Error::BufferTooSmall { needed: topics.len() });
        }
        if !self.receives_qos2() && topics.iter().any(|t| t.qos == QoS::ExactlyOnce) {
            return Err(Error::InvalidArgument(Malformed::InvalidQoS));
        }
        let id = self.next_packet_id()?;
        self.queue_control(&Packet::Subscribe(Subscribe {
            packet_id: id,
            topics: List::Items(topics),
        }))?;
        self.pending_ack = id.get();
        self.pending_topics = topics.len() as u8; // at most 16
        Ok(id)
    }

    /// Queues an UNSUBSCRIBE and returns its packet identifier;
    /// [`Event::UnsubAck`] answers it.
    pub fn unsubscribe(&mut self, filters: &[&str]) -> Result<PacketId, EngineError> {
        self.ensure_connected()?;
        let id = self.next_packet_id()?;
        self.queue_control(&Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            filters: List::Items(filters),
        }))?;
        self.pending_ack = id.get();
        self.pending_topics = 0;
        Ok(id)
    }

    /// Queues PINGREQ, recorded at once so that keepalive does not send a
    /// second one; [`Event::PingResp`] answers it.
    pub fn ping(&mut self, now: Instant) -> Result<(), EngineError> {
        self.ensure_connected()?;
        self.queue_control(&Packet::PingReq)?;
        self.keep_alive.on_ping_sent(now);
        Ok(())
    }

    /// Queues DISCONNECT: the state becomes [`State::Disconnected`] at
    /// once, so nothing else is sent after it `[MQTT-3.14.4-2]`.
    pub fn disconnect(&mut self) -> Result<(), EngineError> {
        self.ensure_connected()?;
        self.queue_control(&Packet::Disconnect)?;
        self.phase = Phase::Disconnected;
        Ok(())
    }

    /// Bytes of `tx` the unfinished QoS 1 and QoS 2 messages take. A
    /// driver that reconnects keeps `tx.len() − stored_len()` at least as
    /// large as its CONNECT, which is queued behind them.
    pub fn stored_len(&self) -> usize {
        self.tx.outbox.len()
    }

    /// The length of `tx`.
    pub fn tx_capacity(&self) -> usize {
        self.tx.buf.len()
    }

    /// Holds back the resend of the stored messages that the CONNACK just
    /// queued, so that the driver can first subscribe again (a broker that
    /// kept no session would route the resent messages before the
    /// subscriptions exist). The state becomes [`State::Connected`];
    /// until [`resend`](Self::resend) the driver must queue no PUBLISH.
    /// `false` (nothing changed) unless the resend is queued and not a byte
    /// of it written.
    pub fn hold_resend(&mut self) -> bool {
        let outbox = self.tx.outbox;
        let untouched = self.tx.write.get() == Some((outbox.head(), outbox.len()));
        if self.phase != Phase::Resending || !untouched {
            return false;
        }
        self.tx.write = Pending::NONE;
        self.phase = Phase::Connected;
        true
    }

    /// Queues the resend [`hold_resend`](Self::hold_resend) held back (all
    /// stored messages, DUP set). `WouldBlock` while another write is
    /// pending.
    pub fn resend(&mut self) -> Result<(), EngineError> {
        self.ensure_connected()?;
        if self.tx.write.is_some() {
            return Err(Error::WouldBlock);
        }
        let outbox = self.tx.outbox;
        if !outbox.is_empty() {
            outbox.set_dup(self.tx.buf);
            self.tx.write = Some((outbox.head(), outbox.len())).into();
            self.phase = Phase::Resending;
        }
        Ok(())
    }

    /// Queues a packet that is not stored: `WouldBlock` while it does not
    /// fit beside the stored messages or behind the pending write,
    /// `BufferTooSmall` when it never would.
    fn queue_control(&mut self, packet: &Packet<'_>) -> Result<(), EngineError> {
        if self.journal.blocks_commands() {
            return Err(Error::WouldBlock);
        }
        match self.tx.queue(packet, 0) {
            Ok(_) => Ok(()),
            Err(Error::BufferTooSmall { .. })
                if !self.tx.outbox.is_empty() || self.tx.write.is_some() =>
            {
                Err(Error::WouldBlock)
            }
            Err(e) => Err(e),
        }
    }

    // ---- transmit ----

    /// What to write next, if anything.
    pub fn poll_transmit(&self) -> Option<Transmit<'_>> {
        if self.journal.is_pending() {
            return None; // held back until the record is durable
        }
        let (start, end) = self.tx.write.get()?;
        match self.tx.buf.get(start..end) {
            Some(bytes) if !bytes.is_empty() => Some(Transmit::Write(bytes)),
            _ => Some(Transmit::Flush),
        }
    }

    /// `n` bytes of [`Transmit::Write`] were written. Zero bytes of a
    /// non-empty write mean the transport is closed:
    /// [`Error::ConnectionClosed`].
    pub fn on_written(&mut self, n: usize) -> Result<(), EngineError> {
        let Some((start, end)) = self.tx.write.get() else { return Ok(()) };
        if n == 0 && start < end {
            return Err(self.fail(Error::ConnectionClosed));
        }
        self.tx.write = Some((start.saturating_add(n).min(end), end)).into();
        Ok(())
    }

    /// The transport was flushed after everything was written at `now`.
    pub fn on_flushed(&mut self, now: Instant) {
        if !matches!(self.poll_transmit(), Some(Transmit::Flush)) {
            return;
        }
        self.tx.write = Pending::NONE;
        self.keep_alive.on_sent(now);
        if self.phase == Phase::Resending {
            self.phase = Phase::Connected;
        }
    }

    // ---- receive ----

    /// The free part of `rx` to read into (announce with
    /// [`on_read`](Self::on_read)). Handled bytes are reclaimed first.
    pub fn read_buf(&mut self) -> Result<&mut [u8], EngineError> {
        let rx = &mut self.rx;
        if rx.start > 0 {
            move_down(rx.buf, rx.start..rx.end, 0);
            rx.end -= rx.start;
            rx.start = 0;
        }
        let free = rx.buf.get_mut(rx.end..).unwrap_or_default();
        if free.is_empty() {
            // Only a buffer shorter than a fixed header, or one full of
            // packets the driver has not polled, gets here.
            return Err(Error::BufferTooSmall { needed: rx.end + 1 });
        }
        Ok(free)
    }

    /// `n` bytes were read into [`read_buf`](Self::read_buf) at `now`; 0
    /// is end of stream ([`Error::ConnectionClosed`]). Any byte counts as a
    /// sign of life of the server, so a long packet arriving slowly does
    /// not end in a keepalive timeout.
    pub fn on_read(&mut self, n: usize, now: Instant) -> Result<(), EngineError> {
        if n == 0 {
            return Err(self.fail(Error::ConnectionClosed));
        }
        let rx = &mut self.rx;
        let n = n.min(rx.buf.len() - rx.end);
        // While draining, the buffer held nothing before this read.
        if let Some(drain) = rx.drain.as_mut().filter(|d| !d.is_done()) {
            let received = rx.buf.get(rx.end..rx.end + n).unwrap_or_default();
            let discard = drain.wants(received.len());
            drain.consume(received.get(..discard).unwrap_or_default());
            rx.start += discard;
        }
        rx.end += n;
        if rx.start == rx.end {
            rx.start = 0;
            rx.end = 0;
        }
        self.keep_alive.on_received(now);
        Ok(())
    }

    /// Whether a whole inbound packet waits in `rx` to be handled by
    /// [`poll`](Self::poll).
    pub fn has_packet(&self) -> bool {
        if self.rx.drain.is_some_and(|d| !d.is_finished()) {
            return false;
        }
        let buffered = self.rx.buf.get(self.rx.start..self.rx.end).unwrap_or_default();
        FixedHeader::parse(buffered).is_ok_and(|h| h.packet_len() <= buffered.len())
    }

    /// Handles the next complete inbound packet, if any, queueing what the
    /// protocol answers to it. `None` when no packet is complete, or when
    /// the next one must wait until the pending write is done (its answer
    /// does not fit behind it, or it changes the stored messages under it).
    pub fn poll(&mut self, now: Instant) -> Result<Option<Event<'_>>, EngineError> {
        if matches!(self.phase, Phase::Failed | Phase::Disconnected) || self.journal.is_pending() {
            return Ok(None);
        }
        match self.rx.drain {
            Some(drain) if !drain.is_done() => return Ok(None),
            Some(drain) if !drain.is_finished() => return self.finish_drain(drain),
            _ => {}
        }
        let buffered = self.rx.buf.get(self.rx.start..self.rx.end).unwrap_or_default();
        let header = match FixedHeader::parse(buffered) {
            Ok(header) => header,
            Err(packet::DecodeError::Incomplete { .. }) => return Ok(None),
            Err(packet::DecodeError::Malformed(m)) => {
                return Err(self.fail(Error::Protocol(ProtocolError::Malformed(m))));
            }
        };
        check_header(&header).map_err(|e| self.fail(Error::Protocol(e)))?;
        if !self.ready_for(&header) {
            return Ok(None);
        }
        let len = header.packet_len();
        if len > self.rx.buf.len() {
            return self.start_drain(&header);
        }
        let start = self.rx.start;
        if start + len > self.rx.end {
            return Ok(None);
        }
        // From here on the packet borrows `rx.buf` until it is returned:
        // only the other fields change.
        let phase = &mut self.phase;
        let body = self.rx.buf.get(start + header.header_len..start + len).unwrap_or_default();
        let packet = match packet::decode_to_client(&header, body) {
            Ok(Some(packet)) => packet,
            Ok(None) => return Err(fail(phase, unexpected(header.packet_type))),
            Err(m) => return Err(fail(phase, Error::Protocol(ProtocolError::Malformed(m)))),
        };
        self.rx.start += len;
        if *phase == Phase::AwaitingConnAck {
            let Packet::ConnAck(ack) = packet else {
                return Err(fail(phase, unexpected(header.packet_type)));
            };
            if ack.code != ConnectReturnCode::Accepted {
                return Err(fail(phase, Error::Refused(ack.code)));
            }
            self.session_present = ack.session_present;
            if !ack.session_present {
                // The broker has no session: no PUBREL comes for the ids
                // awaiting one, and its new messages may reuse them.
                if self.journal.is_on() && !self.awaiting_release.is_empty() {
                    self.journal = Journal::ClearReceived;
                }
                self.awaiting_release.clear();
            }
            self.keep_alive.restart(now);
            let outbox = self.tx.outbox;
            if outbox.is_empty() {
                *phase = Phase::Connected;
            } else {
                outbox.set_dup(self.tx.buf);
                self.tx.write = Some((outbox.head(), outbox.len())).into();
                *phase = Phase::Resending;
            }
            return Ok(Some(Event::ConnAck { session_present: ack.session_present }));
        }
        let tx = &mut self.tx;
        let event = match packet {
            Packet::Publish(publish) => {
                let Some(id) = publish.packet_id else { return Ok(Some(Event::Message(publish))) };
                if publish.qos == QoS::AtLeastOnce {
                    tx.queue(&Packet::PubAck(id), 0)?;
                    return Ok(Some(Event::Message(publish)));
                }
                let slots = &mut self.awaiting_release;
                if !slots.is_enabled() {
                    return Err(fail(phase, Error::Protocol(ProtocolError::QoS2Publish)));
                }
                // Persisting: the identifier is recorded before the message
                // is delivered or acknowledged; the PUBLISH stays in `rx`
                // until then and is handled again.
                let journal = &mut self.journal;
                let recorded = *journal == Journal::Received(id);
                let redelivered = slots.contains(id) && !recorded;
                if journal.is_on() && !redelivered && !recorded {
                    if !slots.has_free_slot() {
                        return Err(fail(phase, Error::ReceiveSlotsFull));
                    }
                    *journal = Journal::Receive(id);
                    self.rx.start -= len;
                    return Ok(None);
                }
                if recorded {
                    *journal = Journal::Idle;
                } else if !redelivered && !slots.insert(id) {
                    return Err(fail(phase, Error::ReceiveSlotsFull));
                }
                tx.queue(&Packet::PubRec(id), 0)?;
                if redelivered {
                    log_debug!("QoS 2 PUBLISH {} already delivered", id.get());
                    Event::Handled
                } else {
                    Event::Message(publish)
                }
            }
            Packet::PubAck(id) => complete(tx, id, Stage::AwaitingPubAck, &mut self.journal)
                .ok_or_else(|| fail(phase, unexpected(PacketType::PubAck)))?,
            Packet::PubComp(id) => complete(tx, id, Stage::AwaitingPubComp, &mut self.journal)
                .ok_or_else(|| fail(phase, unexpected(PacketType::PubComp)))?,
            Packet::PubRec(id) => {
                match tx.outbox.find(tx.buf, id) {
                    Some(entry) if entry.stage == Stage::AwaitingPubRec => {
                        tx.write = tx.outbox.release(tx.buf, entry).into();
                        if self.journal.is_on() {
                            self.journal = Journal::Release(id);
                        }
                    }
                    // A PUBREC again: its PUBREL again.
                    Some(entry) if entry.stage == Stage::AwaitingPubComp => {
                        tx.write = Some((entry.start, entry.end)).into();
                    }
                    // A PUBREC for a QoS 1 message, or for one never
                    // sent: nothing to release.
                    _ => return Err(fail(phase, unexpected(PacketType::PubRec))),
                }
                Event::Handled
            }
            Packet::PubRel(id) => {
                if self.awaiting_release.remove(id) && self.journal.is_on() {
                    self.journal = Journal::Released(id);
                }
                tx.queue(&Packet::PubComp(id), 0)?;
                Event::Handled
            }
            Packet::SubAck(ack) if ack.return_codes.iter().count() > MAX_SUBSCRIBE_TOPICS => {
                return Err(fail(phase, Error::Protocol(ProtocolError::SubAckCountMismatch)));
            }
            Packet::SubAck(ack)
                if ack.packet_id.get() == self.pending_ack && self.pending_topics > 0 =>
            {
                if ack.return_codes.iter().count() != usize::from(self.pending_topics) {
                    return Err(fail(phase, Error::Protocol(ProtocolError::SubAckCountMismatch)));
                }
                self.pending_ack = 0;
                Event::SubAck(ack)
            }
            Packet::UnsubAck(id) if id.get() == self.pending_ack && self.pending_topics == 0 => {
                self.pending_ack = 0;
                Event::UnsubAck(id)
            }
            Packet::SubAck(_) | Packet::UnsubAck(_) => {
                log_debug!("acknowledgment for a packet id not pending");
                Event::Handled
            }
            Packet::PingResp => Event::PingResp,
            _ => return Err(fail(phase, unexpected(header.packet_type))),
        };
        Ok(Some(event))
    }

    /// Whether the packet `header` announces can be handled now: its
    /// answer fits behind the pending write, and a packet that changes the
    /// stored messages waits until no write points into them.
    fn ready_for(&self, header: &FixedHeader) -> bool {
        let answer = CONTROL_RESERVE;
        match header.packet_type {
            PacketType::ConnAck | PacketType::PubRec => self.tx.write.is_none(),
            PacketType::PubAck | PacketType::PubComp => self.tx.outbox_free(),
            PacketType::PubRel => self.tx.has_room(answer),
            // With every receive slot taken, a QoS 2 PUBLISH waits until the
            // PUBRECs already queued are written: if it then fails the
            // connection, the broker has them, and after the reconnect it
            // sends those messages' PUBRELs (freeing slots), not the
            // PUBLISHes again.
            PacketType::Publish if header.flags & 0b0110 == 0b0100 => {
                self.tx.has_room(answer)
                    && (self.awaiting_release.has_free_slot() || self.tx.write.is_none())
            }
            PacketType::Publish if header.flags & 0b0110 != 0 => self.tx.has_room(answer),
            _ => true,
        }
    }

    /// An inbound packet longer than `rx`: start discarding it.
    fn start_drain(&mut self, header: &FixedHeader) -> Result<Option<Event<'_>>, EngineError> {
        let rx = &mut self.rx;
        let buffered = rx.buf.get(rx.start..rx.end).unwrap_or_default();
        let Some(drain) = Drain::start(header, buffered, rx.buf.len()) else {
            return Ok(None); // the start of the PUBLISH is still to come
        };
        rx.start = 0;
        rx.end = 0;
        rx.drain = Some(drain);
        if drain.is_done() { self.finish_drain(drain) } else { Ok(None) }
    }

    /// The oversize packet is gone: acknowledge a QoS 1 or 2 PUBLISH and
    /// report.
    fn finish_drain(&mut self, mut drain: Drain) -> Result<Option<Event<'_>>, EngineError> {
        match drain.packet_id() {
            Some(Ok(id)) => {
                if !self.tx.has_room(CONTROL_RESERVE) {
                    return Ok(None);
                }
                if drain.qos() == QoS::ExactlyOnce {
                    if !self.awaiting_release.is_enabled() {
                        return Err(self.fail(Error::Protocol(ProtocolError::QoS2Publish)));
                    }
                    if !self.awaiting_release.contains(id) {
                        if !self.awaiting_release.insert(id) {
                            return Err(self.fail(Error::ReceiveSlotsFull));
                        }
                        if self.journal.is_on() {
                            self.journal = Journal::ReceiveDrained(id);
                        }
                    }
                    self.tx.queue(&Packet::PubRec(id), 0)?;
                } else {
                    self.tx.queue(&Packet::PubAck(id), 0)?;
                }
                drain.set_acknowledged();
            }
            Some(Err(())) => {
                let zero = ProtocolError::Malformed(Malformed::ZeroPacketId);
                return Err(self.fail(Error::Protocol(zero)));
            }
            None => {}
        }
        // Kept, finished, as the report for `take_oversize`.
        drain.finish();
        self.rx.drain = Some(drain);
        let report = drain.report();
        log_warn!("inbound packet of {} bytes exceeds the receive buffer", report.size);
        Ok(Some(Event::Oversize(report)))
    }

    /// The last oversize packet, until reported once.
    pub fn take_oversize(&mut self) -> Option<Oversize> {
        match self.rx.drain {
            Some(drain) if drain.is_finished() => {
                self.rx.drain = None;
                Some(drain.report())
            }
            _ => None,
        }
    }

    // ---- time ----

    /// Runs keepalive at `now`: queues PINGREQ when one is due
    /// `[MQTT-3.1.2-23]`, fails with [`Error::KeepAliveTimeout`] when the
    /// server stopped answering. Returns the next instant to call again
    /// (`None`: no timer while in this state).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Option<Instant>, EngineError> {
        if self.phase != Phase::Connected {
            return Ok(None);
        }
        match self.keep_alive.poll(now) {
            KeepAliveAction::WaitUntil(at) => Ok(at),
            KeepAliveAction::Expired => Err(self.fail(Error::KeepAliveTimeout)),
            KeepAliveAction::SendPing => match self.queue_control(&Packet::PingReq) {
                Ok(()) => {
                    self.keep_alive.on_ping_sent(now);
                    match self.keep_alive.poll(now) {
                        KeepAliveAction::WaitUntil(at) => Ok(at),
                        _ => Ok(None),
                    }
                }
                // Behind the pending write: once it is written.
                Err(_) => Ok(Some(now)),
            },
        }
    }
}

/// Checks what the fixed header alone tells: a packet only a client sends
/// is refused unread, and an acknowledgment's remaining length is fixed
/// (so a "PUBACK" announcing 256 MB is malformed, not drained).
fn check_header(header: &FixedHeader) -> Result<(), ProtocolError> {
    let fixed = match header.packet_type {
        PacketType::Connect
        | PacketType::Subscribe
        | PacketType::Unsubscribe
        | PacketType::PingReq
        | PacketType::Disconnect => {
            return Err(ProtocolError::UnexpectedPacket(header.packet_type));
        }
        PacketType::ConnAck
        | PacketType::PubAck
        | PacketType::PubRec
        | PacketType::PubRel
        | PacketType::PubComp
        | PacketType::UnsubAck => 2,
        PacketType::PingResp => 0,
        PacketType::Publish | PacketType::SubAck => return Ok(()),
    };
    match header.remaining_len {
        len if len < fixed => Err(ProtocolError::Malformed(Malformed::Truncated)),
        len if len > fixed => Err(ProtocolError::Malformed(Malformed::TrailingBytes)),
        _ => Ok(()),
    }
}

/// A packet the server must not send now.
fn unexpected(packet_type: PacketType) -> EngineError {
    Error::Protocol(ProtocolError::UnexpectedPacket(packet_type))
}

/// Marks the connection broken and hands `err` back (for where a received
/// packet borrows the engine and only `phase` is at hand).
fn fail(phase: &mut Phase, err: EngineError) -> EngineError {
    log_warn!("connection failed");
    *phase = Phase::Failed;
    err
}

/// PUBACK or PUBCOMP `id`: the message is complete if it was at `stage`
/// ([`Event::Published`]; its removal is journaled); `None` for an acknowledgment of the wrong kind.
/// One for an identifier not stored is logged and ignored.
fn complete(
    tx: &mut Tx<'_>,
    id: PacketId,
    stage: Stage,
    journal: &mut Journal,
) -> Option<Event<'static>> {
    match tx.outbox.find(tx.buf, id) {
        Some(entry) if entry.stage == stage => {
            tx.outbox.remove_entry(tx.buf, entry);
            if journal.is_on() {
                *journal = Journal::Complete(id);
            }
            Some(Event::Published(id))
        }
        Some(_) => None,
        None => {
            log_debug!("acknowledgment for unknown packet id {}", id.get());
            Some(Event::Handled)
        }
    }
}
