//! A small in-process MQTT 3.1.1 broker, built on umqtt's own codec, so
//! that the demo and the round-trip tests run on a machine without
//! Mosquitto.
//!
//! It listens on an ephemeral loopback port in a thread of its own and
//! supports what a simple client needs: CONNECT/CONNACK (3.1 and 3.1.1,
//! client takeover), SUBSCRIBE with wildcards (granted QoS at most 1),
//! QoS 0 and 1 PUBLISH fan-out with PUBACK, retained messages, the last
//! will, PINGREQ, UNSUBSCRIBE, DISCONNECT and the 1.5 × keepalive limit.
//! It keeps no sessions (`session_present` is always false), never
//! resends, and closes a connection on any malformed packet or QoS 2.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use umqtt::QoS;
use umqtt::packet::{
    self, ConnAck, ConnectReturnCode, DecodeError, List, Packet, PacketId, Publish, SubAck,
    SubscribeReturnCode,
};
use umqtt::topic::{TopicFilter, TopicName};

/// A running broker; dropping it stops it and closes every connection.
pub struct Broker {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Broker {
    /// Starts a broker on `127.0.0.1` with an ephemeral port.
    pub fn start() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new().name("umqtt-broker".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    () = serve(listener) => {}
                    _ = stopped => {}
                }
            });
        })?;
        Ok(Self { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An application message as the broker keeps it.
#[derive(Clone)]
struct Message {
    topic: String,
    payload: Vec<u8>,
    qos: QoS,
}

/// What the broker sends to one connection's task.
enum Outgoing {
    /// Encoded packet bytes to write.
    Bytes(Vec<u8>),
    /// Another connection took over the client id: close.
    Close,
}

/// One connected client as the routing table sees it.
struct Subscriber {
    connection: u64,
    sender: mpsc::UnboundedSender<Outgoing>,
    filters: Vec<(String, QoS)>,
    next_id: PacketId,
}

impl Subscriber {
    /// Sends `message` with the best QoS granted by a matching filter,
    /// if any matches.
    fn offer(&mut self, message: &Message, retain: bool) {
        let Ok(name) = TopicName::new(&message.topic) else {
            return;
        };
        let granted = self
            .filters
            .iter()
            .filter(|(filter, _)| TopicFilter::new(filter).is_ok_and(|f| f.matches(&name)))
            .map(|(_, qos)| *qos)
            .max();
        if let Some(granted) = granted {
            self.send(message, granted, retain);
        }
    }

    fn send(&mut self, message: &Message, granted: QoS, retain: bool) {
        let qos = granted.min(message.qos);
        let packet_id = (qos != QoS::AtMostOnce).then(|| {
            let id = self.next_id;
            self.next_id = id.next();
            id
        });
        let publish = Publish {
            dup: false,
            qos,
            retain,
            topic: &message.topic,
            packet_id,
            payload: &message.payload,
        };
        let _ = self.sender.send(Outgoing::Bytes(encode(&Packet::Publish(publish))));
    }
}

#[derive(Default)]
struct Shared {
    clients: HashMap<String, Subscriber>,
    retained: BTreeMap<String, Message>,
    next_connection: u64,
}

type State = Arc<Mutex<Shared>>;

fn lock(state: &State) -> MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Routes `message` to every matching subscription and keeps it when
/// retained (an empty retained payload deletes the topic's message).
fn publish(state: &State, message: Message, retain: bool) {
    let mut shared = lock(state);
    for subscriber in shared.clients.values_mut() {
        // [MQTT-3.3.1-9]: retain is 0 on messages to established subscriptions.
        subscriber.offer(&message, false);
    }
    if retain {
        if message.payload.is_empty() {
            shared.retained.remove(&message.topic);
        } else {
            shared.retained.insert(message.topic.clone(), message);
        }
    }
}

fn encode(packet: &Packet<'_>) -> Vec<u8> {
    let len = packet::encoded_len(packet).expect("broker builds valid packets");
    let mut bytes = vec![0; len];
    packet::encode(packet, &mut bytes).expect("buffer has encoded_len bytes");
    bytes
}

async fn serve(listener: TcpListener) {
    let state = State::default();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(Connection::run(stream, state.clone()));
    }
}

/// Why a connection ended.
enum End {
    /// DISCONNECT received: the will is discarded.
    Clean,
    /// Anything else: the will is published.
    Abrupt,
}

struct Connection {
    stream: TcpStream,
    state: State,
    id: u64,
    client_id: String,
    will: Option<(Message, bool)>,
    keep_alive: Option<Duration>,
    deadline: Option<Instant>,
}

impl Connection {
    async fn run(stream: TcpStream, state: State) {
        let id = {
            let mut shared = lock(&state);
            shared.next_connection += 1;
            shared.next_connection
        };
        let mut connection = Self {
            stream,
            state,
            id,
            client_id: String::new(),
            will: None,
            keep_alive: None,
            deadline: Some(Instant::now() + Duration::from_secs(10)),
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        let end = connection.serve(sender, receiver).await;
        let mut shared = lock(&connection.state);
        if shared.clients.get(&connection.client_id).is_some_and(|s| s.connection == id) {
            shared.clients.remove(&connection.client_id);
        }
        drop(shared);
        if let (End::Abrupt, Some((will, retain))) = (end, connection.will.take()) {
            publish(&connection.state, will, retain);
        }
    }

    async fn serve(
        &mut self,
        sender: mpsc::UnboundedSender<Outgoing>,
        mut receiver: mpsc::UnboundedReceiver<Outgoing>,
    ) -> End {
        let mut sender = Some(sender);
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 4096];
        loop {
            loop {
                let decoded = match packet::decode(&buf) {
                    Ok(decoded) => decoded,
                    Err(DecodeError::Incomplete { .. }) => break,
                    Err(DecodeError::Malformed(_)) => return End::Abrupt,
                };
                let len = decoded.len;
                let result = match decoded.packet {
                    Packet::Connect(connect) => match sender.take() {
                        Some(sender) => self.connect(&connect, sender).await,
                        None => Err(End::Abrupt), // [MQTT-3.1.0-2]
                    },
                    _ if sender.is_some() => Err(End::Abrupt), // [MQTT-3.1.0-1]
                    packet => self.handle(packet).await,
                };
                if let Err(end) = result {
                    return end;
                }
                buf.drain(..len);
                if let Some(keep_alive) = self.keep_alive {
                    self.deadline = Some(Instant::now() + keep_alive);
                }
            }
            let deadline = self.deadline;
            let timeout = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = self.stream.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return End::Abrupt,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                },
                outgoing = receiver.recv() => match outgoing {
                    Some(Outgoing::Bytes(bytes)) => {
                        if self.stream.write_all(&bytes).await.is_err() {
                            return End::Abrupt;
                        }
                    }
                    Some(Outgoing::Close) | None => return End::Abrupt,
                },
                () = timeout => return End::Abrupt,
            }
        }
    }

    async fn write(&mut self, packet: &Packet<'_>) -> Result<(), End> {
        self.stream.write_all(&encode(packet)).await.map_err(|_| End::Abrupt)
    }

    async fn connect(
        &mut self,
        connect: &packet::Connect<'_>,
        sender: mpsc::UnboundedSender<Outgoing>,
    ) -> Result<(), End> {
        let client_id = if connect.client_id.is_empty() {
            if !connect.clean_session {
                let code = ConnectReturnCode::IdentifierRejected; // [MQTT-3.1.3-8]
                let ack = ConnAck { session_present: false, code };
                self.write(&Packet::ConnAck(ack)).await?;
                return Err(End::Clean);
            }
            format!("umqtt-broker-{}", self.id)
        } else {
            connect.client_id.to_owned()
        };
        self.will = connect.will.map(|will| {
            let message =
                Message { topic: will.topic.into(), payload: will.payload.into(), qos: will.qos };
            (message, will.retain)
        });
        self.keep_alive = (connect.keep_alive > 0)
            .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
        self.deadline = None;
        let subscriber = Subscriber {
            connection: self.id,
            sender,
            filters: Vec::new(),
            next_id: PacketId::MAX.next(),
        };
        // [MQTT-3.1.4-2]: a second connection with the same id takes over.
        if let Some(old) = lock(&self.state).clients.insert(client_id.clone(), subscriber) {
            let _ = old.sender.send(Outgoing::Close);
        }
        self.client_id = client_id;
        let ack = ConnAck { session_present: false, code: ConnectReturnCode::Accepted };
        self.write(&Packet::ConnAck(ack)).await
    }

    async fn handle(&mut self, packet: Packet<'_>) -> Result<(), End> {
        match packet {
            Packet::Publish(p) if p.qos == QoS::ExactlyOnce => Err(End::Abrupt),
            Packet::Publish(p) => {
                let message =
                    Message { topic: p.topic.into(), payload: p.payload.into(), qos: p.qos };
                publish(&self.state, message, p.retain);
                match p.packet_id {
                    Some(id) => self.write(&Packet::PubAck(id)).await,
                    None => Ok(()),
                }
            }
            Packet::Subscribe(subscribe) => {
                let mut codes = Vec::new();
                let mut retained = Vec::new();
                {
                    let mut shared = lock(&self.state);
                    let Shared { clients, retained: stored, .. } = &mut *shared;
                    let Some(me) = clients.get_mut(&self.client_id) else {
                        return Err(End::Abrupt);
                    };
                    for topic in subscribe.topics.iter() {
                        let granted = topic.qos.min(QoS::AtLeastOnce);
                        me.filters.retain(|(filter, _)| filter != topic.filter);
                        me.filters.push((topic.filter.to_owned(), granted));
                        codes.push(SubscribeReturnCode::Success(granted));
                        let Ok(filter) = TopicFilter::new(topic.filter) else {
                            continue;
                        };
                        for message in stored.values() {
                            let matches =
                                TopicName::new(&message.topic).is_ok_and(|n| filter.matches(&n));
                            if matches {
                                retained.push((message.clone(), granted));
                            }
                        }
                    }
                }
                let ack =
                    SubAck { packet_id: subscribe.packet_id, return_codes: List::Items(&codes) };
                self.write(&Packet::SubAck(ack)).await?;
                // Retained messages after SUBACK, through the routing queue
                // so their packet ids come from the subscriber's counter.
                let mut shared = lock(&self.state);
                if let Some(me) = shared.clients.get_mut(&self.client_id) {
                    for (message, granted) in &retained {
                        me.send(message, *granted, true);
                    }
                }
                Ok(())
            }
            Packet::Unsubscribe(unsubscribe) => {
                if let Some(me) = lock(&self.state).clients.get_mut(&self.client_id) {
                    for gone in unsubscribe.filters.iter() {
                        me.filters.retain(|(filter, _)| filter != gone);
                    }
                }
                self.write(&Packet::UnsubAck(unsubscribe.packet_id)).await
            }
            Packet::PubAck(_) => Ok(()),
            Packet::PingReq => self.write(&Packet::PingResp).await,
            Packet::Disconnect => {
                self.will = None; // [MQTT-3.14.4-3]
                Err(End::Clean)
            }
            _ => Err(End::Abrupt),
        }
    }
}
