//! Messages survive a reboot `[MQTT-3.1.2-4]`: power is cut at every
//! word of every flash write (and at every page erase) of a scripted
//! sequence — QoS 1 ×N and QoS 2 ×N published, acknowledgments arriving
//! in between, QoS 2 messages arriving from the broker — then the client
//! reboots with empty RAM, loads its flash store and reconnects to the
//! same broker, which kept the session.
//!
//! After every cut: the store loads (it is readable), no message the
//! broker acknowledged is sent as new again, none the client accepted is
//! missing, QoS 2 messages are delivered exactly once both ways, nothing
//! panics.
//!
//! The broker is a small model of a 3.1.1 broker (method B for QoS 2
//! both ways, session kept across connections), driven byte by byte over
//! an in-memory link: a real broker cannot be stopped at each flash word.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use embassy_time::{Duration, Instant};
use umqtt::blocking::{Clock, Transport};
use umqtt::packet::{self, ConnAck, ConnectReturnCode, Packet, PacketId, Publish, QoS};
use umqtt::store::{FlashStore, PowerCut, RamFlash, StoreError};
use umqtt::{ConnectOptions, Error};

/// Messages published at each of QoS 1 and QoS 2.
const N: usize = 16;
/// QoS 2 messages the broker sends to the client.
const INBOUND: u16 = 6;
/// Flash page size of the test partition: small, so that pages fill and
/// are erased during the sequence.
const PAGE: usize = 256;
const PAGES: usize = 4;

/// Where a QoS 2 message from the broker to the client is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Out {
    AwaitingPubRec,
    AwaitingPubComp,
}

#[derive(Default)]
struct Broker {
    /// Bytes from the client not yet parsed.
    input: Vec<u8>,
    /// Bytes for the client.
    output: VecDeque<u8>,
    /// Acknowledgments held back until the client waits.
    delayed: Vec<Vec<u8>>,
    /// Times each payload was delivered to subscribers.
    delivered: BTreeMap<String, u32>,
    /// PUBLISHes with DUP=0 whose payload had been delivered already.
    resent_as_new: Vec<String>,
    /// QoS 2 ids from the client awaiting PUBREL (method B).
    awaiting_pubrel: BTreeSet<u16>,
    /// QoS 2 messages to the client, by id: stage and message number.
    /// Identifiers are reused as soon as they are free, as brokers do.
    outbound: BTreeMap<u16, (Out, u16)>,
    inbound_sent: u16,
    inbound_done: u16,
    publishes_seen: u32,
    has_session: bool,
    /// Hold every acknowledgment until the client waits.
    hold_all: bool,
}

