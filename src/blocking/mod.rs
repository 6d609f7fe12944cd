//! The blocking client: the same API and rules as the async
//! [`Client`](crate::Client), for firmware without an executor (RTIC, bare
//! super-loops, esp-idf threads) and host tools over `std::net`.
//!
//! It drives the same [`Engine`] through the same per-call state machine
//! as the async client, over an `embedded_io` 0.7 transport that can wait
//! for readable bytes with a limit ([`Transport`]), with time from a
//! caller-supplied [`Clock`], so it needs no embassy time driver.
//!
//! ```no_run
//! # #[cfg(feature = "std")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use umqtt::blocking::{Client, StdClock};
//! use umqtt::{ConnectOptions, QoS};
//!
//! let socket = std::net::TcpStream::connect("127.0.0.1:1883")?;
//! let transport = embedded_io_adapters::std::FromStd::new(socket);
//! let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
//! let mut client = Client::new(transport, &mut rx, &mut tx, |msg: &umqtt::Publish<'_>| {
//!     println!("{}: {:?}", msg.topic, msg.payload);
//! }, StdClock::new());
//! client.connect(&ConnectOptions::new("host-tool"))?;
//! client.subscribe("sensors/+/temp", QoS::AtLeastOnce)?;
//! client.publish("sensors/01/temp", b"21.5", QoS::AtLeastOnce, false)?;
//! loop {
//!     client.wait_msg()?;
//! }
//! # }
//! # #[cfg(not(feature = "std"))]
//! # fn main() {}
//! ```

#[cfg(feature = "std")]
mod std_support;

#[cfg(feature = "std")]
pub use std_support::StdClock;

use embassy_time::{Duration, Instant};
use embedded_io::{Read, Write};

use crate::client::call::{self, Call, Command, Goal, Output, Step, Wake};
use crate::engine::{Engine, Session, Transmit};
use crate::packet::{PacketId, Publish, QoS, SubscribeReturnCode, SubscribeTopic};
use crate::store::{BlockingStore, NoStore};
use crate::{ConnectOptions, Connected, Error, PublishError, ReturnCodes, State};

/// The time source of the blocking client: any monotonic clock.
///
/// On a microcontroller, a hardware timer; on the host, `StdClock`
/// (feature `std`).
pub trait Clock {
    /// The current instant (from any fixed origin).
    fn now(&self) -> Instant;
}

/// A blocking transport that can wait for readable bytes with a limit,
/// which the client needs to send PINGREQ on time while waiting and to
/// make [`check_msg`](Client::check_msg) return at once when nothing has
/// arrived.
///
/// Implemented for `embedded_io_adapters::std::FromStd<std::net::TcpStream>`
/// (feature `std`). Over a transport with `embedded_io::ReadReady`:
///
/// ```
/// # use embassy_time::Duration;
/// # struct Socket;
/// # impl embedded_io::ErrorType for Socket { type Error = embedded_io::ErrorKind; }
/// # impl embedded_io::Read for Socket { fn read(&mut self, _: &mut [u8]) -> Result<usize, Self::Error> { Ok(0) } }
/// # impl embedded_io::Write for Socket { fn write(&mut self, b: &[u8]) -> Result<usize, Self::Error> { Ok(b.len()) } fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) } }
/// # impl embedded_io::ReadReady for Socket { fn read_ready(&mut self) -> Result<bool, Self::Error> { Ok(true) } }
/// # fn poll_network() {}
/// impl umqtt::blocking::Transport for Socket {
///     fn wait_readable(&mut self, timeout: Option<Duration>) -> Result<bool, Self::Error> {
///         let start = embassy_time::Instant::now();
///         loop {
///             if embedded_io::ReadReady::read_ready(self)? {
///                 return Ok(true);
///             }
///             if timeout.is_some_and(|t| start.elapsed() >= t) {
///                 return Ok(false);
///             }
///             poll_network(); // e.g. run the network stack, or sleep until an interrupt
///         }
///     }
/// }
/// ```
pub trait Transport: Read + Write {
    /// Waits until a `read` would not block (bytes have arrived, or end of
    /// stream), at most `timeout` (`None`: no limit; zero: do not wait).
    /// Returns whether it is readable.
    fn wait_readable(&mut self, timeout: Option<Duration>) -> Result<bool, Self::Error>;
}

