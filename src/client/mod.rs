//! The async client: the `umqtt.simple` API over any `embedded-io-async`
//! transport.
//!
//! ```no_run
//! # async fn run<T: embedded_io_async::Read + embedded_io_async::Write>(socket: T)
//! # -> Result<(), umqtt::Error<T::Error>> {
//! use umqtt::{Client, ConnectOptions, Publish, QoS};
//!
//! let mut rx = [0u8; 1024];
//! let mut tx = [0u8; 1024];
//! let opts = ConnectOptions::new("esp32-c3-01").keep_alive_secs(60);
//! let mut client = Client::new(socket, &mut rx, &mut tx, |msg: &Publish<'_>| {
//!     // topic, payload, qos, retain, dup, borrowed from `rx`
//!     let _ = (msg.topic, msg.payload);
//! });
//! client.connect(&opts).await?;
//! client.subscribe("sensors/+/cmd", QoS::AtLeastOnce).await?;
//! client.publish("sensors/01/temp", b"{\"msg\": 1}", QoS::AtLeastOnce, false).await?;
//! loop {
//!     client.wait_msg().await?;
//! }
//! # }
//! ```
//!
//! Every call is cancel-safe (given a transport whose `read` and `write`
//! are, as embassy-net's `TcpSocket` and tokio's are): dropping a call's
//! future loses no received byte and never leaves half a packet on the
//! wire; the next call carries on.

mod drain;
mod error;
mod io;
mod options;

pub use error::{Error, Oversize, ProtocolError, State};
pub use options::ConnectOptions;

use embassy_time::{Duration, Instant};
use embedded_io_async::{Read, Write};

use crate::packet::{
    ConnectReturnCode, List, Packet, PacketId, PacketType, Publish, QoS, Subscribe,
    SubscribeReturnCode, SubscribeTopic, Unsubscribe,
};
use crate::session::{KeepAlive, Outbox, PacketIds};
use io::{CONTROL_RESERVE, Event, Wait};

/// Most topic filters in one `subscribe_many` call.
pub const MAX_SUBSCRIBE_TOPICS: usize = 16;

/// SUBACK return codes, one per filter of a `subscribe_many` call.
pub type ReturnCodes = heapless::Vec<SubscribeReturnCode, MAX_SUBSCRIBE_TOPICS>;

/// The client side of an MQTT session, kept between two [`Client`]s (one
/// per connection): the packet identifier allocator and where the QoS 1
/// publishes awaiting PUBACK lie in `tx`. A few bytes, `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Session {
    outbox: Outbox,
    ids: PacketIds,
}

impl Session {
    /// Number of QoS 1 publishes awaiting PUBACK.
    pub fn in_flight(&self) -> usize {
        self.outbox.count()
    }
}

/// An MQTT 3.1.1 client over the transport `T`, delivering messages to the
/// handler `H`.
///
/// The caller owns the buffers: `rx` holds one inbound packet (larger ones
/// are drained and reported), `tx` holds one outbound packet plus the QoS 1
/// publishes awaiting PUBACK, kept for resend after a reconnect.
pub struct Client<'b, T, H> {
    transport: T,
    handler: H,
    rx: &'b mut [u8],
    rx_start: usize,
    rx_end: usize,
    /// Progress through an oversize inbound packet being discarded.
    drain: Option<drain::Drain>,
    tx: &'b mut [u8],
    outbox: Outbox,
    /// Range of `tx` being written; `start == end` means a flush is due.
    write: Option<(usize, usize)>,
    ids: PacketIds,
    keep_alive: KeepAlive,
    state: State,
    /// Ack timeout in milliseconds (a `u32`, to keep the client small).
    ack_timeout_ms: u32,
    max_in_flight: u16,
    /// An oversize packet met while waiting for an ack, to report from the
    /// next `wait_msg` or `check_msg`.
    unreported: Option<Oversize>,
    /// While connecting: CONNACK arrived and the stored publishes are
    /// being resent, the next one from offset `resend_next` of `tx` on.
    resending: bool,
    resend_next: usize,
    /// What CONNACK said.
    session_present: bool,
}

