//! The client's engine room: moving bytes between the transport and the
//! buffers, and turning each complete inbound packet into an [`Event`].
//!
//! Cancel safety rests on two rules: every received byte is stored in `rx`
//! before any await can be dropped, and an outgoing packet is written from
//! `tx` with its progress kept in `self.write`, so a dropped write is
//! resumed by the next call instead of corrupting the stream.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embassy_time::{Instant, with_deadline};
use embedded_io_async::{Read, Write};

use super::drain::Drain;
use super::{Client, Error, MAX_SUBSCRIBE_TOPICS, Oversize, ProtocolError, State};
use crate::fmt::{log_debug, log_warn};
use crate::packet::{
    self, ConnAck, DecodeError, FixedHeader, Packet, PacketId, QoS, SubscribeReturnCode,
};
use crate::session::{KeepAliveAction, move_down};

/// Bytes always kept free after the stored QoS 1 publishes in `tx`, so a
/// PUBACK, PINGREQ or DISCONNECT can be sent whatever the outbox holds.
pub(super) const CONTROL_RESERVE: usize = 4;

/// What one inbound packet meant.
pub(super) enum Event {
    /// A PUBLISH was delivered to the handler (and acknowledged).
    Message,
    ConnAck(ConnAck),
    PubAck,
    SubAck(PacketId, heapless::Vec<SubscribeReturnCode, MAX_SUBSCRIBE_TOPICS>),
    UnsubAck(PacketId),
    PingResp,
    Oversize(Oversize),
}

/// How long [`Client::next_event`] waits for an inbound packet.
#[derive(Clone, Copy)]
pub(super) enum Wait {
    /// Not at all: only what is buffered or readable now.
    No,
    /// Until the deadline ([`Error::Timeout`]); `None`: for ever.
    Until(Option<Instant>),
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
    /// Marks the connection broken and hands `err` back.
    pub(super) fn fail(&mut self, err: Error<T::Error>) -> Error<T::Error> {
        log_warn!("connection failed");
        self.state = State::Failed;
        err
    }

    /// Encodes `packet` into the free part of `tx` (after the stored QoS 1
    /// publishes) and returns its range. When it does not fit with
    /// [`CONTROL_RESERVE`] to spare, the outbox is compacted first, unless
    /// a write or a resend still points into `tx`.
    pub(super) fn encode(
        &mut self,
        packet: &Packet<'_>,
    ) -> Result<(usize, usize), Error<T::Error>> {
        let encoded = self.encode_at(self.outbox.len(), packet);
        let short = match encoded {
            Ok((_, end)) => end + CONTROL_RESERVE > self.tx.len(),
            Err(Error::BufferTooSmall { .. }) => true,
            Err(_) => false,
        };
        if short && self.write.is_none() && !self.resending && self.outbox.compact(self.tx) {
            return self.encode_at(self.outbox.len(), packet);
        }
        encoded
    }

    /// Encodes `packet` into `tx` from offset `start` on and returns its
    /// range; `BufferTooSmall` counts the bytes before `start` too.
    pub(super) fn encode_at(
        &mut self,
        start: usize,
        packet: &Packet<'_>,
    ) -> Result<(usize, usize), Error<T::Error>> {
        let free = self.tx.get_mut(start..).unwrap_or_default();
        let len = packet::encode(packet, free).map_err(|e| match Error::from(e) {
            Error::BufferTooSmall { needed } => Error::BufferTooSmall { needed: start + needed },
            other => other,
        })?;
        Ok((start, start + len))
    }

    /// Finishes a pending write, then encodes `packet`, calls `queued`
    /// (for what must hold even if this call is dropped during the write)
    /// and writes the packet whole.
    pub(super) async fn send(
        &mut self,
        packet: &Packet<'_>,
        queued: fn(&mut Self),
    ) -> Result<(), Error<T::Error>> {
        self.flush_pending().await?;
        self.write = Some(self.encode(packet)?);
        queued(self);
        self.flush_pending().await
    }

    /// Sends PINGREQ, recorded before the write so that a dropped call
    /// does not make keepalive send a second PINGREQ at once.
    pub(super) async fn send_ping(&mut self) -> Result<(), Error<T::Error>> {
        self.send(&Packet::PingReq, |c| c.keep_alive.on_ping_sent(Instant::now())).await
    }

