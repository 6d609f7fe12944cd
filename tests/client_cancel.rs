//! Cancellation at every await point of every client call.
//!
//! The mock transport returns `Pending` once before every read, write and
//! flush (`yield_every_call`) and gives one byte per read, so polling a
//! call `k` times and dropping it cancels it at its k-th await point. For
//! k = 0, 1, 2, ... until the call finishes un-cancelled, the test drops
//! the call after k polls, carries on the way an application would, and
//! checks that the bytes on the wire are exactly the script (no lost,
//! duplicated or torn packet), that every message was delivered exactly
//! once, and that no received byte was lost (the next message arrives
//! intact).
//!
//! What "carry on" means follows the client's contract: a call commits
//! its request packet on its first poll (it is encoded into `tx`), so a
//! request dropped after that is completed by the next call, never torn
//! and never sent twice; the application may then issue the call again,
//! which sends a new request with a new packet identifier.
#![allow(
    clippy::drop_non_drop,
    reason = "`drop(client)` marks where the mock is handed back for inspection"
)]

mod mock_support;

use std::pin::Pin;

use mock_support::*;
use umqtt::mock::{MockTransport, Step};
use umqtt::{Client, QoS, State, SubscribeReturnCode};

type Handler = Box<dyn FnMut(&umqtt::Publish<'_>)>;
type CallFuture<'c> = Pin<Box<dyn Future<Output = MockResult<()>> + 'c>>;
type Call = for<'c> fn(&'c mut MockClient<'_, Handler>) -> CallFuture<'c>;

/// One call under test.
struct Scenario {
    name: &'static str,
    /// The script after a successful connect.
    steps: Vec<Step>,
    call: Call,
    /// Waits for an incoming message (rather than sending a request).
    receive: bool,
    /// Script for issuing the request again after a cancellation that
    /// committed it.
    again: Vec<Step>,
    /// Topics delivered, in order, by the end.
    messages: &'static [&'static str],
}

