//! The async driver's loop: moving bytes between the transport and the
//! engine, sleeping until the engine's next timer, and turning each
//! [`Event`] into an [`Outcome`] (delivering messages to the handler).
//!
//! Cancel safety rests on the engine: every received byte is handed to it
//! before any await can be dropped, and an outgoing packet stays queued in
//! `tx` with its progress recorded, so a dropped write is resumed by the
//! next call instead of corrupting the stream.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embassy_time::{Instant, with_deadline};
use embedded_io_async::{Read, Write};

use super::{Client, Error, ReturnCodes, State};
use crate::engine::{Engine, EngineError, Event, Transmit};
use crate::packet::{self, PacketId, SubscribeTopic};

/// What one inbound packet meant, for the waiting call.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    /// Nothing arrived ([`Wait::No`] only).
    Idle,
    /// A PUBLISH was delivered to the handler (its ack queued).
    Message,
    /// An outbound QoS 1 or QoS 2 message is complete.
    Published,
    SubAck(PacketId, ReturnCodes),
    UnsubAck(PacketId),
    PingResp,
    /// An oversize packet was drained; the engine keeps the report.
    Oversize,
    /// Anything else: CONNACK, PUBREC, PUBREL, ...
    Other,
}

/// How long [`Client::next_event`] waits for an inbound packet.
#[derive(Clone, Copy)]
pub(super) enum Wait {
    /// Not at all: only what is buffered or readable now.
    No,
    /// Until the deadline ([`Error::Timeout`]); `None`: for ever.
    Until(Option<Instant>),
}

/// A packet the client sends that is not a PUBLISH.
#[derive(Clone, Copy)]
pub(super) enum Command<'a> {
    Subscribe(&'a [SubscribeTopic<'a>]),
    Unsubscribe(&'a [&'a str]),
    PingReq,
    Disconnect,
}

impl Command<'_> {
    /// Queues the packet; returns the packet identifier it took, if any.
    fn queue(self, engine: &mut Engine<'_>) -> Result<Option<PacketId>, EngineError> {
        match self {
            Self::Subscribe(topics) => engine.subscribe(topics).map(Some),
            Self::Unsubscribe(filters) => engine.unsubscribe(filters).map(Some),
            Self::PingReq => engine.ping(Instant::now()).map(|()| None),
            Self::Disconnect => engine.disconnect().map(|()| None),
        }
    }
}

/// Polls `fut` once: its output if ready, `None` (and `fut` dropped) if not.
pub(super) async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        Poll::Ready(match fut.as_mut().poll(cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        })
    })
    .await
}

impl<T, H> Client<'_, T, H>
where
    T: Read + Write,
    H: FnMut(&packet::Publish<'_>),
{
    pub(super) fn ensure_connected(&self) -> Result<(), Error<T::Error>> {
        if self.engine.state() == State::Connected { Ok(()) } else { Err(Error::NotConnected) }
    }

    /// Queues `command` once there is room in `tx` (waiting for
    /// acknowledgments meanwhile) and writes it whole.
    pub(super) async fn send(
        &mut self,
        command: Command<'_>,
    ) -> Result<Option<PacketId>, Error<T::Error>> {
        self.ensure_connected()?;
        loop {
            self.flush_pending().await?;
            match command.queue(&mut self.engine) {
                Err(crate::Error::WouldBlock) => {
                    self.next_event(Wait::Until(self.deadline())).await?;
                }
                queued => {
                    let id = queued.map_err(Error::widen)?;
                    self.flush_pending().await?;
                    return Ok(id);
                }
            }
        }
    }

    /// Writes what the engine has queued: the remaining bytes, then one
    /// flush.
    pub(super) async fn flush_pending(&mut self) -> Result<(), Error<T::Error>> {
        while let Some(transmit) = self.engine.poll_transmit() {
            let result = match transmit {
                Transmit::Write(bytes) => self.transport.write(bytes).await,
                Transmit::Flush => self.transport.flush().await.map(|()| 0),
            };
            self.wrote(result)?;
        }
        Ok(())
    }

    /// Takes the result of a write (or of a flush, `Ok(0)`). Out of line:
    /// `flush_pending` is awaited in many places.
    #[inline(never)]
    fn wrote(&mut self, result: Result<usize, T::Error>) -> Result<(), Error<T::Error>> {
        match result {
            Err(e) => {
                self.engine.on_transport_error();
                Err(Error::Transport(e))
            }
            Ok(_) if self.engine.poll_transmit() == Some(Transmit::Flush) => {
                self.engine.on_flushed(Instant::now());
                Ok(())
            }
            Ok(n) => self.engine.on_written(n).map_err(Error::widen),
        }
    }

    /// Reads more bytes into the engine. Cancel-safe when the transport's
    /// `read` is.
    async fn fill(&mut self) -> Result<(), Error<T::Error>> {
        let buf = self.engine.read_buf().map_err(Error::widen)?;
        match self.transport.read(buf).await {
            Ok(n) => self.engine.on_read(n, Instant::now()).map_err(Error::widen),
            Err(e) => {
                self.engine.on_transport_error();
                Err(Error::Transport(e))
            }
        }
    }

    /// Handles the next packet already received, if complete.
    #[inline(never)] // one copy for every waiting call
    pub(super) fn next_buffered(&mut self) -> Result<Option<Outcome>, Error<T::Error>> {
        let event = self.engine.poll(Instant::now()).map_err(Error::widen)?;
        Ok(event.map(|event| match event {
            Event::Message(publish) => {
                (self.handler)(&publish);
                Outcome::Message
            }
            Event::Published(_) => Outcome::Published,
            Event::SubAck(ack) => Outcome::SubAck(ack.packet_id, ack.return_codes.iter().collect()),
            Event::UnsubAck(id) => Outcome::UnsubAck(id),
            Event::PingResp => Outcome::PingResp,
            Event::Oversize(_) => Outcome::Oversize,
            Event::ConnAck { .. } | Event::Handled => Outcome::Other,
        }))
    }

    /// Handles the next inbound packet, keeping the connection alive
    /// meanwhile. [`Wait::Until`] waits for one (never [`Outcome::Idle`]);
    /// [`Wait::No`] handles what is already buffered or readable,
    /// `Idle` when there is nothing.
    pub(super) async fn next_event(&mut self, wait: Wait) -> Result<Outcome, Error<T::Error>> {
        loop {
            self.flush_pending().await?;
            if let Some(outcome) = self.next_buffered()? {
                return Ok(outcome);
            }
            let ping_at = self.engine.handle_timeout(Instant::now()).map_err(Error::widen)?;
            if self.engine.poll_transmit().is_some() {
                continue; // a PINGREQ to write
            }
            let Wait::Until(deadline) = wait else {
                match poll_once(self.fill()).await {
                    None => return Ok(Outcome::Idle),
                    Some(filled) => filled?,
                }
                continue;
            };
            let wake = match (ping_at, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match wake {
                None => self.fill().await?,
                Some(at) => match with_deadline(at, self.fill()).await {
                    Ok(filled) => filled?,
                    Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                        return Err(Error::Timeout);
                    }
                    Err(_) => {}
                },
            }
        }
    }
}
