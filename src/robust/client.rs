//! [`Client`]: the `Copy` handle other tasks use to publish, subscribe and
//! receive through the [`Runner`](super::Runner)'s connection.

use core::fmt;
use core::future::poll_fn;
use core::task::Poll;

use super::state::{Cmd, CmdKind, Shared, View, Waiter, Want, lock};
use super::{LinkState, Stats};
use crate::QoS;
use crate::packet::Malformed;
use crate::store::StoreError;

/// Why a handle call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The runner has stopped ([`LinkState::Failed`]).
    Stopped,
    /// The arguments would make an invalid packet (a wildcard in a topic
    /// name, an empty topic, QoS 2 without receive slots, ...). Nothing
    /// was sent.
    InvalidArgument(Malformed),
    /// The arguments do not fit the command slot, or the packet the
    /// transmit buffer, or the message the caller's buffer: `needed`
    /// bytes. Nothing was sent (nothing received was dropped).
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The remembered-subscriptions storage is full. Nothing was sent.
    SubscriptionsFull,
    /// The broker answered SUBSCRIBE with 0x80 (failure); the filter is
    /// forgotten.
    SubscribeRefused,
    /// The connection ended before the SUBACK or UNSUBACK of this call
    /// came. A subscription stays remembered and is sent again after the
    /// reconnect; an unsubscription may have to be repeated.
    ConnectionLost,
    /// The message was stored, but a reconnect with `clean_session` set
    /// discarded it `[MQTT-3.1.2-6]`: it may not have been delivered.
    Discarded,
    /// The runner's store could not record the message (full, or the
    /// flash failed): it was neither sent nor kept, and no older one was
    /// dropped.
    Store(StoreError),
    /// A received message was larger than the mailbox; it was
    /// acknowledged and dropped (give the mailbox the size of `rx`).
    MessageTooLarge {
        /// Its topic plus payload, in bytes.
        needed: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped => f.write_str("the always-connected runner has stopped"),
            Self::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Self::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} bytes needed"),
            Self::SubscriptionsFull => f.write_str("no room to remember another subscription"),
            Self::SubscribeRefused => f.write_str("the broker refused the subscription"),
            Self::ConnectionLost => f.write_str("the connection ended before the acknowledgment"),
            Self::Discarded => f.write_str("a clean-session reconnect discarded the message"),
            Self::Store(e) => write!(f, "the message could not be stored: {e}"),
            Self::MessageTooLarge { needed } => {
                write!(f, "a received message of {needed} bytes exceeded the mailbox")
            }
        }
    }
}

impl core::error::Error for Error {}

/// A received message, copied out of the mailbox into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Message<'b> {
    /// The topic name.
    pub topic: &'b str,
    /// The payload.
    pub payload: &'b [u8],
    /// The QoS it was delivered at.
    pub qos: QoS,
    /// The RETAIN flag.
    pub retain: bool,
}

/// A handle on the always-connected client: `Copy`, usable from any number
/// of tasks at once. Each call is copied into the shared command slot and
/// carried out by the [`Runner`](super::Runner), whole packet by whole
/// packet, in the order the calls of one task come.
///
/// While the link is down, a call waits (in the slot, then for its
/// acknowledgment) until the runner has reconnected: a QoS 1 or 2 publish
/// returns only once the broker acknowledged it, after as many reconnects
/// as it takes. Bound the wait with `embassy_time::with_timeout` if needed;
/// a call dropped before the runner took it sends nothing, one dropped
/// later stays stored and is still delivered.
#[derive(Clone, Copy)]
pub struct Client<'r> {
    pub(crate) shared: &'r dyn Shared,
}

impl fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("state", &self.state()).finish()
    }
}

/// Frees a waiting call's place when the call ends or is dropped, and
/// takes its command back if the runner has not taken it yet.
struct Ticket<'r> {
    shared: &'r dyn Shared,
    ticket: u32,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let ticket = self.ticket;
        lock(self.shared, (), |v| {
            if v.head.cmd.is_some_and(|c| c.ticket == ticket) {
                v.head.cmd = None;
            }
            if let Some(w) = v.waiter(ticket) {
                w.ticket = 0;
                w.outcome = None;
            }
            v.head.handles.wake();
        });
    }
}