    /// Finishes the packet whose write an earlier, dropped call began:
    /// the remaining bytes, then one flush.
    pub(super) async fn flush_pending(&mut self) -> Result<(), Error<T::Error>> {
        while let Some((start, end)) = self.write {
            let bytes = self.tx.get(start..end).unwrap_or_default();
            // A flush is a write of nothing.
            let written = if bytes.is_empty() {
                self.transport.flush().await.map(|()| 0)
            } else {
                self.transport.write(bytes).await
            };
            self.wrote(written)?;
        }
        Ok(())
    }

    /// Takes the result of a write (or flush, `Ok(0)` for an empty range)
    /// of the range `self.write`. Out of line: `flush_pending` is awaited
    /// in many places.
    #[inline(never)]
    fn wrote(&mut self, written: Result<usize, T::Error>) -> Result<(), Error<T::Error>> {
        let Some((start, end)) = self.write else { return Ok(()) };
        let flushed = self.tx.get(start..end).is_none_or(<[u8]>::is_empty);
        match written {
            Err(e) => Err(self.fail(Error::Transport(e))),
            Ok(_) if flushed => {
                self.write = None;
                self.keep_alive.on_sent(Instant::now());
                Ok(())
            }
            Ok(0) => Err(self.fail(Error::ConnectionClosed)),
            Ok(n) => {
                self.write = Some((start + n, end));
                Ok(())
            }
        }
    }

    /// Reads more bytes into `rx`, or discards the rest of an oversize
    /// packet. Cancel-safe when the transport's `read` is.
    pub(super) async fn fill(&mut self) -> Result<(), Error<T::Error>> {
        if self.rx_start > 0 {
            move_down(self.rx, self.rx_start..self.rx_end, 0);
            self.rx_end -= self.rx_start;
            self.rx_start = 0;
        }
        let free = self.rx.get_mut(self.rx_end..).unwrap_or_default();
        if free.is_empty() {
            // Only a buffer shorter than a fixed header gets here.
            return Err(Error::BufferTooSmall { needed: self.rx.len() + 1 });
        }
        let n = match self.transport.read(free).await {
            Ok(0) => return Err(self.fail(Error::ConnectionClosed)),
            Ok(n) => n,
            Err(e) => return Err(self.fail(Error::Transport(e))),
        };
        // While draining, the buffer held nothing before this read.
        let received = self.rx.get(self.rx_end..self.rx_end + n).unwrap_or_default();
        if let Some(drain) = &mut self.drain {
            let discard = drain.wants(received.len());
            drain.consume(received.get(..discard).unwrap_or_default());
            self.rx_start += discard;
        }
        self.rx_end += n;
        if self.rx_start == self.rx_end {
            self.rx_start = 0;
            self.rx_end = 0;
        }
        Ok(())
    }

    /// Handles the packet at the front of `rx` if it is complete.
    pub(super) fn process_buffered(&mut self) -> Result<Option<Event>, Error<T::Error>> {
        if let Some(drain) = self.drain {
            return if drain.is_done() { self.finish_drain(&drain).map(Some) } else { Ok(None) };
        }
        let buffered = self.rx.get(self.rx_start..self.rx_end).unwrap_or_default();
        let header = match FixedHeader::parse(buffered) {
            Ok(header) => header,
            Err(DecodeError::Incomplete { .. }) => return Ok(None),
            Err(DecodeError::Malformed(m)) => {
                return Err(self.fail(Error::Protocol(ProtocolError::Malformed(m))));
            }
        };
        let len = header.packet_len();
        if len > self.rx.len() {
            return self.start_drain(&header);
        }
        let Some(body) = buffered.get(header.header_len..len) else {
            return Ok(None);
        };
        // A packet only a client sends is refused unread: UnexpectedPacket.
        let packet = match packet::decode_to_client(&header, body) {
            Ok(packet) => packet,
            Err(m) => return Err(self.fail(Error::Protocol(ProtocolError::Malformed(m)))),
        };
        self.rx_start += len;
        self.keep_alive.on_received(Instant::now());
        let unexpected = Error::Protocol(ProtocolError::UnexpectedPacket(header.packet_type));
        let Some(packet) = packet else { return Err(self.fail(unexpected)) };
        let event = match packet {
            Packet::ConnAck(ack) if self.state == State::Connecting => Event::ConnAck(ack),
            _ if self.state == State::Connecting => return Err(self.fail(unexpected)),
            Packet::Publish(publish) => {
                let Some(id) = publish.packet_id else {
                    (self.handler)(&publish);
                    return Ok(Some(Event::Message));
                };
                if publish.qos == QoS::ExactlyOnce {
                    return Err(self.fail(Error::Protocol(ProtocolError::QoS2Publish)));
                }
                (self.handler)(&publish);
                // Deliver, then acknowledge `[MQTT-4.3.2-2]`; no await in
                // between, so a dropped call cannot lose the PUBACK.
                self.write = Some(self.encode(&Packet::PubAck(id))?);
                Event::Message
            }
            Packet::PubAck(id) => {
                if !self.outbox.remove(self.tx, id) {
                    log_debug!("PUBACK for unknown packet id {}", id.get());
                }
                Event::PubAck
            }
            Packet::SubAck(ack) => {
                let mut codes = heapless::Vec::new();
                for code in ack.return_codes.iter() {
                    if codes.push(code).is_err() {
                        return Err(self.fail(Error::Protocol(ProtocolError::SubAckCountMismatch)));
                    }
                }
                Event::SubAck(ack.packet_id, codes)
            }
            Packet::UnsubAck(id) => Event::UnsubAck(id),
            Packet::PingResp => Event::PingResp,
            _ => return Err(self.fail(unexpected)),
        };
        Ok(Some(event))
    }