/// A blocking MQTT 3.1.1 client over the transport `T`, delivering
/// messages to the handler `H`, with time from the clock `C`; see the
/// [module docs](self). The buffers are used as by the async
/// [`Client`](crate::Client). With a store `S`
/// ([`with_store`](Self::with_store)) the session survives a reboot.
pub struct Client<'b, T, H, C, S = NoStore> {
    engine: Engine<'b>,
    transport: T,
    handler: H,
    clock: C,
    store: S,
}

impl<'b, T, H, C> Client<'b, T, H, C>
where
    T: Transport,
    H: FnMut(&Publish<'_>),
    C: Clock,
{
    /// A client over `transport`, not yet connected.
    ///
    /// ```
    /// # fn example<T: umqtt::blocking::Transport, C: umqtt::blocking::Clock>(socket: T, clock: C) {
    /// // `clock`: a hardware timer, or `umqtt::blocking::StdClock` on a host (feature `std`)
    /// use umqtt::blocking::Client;
    /// use umqtt::Publish;
    ///
    /// let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    /// let client = Client::new(socket, &mut rx, &mut tx, |msg: &Publish<'_>| {
    ///     // called for each message, borrowed from `rx`
    ///     let _ = (msg.topic, msg.payload);
    /// }, clock);
    /// # }
    /// ```
    pub fn new(transport: T, rx: &'b mut [u8], tx: &'b mut [u8], handler: H, clock: C) -> Self {
        Self { engine: Engine::new(rx, tx), transport, handler, clock, store: NoStore }
    }

    /// A client that continues the session a dropped client left; see
    /// [`Client::with_session`](crate::Client::with_session).
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock + Clone>(old: T, new: T, clock: C)
    /// # -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::blocking::Client;
    /// use umqtt::{ConnectOptions, Publish};
    ///
    /// let opts = ConnectOptions::new("sensor-01").clean_session(false);
    /// let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    /// let on_message = |_: &Publish<'_>| {};
    /// let mut client = Client::new(old, &mut rx, &mut tx, on_message, clock.clone());
    /// client.connect(&opts)?;
    /// // ... the connection fails ...
    /// let session = client.into_session(); // `tx` keeps the unfinished messages
    /// let mut client = Client::with_session(new, &mut rx, &mut tx, on_message, clock, session);
    /// client.connect(&opts)?; // resends them
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_session(
        transport: T,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        handler: H,
        clock: C,
        session: Session,
    ) -> Self {
        let mut client = Self::new(transport, rx, tx, handler, clock);
        client.engine.resume(session);
        client
    }
}

impl<'b, T, H, C, S> Client<'b, T, H, C, S>
where
    T: Transport,
    H: FnMut(&Publish<'_>),
    C: Clock,
    S: BlockingStore,
{
    /// The same client keeping its session in `store` too; see
    /// [`Client::with_store`](crate::Client::with_store).
    pub fn with_store<S2: BlockingStore>(self, store: S2) -> Client<'b, T, H, C, S2> {
        let Self { mut engine, transport, handler, clock, store: _ } = self;
        engine.persist();
        Client { engine, transport, handler, clock, store }
    }

    /// Enables QoS 2 reception, exactly once; see
    /// [`Client::receive_qos2`](crate::Client::receive_qos2).
    ///
    /// ```
    /// # fn example<T: umqtt::blocking::Transport, C: umqtt::blocking::Clock>(socket: T, clock: C) {
    /// let (mut rx, mut tx, mut slots) = ([0u8; 512], [0u8; 512], [0u16; 20]);
    /// let client = umqtt::blocking::Client::new(socket, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {}, clock)
    ///     .receive_qos2(&mut slots);
    /// # }
    /// ```
    #[must_use]
    pub fn receive_qos2(mut self, slots: &'b mut [u16]) -> Self {
        self.engine.receive_qos2(slots);
        self
    }

    /// Ends the client, keeping its session for
    /// [`with_session`](Self::with_session).
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock + Clone>(old: T, new: T, clock: C)
    /// # -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::blocking::Client;
    /// use umqtt::{ConnectOptions, Publish};
    ///
    /// let opts = ConnectOptions::new("sensor-01").clean_session(false);
    /// let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    /// let on_message = |_: &Publish<'_>| {};
    /// let mut client = Client::new(old, &mut rx, &mut tx, on_message, clock.clone());
    /// client.connect(&opts)?;
    /// // ... the connection fails ...
    /// let session = client.into_session(); // `tx` keeps the unfinished messages
    /// let mut client = Client::with_session(new, &mut rx, &mut tx, on_message, clock, session);
    /// client.connect(&opts)?; // resends them
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_session(self) -> Session {
        self.engine.session()
    }

    /// The connection state.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
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
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// // e.g. to close it after `disconnect`
    /// let transport: &mut T = client.transport_mut();
    /// # Ok(())
    /// # }
    /// ```
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Number of QoS 1 and QoS 2 messages not yet complete.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// if client.in_flight() == 0 {
    ///     client.disconnect()?; // nothing is left to resend
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn in_flight(&self) -> usize {
        self.engine.in_flight()
    }

    /// Whether the QoS 1 or QoS 2 message `id` is not yet complete; see
    /// [`Client::is_in_flight`](crate::Client::is_in_flight).
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// let id = client.publish_no_wait("sensors/01/temp", b"21.5", QoS::AtLeastOnce, false)?;
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

    /// Sends CONNECT and waits for CONNACK (then resends the stored
    /// messages when the session is kept); see
    /// [`Client::connect`](crate::Client::connect).
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::{ConnectOptions, QoS};
    ///
    /// let opts = ConnectOptions::new("sensor-01").keep_alive_secs(60).clean_session(false);
    /// let connected = client.connect(&opts)?;
    /// if !connected.session_present {
    ///     // a new session: the broker kept no subscriptions
    ///     client.subscribe("sensors/01/cmd", QoS::AtLeastOnce)?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(&mut self, opts: &ConnectOptions<'_>) -> Result<Connected, Error<T::Error>> {
        if S::PERSISTS && self.engine.state() != State::Connecting {
            self.store.load(&mut self.engine).map_err(Error::Store)?;
        }
        if self.engine.state() != State::Connecting {
            self.engine.connect(opts, self.clock.now()).map_err(Error::widen)?;
        }
        match self.run(&mut Call::new(None, Goal::Connected)) {
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
    /// again with `opts`.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// #     socket: T,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// let opts = umqtt::ConnectOptions::new("sensor-01").clean_session(false);
    /// // `socket`: a new connection to the broker, after the old one failed
    /// let connected = client.reconnect(socket, &opts)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn reconnect(
        &mut self,
        transport: T,
        opts: &ConnectOptions<'_>,
    ) -> Result<Connected, Error<T::Error>> {
        self.transport = transport;
        if S::PERSISTS {
            self.store.load(&mut self.engine).map_err(Error::Store)?;
        }
        self.engine.connect(opts, self.clock.now()).map_err(Error::widen)?;
        self.connect(opts)
    }

    /// Publishes `payload` to `topic`: QoS 0 returns once written, QoS 1 at
    /// PUBACK, QoS 2 at PUBCOMP. The error says whether the message was
    /// stored for resend.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// match client.publish("sensors/01/temp", b"21.5", QoS::AtLeastOnce, false) {
    ///     Ok(()) => {}                       // PUBACK received
    ///     Err(e) if e.stored.is_some() => {} // kept in `tx`: resent by a reconnect keeping the session
    ///     Err(e) => return Err(e.into()),    // not stored: publish it again later
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), PublishError<T::Error>> {
        self.ensure_connected()?;
        let mut call = call::publish(topic, payload, qos, retain, true);
        match self.run(&mut call) {
            Ok(_) => Ok(()),
            Err(error) => Err(PublishError {
                error,
                stored: call.id().filter(|id| self.engine.is_in_flight(*id)),
            }),
        }
    }

    /// Publishes at QoS 1 or 2 without waiting for the acknowledgment and
    /// returns the packet identifier; see
    /// [`Client::publish_no_wait`](crate::Client::publish_no_wait).
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// for reading in [b"21.5", b"21.6", b"21.7"] {
    ///     client.publish_no_wait("sensors/01/temp", reading, QoS::AtLeastOnce, false)?;
    /// }
    /// client.wait_all_acked()?; // every PUBACK received
    /// # Ok(())
    /// # }
    /// ```
    pub fn publish_no_wait(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<PacketId, PublishError<T::Error>> {
        call::check_no_wait_qos(qos).map_err(Error::widen)?;
        self.ensure_connected()?;
        let mut call = call::publish(topic, payload, qos, retain, false);
        match self.run(&mut call) {
            Ok(Output::Id(Some(id))) => Ok(id),
            Ok(_) => Err(PublishError { error: Error::NotConnected, stored: None }),
            Err(error) => Err(PublishError {
                error,
                stored: call.id().filter(|id| self.engine.is_in_flight(*id)),
            }),
        }
    }

    /// Writes whatever is queued: acknowledgments `wait_msg` left for the
    /// messages that arrived with the last one, or a write a failed call
    /// left half done. Nothing is written on a failed connection.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// // after `wait_msg`, write the acknowledgments it left queued now
    /// // rather than with the next call
    /// client.wait_msg()?;
    /// client.flush()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn flush(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.run(&mut Call::new(None, Goal::Written)).map(|_| ())
    }

    /// Waits until the QoS 1 or QoS 2 message `id` is complete.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// let id = client.publish_no_wait("sensors/01/alarm", b"on", QoS::ExactlyOnce, false)?;
    /// client.wait_acked(id)?; // PUBCOMP received
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_acked(&mut self, id: PacketId) -> Result<(), Error<T::Error>> {
        if !self.engine.is_in_flight(id) {
            return Ok(());
        }
        self.ensure_connected()?;
        self.run(&mut Call::completion(id)).map(|_| ())
    }

    /// Waits until every QoS 1 and QoS 2 message is complete.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// client.publish_no_wait("sensors/01/temp", b"21.5", QoS::AtLeastOnce, false)?;
    /// client.publish_no_wait("sensors/01/alarm", b"on", QoS::ExactlyOnce, false)?;
    /// client.wait_all_acked()?;
    /// assert_eq!(client.in_flight(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_all_acked(&mut self) -> Result<(), Error<T::Error>> {
        if self.engine.in_flight() == 0 {
            return Ok(());
        }
        self.ensure_connected()?;
        self.run(&mut Call::new(None, Goal::AllCompleted)).map(|_| ())
    }

    /// Subscribes to `filter` and returns the granted QoS, or
    /// [`Error::SubscribeRefused`].
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::QoS;
    ///
    /// let granted = client.subscribe("sensors/+/cmd", QoS::AtLeastOnce)?;
    /// if granted == QoS::AtMostOnce {
    ///     // the broker may grant less than asked
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<QoS, Error<T::Error>> {
        let codes = self.subscribe_many(&[SubscribeTopic { filter, qos }])?;
        match codes.first() {
            Some(SubscribeReturnCode::Success(granted)) => Ok(*granted),
            _ => Err(Error::SubscribeRefused),
        }
    }

    /// Subscribes to several filters in one SUBSCRIBE; one return code
    /// per filter.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// use umqtt::{QoS, SubscribeReturnCode, SubscribeTopic};
    ///
    /// let codes = client
    ///     .subscribe_many(&[
    ///         SubscribeTopic { filter: "sensors/+/cmd", qos: QoS::AtLeastOnce },
    ///         SubscribeTopic { filter: "config/#", qos: QoS::AtMostOnce },
    ///     ])
    ///     ?;
    /// let refused = codes.iter().filter(|&&code| code == SubscribeReturnCode::Failure).count();
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe_many(
        &mut self,
        topics: &[SubscribeTopic<'_>],
    ) -> Result<ReturnCodes, Error<T::Error>> {
        self.ensure_connected()?;
        match self.run(&mut Call::new(Some(Command::Subscribe(topics)), Goal::SubAck))? {
            Output::Codes(codes) => Ok(codes.unpack()),
            _ => Err(Error::NotConnected),
        }
    }

    /// Unsubscribes from `filter` and waits for UNSUBACK.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// client.unsubscribe("sensors/+/cmd")?; // UNSUBACK received
    /// # Ok(())
    /// # }
    /// ```
    pub fn unsubscribe(&mut self, filter: &str) -> Result<(), Error<T::Error>> {
        self.unsubscribe_many(&[filter])
    }

    /// Unsubscribes from several filters in one UNSUBSCRIBE and waits for
    /// UNSUBACK.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// client.unsubscribe_many(&["sensors/+/cmd", "config/#"])?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn unsubscribe_many(&mut self, filters: &[&str]) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        let mut call = Call::new(Some(Command::Unsubscribe(filters)), Goal::UnsubAck);
        self.run(&mut call).map(|_| ())
    }

    /// Blocks until one message has been delivered to the handler, sending
    /// PINGREQ when keepalive requires it; the acknowledgment is written as
    /// by the async [`Client::wait_msg`](crate::Client::wait_msg).
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// loop {
    ///     client.wait_msg()?; // the handler has seen one more message
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_msg(&mut self) -> Result<(), Error<T::Error>> {
        self.report_oversize()?;
        self.run(&mut Call::new(None, Goal::Message))?;
        self.report_oversize()
    }

    /// Handles what has already arrived without waiting
    /// ([`Transport::wait_readable`] with a zero timeout). Returns whether
    /// a message was delivered.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// loop {
    ///     while client.check_msg()? {} // every message that has arrived
    ///     // ... the application's own work ...
    /// #   break;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn check_msg(&mut self) -> Result<bool, Error<T::Error>> {
        self.report_oversize()?;
        let output = self.run(&mut Call::new(None, Goal::MessageNow))?;
        let delivered = matches!(output, Output::Delivered(true));
        self.report_oversize().map(|()| delivered)
    }

    /// Sends PINGREQ and waits for PINGRESP.
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// client.ping()?; // the broker answered PINGRESP
    /// # Ok(())
    /// # }
    /// ```
    pub fn ping(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.run(&mut Call::new(Some(Command::PingReq), Goal::PingResp)).map(|_| ())
    }

    /// Sends DISCONNECT; the state becomes [`State::Disconnected`].
    ///
    /// ```
    /// # use umqtt::blocking::{Clock, Transport};
    /// # fn example<T: Transport, C: Clock>(
    /// #     mut client: umqtt::blocking::Client<'_, T, impl FnMut(&umqtt::Publish<'_>), C>,
    /// # ) -> Result<(), umqtt::Error<T::Error>> {
    /// client.disconnect()?;
    /// // the broker discards the last will; now close the transport
    /// # Ok(())
    /// # }
    /// ```
    pub fn disconnect(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.run(&mut Call::new(Some(Command::Disconnect), Goal::Written)).map(|_| ())
    }

    fn ensure_connected(&self) -> Result<(), Error<T::Error>> {
        if self.engine.state() == State::Connected { Ok(()) } else { Err(Error::NotConnected) }
    }

    fn report_oversize(&mut self) -> Result<(), Error<T::Error>> {
        self.ensure_connected()?;
        self.engine.take_oversize().map_or(Ok(()), |o| Err(Error::PacketTooLarge(o)))
    }

    /// Runs `call` to its end: the blocking twin of the async client's
    /// loop, over the same [`call::step`].
    fn run(&mut self, call: &mut Call<'_>) -> Result<Output, Error<T::Error>> {
        loop {
            let clock = &self.clock;
            let step = call::step(&mut self.engine, call, &|| clock.now(), &mut self.handler);
            let mut if_ready = false;
            let timeout = match step.map_err(Error::widen)? {
                Step::Done(output) => return Ok(output),
                // Never without a store (the engine persists only with one).
                Step::Store if !S::PERSISTS => continue,
                Step::Store => {
                    let Some(op) = self.engine.poll_store() else { continue };
                    match self.store.record(op) {
                        Ok(()) => self.engine.on_stored(),
                        Err(e) => {
                            self.engine.on_store_failed();
                            return Err(Error::Store(e));
                        }
                    }
                    continue;
                }
                Step::Transmit => {
                    let result = match self.engine.poll_transmit() {
                        Some(Transmit::Write(bytes)) => self.transport.write(bytes),
                        _ => self.transport.flush().map(|()| 0),
                    };
                    self.wrote(result)?;
                    continue;
                }
                Step::Read(Wake::IfReady) => {
                    if_ready = true;
                    Some(Duration::from_ticks(0))
                }
                Step::Read(Wake::At(at)) => {
                    let now = self.clock.now();
                    at.map(|at| at.checked_duration_since(now).unwrap_or(Duration::from_ticks(0)))
                }
                Step::Read(Wake::Now) => continue,
            };
            let readable = self.transport.wait_readable(timeout).map_err(|e| self.failed(e))?;
            if readable {
                self.fill()?;
            } else if if_ready {
                return Ok(Output::Delivered(false));
            }
            // Otherwise the timer is due: the next step runs it.
        }
    }

    /// Takes the result of a write (or of a flush, `Ok(0)`).
    fn wrote(&mut self, result: Result<usize, T::Error>) -> Result<(), Error<T::Error>> {
        let n = result.map_err(|e| self.failed(e))?;
        if self.engine.poll_transmit() == Some(Transmit::Flush) {
            self.engine.on_flushed(self.clock.now());
            Ok(())
        } else {
            self.engine.on_written(n).map_err(Error::widen)
        }
    }

    /// Reads what has arrived into the engine.
    fn fill(&mut self) -> Result<(), Error<T::Error>> {
        let buf = self.engine.read_buf().map_err(Error::widen)?;
        let n = self.transport.read(buf).map_err(|e| self.failed(e))?;
        self.engine.on_read(n, self.clock.now()).map_err(Error::widen)
    }

    /// A transport error: the connection is over.
    fn failed(&mut self, e: T::Error) -> Error<T::Error> {
        self.engine.on_transport_error();
        Error::Transport(e)
    }
}
