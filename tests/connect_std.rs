//! `umqtt::connect::StdConnector`, the blocking connector over
//! `std::net`, against a private Mosquitto: `umqtt::blocking::Client`
//! round trips by host name `localhost` and by IP literal, twice in a row
//! through the same connector; a refused connection is an I/O error. Each
//! client runs in its own thread, bounded by [`WAIT`].

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use common::{Mosquitto, free_port};
use umqtt::blocking::{Client, StdClock};
use umqtt::connect::blocking::Connector;
use umqtt::connect::{HostName, StdConnector};
use umqtt::{ConnectOptions, QoS};

/// How long a test waits for its client thread.
const WAIT: Duration = Duration::from_secs(20);

/// Connects through `connector` twice; each time, one blocking client
/// subscribes to a topic at QoS 1, publishes to it and waits for the
/// message to come back.
fn twice(connector: StdConnector<&'static str>, id: &'static str) {
    let (done_tx, done) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut connector = connector;
        for n in 1..=2u8 {
            let socket = connector.connect().expect("connect");
            assert!(socket.inner().nodelay().unwrap(), "TCP_NODELAY is on");
            let got = Rc::new(RefCell::new(Vec::new()));
            let sink = got.clone();
            let handler = move |m: &umqtt::Publish<'_>| {
                sink.borrow_mut().push((m.topic.to_owned(), m.payload.to_vec(), m.qos));
            };
            let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
            let mut client = Client::new(socket, &mut rx, &mut tx, handler, StdClock::new());
            let connected = client.connect(&ConnectOptions::new(id)).expect("CONNACK");
            assert!(!connected.session_present);
            assert_eq!(
                client.subscribe("connect/std", QoS::AtLeastOnce).unwrap(),
                QoS::AtLeastOnce
            );
            client.publish("connect/std", &[n], QoS::AtLeastOnce, false).expect("PUBACK");
            while got.borrow().is_empty() {
                client.wait_msg().expect("wait_msg");
            }
            assert_eq!(got.take(), vec![("connect/std".to_owned(), vec![n], QoS::AtLeastOnce)]);
            client.disconnect().unwrap();
        }
        done_tx.send(()).unwrap();
    });
    done.recv_timeout(WAIT).expect("two round trips in time");
    thread.join().unwrap();
}

#[test]
fn blocking_client_connects_by_host_name_localhost_twice_through_one_connector() {
    let Some(broker) = Mosquitto::start("connect_std_localhost", "") else {
        return;
    };
    let connector = StdConnector::new("localhost", broker.port).connect_timeout(WAIT);
    assert_eq!(connector.host(), "localhost");
    twice(connector, "std-localhost");
}

#[test]
fn blocking_client_connects_by_ip_literal_twice_through_one_connector() {
    let Some(broker) = Mosquitto::start("connect_std_literal", "") else {
        return;
    };
    twice(StdConnector::new("127.0.0.1", broker.port), "std-literal");
}

#[test]
fn a_refused_connection_is_an_io_error() {
    let mut connector = StdConnector::new("localhost", free_port());
    let error = connector.connect().err().expect("nothing listens there");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}