    /// An inbound packet longer than `rx`: start discarding it.
    fn start_drain(&mut self, header: &FixedHeader) -> Result<Option<Event>, Error<T::Error>> {
        let buffered = self.rx.get(self.rx_start..self.rx_end).unwrap_or_default();
        let Some(drain) = Drain::start(header, buffered, self.rx.len()) else {
            return Ok(None); // the start of the PUBLISH is still to come
        };
        self.rx_start = 0;
        self.rx_end = 0;
        if drain.is_done() {
            return self.finish_drain(&drain).map(Some);
        }
        self.drain = Some(drain);
        Ok(None)
    }

    /// The oversize packet is gone: acknowledge a QoS 1 PUBLISH and report.
    fn finish_drain(&mut self, drain: &Drain) -> Result<Event, Error<T::Error>> {
        self.drain = None;
        self.keep_alive.on_received(Instant::now());
        let acknowledged = match drain.packet_id() {
            Some(Ok(id)) => {
                self.write = Some(self.encode(&Packet::PubAck(id))?);
                true
            }
            Some(Err(())) => {
                let zero = ProtocolError::Malformed(packet::Malformed::ZeroPacketId);
                return Err(self.fail(Error::Protocol(zero)));
            }
            None => false,
        };
        let report = drain.report(acknowledged);
        log_warn!("inbound packet of {} bytes exceeds the receive buffer", report.size);
        Ok(Event::Oversize(report))
    }

    /// Sends PINGREQ when keepalive asks for it; fails when the server
    /// stopped answering. Returns when the next keepalive action is due.
    async fn keep_alive(&mut self) -> Result<Option<Instant>, Error<T::Error>> {
        if self.state != State::Connected {
            return Ok(None);
        }
        match self.keep_alive.poll(Instant::now()) {
            KeepAliveAction::WaitUntil(at) => Ok(at),
            KeepAliveAction::Expired => Err(self.fail(Error::KeepAliveTimeout)),
            KeepAliveAction::SendPing => {
                self.send_ping().await?;
                match self.keep_alive.poll(Instant::now()) {
                    KeepAliveAction::WaitUntil(at) => Ok(at),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Handles the next inbound packet, keeping the connection alive
    /// meanwhile. [`Wait::Until`] waits for one (never `None`);
    /// [`Wait::No`] handles what is already buffered or readable, `None`
    /// when there is nothing. (One function for both: `flush_pending`,
    /// `process_buffered` and `keep_alive` are awaited once.)
    pub(super) async fn next_event(
        &mut self,
        wait: Wait,
    ) -> Result<Option<Event>, Error<T::Error>> {
        loop {
            self.flush_pending().await?;
            if let Some(event) = self.process_buffered()? {
                return Ok(Some(event));
            }
            let ping_at = self.keep_alive().await?;
            let Wait::Until(deadline) = wait else {
                match poll_once(self.fill()).await {
                    None => return Ok(None),
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
