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
//!
//! The client is a thin driver of the [`Engine`](crate::engine::Engine):
//! it moves bytes between the transport and the engine, reads the clock,
//! sleeps until the engine's next timer and hands messages to the handler.
//! Every protocol decision is the engine's.

pub(crate) mod call;
mod error;
mod io;
mod options;

pub use error::{Connected, Error, Oversize, ProtocolError, PublishError, State};
pub use options::ConnectOptions;

use embassy_time::Instant;
use embedded_io_async::{Read, Write};

use crate::engine::{Engine, Session};
use crate::packet::{PacketId, Publish, QoS, SubscribeReturnCode, SubscribeTopic};
use crate::store::{NoStore, Store};
use call::{Call, Command, Goal, Output};

pub use crate::engine::MAX_SUBSCRIBE_TOPICS;

/// SUBACK return codes, one per filter of a `subscribe_many` call.
pub type ReturnCodes = heapless::Vec<SubscribeReturnCode, MAX_SUBSCRIBE_TOPICS>;

/// An MQTT 3.1.1 client over the transport `T`, delivering messages to the
/// handler `H`.
///
/// The caller owns the buffers: `rx` holds one inbound packet (larger ones
/// are drained and reported), `tx` holds one outbound packet plus the QoS 1
/// and QoS 2 messages not yet complete, kept for resend after a reconnect.
/// With a store `S` ([`with_store`](Self::with_store)) they survive a
/// reboot too.
pub struct Client<'b, T, H, S = NoStore> {
    engine: Engine<'b>,
    transport: T,
    handler: H,
    store: S,
}

