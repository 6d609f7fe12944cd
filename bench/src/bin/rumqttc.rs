//! rumqttc (MQTT 3.1.1 `v4` API) side of the benchmark, on tokio. Same
//! modes and output as the umqtt binary (`pub0`, `pub1`, `rtt`, `prep`,
//! `drain`). RUNTIME=current selects a current-thread runtime instead of
//! the default multi-thread one.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use umqtt_bench::{Args, payload, percentiles, secs, usage};

/// Requests the client may queue for the event loop (batched into one
/// write per poll).
const CHANNEL: usize = 1024;

fn options(id: &str, port: u16) -> MqttOptions {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(60));
    opts
}

fn qos(n: usize) -> QoS {
    if n == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

async fn next(eventloop: &mut EventLoop) -> Event {
    eventloop.poll().await.expect("rumqttc event loop")
}

async fn until_connack(eventloop: &mut EventLoop) {
    while !matches!(next(eventloop).await, Event::Incoming(Packet::ConnAck(_))) {}
}

async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop) {
    client.disconnect().await.expect("disconnect");
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn run(args: Args) {
    let port = args.num(1) as u16;
    match args.text(0) {
        "pub0" | "pub1" | "pub2" | "rtt" => {
            let (topic, n, size) = (args.text(2).to_owned(), args.num(3), args.num(4));
            let body = bytes::Bytes::from(payload(size));
            let mut opts = options(&format!("rumqttc-{}", std::process::id()), port);
            let mode = args.text(0);
            if mode == "pub1" || mode == "pub2" {
                opts.set_inflight(args.num(5) as u16);
            }
            let (client, mut eventloop) = AsyncClient::new(opts, CHANNEL);
            until_connack(&mut eventloop).await;
            let start = Instant::now();
            match mode {
                "rtt" => {
                    let mut rtts = Vec::with_capacity(n);
                    for i in 0..n + 100 {
                        let t = Instant::now();
                        client
                            .publish_bytes(topic.as_str(), QoS::AtLeastOnce, false, body.clone())
                            .await
                            .unwrap();
                        while !matches!(
                            next(&mut eventloop).await,
                            Event::Incoming(Packet::PubAck(_))
                        ) {}
                        if i >= 100 {
                            rtts.push(secs(t));
                        }
                    }
                    let (median, p99) = percentiles(&mut rtts);
                    println!("median_us={median} p99_us={p99}");
                }
                _ => {
                    let q = match mode {
                        "pub0" => QoS::AtMostOnce,
                        "pub1" => QoS::AtLeastOnce,
                        _ => QoS::ExactlyOnce,
                    };
                    let publisher = client.clone();
                    tokio::spawn(async move {
                        for _ in 0..n {
                            publisher
                                .publish_bytes(topic.as_str(), q, false, body.clone())
                                .await
                                .unwrap();
                        }
                    });
                    let mut done = 0;
                    while done < n {
                        match next(&mut eventloop).await {
                            Event::Outgoing(Outgoing::Publish(_)) if q == QoS::AtMostOnce => {
                                done += 1
                            }
                            Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_)) => done += 1,
                            _ => {}
                        }
                    }
                    let key = if q == QoS::AtMostOnce {
                        "sent_s"
                    } else {
                        "acked_s"
                    };
                    println!("{key}={}", secs(start));
                }
            }
            disconnect(&client, &mut eventloop).await;
        }
        "prep" => {
            let mut opts = options(args.text(2), port);
            opts.set_clean_session(false);
            let (client, mut eventloop) = AsyncClient::new(opts, CHANNEL);
            until_connack(&mut eventloop).await;
            client
                .subscribe(args.text(3), qos(args.num(4)))
                .await
                .unwrap();
            while !matches!(
                next(&mut eventloop).await,
                Event::Incoming(Packet::SubAck(_))
            ) {}
            disconnect(&client, &mut eventloop).await;
        }
        "drain" => {
            let n = args.num(3);
            let mut opts = options(args.text(2), port);
            opts.set_clean_session(false);
            let start = Instant::now();
            let (client, mut eventloop) = AsyncClient::new(opts, CHANNEL);
            let mut received = 0;
            while received < n {
                if let Event::Incoming(Packet::Publish(_)) = next(&mut eventloop).await {
                    received += 1;
                }
            }
            println!("recv_s={}", secs(start));
            disconnect(&client, &mut eventloop).await;
        }
        _ => usage(),
    }
}

fn main() {
    let mut builder = if std::env::var("RUNTIME").is_ok_and(|v| v == "current") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    runtime.block_on(run(Args::from_env()));
}
