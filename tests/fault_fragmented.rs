//! Real TCP that delivers packets in tiny, delayed pieces: the proxy splits
//! every direction into writes of 1..=3 bytes. The client must reassemble
//! every packet (PUBLISH, PUBACK, SUBACK, PINGRESP) across reads.

mod common;

use std::cell::RefCell;
use std::time::Duration;

use common::proxy::{Dir, Proxy};
use common::{Mosquitto, tcp};
use umqtt::{Client, ConnectOptions, Publish, QoS};

const MESSAGES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_split_into_one_to_three_byte_pieces_are_reassembled() {
    let Some(broker) = Mosquitto::start("fragmented", "") else { return };
    let proxy = Proxy::start(broker.port, 11).await;
    proxy.set_chunk(Some(3));
    proxy.set_delay(Duration::from_micros(50));

    let (mut rx, mut tx) = ([0u8; 256], [0u8; 2048]);
    let got = RefCell::new(Vec::new());
    let mut client = Client::new(tcp(proxy.port).await, &mut rx, &mut tx, |m: &Publish<'_>| {
        got.borrow_mut().push(String::from_utf8(m.payload.to_vec()).unwrap());
    });
    client.connect(&ConnectOptions::new("fragmented").keep_alive_secs(30)).await.unwrap();
    assert_eq!(client.subscribe("frag/+", QoS::AtLeastOnce).await.unwrap(), QoS::AtLeastOnce);
    for i in 0..MESSAGES {
        // Pipelined QoS 1: PUBACKs and our own messages interleave.
        client
            .publish_no_wait("frag/t", format!("message-{i}").as_bytes(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    client.wait_all_acked().await.unwrap();
    client.ping().await.unwrap();
    while got.borrow().len() < MESSAGES {
        let n = got.borrow().len();
        let next = tokio::time::timeout(Duration::from_secs(5), client.wait_msg()).await;
        next.unwrap_or_else(|_| panic!("only {n} of {MESSAGES} messages arrived")).unwrap();
    }
    drop(client);
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("message-{i}")).collect();
    println!(
        "fragmented: {} of {MESSAGES} received, {} bytes up, {} bytes down",
        got.borrow().len(),
        proxy.bytes(Dir::Up),
        proxy.bytes(Dir::Down)
    );
    assert_eq!(*got.borrow(), expected);
}