impl<'b, T, H> Client<'b, T, H>
where
    T: Read + Write,
    H: FnMut(&Publish<'_>),
{
    /// A client over `transport`, not yet connected.
    pub fn new(transport: T, rx: &'b mut [u8], tx: &'b mut [u8], handler: H) -> Self {
        Self {
            transport,
            handler,
            rx,
            rx_start: 0,
            rx_end: 0,
            drain: None,
            tx,
            outbox: Outbox::default(),
            write: None,
            ids: PacketIds::new(),
            keep_alive: KeepAlive::new(0, Instant::from_ticks(0)),
            state: State::Disconnected,
            ack_timeout_ms: 10_000,
            max_in_flight: 16,
            unreported: None,
            resending: false,
            resend_next: 0,
            session_present: false,
        }
    }

    /// A client that continues the session a dropped client left in
    /// `session` (see [`into_session`](Self::into_session)): its QoS 1
    /// publishes awaiting PUBACK, kept encoded in `tx`, are resent by the
    /// next [`connect`](Self::connect) with `clean_session` false, and its
    /// packet identifiers carry on.
    ///
    /// `tx` must be the buffer the earlier client used, unchanged since;
    /// if it does not hold what `session` records, the stored publishes are
    /// forgotten (never misread).
    ///
    /// This is how to reconnect over a transport that borrows buffers, such
    /// as a TLS stream: build a new stream and a new client per connection,
    /// handing the session over, instead of [`reconnect`](Self::reconnect).
    pub fn with_session(
        transport: T,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        handler: H,
        session: Session,
    ) -> Self {
        let mut client = Self::new(transport, rx, tx, handler);
        if session.outbox.matches(client.tx) {
            client.outbox = session.outbox;
        }
        client.ids = session.ids;
        client
    }

    /// Ends the client, keeping what [`with_session`](Self::with_session)
    /// needs to continue its session on a new transport. The publishes
    /// awaiting PUBACK stay in `tx`, which the caller gets back to lend to
    /// the next client.
    pub fn into_session(self) -> Session {
        Session { outbox: self.outbox, ids: self.ids }
    }

    /// The connection state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The transport, for example to close it.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Number of QoS 1 publishes awaiting PUBACK.
    pub fn in_flight(&self) -> usize {
        self.outbox.count()
    }

    /// Whether the QoS 1 publish `id` still awaits its PUBACK.
    pub fn is_in_flight(&self, id: PacketId) -> bool {
        self.outbox.contains(self.tx, id)
    }

    fn ensure_connected(&self) -> Result<(), Error<T::Error>> {
        if self.state == State::Connected { Ok(()) } else { Err(Error::NotConnected) }
    }

    #[inline(never)] // called from every waiting call: once, not in each
    fn deadline(&self) -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(u64::from(self.ack_timeout_ms)))
    }

    /// Sends CONNECT and waits for CONNACK. Returns whether the broker
    /// resumed a stored session. With `clean_session` false, QoS 1
    /// publishes still awaiting PUBACK from an earlier connection are resent
    /// with DUP=1 and their packet identifiers `[MQTT-4.4.0-1]`; with
    /// `clean_session` true they are discarded `[MQTT-3.1.2-6]`.
    ///
    /// A `connect` dropped before it returned is resumed by the next call
    /// (with the same `opts`): CONNECT is sent once `[MQTT-3.1.0-2]` and the
    /// resend goes on where it stopped. To start over on a new transport,
    /// use [`reconnect`](Self::reconnect).
    pub async fn connect(&mut self, opts: &ConnectOptions<'_>) -> Result<bool, Error<T::Error>> {
        if self.state != State::Connecting {
            self.start_connect(opts)?;
        }
        self.flush_pending().await?;
        if !self.resending {
            let ack = match self.next_event(Wait::Until(self.deadline())).await {
                Ok(Some(Event::ConnAck(ack))) => ack,
                Ok(_) => {
                    let unexpected = ProtocolError::UnexpectedPacket(PacketType::ConnAck);
                    return Err(self.fail(Error::Protocol(unexpected)));
                }
                // Even a timeout is fatal here: the link is not usable.
                Err(e) => return Err(self.fail(e)),
            };
            if ack.code != ConnectReturnCode::Accepted {
                return Err(self.fail(Error::Refused(ack.code)));
            }
            self.session_present = ack.session_present;
            self.keep_alive = KeepAlive::new(opts.keep_alive_secs, Instant::now());
            self.outbox.set_dup(self.tx);
            self.resending = true;
            self.resend_next = 0;
        }
        self.resend_outbox().await?;
        self.resending = false;
        self.state = State::Connected;
        Ok(self.session_present)
    }

    /// Resets the connection state and queues CONNECT.
    fn start_connect(&mut self, opts: &ConnectOptions<'_>) -> Result<(), Error<T::Error>> {
        self.rx_start = 0;
        self.rx_end = 0;
        self.drain = None;
        self.write = None;
        self.resending = false;
        self.unreported = None;
        self.ack_timeout_ms = u32::try_from(opts.ack_timeout.as_millis()).unwrap_or(u32::MAX);
        self.max_in_flight = opts.max_in_flight;
        if opts.clean_session {
            self.outbox.clear();
        }
        self.write = Some(self.encode(&Packet::Connect(opts.to_connect()))?);
        self.state = State::Connecting;
        Ok(())
    }

    /// Replaces the transport with a freshly connected one and connects
    /// again with `opts`; see [`connect`](Self::connect).
    pub async fn reconnect(
        &mut self,
        transport: T,
        opts: &ConnectOptions<'_>,
    ) -> Result<bool, Error<T::Error>> {
        self.transport = transport;
        self.state = State::Disconnected;
        self.connect(opts).await
    }

    /// Resends the stored publishes from `resend_next` on, recording
    /// progress so a dropped call resumes where it stopped.
    async fn resend_outbox(&mut self) -> Result<(), Error<T::Error>> {
        loop {
            self.flush_pending().await?;
            let next = self.resend_next;
            let Some(entry) = self.outbox.entries(self.tx).find(|e| e.start >= next) else {
                return Ok(());
            };
            self.resend_next = entry.end;
            self.write = Some((entry.start, entry.end));
        }
    }

    /// Publishes `payload` to `topic`. QoS 0 returns once written; QoS 1
    /// returns once the matching PUBACK arrives. Messages that arrive
    /// meanwhile are delivered to the handler.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error<T::Error>> {
        match qos {
            QoS::AtMostOnce => {
                self.ensure_connected()?;
                let publish = Publish { dup: false, qos, retain, topic, packet_id: None, payload };
                self.send_when_room(&Packet::Publish(publish)).await
            }
            QoS::AtLeastOnce => {
                let id = self.publish_no_wait(topic, payload, retain).await?;
                self.wait_acked(id).await
            }
            QoS::ExactlyOnce => Err(Error::InvalidArgument(crate::packet::Malformed::InvalidQoS)),
        }
    }

    /// Publishes at QoS 1 without waiting for the PUBACK (pipelining) and
    /// returns the packet identifier. Waits only when `max_in_flight`
    /// publishes are unacknowledged or `tx` is full. The message is kept in
    /// `tx` until its PUBACK, and resent by `reconnect`; learn its fate
    /// with [`is_in_flight`](Self::is_in_flight) or wait with
    /// [`wait_acked`](Self::wait_acked) / [`wait_all_acked`](Self::wait_all_acked).
    pub async fn publish_no_wait(
        &mut self,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<PacketId, Error<T::Error>> {
        self.ensure_connected()?;
        // Set once the PUBLISH is queued; the loop's flush then writes it.
        let mut queued = None;
        loop {
            self.flush_pending().await?;
            if let Some(id) = queued {
                return Ok(id);
            }
            if !self.window_full() {
                let id = self.next_packet_id().ok_or(Error::Timeout)?;
                let publish = Publish {
                    dup: false,
                    qos: QoS::AtLeastOnce,
                    retain,
                    topic,
                    packet_id: Some(id),
                    payload,
                };
                match self.encode(&Packet::Publish(publish)) {
                    Ok((start, end)) if end + CONTROL_RESERVE <= self.tx.len() => {
                        self.outbox.push_publish(self.tx, end - start);
                        self.write = Some((start, end));
                        queued = Some(id);
                        continue;
                    }
                    Ok((_, end)) if self.outbox.is_empty() => {
                        return Err(Error::BufferTooSmall { needed: end + CONTROL_RESERVE });
                    }
                    Err(Error::BufferTooSmall { needed }) if self.outbox.is_empty() => {
                        return Err(Error::BufferTooSmall { needed: needed + CONTROL_RESERVE });
                    }
                    Ok(_) | Err(Error::BufferTooSmall { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            // Window or buffer full: wait for an acknowledgment, then take
            // every one already received, so the window opens as wide as it
            // can (and `queue_publish` can batch).
            let event = self.next_event(Wait::Until(self.deadline())).await?;
            self.note(event);
            while self.write.is_none() {
                match self.process_buffered()? {
                    Some(event) => self.note(Some(event)),
                    None => break,
                }
            }
        }
    }

    /// Queues a publish in `tx` without writing it, so that several go out
    /// in one `write` (one system call, one TCP segment): the next call that
    /// writes — [`flush`](Self::flush), `publish_no_wait`, or any other —
    /// sends every queued packet at once. Returns the packet identifier of a
    /// QoS 1 publish (stored for resend like [`publish_no_wait`]'s), `None`
    /// for QoS 0.
    ///
    /// Never waits: [`Error::WouldBlock`] when it cannot queue now (the
    /// in-flight window or `tx` is full, or a packet other than queued
    /// publishes is being written); then call an awaiting method, e.g.
    /// `publish_no_wait` for the same message, which makes room.
    ///
    /// A QoS 1 publish cannot be queued behind a queued QoS 0 one (the
    /// outbox must stay contiguous): that is `WouldBlock` too.
    ///
    /// [`publish_no_wait`]: Self::publish_no_wait
    pub fn queue_publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<PacketId>, Error<T::Error>> {
        self.ensure_connected()?;
        let (pending_start, end) = match self.write {
            None => (None, self.outbox.len()),
            // Only queued packets may be pending: they end the used part.
            Some((start, end)) if start < end && end >= self.outbox.len() => (Some(start), end),
            Some(_) => return Err(Error::WouldBlock),
        };
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => {
                if end != self.outbox.len() || self.window_full() {
                    return Err(Error::WouldBlock);
                }
                Some(self.next_packet_id().ok_or(Error::WouldBlock)?)
            }
            QoS::ExactlyOnce => {
                return Err(Error::InvalidArgument(crate::packet::Malformed::InvalidQoS));
            }
        };
        let publish = Publish { dup: false, qos, retain, topic, packet_id, payload };
        let new_end = match self.encode_at(end, &Packet::Publish(publish)) {
            Ok((_, new_end)) if new_end + CONTROL_RESERVE <= self.tx.len() => new_end,
            Ok(_) | Err(Error::BufferTooSmall { .. }) => return Err(Error::WouldBlock),
            Err(e) => return Err(e),
        };
        if packet_id.is_some() {
            self.outbox.push_publish(self.tx, new_end - end);
        }
        self.write = Some((pending_start.unwrap_or(end), new_end));
        Ok(packet_id)
    }

    /// Writes whatever is queued or was left half written by a dropped
    /// call. Nothing is written on a failed connection.
    pub async fn flush(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.flush_pending().await
    }

    /// Waits until the QoS 1 publish `id` is acknowledged.
    pub async fn wait_acked(&mut self, id: PacketId) -> Result<(), Error<T::Error>> {
        let deadline = self.deadline();
        while self.outbox.contains(self.tx, id) {
            self.ensure_connected()?;
            let event = self.next_event(Wait::Until(deadline)).await?;
            self.note(event);
        }
        Ok(())
    }

    /// Waits until every QoS 1 publish is acknowledged.
    pub async fn wait_all_acked(&mut self) -> Result<(), Error<T::Error>> {
        let mut deadline = self.deadline();
        while !self.outbox.is_empty() {
            self.ensure_connected()?;
            let event = self.next_event(Wait::Until(deadline)).await?;
            if matches!(event, Some(Event::PubAck)) {
                deadline = self.deadline();
            }
            self.note(event);
        }
        Ok(())
    }

    /// Sends a packet that is not stored for resend, waiting for PUBACKs
    /// to free room in `tx` if the outbox fills it.
    async fn send_when_room(&mut self, packet: &Packet<'_>) -> Result<(), Error<T::Error>> {
        let mut queued = false;
        loop {
            self.flush_pending().await?;
            if queued {
                return Ok(());
            }
            match self.encode(packet) {
                Ok(range) => {
                    self.write = Some(range);
                    queued = true;
                }
                Err(Error::BufferTooSmall { .. }) if !self.outbox.is_empty() => {
                    let event = self.next_event(Wait::Until(self.deadline())).await?;
                    self.note(event);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Keeps what a waiting call did not wait for.
    fn note(&mut self, event: Option<Event>) {
        if let Some(Event::Oversize(o)) = event {
            self.unreported = Some(o);
        }
    }

    /// Subscribes to `filter` and returns the QoS the broker granted, or
    /// [`Error::SubscribeRefused`] for return code 0x80.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<QoS, Error<T::Error>> {
        let codes = self.subscribe_many(&[SubscribeTopic { filter, qos }]).await?;
        match codes.first() {
            Some(SubscribeReturnCode::Success(granted)) => Ok(*granted),
            _ => Err(Error::SubscribeRefused),
        }
    }

    /// Subscribes to up to [`MAX_SUBSCRIBE_TOPICS`] filters in one
    /// SUBSCRIBE and returns one return code per filter (a refusal is
    /// [`SubscribeReturnCode::Failure`]). QoS 2 is not supported.
    pub async fn subscribe_many(
        &mut self,
        topics: &[SubscribeTopic<'_>],
    ) -> Result<ReturnCodes, Error<T::Error>> {
        self.ensure_connected()?;
        if topics.len() > MAX_SUBSCRIBE_TOPICS {
            return Err(Error::BufferTooSmall { needed: topics.len() });
        }
        if topics.iter().any(|t| t.qos == QoS::ExactlyOnce) {
            return Err(Error::InvalidArgument(crate::packet::Malformed::InvalidQoS));
        }
        let id = self.next_packet_id().ok_or(Error::BufferTooSmall { needed: 0 })?;
        let subscribe = Subscribe { packet_id: id, topics: List::Items(topics) };
        self.send_when_room(&Packet::Subscribe(subscribe)).await?;
        let deadline = self.deadline();
        loop {
            match self.next_event(Wait::Until(deadline)).await? {
                Some(Event::SubAck(ack_id, codes)) if ack_id == id => {
                    if codes.len() != topics.len() {
                        return Err(self.fail(Error::Protocol(ProtocolError::SubAckCountMismatch)));
                    }
                    return Ok(codes);
                }
                other => self.note(other),
            }
        }
    }

    /// Unsubscribes from `filter` and waits for UNSUBACK.
    pub async fn unsubscribe(&mut self, filter: &str) -> Result<(), Error<T::Error>> {
        self.unsubscribe_many(&[filter]).await
    }

    /// Unsubscribes from several filters in one UNSUBSCRIBE and waits for
    /// UNSUBACK.
    pub async fn unsubscribe_many(&mut self, filters: &[&str]) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        let id = self.next_packet_id().ok_or(Error::BufferTooSmall { needed: 0 })?;
        let unsubscribe = Unsubscribe { packet_id: id, filters: List::Items(filters) };
        self.send_when_room(&Packet::Unsubscribe(unsubscribe)).await?;
        let deadline = self.deadline();
        loop {
            match self.next_event(Wait::Until(deadline)).await? {
                Some(Event::UnsubAck(ack_id)) if ack_id == id => return Ok(()),
                other => self.note(other),
            }
        }
    }

    /// A packet identifier not in use by a stored publish; `None` when all
    /// 65,535 are.
    fn next_packet_id(&mut self) -> Option<PacketId> {
        let (outbox, tx) = (&self.outbox, &*self.tx);
        self.ids.allocate(|id| outbox.contains(tx, id))
    }

    /// Whether `max_in_flight` QoS 1 publishes await their PUBACK.
    fn window_full(&self) -> bool {
        self.outbox.count() >= usize::from(self.max_in_flight)
    }

    /// Waits until one message has been delivered to the handler, sending
    /// PINGREQ when keepalive requires it.
    pub async fn wait_msg(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.report_unreported()?;
        let oversize = loop {
            match self.next_event(Wait::Until(None)).await? {
                Some(Event::Message) => break None,
                Some(Event::Oversize(o)) => break Some(o),
                _ => {}
            }
        };
        // Send the PUBACK now, not with the next call `[MQTT-4.3.2-2]`.
        self.flush_pending().await?;
        oversize.map_or(Ok(()), |o| Err(Error::PacketTooLarge(o)))
    }

    /// Handles what has already arrived without waiting for more. Returns
    /// whether a message was delivered. Call it from the application's own
    /// loop; it sends PINGREQ when keepalive requires it.
    pub async fn check_msg(&mut self) -> Result<bool, Error<T::Error>> {
        self.ensure_connected()?;
        self.report_unreported()?;
        let oversize = loop {
            match self.next_event(Wait::No).await? {
                None => return Ok(false),
                Some(Event::Message) => break None,
                Some(Event::Oversize(o)) => break Some(o),
                Some(_) => {}
            }
        };
        // Send the PUBACK now, not with the next call `[MQTT-4.3.2-2]`.
        self.flush_pending().await?;
        oversize.map_or(Ok(true), |o| Err(Error::PacketTooLarge(o)))
    }

    fn report_unreported(&mut self) -> Result<(), Error<T::Error>> {
        match self.unreported.take() {
            Some(o) => Err(Error::PacketTooLarge(o)),
            None => Ok(()),
        }
    }

    /// Sends PINGREQ and waits for PINGRESP.
    pub async fn ping(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.send_ping().await?;
        let deadline = self.deadline();
        loop {
            match self.next_event(Wait::Until(deadline)).await? {
                Some(Event::PingResp) => return Ok(()),
                other => self.note(other),
            }
        }
    }

    /// Sends DISCONNECT: the broker discards the last will. The state
    /// becomes [`State::Disconnected`]; close the transport afterwards.
    pub async fn disconnect(&mut self) -> Result<(), Error<T::Error>> {
        if self.state == State::Connected {
            // Nothing may follow DISCONNECT `[MQTT-3.14.4-2]`, even when
            // this call is dropped: only calling it again finishes it.
            return self.send(&Packet::Disconnect, |c| c.state = State::Disconnected).await;
        } else if self.state != State::Disconnected || self.write.is_none() {
            return Err(Error::NotConnected);
        }
        self.flush_pending().await
    }
}
