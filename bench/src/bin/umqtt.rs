//! umqtt side of the benchmark: tokio TCP through embedded-io-adapters on a
//! current-thread runtime. Modes and output: see `umqtt_bench::usage`.

use std::cell::Cell;
use std::io::Write as _;
use std::time::Instant;

use embedded_io_adapters::tokio_1::FromTokio;
use umqtt::{Client, ConnectOptions, Error, Publish, QoS};
use umqtt_bench::{Args, payload, percentiles, secs, usage, wall};

type Tcp = FromTokio<tokio::net::TcpStream>;

/// Whether the `pub2` mode (pipelined QoS 2) runs. When it does not (this
/// is `false`, or `queue_publish` refuses `QoS::ExactlyOnce` with
/// `InvalidArgument`), `pub2` prints `unsupported=1` and exits 3, which
/// `scripts/bench` shows as "no QoS 2".
const QOS2_PUBLISH: bool = true;

async fn tcp(port: u16) -> Tcp {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    FromTokio::new(stream)
}

fn qos(n: usize) -> QoS {
    if n == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // A spawned task, not the `block_on` future itself: tokio gives the
    // latter a new waker identity on every poll, and embassy-time's
    // generic timer queue then fills up with stale entries and wakes the
    // task spuriously (see BENCHMARKS.md).
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async { tokio::task::spawn_local(run(Args::from_env())).await })
        .await
        .expect("bench task");
}

async fn run(args: Args) {
    let port = args.num(1) as u16;
    let mut rx = vec![0u8; 16 * 1024];
    let count = Cell::new(0usize);
    let first = Cell::new(0f64);
    let handler = |_: &Publish<'_>| {
        if count.get() == 0 {
            first.set(wall());
        }
        count.set(count.get() + 1);
    };
    match args.text(0) {
        "pub0" | "pub1" | "pub2" | "rtt" | "fill" => {
            let (topic, n, size) = (args.text(2), args.num(3), args.num(4));
            let mode = args.text(0);
            let inflight = match mode {
                "pub1" | "pub2" => args.num(5),
                "fill" => 256,
                _ => 1,
            };
            let body = payload(size);
            let mut tx = vec![0u8; (inflight * (topic.len() + size + 8)).max(4096) + 64];
            let opts = ConnectOptions::new("").max_in_flight(inflight as u16);
            let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, handler);
            client.connect(&opts).await.expect("connect");
            let start = Instant::now();
            match mode {
                // Batched: queue_publish until tx (QoS 0) or the window
                // (QoS 1) is full, then one awaiting call writes the batch.
                "pub0" => {
                    for _ in 0..n {
                        while let Err(e) = client.queue_publish(topic, &body, QoS::AtMostOnce, false)
                        {
                            assert!(matches!(e, Error::WouldBlock), "queue_publish: {e:?}");
                            client.flush().await.expect("flush");
                        }
                    }
                    client.flush().await.expect("flush");
                    println!("sent_s={}", secs(start));
                }
                "pub1" => {
                    for _ in 0..n {
                        match client.queue_publish(topic, &body, QoS::AtLeastOnce, false) {
                            Ok(_) => {}
                            Err(Error::WouldBlock) => {
                                client
                                    .publish_no_wait(topic, &body, QoS::AtLeastOnce, false)
                                    .await
                                    .expect("publish");
                            }
                            Err(e) => panic!("queue_publish: {e:?}"),
                        }
                    }
                    client.wait_all_acked().await.expect("acks");
                    println!("acked_s={}", secs(start));
                }
                "pub2" => {
                    if !QOS2_PUBLISH {
                        println!("unsupported=1");
                        std::process::exit(3);
                    }
                    // As pub1, at QoS 2: queue until the window or tx is
                    // full, then publish_no_wait makes room.
                    for _ in 0..n {
                        match client.queue_publish(topic, &body, QoS::ExactlyOnce, false) {
                            Ok(_) => {}
                            Err(Error::WouldBlock) => {
                                client
                                    .publish_no_wait(topic, &body, QoS::ExactlyOnce, false)
                                    .await
                                    .expect("publish");
                            }
                            Err(Error::InvalidArgument(_)) => {
                                // A umqtt without QoS 2: the row shows n/a.
                                println!("unsupported=1");
                                std::process::exit(3);
                            }
                            Err(e) => panic!("queue_publish: {e:?}"),
                        }
                    }
                    client.wait_all_acked().await.expect("acks");
                    println!("acked_s={}", secs(start));
                }
                "rtt" => {
                    let mut rtts = Vec::with_capacity(n);
                    for i in 0..n + 100 {
                        let t = Instant::now();
                        client
                            .publish(topic, &body, QoS::AtLeastOnce, false)
                            .await
                            .expect("publish");
                        if i >= 100 {
                            rtts.push(secs(t));
                        }
                    }
                    let (median, p99) = percentiles(&mut rtts);
                    println!("median_us={median} p99_us={p99}");
                }
                _ => {
                    let q = qos(args.num(5));
                    for _ in 0..n {
                        if q == QoS::AtMostOnce {
                            client
                                .publish(topic, &body, q, false)
                                .await
                                .expect("publish");
                        } else {
                            client
                                .publish_no_wait(topic, &body, QoS::AtLeastOnce, false)
                                .await
                                .expect("publish");
                        }
                    }
                    client.wait_all_acked().await.expect("acks");
                    // The broker handles a connection's packets in order:
                    // PINGRESP means every PUBLISH above was routed.
                    client.ping().await.expect("ping");
                }
            }
            client.disconnect().await.expect("disconnect");
        }
        "prep" => {
            let (id, topic, q) = (args.text(2), args.text(3), qos(args.num(4)));
            let mut tx = vec![0u8; 4096];
            let opts = ConnectOptions::new(id).clean_session(false);
            let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, handler);
            client.connect(&opts).await.expect("connect");
            client.subscribe(topic, q).await.expect("subscribe");
            client.disconnect().await.expect("disconnect");
        }
        "drain" => {
            let (id, n) = (args.text(2), args.num(3));
            let mut tx = vec![0u8; 4096];
            let opts = ConnectOptions::new(id).clean_session(false);
            let start = Instant::now();
            let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, handler);
            client.connect(&opts).await.expect("connect");
            while count.get() < n {
                client.wait_msg().await.expect("wait_msg");
            }
            println!("recv_s={}", secs(start));
            client.disconnect().await.expect("disconnect");
        }
        "count" => {
            let (topic, q, n) = (args.text(2), qos(args.num(3)), args.num(4));
            let mut tx = vec![0u8; 4096];
            let opts = ConnectOptions::new("");
            let mut client = Client::new(tcp(port).await, &mut rx, &mut tx, handler);
            client.connect(&opts).await.expect("connect");
            client.subscribe(topic, q).await.expect("subscribe");
            println!("READY");
            std::io::stdout().flush().unwrap();
            let idle = std::time::Duration::from_secs(3);
            let mut last = 0.0;
            while count.get() < n {
                match tokio::time::timeout(idle, client.wait_msg()).await {
                    Ok(r) => r.expect("wait_msg"),
                    Err(_) if count.get() > 0 => break, // messages were lost
                    Err(_) => {}
                }
                last = wall();
            }
            println!(
                "received={} first={} last={}",
                count.get(),
                first.get(),
                last
            );
        }
        _ => usage(),
    }
}
