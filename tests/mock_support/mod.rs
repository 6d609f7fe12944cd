//! Helpers for the client tests against the scripted mock transport:
//! packet bytes, a message recorder, and a bounded poll loop that fails
//! the test instead of hanging when the client waits for bytes the script
//! does not have.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use umqtt::mock::{MockError, MockTransport, packet_bytes};
use umqtt::packet::{
    ConnAck, ConnectReturnCode, List, Packet, PacketId, SubAck, Subscribe, Unsubscribe,
};
use umqtt::{Client, ConnectOptions, Error, Publish, QoS, SubscribeReturnCode, SubscribeTopic};

/// The client type every mock test uses.
pub type MockClient<'a, H> = Client<'a, &'a mut MockTransport, H>;

/// Result of a client call against the mock.
pub type MockResult<T> = Result<T, Error<MockError>>;

/// Packet identifier `n` (not 0).
pub fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// Options with keepalive off (these tests run under the std clock).
pub fn opts() -> ConnectOptions<'static> {
    ConnectOptions::new("mock-1").keep_alive_secs(0)
}

/// Like [`opts`] with `clean_session = false`.
pub fn persistent() -> ConnectOptions<'static> {
    opts().clean_session(false)
}

/// CONNECT bytes for `o`.
pub fn connect(o: &ConnectOptions<'_>) -> Vec<u8> {
    packet_bytes(&Packet::Connect(o.to_connect()))
}

/// CONNACK bytes.
pub fn connack_code(session_present: bool, code: ConnectReturnCode) -> Vec<u8> {
    packet_bytes(&Packet::ConnAck(ConnAck { session_present, code }))
}

/// An accepting CONNACK.
pub fn connack(session_present: bool) -> Vec<u8> {
    connack_code(session_present, ConnectReturnCode::Accepted)
}

/// A script that starts with a successful connect with [`opts`].
pub fn connected() -> MockTransport {
    MockTransport::new().expect(&connect(&opts())).send(&connack(false))
}

/// PUBLISH bytes; `packet_id` must be `Some` exactly for QoS 1.
pub fn publish(topic: &str, payload: &[u8], packet_id: Option<u16>, dup: bool) -> Vec<u8> {
    let qos = if packet_id.is_some() { QoS::AtLeastOnce } else { QoS::AtMostOnce };
    packet_bytes(&Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic,
        packet_id: packet_id.map(id),
        payload,
    }))
}

/// PUBACK bytes.
pub fn puback(n: u16) -> Vec<u8> {
    packet_bytes(&Packet::PubAck(id(n)))
}

/// SUBSCRIBE bytes for one filter.
pub fn subscribe(n: u16, filter: &str, qos: QoS) -> Vec<u8> {
    let topics = [SubscribeTopic { filter, qos }];
    packet_bytes(&Packet::Subscribe(Subscribe { packet_id: id(n), topics: List::Items(&topics) }))
}

/// SUBACK bytes.
pub fn suback(n: u16, codes: &[SubscribeReturnCode]) -> Vec<u8> {
    packet_bytes(&Packet::SubAck(SubAck { packet_id: id(n), return_codes: List::Items(codes) }))
}

/// UNSUBSCRIBE bytes for one filter.
pub fn unsubscribe(n: u16, filter: &str) -> Vec<u8> {
    let filters = [filter];
    packet_bytes(&Packet::Unsubscribe(Unsubscribe {
        packet_id: id(n),
        filters: List::Items(&filters),
    }))
}

/// UNSUBACK bytes.
pub fn unsuback(n: u16) -> Vec<u8> {
    packet_bytes(&Packet::UnsubAck(id(n)))
}

/// PINGREQ bytes.
pub const PINGREQ: [u8; 2] = [0xc0, 0x00];
/// PINGRESP bytes.
pub const PINGRESP: [u8; 2] = [0xd0, 0x00];
/// DISCONNECT bytes.
pub const DISCONNECT: [u8; 2] = [0xe0, 0x00];

/// One delivered message: topic, payload, QoS, DUP.
pub type Message = (String, Vec<u8>, QoS, bool);

/// Messages delivered to a handler made by [`recorder`].
#[derive(Clone, Default)]
pub struct Got(Rc<RefCell<Vec<Message>>>);

impl Got {
    /// Topic and payload of every delivered message, in order.
    pub fn messages(&self) -> Vec<(String, Vec<u8>)> {
        self.0.borrow().iter().map(|m| (m.0.clone(), m.1.clone())).collect()
    }

    /// Topics of every delivered message, in order.
    pub fn topics(&self) -> Vec<String> {
        self.0.borrow().iter().map(|m| m.0.clone()).collect()
    }

    /// Everything delivered.
    pub fn all(&self) -> Vec<Message> {
        self.0.borrow().clone()
    }
}

/// A message handler that records every delivery in the returned [`Got`].
pub fn recorder() -> (Got, impl FnMut(&Publish<'_>)) {
    let got = Got::default();
    let sink = got.0.clone();
    (got, move |m: &Publish<'_>| {
        sink.borrow_mut().push((m.topic.to_owned(), m.payload.to_vec(), m.qos, m.dup));
    })
}

/// Polls `fut` with a no-op waker until it is ready. The mock wakes
/// itself or is ready whenever the script allows progress, so a future
/// still pending after many polls waits for bytes the script does not
/// have: fail instead of hanging.
pub fn drive<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the client call never finished: it waits for something the script does not provide");
}

/// Polls `fut` at most `k` times and drops it: `Some(output)` if it
/// finished within those polls, `None` if it was cancelled.
pub fn poll_then_drop<F: Future>(fut: F, k: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..k {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    None
}

/// Concatenates byte strings.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// QoS 2 PUBLISH bytes with packet identifier `n`.
pub fn publish2(topic: &str, payload: &[u8], n: u16, dup: bool) -> Vec<u8> {
    packet_bytes(&Packet::Publish(Publish {
        dup,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic,
        packet_id: Some(id(n)),
        payload,
    }))
}

/// PUBREC bytes.
pub fn pubrec(n: u16) -> Vec<u8> {
    packet_bytes(&Packet::PubRec(id(n)))
}

/// PUBREL bytes (fixed header flags 0b0010).
pub fn pubrel(n: u16) -> Vec<u8> {
    packet_bytes(&Packet::PubRel(id(n)))
}

/// PUBCOMP bytes.
pub fn pubcomp(n: u16) -> Vec<u8> {
    packet_bytes(&Packet::PubComp(id(n)))
}