impl<'r> Client<'r> {
    /// Publishes a message: returns once written (QoS 0) or once
    /// acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP), across reconnects.
    /// With `clean_session(false)` a stored message is never lost; with a
    /// clean session a reconnect discards it ([`Error::Discarded`]).
    ///
    /// ```no_run
    /// # async fn f(client: umqtt::robust::Client<'_>) -> Result<(), umqtt::robust::Error> {
    /// use umqtt::QoS;
    /// client.publish("telemetry/sensor-1", b"21.5", QoS::AtLeastOnce, false).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        self.call(CmdKind::Publish { qos, retain }, topic, payload).await
    }

    /// Subscribes to `filter` at `qos` and remembers it: after a reconnect
    /// on which the broker did not keep the session, the runner subscribes
    /// again. Returns at the SUBACK.
    ///
    /// ```no_run
    /// # async fn f(client: umqtt::robust::Client<'_>) -> Result<(), umqtt::robust::Error> {
    /// client.subscribe("cmd/sensor-1", umqtt::QoS::AtLeastOnce).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), Error> {
        self.call(CmdKind::Subscribe(qos), filter, &[]).await
    }

    /// Unsubscribes from `filter` and forgets it. Returns at the UNSUBACK.
    ///
    /// ```no_run
    /// # async fn f(client: umqtt::robust::Client<'_>) -> Result<(), umqtt::robust::Error> {
    /// client.unsubscribe("cmd/sensor-1").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn unsubscribe(&self, filter: &str) -> Result<(), Error> {
        self.call(CmdKind::Unsubscribe, filter, &[]).await
    }

    /// Waits for the next message (`wait_msg`) and copies it into `buf`.
    /// A message stays in the mailbox until taken, and the runner reads
    /// nothing more meanwhile, so none is lost. [`Error::BufferTooSmall`]
    /// leaves the message there for a call with a larger buffer.
    ///
    /// Take messages promptly, or handle them in
    /// [`Hooks::on_message`](super::Hooks::on_message): while one waits the
    /// connection is not served, and one that waits longer than the
    /// keepalive interval may end it (it is re-established, and nothing
    /// acknowledged is lost).
    ///
    /// ```no_run
    /// # async fn f(client: umqtt::robust::Client<'_>) -> Result<(), umqtt::robust::Error> {
    /// let mut buf = [0u8; 256];
    /// let msg = client.receive(&mut buf).await?;
    /// let (_topic, _payload) = (msg.topic, msg.payload);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn receive<'b>(&self, buf: &'b mut [u8]) -> Result<Message<'b>, Error> {
        let mut taken = None;
        poll_fn(|cx| {
            lock(self.shared, Poll::Ready(Err(Error::Stopped)), |v| match take_mail(v, buf) {
                Ok(Some(mail)) => {
                    taken = Some(mail);
                    Poll::Ready(Ok(()))
                }
                Ok(None) if v.head.link == LinkState::Failed => Poll::Ready(Err(Error::Stopped)),
                Ok(None) => {
                    v.head.park(cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            })
        })
        .await?;
        message(buf, taken)
    }

    /// The next message if one is waiting (`check_msg`), copied into `buf`.
    ///
    /// ```no_run
    /// # async fn f(client: umqtt::robust::Client<'_>) -> Result<(), umqtt::robust::Error> {
    /// let mut buf = [0u8; 256];
    /// while let Some(msg) = client.try_receive(&mut buf)? {
    ///     let (_topic, _payload) = (msg.topic, msg.payload);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_receive<'b>(&self, buf: &'b mut [u8]) -> Result<Option<Message<'b>>, Error> {
        match lock(self.shared, Ok(None), |v| take_mail(v, buf))? {
            None => Ok(None),
            some => message(buf, some).map(Some),
        }
    }

    /// The link state, like QuecPython's `get_mqttsta`.
    ///
    /// ```no_run
    /// # fn f(client: umqtt::robust::Client<'_>) {
    /// if client.state() == umqtt::robust::LinkState::Connected {
    ///     // the link is up right now
    /// }
    /// # }
    /// ```
    pub fn state(&self) -> LinkState {
        lock(self.shared, LinkState::Failed, |v| v.head.link)
    }

    /// The counters: connections, attempts, reconnects, the last error.
    ///
    /// ```no_run
    /// # fn f(client: umqtt::robust::Client<'_>) {
    /// let stats = client.stats();
    /// let _ = (stats.reconnects, stats.last_error);
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        lock(self.shared, Stats::default(), |v| v.head.stats)
    }

    /// Asks the runner to send DISCONNECT (when connected) and stop; waits
    /// until it has. Calls waiting then end with [`Error::Stopped`].
    ///
    /// ```no_run
    /// # async fn f(client: umqtt::robust::Client<'_>) {
    /// client.close().await; // runner.run() returns Stop::Closed
    /// # }
    /// ```
    pub async fn close(&self) {
        lock(self.shared, (), |v| {
            v.head.close = true;
            v.head.kick();
        });
        poll_fn(|cx| {
            lock(self.shared, Poll::Ready(()), |v| {
                if v.head.link == LinkState::Failed {
                    Poll::Ready(())
                } else {
                    v.head.park(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await;
    }

    /// Copies a command into the slot and waits for its outcome.
    async fn call(&self, kind: CmdKind, topic: &str, payload: &[u8]) -> Result<(), Error> {
        let needed = topic.len() + payload.len();
        let ticket = poll_fn(|cx| {
            lock(self.shared, Poll::Ready(Err(Error::Stopped)), |v| {
                submit(v, kind, topic, payload, needed, cx)
            })
        })
        .await?;
        let _guard = Ticket { shared: self.shared, ticket };
        poll_fn(|cx| {
            lock(self.shared, Poll::Ready(Err(Error::Stopped)), |v| {
                let stopped = v.head.link == LinkState::Failed;
                match v.waiter(ticket) {
                    Some(w) => match w.outcome.take() {
                        Some(outcome) => Poll::Ready(outcome),
                        None if stopped => Poll::Ready(Err(Error::Stopped)),
                        None => {
                            v.head.park(cx.waker());
                            Poll::Pending
                        }
                    },
                    None => Poll::Ready(Err(Error::Stopped)),
                }
            })
        })
        .await
    }
}

/// Puts a command into the slot once it and a waiting place are free.
fn submit(
    v: &mut View<'_>,
    kind: CmdKind,
    topic: &str,
    payload: &[u8],
    needed: usize,
    cx: &mut core::task::Context<'_>,
) -> Poll<Result<u32, Error>> {
    if v.head.link == LinkState::Failed || v.head.close {
        return Poll::Ready(Err(Error::Stopped));
    }
    if needed > v.cmd.len() {
        return Poll::Ready(Err(Error::BufferTooSmall { needed }));
    }
    let free = v.waiters.iter().position(|w| w.ticket == 0);
    let (Some(i), None) = (free, v.head.cmd) else {
        v.head.park(cx.waker());
        return Poll::Pending;
    };
    let ticket = v.head.ticket();
    for (d, s) in v.cmd.iter_mut().zip(topic.as_bytes().iter().chain(payload)) {
        *d = *s;
    }
    v.head.cmd = Some(Cmd { ticket, kind, topic_len: topic.len(), payload_len: payload.len() });
    if let Some(w) = v.waiters.get_mut(i) {
        *w = Waiter { ticket, want: Want::Taken, outcome: None };
    }
    v.head.kick();
    Poll::Ready(Ok(ticket))
}

/// What [`take_mail`] copied: topic length, payload length, QoS, retain.
type Taken = (usize, usize, QoS, bool);

/// Copies the message in the mailbox into `buf` and frees the mailbox.
fn take_mail(v: &mut View<'_>, buf: &mut [u8]) -> Result<Option<Taken>, Error> {
    let Some(mail) = v.head.mail else { return Ok(None) };
    let needed = mail.topic_len + mail.payload_len;
    if !mail.fits {
        v.head.mail = None;
        v.head.kick();
        return Err(Error::MessageTooLarge { needed });
    }
    let (Some(dst), Some(src)) = (buf.get_mut(..needed), v.mail.get(..needed)) else {
        return Err(Error::BufferTooSmall { needed });
    };
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
    v.head.mail = None;
    v.head.kick();
    Ok(Some((mail.topic_len, mail.payload_len, mail.qos, mail.retain)))
}

/// The message [`take_mail`] copied into `buf`.
fn message(buf: &[u8], taken: Option<Taken>) -> Result<Message<'_>, Error> {
    let (topic_len, payload_len, qos, retain) = taken.ok_or(Error::Stopped)?;
    let (topic, rest) = buf.split_at(topic_len.min(buf.len()));
    Ok(Message {
        topic: core::str::from_utf8(topic).unwrap_or_default(),
        payload: rest.get(..payload_len).unwrap_or_default(),
        qos,
        retain,
    })
}