fn expected_bytes(steps: &[Step]) -> Vec<u8> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Expect(b) => Some(b.as_slice()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

/// Handles whatever the script still sends, with `check_msg`, until the
/// script is played out.
fn drain(client: &mut MockClient<'_, Handler>) {
    for _ in 0..10_000 {
        if client.transport_mut().remaining().next().is_none() {
            return;
        }
        drive(client.check_msg()).unwrap();
    }
    panic!("the script never finished");
}

fn sweep(s: &Scenario) {
    let mut finished = false;
    for k in 0..1_000 {
        let mut mock = connected();
        for step in &s.steps {
            mock = mock.step(step.clone());
        }
        let mut mock = mock.yield_every_call().max_read(1);
        let mut expected = expected_bytes(&mock.remaining().cloned().collect::<Vec<_>>());
        let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
        let (got, handler) = recorder();
        let mut client = Client::new(&mut mock, &mut rx, &mut tx, Box::new(handler) as Handler);
        drive(client.connect(&opts())).unwrap();

        match poll_then_drop((s.call)(&mut client), k) {
            Some(result) => {
                result.unwrap_or_else(|e| panic!("{}: {e:?}", s.name));
                finished = true;
            }
            None if s.receive => {
                // The message may have been delivered before the drop;
                // delivery is the handler call, so wait only if it was not.
                if got.topics().len() < s.messages.len() {
                    drive((s.call)(&mut client))
                        .unwrap_or_else(|e| panic!("{} k={k}: {e:?}", s.name));
                }
            }
            None if k == 0 => {
                // Never polled: nothing happened, simply call again.
                drive((s.call)(&mut client)).unwrap_or_else(|e| panic!("{} k={k}: {e:?}", s.name));
            }
            None => {
                // The request is committed: the next calls complete it
                // (and ignore its late acknowledgment) ...
                drain(&mut client);
                // ... and issuing it again sends a new one.
                for step in &s.again {
                    client.transport_mut().push(step.clone());
                }
                expected.extend(expected_bytes(&s.again));
                drive((s.call)(&mut client)).unwrap_or_else(|e| panic!("{} k={k}: {e:?}", s.name));
            }
        }
        drain(&mut client);
        assert_eq!(client.state(), State::Connected, "{} k={k}", s.name);
        assert_eq!(client.in_flight(), 0, "{} k={k}", s.name);
        drop(client);
        mock.assert_done();
        assert_eq!(mock.written(), expected, "{} k={k}: bytes on the wire", s.name);
        assert_eq!(got.topics(), s.messages, "{} k={k}: deliveries", s.name);
        if finished {
            assert!(k > 2, "{}: too few await points ({k}) for yield_every_call", s.name);
            return;
        }
    }
    panic!("{}: never finished", s.name);
}

/// An incoming QoS 1 message, and its PUBACK, before the acknowledgment.
fn incoming() -> [Step; 2] {
    [Step::Send(publish("in", b"payload", Some(9), false)), Step::Expect(puback(9))]
}

fn request(req: Vec<u8>, ack: Vec<u8>) -> Vec<Step> {
    let [a, b] = incoming();
    vec![Step::Expect(req), a, b, Step::Send(ack)]
}

const GRANTED: [SubscribeReturnCode; 1] = [SubscribeReturnCode::Success(QoS::AtLeastOnce)];

#[test]
fn cancel_publish_qos0_at_every_await_point() {
    let [a, b] = incoming();
    sweep(&Scenario {
        name: "publish qos 0",
        steps: vec![Step::Expect(publish("t", b"zero", None, false)), a, b],
        call: |c| {
            Box::pin(async {
                c.publish("t", b"zero", QoS::AtMostOnce, false).await.map_err(Into::into)
            })
        },
        receive: false,
        again: vec![Step::Expect(publish("t", b"zero", None, false))],
        messages: &["in"],
    });
}

#[test]
fn cancel_publish_qos1_at_every_await_point() {
    sweep(&Scenario {
        name: "publish qos 1",
        steps: request(publish("t", b"one", Some(1), false), puback(1)),
        call: |c| {
            Box::pin(async {
                c.publish("t", b"one", QoS::AtLeastOnce, false).await.map_err(Into::into)
            })
        },
        receive: false,
        again: vec![Step::Expect(publish("t", b"one", Some(2), false)), Step::Send(puback(2))],
        messages: &["in"],
    });
}

#[test]
fn cancel_subscribe_at_every_await_point() {
    sweep(&Scenario {
        name: "subscribe",
        steps: request(subscribe(1, "f/#", QoS::AtLeastOnce), suback(1, &GRANTED)),
        call: |c| {
            Box::pin(async {
                c.subscribe("f/#", QoS::AtLeastOnce).await.map(|q| assert_eq!(q, QoS::AtLeastOnce))
            })
        },
        receive: false,
        again: vec![
            Step::Expect(subscribe(2, "f/#", QoS::AtLeastOnce)),
            Step::Send(suback(2, &GRANTED)),
        ],
        messages: &["in"],
    });
}

#[test]
fn cancel_unsubscribe_at_every_await_point() {
    sweep(&Scenario {
        name: "unsubscribe",
        steps: request(unsubscribe(1, "f/#"), unsuback(1)),
        call: |c| Box::pin(c.unsubscribe("f/#")),
        receive: false,
        again: vec![Step::Expect(unsubscribe(2, "f/#")), Step::Send(unsuback(2))],
        messages: &["in"],
    });
}

#[test]
fn cancel_ping_at_every_await_point() {
    sweep(&Scenario {
        name: "ping",
        steps: request(PINGREQ.to_vec(), PINGRESP.to_vec()),
        call: |c| Box::pin(c.ping()),
        receive: false,
        again: vec![Step::Expect(PINGREQ.to_vec()), Step::Send(PINGRESP.to_vec())],
        messages: &["in"],
    });
}

#[test]
fn cancel_wait_msg_at_every_await_point() {
    for qos1 in [false, true] {
        let mut steps = vec![Step::Send(publish("in", b"payload", qos1.then_some(9), false))];
        if qos1 {
            steps.push(Step::Expect(puback(9)));
        }
        // A second message proves no byte of the first was lost or reused.
        steps.push(Step::Send(publish("after", b"", None, false)));
        sweep(&Scenario {
            name: if qos1 { "wait_msg qos 1" } else { "wait_msg qos 0" },
            steps,
            call: |c| Box::pin(c.wait_msg()),
            receive: true,
            again: vec![],
            messages: &["in", "after"],
        });
    }
}

#[test]
fn cancel_check_msg_at_every_await_point() {
    sweep(&Scenario {
        name: "check_msg",
        steps: vec![
            Step::Send(publish("in", b"payload", Some(9), false)),
            Step::Expect(puback(9)),
            Step::Send(publish("after", b"", None, false)),
        ],
        // One byte per read and a Pending before each: check_msg returns
        // false many times before a message is complete.
        call: |c| {
            Box::pin(async {
                while !c.check_msg().await? {}
                Ok(())
            })
        },
        receive: true,
        again: vec![],
        messages: &["in", "after"],
    });
}

/// A dropped `connect` leaves the client `Connecting`; `reconnect` with a
/// fresh transport then connects cleanly, and the cancelled transport saw
/// at most one CONNECT (possibly cut short: it is abandoned).
#[test]
fn cancel_connect_at_every_await_point_then_reconnect() {
    for k in 0..1_000 {
        let mut first = MockTransport::new()
            .expect(&connect(&opts()))
            .send(&connack(false))
            .yield_every_call()
            .max_read(1);
        let mut second = connected().yield_every_call().max_read(1);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let mut client = Client::new(&mut first, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
        if let Some(result) = poll_then_drop(client.connect(&opts()), k) {
            result.unwrap();
            assert_eq!(client.state(), State::Connected);
            drop(client);
            first.assert_done();
            assert!(k > 2);
            return;
        }
        if k > 0 {
            assert_eq!(client.state(), State::Connecting, "k={k}");
        }
        drive(client.reconnect(&mut second, &opts())).unwrap();
        assert_eq!(client.state(), State::Connected);
        drop(client);
        second.assert_done();
        assert_eq!(second.written(), connect(&opts()));
        assert!(connect(&opts()).starts_with(first.written()), "k={k}");
    }
    panic!("connect never finished");
}

/// The same with unacknowledged QoS 1 publishes to resend: wherever the
/// first attempt stopped, the fresh connection gets every one, in order,
/// with DUP=1.
#[test]
fn cancel_connect_during_resend_then_reconnect_resends_everything() {
    for k in 0..1_000 {
        let resend = [publish("t", b"1", Some(1), true), publish("t", b"2", Some(2), true)];
        let script = |done: bool| {
            let m = MockTransport::new()
                .expect(&connect(&persistent()))
                .send(&connack(true))
                .expect(&resend[0])
                .expect(&resend[1]);
            if done { m.send(&cat(&[&puback(1), &puback(2)])) } else { m }
        };
        let mut lost = MockTransport::new()
            .expect(&connect(&persistent()))
            .send(&connack(false))
            .expect(&publish("t", b"1", Some(1), false))
            .expect(&publish("t", b"2", Some(2), false))
            .step(Step::Eof);
        let mut first = script(false).yield_every_call().max_read(1);
        let mut second = script(true).yield_every_call().max_read(1);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
        let mut client = Client::new(&mut lost, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
        drive(async {
            client.connect(&persistent()).await.unwrap();
            client.publish_no_wait("t", b"1", QoS::AtLeastOnce, false).await.unwrap();
            client.publish_no_wait("t", b"2", QoS::AtLeastOnce, false).await.unwrap();
            assert!(client.wait_all_acked().await.is_err());
        });
        let finished = poll_then_drop(client.reconnect(&mut first, &persistent()), k).is_some();
        drive(client.reconnect(&mut second, &persistent())).unwrap();
        drive(client.wait_all_acked()).unwrap();
        drop(client);
        second.assert_done();
        if finished {
            first.assert_done();
            assert!(k > 2);
            return;
        }
    }
    panic!("connect never finished");
}

/// After a dropped `disconnect`, calling it again completes the one
/// DISCONNECT and sends nothing more `[MQTT-3.14.4-2]`.
#[test]
fn cancel_disconnect_at_every_await_point() {
    for k in 0..1_000 {
        let mut mock = connected().expect(&DISCONNECT).yield_every_call().max_read(1);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
        drive(client.connect(&opts())).unwrap();
        let finished = match poll_then_drop(client.disconnect(), k) {
            Some(result) => result.is_ok(),
            None => {
                drive(client.disconnect()).unwrap_or_else(|e| panic!("k={k}: {e:?}"));
                false
            }
        };
        assert_eq!(client.state(), State::Disconnected, "k={k}");
        assert_eq!(
            drive(client.publish("t", b"", QoS::AtMostOnce, false)),
            Err(umqtt::Error::NotConnected.into())
        );
        drop(client);
        mock.assert_done();
        assert_eq!(mock.written(), cat(&[&connect(&opts()), &DISCONNECT]), "k={k}");
        if finished {
            assert!(k > 2);
            return;
        }
    }
    panic!("disconnect never finished");
}

/// A dropped `connect` followed by `connect` again on the same transport
/// (for example `select(connect, timer)` in a retry loop that keeps the
/// socket) must not send a second CONNECT `[MQTT-3.1.0-2]` nor tear the
/// first one.
#[test]
fn cancel_connect_then_connect_again_on_the_same_transport() {
    for k in 0..1_000 {
        let mut mock = MockTransport::new()
            .expect(&connect(&opts()))
            .send(&connack(false))
            .yield_every_call()
            .max_read(1);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        let mut client = Client::new(&mut mock, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
        let finished = poll_then_drop(client.connect(&opts()), k).is_some();
        if !finished {
            drive(client.connect(&opts())).unwrap();
        }
        drop(client);
        mock.assert_done();
        if finished {
            return;
        }
    }
}

/// A `connect` dropped while it resends stored publishes leaves the
/// client `Connected`; the publishes it had not resent yet must still go
/// out on this connection `[MQTT-4.4.0-1]`.
#[test]
fn cancel_connect_during_resend_then_carry_on_on_the_same_transport() {
    for k in 0..1_000 {
        let mut lost = MockTransport::new()
            .expect(&connect(&persistent()))
            .send(&connack(false))
            .expect(&publish("t", b"1", Some(1), false))
            .expect(&publish("t", b"2", Some(2), false))
            .step(Step::Eof);
        let mut mock = MockTransport::new()
            .expect(&connect(&persistent()))
            .send(&connack(true))
            .expect(&publish("t", b"1", Some(1), true))
            .expect(&publish("t", b"2", Some(2), true))
            .send(&cat(&[&puback(1), &puback(2)]))
            .yield_every_call()
            .max_read(1);
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 128]);
        let mut client = Client::new(&mut lost, &mut rx, &mut tx, |_: &umqtt::Publish<'_>| {});
        drive(async {
            client.connect(&persistent()).await.unwrap();
            client.publish_no_wait("t", b"1", QoS::AtLeastOnce, false).await.unwrap();
            client.publish_no_wait("t", b"2", QoS::AtLeastOnce, false).await.unwrap();
            assert!(client.wait_all_acked().await.is_err());
        });
        let finished = poll_then_drop(client.reconnect(&mut mock, &persistent()), k).is_some();
        if client.state() == State::Connected {
            drive(client.wait_all_acked()).unwrap_or_else(|e| panic!("k={k}: {e:?}"));
            drop(client);
            mock.assert_done();
        }
        if finished {
            return;
        }
    }
}
