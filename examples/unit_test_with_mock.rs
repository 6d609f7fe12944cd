//! How an application unit-tests its own MQTT logic on the host, without a
//! broker, against `umqtt::mock` (feature `mock`, in `[dev-dependencies]`).
//!
//! The application logic here is a thermostat: it subscribes to
//! `thermostat/cmd`, and answers each command (`on`, `off`) by publishing
//! its new state to `thermostat/state`. The tests below script what the
//! broker says and check, byte for byte, what the thermostat writes; a
//! difference fails the test with both packets decoded side by side.
//!
//! ```text
//! cargo test --example unit_test_with_mock    # the tests
//! cargo run --example unit_test_with_mock     # one scripted conversation
//! ```
//!
//! In an application, `thermostat` lives in the firmware's library code
//! (generic over the socket, so the firmware passes its TCP socket) and the
//! tests in its `#[cfg(test)]` module.

use std::cell::Cell;

use embedded_io_async::{Read, Write};
use umqtt::mock::MockTransport;
use umqtt::packet::{
    ConnAck, ConnectReturnCode, List, Packet, PacketId, SubAck, Subscribe, SubscribeReturnCode,
};
use umqtt::{Client, ConnectOptions, Error, Publish, QoS, SubscribeTopic};

const COMMANDS: &str = "thermostat/cmd";
const STATE: &str = "thermostat/state";

fn options() -> ConnectOptions<'static> {
    ConnectOptions::new("thermostat-01").keep_alive_secs(60)
}

/// The application logic under test: connects, subscribes to the commands,
/// answers `rounds` commands with the new state, disconnects. Returns
/// whether it is heating at the end.
async fn thermostat<T: Read + Write>(socket: T, rounds: usize) -> Result<bool, Error<T::Error>> {
    let heating = Cell::new(false);
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(socket, &mut rx, &mut tx, |msg: &Publish<'_>| {
        match msg.payload {
            b"on" => heating.set(true),
            b"off" => heating.set(false),
            _ => {} // not a command: ignored
        }
    });
    client.connect(&options()).await?;
    client.subscribe(COMMANDS, QoS::AtLeastOnce).await?;
    for _ in 0..rounds {
        client.wait_msg().await?;
        let state: &[u8] = if heating.get() { b"on" } else { b"off" };
        client.publish(STATE, state, QoS::AtLeastOnce, false).await.map_err(|e| e.error)?;
    }
    client.disconnect().await?;
    Ok(heating.get())
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("not 0")
}

/// The broker's side up to the SUBACK with `code`: CONNECT is answered
/// with CONNACK, SUBSCRIBE (packet id 1) with SUBACK.
fn connected_and_subscribed(code: SubscribeReturnCode) -> MockTransport {
    let topics = [SubscribeTopic { filter: COMMANDS, qos: QoS::AtLeastOnce }];
    MockTransport::new()
        .expect_packet(&Packet::Connect(options().to_connect()))
        .send_packet(&Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        }))
        .expect_packet(&Packet::Subscribe(Subscribe {
            packet_id: id(1),
            topics: List::Items(&topics),
        }))
        .send_packet(&Packet::SubAck(SubAck {
            packet_id: id(1),
            return_codes: List::Items(&[code]),
        }))
}

/// A QoS 1 message as the broker delivers it (`n` is its packet id), or as
/// the client publishes it.
fn publish(topic: &'static str, payload: &'static [u8], n: u16) -> Packet<'static> {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic,
        packet_id: Some(id(n)),
        payload,
    })
}

/// One command `on`: acknowledged, answered with the state `on` (packet
/// id 2, the client's next), then DISCONNECT.
fn one_command_on() -> MockTransport {
    connected_and_subscribed(SubscribeReturnCode::Success(QoS::AtLeastOnce))
        .send_packet(&publish(COMMANDS, b"on", 7))
        .expect_packet(&Packet::PubAck(id(7)))
        .expect_packet(&publish(STATE, b"on", 2))
        .send_packet(&Packet::PubAck(id(2)))
        .expect_packet(&Packet::Disconnect)
}

fn main() {
    let mut broker = one_command_on();
    let heating = embassy_futures::block_on(thermostat(&mut broker, 1)).expect("scripted run");
    broker.assert_done();
    println!("thermostat answered the scripted broker; heating: {heating}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use umqtt::mock::Step;

    #[test]
    fn a_command_is_acknowledged_and_answered_with_the_new_state() {
        let mut broker = one_command_on();
        assert_eq!(embassy_futures::block_on(thermostat(&mut broker, 1)), Ok(true));
        broker.assert_done();
    }

    #[test]
    fn the_answer_survives_a_broker_reply_split_into_single_bytes() {
        let mut broker = one_command_on().max_read(1);
        assert_eq!(embassy_futures::block_on(thermostat(&mut broker, 1)), Ok(true));
        broker.assert_done();
    }

    #[test]
    fn a_refused_subscription_is_an_error_not_a_silent_thermostat() {
        let mut broker = connected_and_subscribed(SubscribeReturnCode::Failure);
        let result = embassy_futures::block_on(thermostat(&mut broker, 1));
        assert_eq!(result, Err(Error::SubscribeRefused));
        broker.assert_done();
    }

    #[test]
    fn a_broker_that_closes_the_connection_is_reported_not_waited_for() {
        let mut broker = connected_and_subscribed(SubscribeReturnCode::Success(QoS::AtLeastOnce))
            .step(Step::Eof);
        let result = embassy_futures::block_on(thermostat(&mut broker, 1));
        assert_eq!(result, Err(Error::ConnectionClosed));
        broker.assert_done();
    }
}
