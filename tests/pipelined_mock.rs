//! Pipelined QoS 1 (`publish_no_wait`) against scripted transports: the
//! in-flight window, out-of-order PUBACKs, resend after a reconnect in the
//! middle of a window, and cancellation at every await point.
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock is handed back for inspection"
)]

mod mock_support;

use std::collections::{BTreeSet, VecDeque};
use std::future::poll_fn;
use std::task::Poll;

use mock_support::*;
use umqtt::mock::{MockTransport, Step};
use umqtt::packet::{self, Packet};
use umqtt::{Client, ConnectOptions, Error, Publish, QoS, State};

fn windowed(n: u16) -> ConnectOptions<'static> {
    opts().max_in_flight(n)
}

fn q1(payload: &[u8], n: u16, dup: bool) -> Vec<u8> {
    publish("t", payload, Some(n), dup)
}

#[test]
fn pipelined_window_fills_then_each_puback_admits_one_more_publish() {
    let o = windowed(3);
    // The mock fails the test if the client writes the 4th PUBLISH before
    // reading PUBACK 1: the script has the broker's bytes first.
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&q1(b"1", 1, false))
        .expect(&q1(b"2", 2, false))
        .expect(&q1(b"3", 3, false))
        .send(&puback(1))
        .expect(&q1(b"4", 4, false))
        .send(&cat(&[&puback(2), &puback(3), &puback(4)]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 256]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &Publish<'_>| {});
    drive(async {
        client.connect(&o).await.unwrap();
        for n in 1..=3u16 {
            let got = client
                .publish_no_wait("t", n.to_string().as_bytes(), QoS::AtLeastOnce, false)
                .await
                .unwrap();
            assert_eq!(got, id(n));
            assert_eq!(client.in_flight(), usize::from(n));
        }
        assert_eq!(
            client.publish_no_wait("t", b"4", QoS::AtLeastOnce, false).await.unwrap(),
            id(4)
        );
        assert_eq!(client.in_flight(), 3);
        assert!(!client.is_in_flight(id(1)));
        assert!(client.is_in_flight(id(2)) && client.is_in_flight(id(4)));
        client.wait_all_acked().await.unwrap();
        assert_eq!(client.in_flight(), 0);
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn pipelined_window_is_also_bounded_by_the_transmit_buffer() {
    // Each PUBLISH "t" + 1 byte is 8 bytes; 4 bytes stay reserved for
    // control packets: a 21-byte tx holds two in flight, whatever the window.
    let o = windowed(16);
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&q1(b"1", 1, false))
        .expect(&q1(b"2", 2, false))
        .send(&puback(1))
        // Id 3 was drawn for the attempt that did not fit and is skipped
        // (harmless: ids only need to differ from those in flight).
        .expect(&q1(b"3", 4, false))
        .send(&cat(&[&puback(2), &puback(4)]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 21]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &Publish<'_>| {});
    drive(async {
        client.connect(&o).await.unwrap();
        for n in 1..=2u16 {
            assert_eq!(
                client
                    .publish_no_wait("t", n.to_string().as_bytes(), QoS::AtLeastOnce, false)
                    .await
                    .unwrap(),
                id(n)
            );
        }
        assert_eq!(
            client.publish_no_wait("t", b"3", QoS::AtLeastOnce, false).await.unwrap(),
            id(4)
        );
        assert_eq!(client.in_flight(), 2);
        client.wait_all_acked().await.unwrap();
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn pipelined_out_of_order_pubacks_complete_exactly_their_own_publishes() {
    let o = windowed(8);
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&q1(b"1", 1, false))
        .expect(&q1(b"2", 2, false))
        .expect(&q1(b"3", 3, false))
        .expect(&q1(b"4", 4, false))
        .send(&cat(&[&puback(3), &puback(1)]))
        .send(&cat(&[&puback(4), &puback(2)]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 256]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &Publish<'_>| {});
    drive(async {
        client.connect(&o).await.unwrap();
        for n in 1..=4u16 {
            client
                .publish_no_wait("t", n.to_string().as_bytes(), QoS::AtLeastOnce, false)
                .await
                .unwrap();
        }
        client.wait_acked(id(1)).await.unwrap();
        // PUBACK 3 came first and PUBACK 1 second: 2 and 4 remain.
        assert_eq!(client.in_flight(), 2);
        assert!(!client.is_in_flight(id(1)) && !client.is_in_flight(id(3)));
        assert!(client.is_in_flight(id(2)) && client.is_in_flight(id(4)));
        client.wait_acked(id(2)).await.unwrap();
        assert_eq!(client.in_flight(), 0);
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn mqtt_4_4_0_1_reconnect_mid_window_resends_exactly_the_unacked_with_dup_and_same_ids_in_order() {
    let o = windowed(8).clean_session(false);
    let mut first = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&q1(b"1", 1, false))
        .expect(&q1(b"2", 2, false))
        .expect(&q1(b"3", 3, false))
        .expect(&q1(b"4", 4, false))
        .expect(&q1(b"5", 5, false))
        .send(&cat(&[&puback(2), &puback(4)]))
        .step(Step::Eof);
    let mut second = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(true))
        .expect(&cat(&[&q1(b"1", 1, true), &q1(b"3", 3, true), &q1(b"5", 5, true)]))
        .expect(&q1(b"6", 6, false))
        .send(&cat(&[&puback(1), &puback(3), &puback(5), &puback(6)]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 256]);
    let mut client = Client::new(&mut first, &mut rx, &mut tx, |_: &Publish<'_>| {});
    drive(async {
        client.connect(&o).await.unwrap();
        for n in 1..=5u16 {
            client
                .publish_no_wait("t", n.to_string().as_bytes(), QoS::AtLeastOnce, false)
                .await
                .unwrap();
        }
        assert_eq!(client.wait_all_acked().await, Err(Error::ConnectionClosed));
        assert_eq!(client.state(), State::Failed);
        assert_eq!(client.in_flight(), 3);
        assert!(client.reconnect(&mut second, &o).await.unwrap().session_present);
        // The ids of the resent messages are not reused for new ones.
        assert_eq!(
            client.publish_no_wait("t", b"6", QoS::AtLeastOnce, false).await.unwrap(),
            id(6)
        );
        client.wait_all_acked().await.unwrap();
        assert_eq!(client.in_flight(), 0);
    });
    drop(client);
    second.assert_done();
}

/// A transport that acknowledges every QoS 1 PUBLISH it is written, gives
/// one byte per read, returns `Pending` once before every read, write and
/// flush (like `MockTransport::yield_every_call`) and records the bytes.
#[derive(Default)]
struct AutoAck {
    written: Vec<u8>,
    parsed: usize,
    to_read: VecDeque<u8>,
    yielded: bool,
}

impl AutoAck {
    fn take_yield(&mut self) -> bool {
        self.yielded = !self.yielded;
        self.yielded
    }

    fn ack_complete_packets(&mut self) {
        while let Ok(d) = packet::decode(&self.written[self.parsed..]) {
            match d.packet {
                Packet::Connect(_) => self.to_read.extend(connack(false)),
                Packet::Publish(p) => self.to_read.extend(puback(p.packet_id.unwrap().get())),
                _ => {}
            }
            self.parsed += d.len;
        }
    }
}

impl embedded_io_async::ErrorType for AutoAck {
    type Error = umqtt::mock::MockError;
}

impl embedded_io_async::Read for AutoAck {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        poll_fn(|cx| {
            if self.take_yield() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match self.to_read.pop_front() {
                Some(b) => {
                    buf[0] = b;
                    Poll::Ready(Ok(1))
                }
                None => Poll::Pending,
            }
        })
        .await
    }
}

impl embedded_io_async::Write for AutoAck {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        poll_fn(|cx| {
            if self.take_yield() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Short writes too: at most 5 bytes at a time.
            let n = buf.len().min(5);
            self.written.extend_from_slice(&buf[..n]);
            self.ack_complete_packets();
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        poll_fn(|cx| {
            if self.take_yield() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        })
        .await
    }
}

#[test]
fn publish_no_wait_cancelled_at_every_await_point_never_tears_or_duplicates_a_packet() {
    let o = windowed(3);
    let mut transport = AutoAck::default();
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 256]);
    let mut client = Client::new(&mut transport, &mut rx, &mut tx, |_: &Publish<'_>| {});
    drive(client.connect(&o)).unwrap();
    // Message i is polled (i % 23) times and dropped if not finished by
    // then: every await point of the call, with the window full or not.
    let mut returned = Vec::new();
    let mut cancelled = 0;
    for i in 0..400u32 {
        let payload = i.to_string();
        match poll_then_drop(
            client.publish_no_wait("t", payload.as_bytes(), QoS::AtLeastOnce, false),
            (i % 23) as usize,
        ) {
            Some(Ok(id)) => returned.push((payload, id)),
            Some(Err(e)) => panic!("message {i}: {e:?}"),
            None => cancelled += 1,
        }
    }
    drive(client.wait_all_acked()).unwrap();
    assert_eq!(client.in_flight(), 0);
    assert_eq!(client.state(), State::Connected);
    drop(client);
    assert!(
        cancelled > 100 && returned.len() > 100,
        "cancelled {cancelled}, finished {}",
        returned.len()
    );

    // The wire holds whole packets only, each PUBLISH once.
    let mut rest = transport.written.as_slice();
    let mut publishes = Vec::new();
    while !rest.is_empty() {
        let d = packet::decode(rest).unwrap_or_else(|e| panic!("torn packet on the wire: {e}"));
        if let Packet::Publish(p) = d.packet {
            assert_eq!((p.qos, p.dup), (QoS::AtLeastOnce, false));
            publishes.push((String::from_utf8(p.payload.to_vec()).unwrap(), p.packet_id.unwrap()));
        }
        rest = &rest[d.len..];
    }
    let payloads: BTreeSet<_> = publishes.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(payloads.len(), publishes.len(), "a message was sent twice");
    // Every call that returned an id sent its message, with that id.
    for r in &returned {
        assert!(publishes.contains(r), "{r:?} returned but not sent");
    }
    // Ids are unique among the messages in flight together (window 3), and
    // in increasing order on the wire.
    assert!(publishes.windows(2).all(|w| w[0].1.get() < w[1].1.get()));
}

mod outbox {
    use super::*;
    use umqtt::session::Outbox;

    fn push(outbox: &mut Outbox, buf: &mut [u8], n: u16) {
        let bytes = q1(&n.to_le_bytes(), n, false);
        buf[outbox.len()..outbox.len() + bytes.len()].copy_from_slice(&bytes);
        outbox.push_publish(buf, bytes.len());
    }

    fn ids(outbox: &Outbox, buf: &[u8]) -> Vec<u16> {
        outbox.entries(buf).map(|e| e.packet_id.get()).collect()
    }

    /// `contains` must agree with a full scan whatever the order of ids.
    fn check(outbox: &Outbox, buf: &[u8]) {
        let stored = ids(outbox, buf);
        for n in 1..=u16::MAX {
            assert_eq!(
                outbox.contains(buf, id(n)),
                stored.contains(&n),
                "id {n}, stored {stored:?}"
            );
        }
    }

    #[test]
    fn outbox_contains_is_exact_across_the_id_wrap_and_after_removals() {
        let mut buf = [0u8; 256];
        let mut outbox = Outbox::default();
        for n in [65533, 65535, 1, 3] {
            push(&mut outbox, &mut buf, n);
        }
        check(&outbox, &buf);
        for gone in [3, 65533, 1] {
            assert!(outbox.remove(&mut buf, id(gone)));
            check(&outbox, &buf);
        }
        push(&mut outbox, &mut buf, 7);
        check(&outbox, &buf);
        assert_eq!(ids(&outbox, &buf), [65535, 7]);
    }

    #[test]
    fn outbox_contains_is_exact_with_ids_out_of_order() {
        let mut buf = [0u8; 256];
        let mut outbox = Outbox::default();
        for n in [10, 20, 15, 10_000, 5] {
            push(&mut outbox, &mut buf, n);
            check(&outbox, &buf);
        }
        assert!(outbox.remove(&mut buf, id(5)));
        check(&outbox, &buf);
        // Empty again: order is tracked afresh.
        for n in [10, 20, 15, 10_000] {
            assert!(outbox.remove(&mut buf, id(n)));
        }
        assert!(outbox.is_empty());
        push(&mut outbox, &mut buf, 2);
        push(&mut outbox, &mut buf, 1);
        check(&outbox, &buf);
    }
}

#[test]
fn queue_publish_sends_every_queued_packet_in_one_write_and_one_flush() {
    let o = windowed(2);
    let batch = cat(&[&q1(b"1", 1, false), &q1(b"2", 2, false), &publish("t", b"0", None, false)]);
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&batch)
        .send(&cat(&[&puback(1), &puback(2)]));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 256]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &Publish<'_>| {});
    drive(async { client.connect(&o).await.unwrap() });
    assert_eq!(client.queue_publish("t", b"1", QoS::AtLeastOnce, false), Ok(Some(id(1))));
    assert_eq!(client.queue_publish("t", b"2", QoS::AtLeastOnce, false), Ok(Some(id(2))));
    // The window of 2 is full, for QoS 1 only.
    assert_eq!(client.queue_publish("t", b"3", QoS::AtLeastOnce, false), Err(Error::WouldBlock));
    assert_eq!(client.queue_publish("t", b"0", QoS::AtMostOnce, false), Ok(None));
    assert_eq!(client.in_flight(), 2);
    let before = client.transport_mut().write_calls();
    drive(async { client.flush().await.unwrap() });
    let after = client.transport_mut().write_calls();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "one write, one flush");
    drive(async { client.wait_all_acked().await.unwrap() });
    drop(client);
    mock.assert_done();
}

#[test]
fn queue_publish_refuses_qos1_behind_qos0_and_anything_while_not_connected() {
    let o = windowed(4);
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .expect(&cat(&[&publish("t", b"0", None, false), &q1(b"1", 1, false)]))
        .send(&puback(1));
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 256]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &Publish<'_>| {});
    assert_eq!(client.queue_publish("t", b"0", QoS::AtMostOnce, false), Err(Error::NotConnected));
    drive(async { client.connect(&o).await.unwrap() });
    assert_eq!(client.queue_publish("t", b"0", QoS::AtMostOnce, false), Ok(None));
    // The outbox must stay contiguous: QoS 1 or 2 cannot follow a queued
    // QoS 0.
    assert_eq!(client.queue_publish("t", b"1", QoS::AtLeastOnce, false), Err(Error::WouldBlock));
    assert_eq!(client.queue_publish("t", b"2", QoS::ExactlyOnce, false), Err(Error::WouldBlock));
    // An awaiting call writes the queue first, then its own packet.
    drive(async {
        assert_eq!(client.publish_no_wait("t", b"1", QoS::AtLeastOnce, false).await, Ok(id(1)));
        client.wait_all_acked().await.unwrap();
    });
    drop(client);
    mock.assert_done();
}

#[test]
fn queue_publish_refuses_when_tx_is_full_and_the_stored_bytes_stay_intact() {
    let o = windowed(100);
    let one = q1(b"payload", 1, false).len();
    let mut mock = MockTransport::new().expect(&connect(&o)).send(&connack(false));
    // Room for two stored publishes plus the control reserve, not three.
    let mut tx = vec![0u8; 2 * one + 4];
    let mut rx = [0u8; 64];
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &Publish<'_>| {});
    drive(async { client.connect(&o).await.unwrap() });
    assert!(client.queue_publish("t", b"payload", QoS::AtLeastOnce, false).unwrap().is_some());
    assert!(client.queue_publish("t", b"payload", QoS::AtLeastOnce, false).unwrap().is_some());
    assert_eq!(
        client.queue_publish("t", b"payload", QoS::AtLeastOnce, false),
        Err(Error::WouldBlock)
    );
    assert_eq!(client.in_flight(), 2);
    assert!(client.is_in_flight(id(1)) && client.is_in_flight(id(2)));
}

#[test]
fn mqtt_4_8_0_1_flush_after_a_fatal_error_writes_nothing() {
    let o = windowed(4);
    let mut mock = MockTransport::new()
        .expect(&connect(&o))
        .send(&connack(false))
        .send(&publish("t", b"in", Some(9), false))
        .step(Step::WriteError); // the PUBACK for id 9 fails
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 256]);
    let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &Publish<'_>| {});
    drive(async {
        client.connect(&o).await.unwrap();
        assert_eq!(client.wait_msg().await, Err(Error::Transport(umqtt::mock::MockError)));
        assert_eq!(client.state(), State::Failed);
        // The PUBACK is still pending, but the connection is gone.
        assert_eq!(client.flush().await, Err(Error::NotConnected));
    });
    let written = client.transport_mut().written().len();
    assert_eq!(written, connect(&o).len(), "only CONNECT was written");
    drop(client);
    mock.assert_done();
}
