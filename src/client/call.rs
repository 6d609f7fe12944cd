//! One API call as a small state machine over the engine, shared by the
//! async and the blocking driver: what the call queues, what completes it,
//! and when it is late. A driver runs every call through one loop — write
//! what is pending, [`advance`](Call::advance), hand the next event to
//! [`on_event`](Call::on_event), read until [`wake`](Call::wake) — so each
//! driver has exactly one I/O loop.

use embassy_time::Instant;

use super::{Connected, ReturnCodes};
use crate::engine::{Engine, EngineError, Event};
use crate::packet::{Malformed, PacketId, Publish, QoS, SubscribeReturnCode, SubscribeTopic};
use crate::{Error, State};

/// A packet a call sends.
#[derive(Clone, Copy)]
pub(crate) enum Command<'a> {
    Publish { topic: &'a str, payload: &'a [u8], qos: QoS, retain: bool },
    Subscribe(&'a [SubscribeTopic<'a>]),
    Unsubscribe(&'a [&'a str]),
    PingReq,
    Disconnect,
}

impl Command<'_> {
    /// Queues the packet; returns the packet identifier it took, if any.
    fn queue(
        self,
        engine: &mut Engine<'_>,
        now: &mut Now<'_>,
    ) -> Result<Option<PacketId>, EngineError> {
        match self {
            Self::Publish { topic, payload, qos, retain } => {
                engine.publish(topic, payload, qos, retain)
            }
            Self::Subscribe(topics) => engine.subscribe(topics).map(Some),
            Self::Unsubscribe(filters) => engine.unsubscribe(filters).map(Some),
            Self::PingReq => engine.ping(now.get()).map(|()| None),
            Self::Disconnect => engine.disconnect().map(|()| None),
        }
    }
}

/// What completes a call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// Everything queued is written (QoS 0 publish, `publish_no_wait`,
    /// `disconnect`, `flush`).
    Written,
    /// CONNACK accepted and the stored messages resent.
    Connected,
    /// The message `id` is complete (PUBACK or PUBCOMP).
    Completed,
    /// No message is in flight.
    AllCompleted,
    SubAck,
    UnsubAck,
    PingResp,
    /// A message was delivered (or an oversize one drained).
    Message,
    /// Like `Message`, but only from what has arrived already.
    MessageNow,
}

/// What a finished call returns.
#[derive(Debug)]
pub(crate) enum Output {
    /// The packet identifier the call's command took, if any.
    Id(Option<PacketId>),
    Codes(PackedCodes),
    /// Whether a message was delivered.
    Delivered(bool),
    Connected(Connected),
}

/// SUBACK return codes in 5 bytes, two bits each (3: failure), so that a
/// call stays small: at most 16 of them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PackedCodes {
    bits: u32,
    count: u8,
}

impl PackedCodes {
    fn pack(codes: impl Iterator<Item = SubscribeReturnCode>) -> Self {
        let mut packed = Self { bits: 0, count: 0 };
        for code in codes.take(16) {
            let bits = match code {
                SubscribeReturnCode::Success(qos) => qos as u32,
                SubscribeReturnCode::Failure => 3,
            };
            packed.bits |= bits << (2 * u32::from(packed.count));
            packed.count += 1;
        }
        packed
    }

    /// The return codes, in order.
    pub(crate) fn unpack(self) -> ReturnCodes {
        (0..u32::from(self.count))
            .map(|i| match (self.bits >> (2 * i)) & 0b11 {
                0 => SubscribeReturnCode::Success(QoS::AtMostOnce),
                1 => SubscribeReturnCode::Success(QoS::AtLeastOnce),
                2 => SubscribeReturnCode::Success(QoS::ExactlyOnce),
                _ => SubscribeReturnCode::Failure,
            })
            .fold(ReturnCodes::new(), |mut v, c| {
                // At most 16 codes (`pack`): never full.
                let _ = v.push(c);
                v
            })
    }
}

/// When the driver must read next.
pub(crate) enum Wake {
    /// Not at all: something was queued; write it.
    Now,
    /// Only if bytes are ready, else the call ends with
    /// `Output::Delivered(false)`.
    IfReady,
    /// Block until bytes arrive or the instant (`None`: no timer).
    At(Option<Instant>),
}

/// Where a call is.
enum Stage<'a> {
    /// Its packet is still to be queued.
    Queue(Command<'a>),
    /// Waiting for its goal, with the packet identifier it waits for.
    Wait(Option<PacketId>),
    /// An event completed it.
    Done(Output),
}

/// The `deadline` of a call without one.
const NO_DEADLINE: Instant = Instant::MAX;