impl<'b, T, H> Client<'b, T, H>
where
    T: Read + Write,
    H: FnMut(&Publish<'_>),
{
    /// A client over `transport`, not yet connected.
    ///
    /// ```
    /// # fn example<T: embedded_io_async::Read + embedded_io_async::Write>(socket: T) {
    /// use umqtt::{Client, Publish};
    ///
    /// let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    /// let client = Client::new(socket, &mut rx, &mut tx, |msg: &Publish<'_>| {
    ///     // called for each message, borrowed from `rx`
    ///     let _ = (msg.topic, msg.payload);
    /// });
    /// # }
    /// ```
    pub fn new(transport: T, rx: &'b mut [u8], tx: &'b mut [u8], handler: H) -> Self {
        Self { engine: Engine::new(rx, tx), transport, handler, store: NoStore }
    }

    /// A client that continues the session a dropped client left in
    /// `session` (see [`into_session`](Self::into_session)): its QoS 1 and
    /// QoS 2 messages not yet complete, kept encoded in `tx`, are resent by
    /// the next [`connect`](Self::connect) with `clean_session` false, and
    /// its packet identifiers carry on. For QoS 2 reception, pass the
    /// earlier client's slots to [`receive_qos2`](Self::receive_qos2) too.
    ///
    /// `tx` must be the buffer the earlier client used, unchanged since;
    /// if it does not hold what `session` records, the stored messages are
    /// forgotten (never misread).
    ///
    /// This is how to reconnect over a transport that borrows buffers, such
    /// as a TLS stream: build a new stream and a new client per connection,
    /// handing the session over, instead of [`reconnect`](Self::reconnect).
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(old: T, new: T) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::{Client, ConnectOptions, Publish};
    ///
    /// let opts = ConnectOptions::new("sensor-01").clean_session(false);
    /// let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    /// let on_message = |_: &Publish<'_>| {};
    /// let mut client = Client::new(old, &mut rx, &mut tx, on_message);
    /// client.connect(&opts).await?;
    /// // ... the connection fails ...
    /// let session = client.into_session(); // `tx` keeps the unfinished messages
    /// let mut client = Client::with_session(new, &mut rx, &mut tx, on_message, session);
    /// client.connect(&opts).await?; // resends them
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_session(
        transport: T,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        handler: H,
        session: Session,
    ) -> Self {
        let mut client = Self::new(transport, rx, tx, handler);
        client.engine.resume(session);
        client
    }
}

impl<'b, T, H, S> Client<'b, T, H, S>
where
    T: Read + Write,
    H: FnMut(&Publish<'_>),
    S: Store,
{
    /// The same client keeping its session in `store` too, so that its
    /// unfinished QoS 1 and QoS 2 messages and its inbound QoS 2 state
    /// survive a reboot (see [`crate::store`]): the first
    /// [`connect`](Self::connect) loads what the store holds, and from
    /// then on every change is recorded before the packet it concerns is
    /// written. Pass the store by value or as `&mut`.
    ///
    /// ```
    /// # #[cfg(feature = "store-flash")]
    /// # fn f<T: embedded_io_async::Read + embedded_io_async::Write>(socket: T) {
    /// use umqtt::store::{FlashStore, RamFlash};
    /// let mut flash_bytes = [0xFFu8; 4 * 4096];
    /// let (mut rx, mut tx, mut record) = ([0u8; 512], [0u8; 512], [0u8; 528]);
    /// let flash = RamFlash::<4096>::new(&mut flash_bytes);
    /// let mut store = FlashStore::new(flash, 0..4 * 4096, &mut record).unwrap();
    /// let client = umqtt::Client::new(socket, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {})
    ///     .with_store(&mut store);
    /// # }
    /// ```
    pub fn with_store<S2: Store>(self, store: S2) -> Client<'b, T, H, S2> {
        let Self { mut engine, transport, handler, store: _ } = self;
        engine.persist();
        Client { engine, transport, handler, store }
    }

    /// Enables QoS 2 reception (and QoS 2 subscriptions), exactly once:
    /// `slots` keeps the packet identifiers of QoS 2 messages delivered and
    /// awaiting PUBREL; see [`Engine::receive_qos2`].
    ///
    /// ```
    /// # fn f<T: embedded_io_async::Read + embedded_io_async::Write>(socket: T) {
    /// let (mut rx, mut tx, mut slots) = ([0u8; 512], [0u8; 512], [0u16; 20]);
    /// let client = umqtt::Client::new(socket, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {})
    ///     .receive_qos2(&mut slots);
    /// # }
    /// ```
    #[must_use]
    pub fn receive_qos2(mut self, slots: &'b mut [u16]) -> Self {
        self.engine.receive_qos2(slots);
        self
    }

    /// Ends the client, keeping what [`with_session`](Self::with_session)
    /// needs to continue its session on a new transport. The stored
    /// messages stay in `tx`, which the caller gets back to lend to the
    /// next client.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(old: T, new: T) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::{Client, ConnectOptions, Publish};
    ///
    /// let opts = ConnectOptions::new("sensor-01").clean_session(false);
    /// let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    /// let on_message = |_: &Publish<'_>| {};
    /// let mut client = Client::new(old, &mut rx, &mut tx, on_message);
    /// client.connect(&opts).await?;
    /// // ... the connection fails ...
    /// let session = client.into_session(); // `tx` keeps the unfinished messages
    /// let mut client = Client::with_session(new, &mut rx, &mut tx, on_message, session);
    /// client.connect(&opts).await?; // resends them
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_session(self) -> Session {
        self.engine.session()
    }

    /// The stored QoS 1 and QoS 2 PUBLISHes not yet acknowledged (PUBACK
    /// or PUBREC), oldest first; see [`Engine::stored_publishes`]. After a
    /// store was loaded (the first `connect`), what a reboot left.
    pub fn stored_publishes(&self) -> impl Iterator<Item = Publish<'_>> {
        self.engine.stored_publishes()
    }

    /// The connection state.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::State;
    ///
    /// if client.state() == State::Failed {
    ///     // open a new transport and call `reconnect`
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn state(&self) -> State {
        self.engine.state()
    }

    /// The transport, for example to close it.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// // e.g. to close it after `disconnect`
    /// let transport: &mut T = client.transport_mut();
    /// # Ok(())
    /// # }
    /// ```
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Number of QoS 1 and QoS 2 messages not yet complete (awaiting
    /// PUBACK, PUBREC or PUBCOMP).
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// if client.in_flight() == 0 {
    ///     client.disconnect().await?; // nothing is left to resend
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn in_flight(&self) -> usize {
        self.engine.in_flight()
    }

    /// Whether the QoS 1 or QoS 2 message `id` is not yet complete.
    /// `false` means acknowledged, unless a clean-session connect discarded
    /// it in between: [`Connected::discarded`] counts those.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// let id = client.publish_no_wait("sensors/01/temp", b"21.5", QoS::AtLeastOnce, false).await?;
    /// // ... other work, other calls ...
    /// if !client.is_in_flight(id) {
    ///     // its PUBACK arrived
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_in_flight(&self, id: PacketId) -> bool {
        self.engine.is_in_flight(id)
    }

    /// Sends CONNECT and waits for CONNACK. Returns whether the broker
    /// resumed a stored session and how many messages were discarded.
    ///
    /// With `clean_session` false, the QoS 1 and QoS 2 messages not yet
    /// complete from an earlier connection are resent right after CONNACK
    /// `[MQTT-4.4.0-1]`: a PUBLISH with DUP=1 and its packet identifier, or
    /// the PUBREL of a QoS 2 message whose PUBREC had arrived. With
    /// `clean_session` true (the default) they are discarded
    /// `[MQTT-3.1.2-6]` and counted in [`Connected::discarded`].
    ///
    /// A `connect` dropped before it returned is resumed by the next call
    /// (with the same `opts`): CONNECT is sent once `[MQTT-3.1.0-2]` and the
    /// resend goes on where it stopped. To start over on a new transport,
    /// use [`reconnect`](Self::reconnect).
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::{ConnectOptions, QoS};
    ///
    /// let opts = ConnectOptions::new("sensor-01").keep_alive_secs(60).clean_session(false);
    /// let connected = client.connect(&opts).await?;
    /// if !connected.session_present {
    ///     // a new session: the broker kept no subscriptions
    ///     client.subscribe("sensors/01/cmd", QoS::AtLeastOnce).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(
        &mut self,
        opts: &ConnectOptions<'_>,
    ) -> Result<Connected, Error<T::Error>> {
        if S::PERSISTS && self.engine.state() != State::Connecting {
            self.store.load(&mut self.engine).await.map_err(Error::Store)?;
        }
        if self.engine.state() != State::Connecting {
            self.engine.connect(opts, Instant::now()).map_err(Error::widen)?;
        }
        match self.run(&mut Call::new(None, Goal::Connected)).await {
            Ok(Output::Connected(connected)) => Ok(connected),
            Ok(_) => Err(Error::NotConnected),
            // Even a timeout is fatal here: the link is not usable.
            Err(e) => {
                self.engine.on_transport_error();
                Err(e)
            }
        }
    }

    /// Replaces the transport with a freshly connected one and connects
    /// again with `opts`; see [`connect`](Self::connect).
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// #     socket: T,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// let opts = umqtt::ConnectOptions::new("sensor-01").clean_session(false);
    /// // `socket`: a new connection to the broker, after the old one failed
    /// let connected = client.reconnect(socket, &opts).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reconnect(
        &mut self,
        transport: T,
        opts: &ConnectOptions<'_>,
    ) -> Result<Connected, Error<T::Error>> {
        self.transport = transport;
        if S::PERSISTS {
            self.store.load(&mut self.engine).await.map_err(Error::Store)?;
        }
        self.engine.connect(opts, Instant::now()).map_err(Error::widen)?;
        self.connect(opts).await
    }

    /// Publishes `payload` to `topic`. QoS 0 returns once written; QoS 1
    /// once the PUBACK arrives; QoS 2 once the PUBCOMP arrives (PUBREC
    /// answered with PUBREL meanwhile). Messages that arrive meanwhile are
    /// delivered to the handler. The error says whether the message was
    /// stored for resend.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// match client.publish("sensors/01/temp", b"21.5", QoS::AtLeastOnce, false).await {
    ///     Ok(()) => {}                       // PUBACK received
    ///     Err(e) if e.stored.is_some() => {} // kept in `tx`: resent by a reconnect keeping the session
    ///     Err(e) => return Err(e.into()),    // not stored: publish it again later
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), PublishError<T::Error>> {
        self.ensure_connected()?;
        let mut call = call::publish(topic, payload, qos, retain, true);
        match self.run(&mut call).await {
            Ok(_) => Ok(()),
            Err(error) => Err(PublishError { error, stored: self.stored(&call) }),
        }
    }

    /// Publishes at QoS 1 or QoS 2 without waiting for the acknowledgment
    /// (pipelining) and returns the packet identifier. Waits only when
    /// `max_in_flight` messages are unfinished or `tx` is full. The message
    /// is kept in `tx` until complete, and resent after a reconnect that
    /// keeps the session; learn its fate with
    /// [`is_in_flight`](Self::is_in_flight) or wait with
    /// [`wait_acked`](Self::wait_acked) / [`wait_all_acked`](Self::wait_all_acked).
    /// QoS 0 is [`Error::InvalidArgument`]: use `publish` or
    /// [`queue_publish`](Self::queue_publish).
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// for reading in [b"21.5", b"21.6", b"21.7"] {
    ///     client.publish_no_wait("sensors/01/temp", reading, QoS::AtLeastOnce, false).await?;
    /// }
    /// client.wait_all_acked().await?; // every PUBACK received
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish_no_wait(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<PacketId, PublishError<T::Error>> {
        call::check_no_wait_qos(qos).map_err(Error::widen)?;
        self.ensure_connected()?;
        let mut call = call::publish(topic, payload, qos, retain, false);
        match self.run(&mut call).await {
            Ok(Output::Id(Some(id))) => Ok(id),
            Ok(_) => Err(PublishError { error: Error::NotConnected, stored: None }),
            Err(error) => Err(PublishError { error, stored: self.stored(&call) }),
        }
    }

    /// Queues a publish in `tx` without writing it, so that several go out
    /// in one `write` (one system call, one TCP segment): the next call that
    /// writes — [`flush`](Self::flush), `publish_no_wait`, or any other —
    /// sends every queued packet at once. Returns the packet identifier of a
    /// QoS 1 or 2 publish (stored for resend like [`publish_no_wait`]'s),
    /// `None` for QoS 0. On error nothing was queued nor stored.
    ///
    /// Never waits: [`Error::WouldBlock`] when it cannot queue now (the
    /// in-flight window or `tx` is full, or a packet other than queued
    /// publishes is being written); then call an awaiting method, e.g.
    /// `publish_no_wait` for the same message, which makes room.
    ///
    /// A QoS 1 or 2 publish cannot be queued behind a queued QoS 0 one (the
    /// outbox must stay contiguous): that is `WouldBlock` too.
    ///
    /// [`publish_no_wait`]: Self::publish_no_wait
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::{Error, QoS};
    ///
    /// for reading in [b"21.5", b"21.6", b"21.7"] {
    ///     match client.queue_publish("sensors/01/temp", reading, QoS::AtMostOnce, false) {
    ///         Ok(_) => {}
    ///         Err(Error::WouldBlock) => break, // no room now: flush, then queue the rest
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// client.flush().await?; // one write for all of them
    /// # Ok(())
    /// # }
    /// ```
    pub fn queue_publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<PacketId>, Error<T::Error>> {
        match self.engine.publish(topic, payload, qos, retain) {
            Err(crate::Error::BufferTooSmall { .. }) => Err(Error::WouldBlock),
            queued => queued.map_err(Error::widen),
        }
    }

    /// Writes whatever is queued or was left half written by a dropped
    /// call. Nothing is written on a failed connection.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// client.queue_publish("sensors/01/temp", b"21.5", QoS::AtMostOnce, false)?;
    /// client.queue_publish("sensors/01/hum", b"40", QoS::AtMostOnce, false)?;
    /// client.flush().await?; // both in one write
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.run(&mut Call::new(None, Goal::Written)).await.map(|_| ())
    }

    /// Waits until the QoS 1 or QoS 2 message `id` is complete.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// let id = client.publish_no_wait("sensors/01/alarm", b"on", QoS::ExactlyOnce, false).await?;
    /// client.wait_acked(id).await?; // PUBCOMP received
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_acked(&mut self, id: PacketId) -> Result<(), Error<T::Error>> {
        if !self.engine.is_in_flight(id) {
            return Ok(());
        }
        self.ensure_connected()?;
        self.run(&mut Call::completion(id)).await.map(|_| ())
    }

    /// Waits until every QoS 1 and QoS 2 message is complete; the ack
    /// timeout counts from the last one completed.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// client.publish_no_wait("sensors/01/temp", b"21.5", QoS::AtLeastOnce, false).await?;
    /// client.publish_no_wait("sensors/01/alarm", b"on", QoS::ExactlyOnce, false).await?;
    /// client.wait_all_acked().await?;
    /// assert_eq!(client.in_flight(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_all_acked(&mut self) -> Result<(), Error<T::Error>> {
        if self.engine.in_flight() == 0 {
            return Ok(());
        }
        self.ensure_connected()?;
        self.run(&mut Call::new(None, Goal::AllCompleted)).await.map(|_| ())
    }

    /// Subscribes to `filter` and returns the QoS the broker granted, or
    /// [`Error::SubscribeRefused`] for return code 0x80. QoS 2 needs
    /// [`receive_qos2`](Self::receive_qos2).
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// let granted = client.subscribe("sensors/+/cmd", QoS::AtLeastOnce).await?;
    /// if granted == QoS::AtMostOnce {
    ///     // the broker may grant less than asked
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<QoS, Error<T::Error>> {
        let codes = self.subscribe_many(&[SubscribeTopic { filter, qos }]).await?;
        match codes.first() {
            Some(SubscribeReturnCode::Success(granted)) => Ok(*granted),
            _ => Err(Error::SubscribeRefused),
        }
    }

    /// Subscribes to up to [`MAX_SUBSCRIBE_TOPICS`] filters in one
    /// SUBSCRIBE and returns one return code per filter (a refusal is
    /// [`SubscribeReturnCode::Failure`]). QoS 2 needs
    /// [`receive_qos2`](Self::receive_qos2).
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::{QoS, SubscribeReturnCode, SubscribeTopic};
    ///
    /// let codes = client
    ///     .subscribe_many(&[
    ///         SubscribeTopic { filter: "sensors/+/cmd", qos: QoS::AtLeastOnce },
    ///         SubscribeTopic { filter: "config/#", qos: QoS::AtMostOnce },
    ///     ])
    ///     .await?;
    /// let refused = codes.iter().filter(|&&code| code == SubscribeReturnCode::Failure).count();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe_many(
        &mut self,
        topics: &[SubscribeTopic<'_>],
    ) -> Result<ReturnCodes, Error<T::Error>> {
        self.ensure_connected()?;
        let mut call = Call::new(Some(Command::Subscribe(topics)), Goal::SubAck);
        match self.run(&mut call).await? {
            Output::Codes(codes) => Ok(codes.unpack()),
            _ => Err(Error::NotConnected),
        }
    }

    /// Unsubscribes from `filter` and waits for UNSUBACK.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// client.unsubscribe("sensors/+/cmd").await?; // UNSUBACK received
    /// # Ok(())
    /// # }
    /// ```
    pub async fn unsubscribe(&mut self, filter: &str) -> Result<(), Error<T::Error>> {
        self.unsubscribe_many(&[filter]).await
    }

    /// Unsubscribes from several filters in one UNSUBSCRIBE and waits for
    /// UNSUBACK.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// client.unsubscribe_many(&["sensors/+/cmd", "config/#"]).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn unsubscribe_many(&mut self, filters: &[&str]) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        let mut call = Call::new(Some(Command::Unsubscribe(filters)), Goal::UnsubAck);
        self.run(&mut call).await.map(|_| ())
    }

    /// Waits until one message has been delivered to the handler, sending
    /// PINGREQ when keepalive requires it. Its acknowledgment `[MQTT-4.3.2-2]`
    /// is written before this returns, unless more messages have already
    /// arrived whole: then it stays queued and goes out in one write with
    /// theirs, from the next call (any call writes what is queued first;
    /// `flush` writes only that). So a burst costs one write per read, not
    /// one per message.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// loop {
    ///     client.wait_msg().await?; // the handler has seen one more message
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_msg(&mut self) -> Result<(), Error<T::Error>> {
        self.report_oversize()?;
        self.run(&mut Call::new(None, Goal::Message)).await?;
        self.report_oversize()
    }

    /// Handles what has already arrived without waiting for more. Returns
    /// whether a message was delivered (its acknowledgment written as by
    /// [`wait_msg`](Self::wait_msg)). Call
    /// it from the application's own loop; it sends PINGREQ when keepalive
    /// requires it.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// loop {
    ///     while client.check_msg().await? {} // every message that has arrived
    ///     // ... the application's own work ...
    /// #   break;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn check_msg(&mut self) -> Result<bool, Error<T::Error>> {
        self.report_oversize()?;
        let output = self.run(&mut Call::new(None, Goal::MessageNow)).await?;
        let delivered = matches!(output, Output::Delivered(true));
        self.report_oversize().map(|()| delivered)
    }

    /// Whether the message of a failed publish `call` is kept (a store
    /// that refused it took it back).
    fn stored(&self, call: &Call<'_>) -> Option<PacketId> {
        call.id().filter(|id| self.engine.is_in_flight(*id))
    }

    /// An oversize packet met since the last report, as an error.
    fn report_oversize(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.engine.take_oversize().map_or(Ok(()), |o| Err(Error::PacketTooLarge(o)))
    }

    /// Sends PINGREQ and waits for PINGRESP.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// client.ping().await?; // the broker answered PINGRESP
    /// # Ok(())
    /// # }
    /// ```
    pub async fn ping(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.run(&mut Call::new(Some(Command::PingReq), Goal::PingResp)).await.map(|_| ())
    }

    /// Sends DISCONNECT: the broker discards the last will. The state
    /// becomes [`State::Disconnected`]; close the transport afterwards.
    ///
    /// ```
    /// # use embedded_io_async::{Read, Write};
    /// # async fn example<T: Read + Write>(
    /// #     mut client: umqtt::Client<'_, T, impl FnMut(&umqtt::Publish<'_>)>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// client.disconnect().await?;
    /// // the broker discards the last will; now close the transport
    /// # Ok(())
    /// # }
    /// ```
    pub async fn disconnect(&mut self) -> Result<(), Error<T::Error>> {
        let command = match self.engine.state() {
            // Nothing may follow DISCONNECT `[MQTT-3.14.4-2]`, even when
            // this call is dropped: only calling it again finishes it.
            State::Connected => Some(Command::Disconnect),
            State::Disconnected if self.engine.poll_transmit().is_some() => None,
            _ => return Err(Error::NotConnected),
        };
        self.run(&mut Call::new(command, Goal::Written)).await.map(|_| ())
    }
}