fn bytes(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let n = packet::encode(p, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn inbound_publish(pid: u16, n: u16, dup: bool) -> Vec<u8> {
    let payload = format!("in{n}");
    bytes(&Packet::Publish(Publish {
        dup,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "to/device",
        packet_id: Some(id(pid)),
        payload: payload.as_bytes(),
    }))
}

impl Broker {
    /// The connection is gone: what was in transit is lost, the session
    /// stays.
    fn drop_connection(&mut self) {
        self.input.clear();
        self.output.clear();
        self.delayed.clear();
    }

    fn send(&mut self, b: &[u8]) {
        self.output.extend(b);
    }

    /// Every 3rd acknowledgment waits until the client waits.
    fn ack(&mut self, b: Vec<u8>) {
        if self.hold_all || self.publishes_seen.is_multiple_of(3) {
            self.delayed.push(b)
        } else {
            self.send(&b)
        }
    }

    fn on_bytes(&mut self, data: &[u8]) {
        self.input.extend_from_slice(data);
        loop {
            let input = std::mem::take(&mut self.input);
            let Ok(decoded) = packet::decode(&input) else {
                self.input = input;
                return;
            };
            let len = decoded.len;
            self.on_packet(decoded.packet);
            self.input = input[len..].to_vec();
        }
    }

    fn on_packet(&mut self, p: Packet<'_>) {
        match p {
            Packet::Connect(c) => {
                if c.clean_session {
                    self.awaiting_pubrel.clear();
                    self.outbound.clear();
                }
                let present = !c.clean_session && self.has_session;
                self.has_session = true;
                let code = ConnectReturnCode::Accepted;
                self.send(&bytes(&Packet::ConnAck(ConnAck { session_present: present, code })));
                // Resend as after any reconnect [MQTT-4.4.0-1].
                for (&pid, &(stage, n)) in &self.outbound.clone() {
                    match stage {
                        Out::AwaitingPubRec => self.send(&inbound_publish(pid, n, true)),
                        Out::AwaitingPubComp => self.send(&bytes(&Packet::PubRel(id(pid)))),
                    }
                }
            }
            Packet::Publish(p) => {
                let payload = String::from_utf8(p.payload.to_vec()).unwrap();
                let pid = p.packet_id.unwrap();
                self.publishes_seen += 1;
                let fresh = match p.qos {
                    QoS::AtLeastOnce => true,
                    QoS::ExactlyOnce => self.awaiting_pubrel.insert(pid.get()),
                    QoS::AtMostOnce => unreachable!(),
                };
                if fresh {
                    let count = self.delivered.entry(payload.clone()).or_default();
                    if *count > 0 && !p.dup {
                        self.resent_as_new.push(payload.clone());
                    }
                    *count += 1;
                }
                let ack = if p.qos == QoS::AtLeastOnce {
                    Packet::PubAck(pid)
                } else {
                    Packet::PubRec(pid)
                };
                self.ack(bytes(&ack));
                if self.publishes_seen.is_multiple_of(2) && self.inbound_sent < INBOUND {
                    let n = self.inbound_sent;
                    self.inbound_sent += 1;
                    let pid = (100..).find(|p| !self.outbound.contains_key(p)).unwrap();
                    self.outbound.insert(pid, (Out::AwaitingPubRec, n));
                    self.send(&inbound_publish(pid, n, false));
                }
            }
            Packet::PubRel(pid) => {
                self.awaiting_pubrel.remove(&pid.get());
                self.send(&bytes(&Packet::PubComp(pid)));
            }
            Packet::PubRec(pid) => {
                if let Some((stage, _)) = self.outbound.get_mut(&pid.get()) {
                    *stage = Out::AwaitingPubComp;
                }
                self.send(&bytes(&Packet::PubRel(pid)));
            }
            Packet::PubComp(pid) => {
                if self.outbound.remove(&pid.get()).is_some() {
                    self.inbound_done += 1;
                }
            }
            Packet::PubAck(_) | Packet::Disconnect | Packet::PingReq => {}
            other => panic!("unexpected from the client: {other:?}"),
        }
    }
}

/// The client's end of the in-memory link.
struct Link<'a> {
    broker: &'a RefCell<Broker>,
    idle: u32,
}

impl embedded_io::ErrorType for Link<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Link<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut b = self.broker.borrow_mut();
        let n = buf.len().min(b.output.len());
        for (slot, byte) in buf.iter_mut().zip(b.output.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl embedded_io::Write for Link<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.broker.borrow_mut().on_bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Transport for Link<'_> {
    fn wait_readable(&mut self, _: Option<Duration>) -> Result<bool, Self::Error> {
        let mut b = self.broker.borrow_mut();
        if b.output.is_empty() {
            // The client waits: the held-back acknowledgments arrive.
            for ack in std::mem::take(&mut b.delayed) {
                b.send(&ack);
            }
        }
        if b.output.is_empty() {
            self.idle += 1;
            assert!(self.idle < 10_000, "the client waits for nothing");
        }
        Ok(!b.output.is_empty())
    }
}

/// Time stands still: no timer ever fires.
struct Frozen;

impl Clock for Frozen {
    fn now(&self) -> Instant {
        Instant::from_secs(1)
    }
}

/// What the application saw, kept across reboots (its own durable state).
#[derive(Default)]
struct App {
    /// Messages `publish_no_wait` accepted (stored): never published again.
    accepted: BTreeSet<usize>,
    /// Messages whose publish failed with a store error (retried).
    refused: BTreeSet<usize>,
    /// Inbound payloads handed to the handler.
    received: Vec<String>,
}

fn qos_of(i: usize) -> QoS {
    if i.is_multiple_of(2) { QoS::AtLeastOnce } else { QoS::ExactlyOnce }
}

fn opts() -> ConnectOptions<'static> {
    ConnectOptions::new("power-cut").clean_session(false).keep_alive_secs(0)
}

/// One boot: load, connect, publish what the application has not handed
/// over yet, wait for everything. `Err` once the power is cut.
fn boot<'f>(
    flash: RamFlash<'f, PAGE>,
    broker: &RefCell<Broker>,
    app: &mut App,
) -> (RamFlash<'f, PAGE>, Result<(), Error<embedded_io::ErrorKind>>) {
    let (mut rx, mut tx, mut slots, mut record) = ([0u8; 256], [0u8; 1024], [0u16; 8], [0u8; 128]);
    let range = 0..(PAGE * PAGES) as u32;
    let mut store = FlashStore::new(flash, range, &mut record).unwrap();
    let received = RefCell::new(Vec::new());
    let result = (|| {
        let link = Link { broker, idle: 0 };
        let handler = |m: &Publish<'_>| {
            received.borrow_mut().push(String::from_utf8(m.payload.to_vec()).unwrap());
        };
        let mut client = umqtt::blocking::Client::new(link, &mut rx, &mut tx, handler, Frozen)
            .receive_qos2(&mut slots)
            .with_store(&mut store);
        client.connect(&opts())?;
        for i in 0..2 * N {
            if app.accepted.contains(&i) {
                continue;
            }
            let payload = format!("m{i}");
            match client.publish_no_wait("log", payload.as_bytes(), qos_of(i), false) {
                Ok(_) => {
                    app.accepted.insert(i);
                    // Now and then the application handles what arrived:
                    // acknowledgments and messages come in between.
                    if i % 3 == 2 {
                        client.check_msg()?;
                    }
                }
                Err(e) => {
                    assert!(e.stored.is_none(), "a refused message is not kept");
                    app.refused.insert(i);
                    return Err(e.error);
                }
            }
        }
        client.wait_all_acked()?;
        while broker.borrow().inbound_done < INBOUND {
            client.check_msg()?;
        }
        assert_eq!(client.in_flight(), 0);
        Ok(())
    })();
    app.received.extend(received.into_inner());
    broker.borrow_mut().drop_connection();
    (store.into_flash(), result)
}