/// One call in progress.
pub(crate) struct Call<'a> {
    /// The packet to queue first, then what the call has come to (one
    /// field for both keeps the call small).
    stage: Stage<'a>,
    goal: Goal,
    /// When the awaited acknowledgment is late ([`NO_DEADLINE`]: never, or
    /// not yet set; an `Instant` rather than an `Option` keeps the call
    /// small).
    deadline: Instant,
    /// The command found no room; it is tried again once the packets
    /// received meanwhile are all handled (so the window opens as wide as
    /// it can), and only if one of them was an event.
    blocked: bool,
    progress: bool,
    /// The call has begun writing: it finishes that write before anything
    /// else, so it never ends with a packet half written.
    writing: bool,
}

impl<'a> Call<'a> {
    /// A call that queues `command` (if any) and ends at `goal`.
    pub(crate) fn new(command: Option<Command<'a>>, goal: Goal) -> Self {
        Self {
            stage: command.map_or(Stage::Wait(None), Stage::Queue),
            goal,
            deadline: NO_DEADLINE,
            blocked: false,
            progress: false,
            writing: false,
        }
    }

    /// A call waiting for message `id` to complete.
    pub(crate) fn completion(id: PacketId) -> Self {
        Self { stage: Stage::Wait(Some(id)), ..Self::new(None, Goal::Completed) }
    }

    /// The packet identifier the call's command took, if it was queued.
    pub(crate) fn id(&self) -> Option<PacketId> {
        match self.stage {
            Stage::Wait(id) | Stage::Done(Output::Id(id)) => id,
            _ => None,
        }
    }

    /// Whether the goal waits for the server within the ack timeout.
    fn is_timed(&self) -> bool {
        !matches!(self.goal, Goal::Written | Goal::Message | Goal::MessageNow)
    }