/// Runs the sequence with the power cut after `cut` flash steps (`None`:
/// never), reboots, and checks. Returns the flash steps of the first boot.
fn run(cut: Option<u64>) -> (u64, u64) {
    let mut bytes = vec![0xFFu8; PAGE * PAGES];
    let mut flash = RamFlash::<PAGE>::new(&mut bytes);
    flash.set_power_cut(cut.map(|after| PowerCut { after }));
    let broker = RefCell::new(Broker::default());
    let mut app = App::default();
    let (mut flash, first) = boot(flash, &broker, &mut app);
    let (steps, erases) =
        (flash.stats().words_written + flash.stats().erases, flash.stats().erases);
    match first {
        Ok(()) => assert!(!flash.is_cut(), "cut {cut:?}: finished although the power was cut"),
        Err(Error::Store(StoreError::Failed)) => assert!(flash.is_cut()),
        Err(e) => panic!("cut {cut:?}: unexpected error {e:?}"),
    }
    if flash.is_cut() {
        flash.power_on();
        let (_, second) = boot(flash, &broker, &mut app);
        second.unwrap_or_else(|e| panic!("cut {cut:?}: the reboot failed: {e:?}"));
    }
    let b = broker.borrow();
    for i in 0..2 * N {
        let count = b.delivered.get(&format!("m{i}")).copied().unwrap_or(0);
        assert!(count >= 1, "cut {cut:?}: message m{i} lost");
        if qos_of(i) == QoS::ExactlyOnce && !app.refused.contains(&i) {
            assert_eq!(count, 1, "cut {cut:?}: QoS 2 message m{i} delivered {count} times");
        }
    }
    for payload in &b.resent_as_new {
        let i: usize = payload[1..].parse().unwrap();
        assert!(app.refused.contains(&i), "cut {cut:?}: acknowledged {payload} sent again as new");
    }
    let mut received = app.received.clone();
    received.sort();
    let expected: Vec<String> = (0..INBOUND).map(|n| format!("in{n}")).collect();
    assert_eq!(received, expected, "cut {cut:?}: inbound QoS 2 not delivered exactly once");
    (steps, erases)
}

#[test]
fn mqtt_3_1_2_4_session_survives_a_power_cut_at_every_flash_word() {
    let (steps, erases) = run(None);
    assert!(erases > 0, "the sequence fills pages: {erases} erases");
    for cut in 0..=steps {
        run(Some(cut));
    }
    println!(
        "STORE-FIGURES: power-cut sweep: {} cut points tried (every word written and every \
         page erased, {erases} erases, of a run of {N} QoS 1 + {N} QoS 2 publishes and \
         {INBOUND} inbound QoS 2), all recovered",
        steps + 1
    );
}

#[test]
fn store_full_refuses_the_new_publish_and_keeps_every_older_one() {
    const SMALL: usize = 256;
    let mut bytes = vec![0xFFu8; SMALL * 2];
    let mut record = [0u8; 128];
    let flash = RamFlash::<SMALL>::new(&mut bytes);
    let mut store = FlashStore::new(flash, 0..(SMALL * 2) as u32, &mut record).unwrap();
    let broker =
        RefCell::new(Broker { hold_all: true, inbound_sent: INBOUND, ..Broker::default() });
    let (mut rx, mut tx, mut slots) = ([0u8; 256], [0u8; 1024], [0u16; 8]);
    let link = Link { broker: &broker, idle: 0 };
    let mut client =
        umqtt::blocking::Client::new(link, &mut rx, &mut tx, |_: &Publish<'_>| {}, Frozen)
            .receive_qos2(&mut slots)
            .with_store(&mut store);
    client.connect(&opts()).unwrap();
    let mut accepted = 0;
    let refused = loop {
        let payload = format!("m{accepted}");
        match client.publish_no_wait("log", payload.as_bytes(), QoS::AtLeastOnce, false) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "a 512-byte store never fills");
    };
    assert_eq!(refused.error, Error::Store(StoreError::Full));
    assert_eq!(refused.stored, None, "the refused message is not kept");
    assert!(accepted > 0);
    assert_eq!(client.in_flight(), accepted, "no older message dropped");
    // The acknowledgments free the store; publishing goes on.
    client.wait_all_acked().unwrap();
    client.publish("log", b"after", QoS::AtLeastOnce, false).unwrap();
    let b = broker.borrow();
    for i in 0..accepted {
        assert_eq!(b.delivered.get(&format!("m{i}")), Some(&1), "m{i}");
    }
    assert_eq!(b.delivered.get(&format!("m{accepted}")), None, "the refused one was never sent");
    assert_eq!(b.delivered.get("after"), Some(&1));
}