    /// Queues the command when there is room, and says whether the call
    /// is over (`Some`). The driver has written everything before.
    pub(crate) fn advance(
        &mut self,
        engine: &mut Engine<'_>,
        now: &mut Now<'_>,
    ) -> Result<Option<Output>, EngineError> {
        if let Stage::Queue(command) = self.stage {
            if self.blocked {
                return Ok(None);
            }
            match command.queue(engine, now) {
                Ok(id) => {
                    self.stage = Stage::Wait(id);
                    if self.is_timed() {
                        self.deadline = engine.ack_deadline(now.get());
                    }
                    return Ok(None); // to be written first
                }
                // No room until an acknowledgment arrives: wait for one,
                // within the ack timeout.
                Err(Error::WouldBlock) => {
                    if self.deadline == NO_DEADLINE {
                        self.deadline = engine.ack_deadline(now.get());
                    }
                    self.blocked = true;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        if self.deadline == NO_DEADLINE && self.is_timed() {
            self.deadline = engine.ack_deadline(now.get());
        }
        let id = self.id();
        Ok(match self.goal {
            Goal::Written => Some(Output::Id(id)),
            Goal::Connected => match engine.state() {
                State::Connected => Some(Output::Connected(Connected {
                    session_present: engine.session_present(),
                    discarded: engine.discarded(),
                })),
                State::Connecting => None,
                _ => return Err(Error::NotConnected),
            },
            Goal::Completed if id.is_none_or(|id| !engine.is_in_flight(id)) => Some(Output::Id(id)),
            Goal::AllCompleted if engine.in_flight() == 0 => Some(Output::Id(None)),
            _ => match core::mem::replace(&mut self.stage, Stage::Wait(id)) {
                Stage::Done(output) => Some(output),
                _ => None,
            },
        })
    }

    /// Takes what the next inbound packet meant. A message was delivered
    /// to the handler by the driver.
    pub(crate) fn on_event(&mut self, event: &Event<'_>) {
        self.progress = self.blocked;
        if matches!(self.stage, Stage::Queue(_)) {
            return; // nothing completes a call whose packet is not sent
        }
        let done = match (self.goal, event) {
            (Goal::Message | Goal::MessageNow, Event::Message(_) | Event::Oversize(_)) => {
                Output::Delivered(true)
            }
            (Goal::SubAck, Event::SubAck(ack)) if Some(ack.packet_id) == self.id() => {
                Output::Codes(PackedCodes::pack(ack.return_codes.iter()))
            }
            (Goal::UnsubAck, Event::UnsubAck(id)) if Some(*id) == self.id() => {
                Output::Id(Some(*id))
            }
            (Goal::PingResp, Event::PingResp) => Output::Id(None),
            // Each completed message gives the rest a new ack timeout
            // (set again by the next `advance`).
            (Goal::AllCompleted, Event::Published(_)) => {
                self.deadline = NO_DEADLINE;
                return;
            }
            _ => return,
        };
        self.stage = Stage::Done(done);
    }

    /// Whether the call waits for a message (`wait_msg`, `check_msg`).
    fn takes_messages(&self) -> bool {
        matches!(self.goal, Goal::Message | Goal::MessageNow)
    }

    /// Whether the call waited for a message and has it.
    fn has_delivered(&self) -> bool {
        matches!(self.stage, Stage::Done(Output::Delivered(true)))
    }

    /// Every received packet is handled: whether a blocked command may be
    /// tried again now.
    pub(crate) fn unblock(&mut self) -> bool {
        let retry = self.blocked && self.progress;
        if retry {
            self.blocked = false;
            self.progress = false;
        }
        retry
    }

    /// Runs the engine's timers and says when to read next;
    /// [`Error::Timeout`] once the deadline has passed.
    pub(crate) fn wake(&self, engine: &mut Engine<'_>, now: Instant) -> Result<Wake, EngineError> {
        let ping_at = engine.handle_timeout(now)?;
        if engine.poll_transmit().is_some() {
            return Ok(Wake::Now); // a PINGREQ
        }
        if now >= self.deadline {
            return Err(Error::Timeout);
        }
        if self.goal == Goal::MessageNow {
            return Ok(Wake::IfReady);
        }
        let deadline = (self.deadline != NO_DEADLINE).then_some(self.deadline);
        Ok(Wake::At(match (ping_at, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }))
    }
}

/// What a driver must do next for a call.
pub(crate) enum Step {
    /// Record what [`Engine::poll_store`] gives, then
    /// [`Engine::on_stored`]: nothing else moves until then.
    Store,
    /// Write (or flush) what [`Engine::poll_transmit`] gives.
    Transmit,
    /// Read as [`Wake`] says (never [`Wake::Now`]).
    Read(Wake),
    /// The call is over.
    Done(Output),
}

/// The current instant for one step, read from the clock only if the step
/// needs it, and then once (a clock read costs as much as encoding a
/// small packet).
pub(crate) struct Now<'c> {
    clock: &'c dyn Fn() -> Instant,
    at: Option<Instant>,
}

impl Now<'_> {
    fn get(&mut self) -> Instant {
        let clock = self.clock;
        *self.at.get_or_insert_with(clock)
    }
}

/// Everything a driver does for `call` between two I/O operations, with
/// the time from `clock`: queue, handle the packets received (messages go
/// to `handler`), run the timers. The one place both drivers share.
pub(crate) fn step(
    engine: &mut Engine<'_>,
    call: &mut Call<'_>,
    clock: &dyn Fn() -> Instant,
    handler: &mut dyn FnMut(&Publish<'_>),
) -> Result<Step, EngineError> {
    let mut now = Now { clock, at: None };
    loop {
        if engine.store_pending() {
            return Ok(Step::Store);
        }
        if engine.poll_transmit().is_some() {
            // A call waiting for messages handles the packets that have
            // arrived whole before writing, so their acknowledgments join
            // the pending write: one write per read, not per message. Once
            // it has its message it returns, leaving them queued while more
            // whole packets wait (the next call delivers those first).
            if call.writing || !(call.takes_messages() && engine.has_packet()) {
                call.writing = true;
                return Ok(Step::Transmit);
            }
            if call.has_delivered() {
                if let Some(output) = call.advance(engine, &mut now)? {
                    return Ok(Step::Done(output));
                }
            }
            if let Some(event) = engine.poll(now.get())? {
                if let Event::Message(publish) = &event {
                    handler(publish);
                }
                call.on_event(&event);
                continue;
            }
            // A record must be durable first (an inbound QoS 2 message), or
            // the packet's answer does not fit behind the pending write.
            if !engine.store_pending() {
                call.writing = true;
                return Ok(Step::Transmit);
            }
            continue;
        }
        if let Some(output) = call.advance(engine, &mut now)? {
            return Ok(Step::Done(output));
        }
        if engine.poll_transmit().is_some() || engine.store_pending() {
            continue;
        }
        if let Some(event) = engine.poll(now.get())? {
            if let Event::Message(publish) = &event {
                handler(publish);
            }
            call.on_event(&event);
            continue;
        }
        if call.unblock() {
            continue;
        }
        match call.wake(engine, now.get())? {
            Wake::Now => {}
            wake => return Ok(Step::Read(wake)),
        }
    }
}

/// The call for a publish: QoS 0 ends once written, QoS 1 and 2 once
/// complete (`wait`) or once written (`publish_no_wait`).
pub(crate) fn publish<'a>(
    topic: &'a str,
    payload: &'a [u8],
    qos: QoS,
    retain: bool,
    wait: bool,
) -> Call<'a> {
    let goal = if wait && qos != QoS::AtMostOnce { Goal::Completed } else { Goal::Written };
    Call::new(Some(Command::Publish { topic, payload, qos, retain }), goal)
}

/// `publish_no_wait` takes QoS 1 or 2 only.
pub(crate) fn check_no_wait_qos(qos: QoS) -> Result<(), EngineError> {
    if qos == QoS::AtMostOnce { Err(Error::InvalidArgument(Malformed::InvalidQoS)) } else { Ok(()) }
}
