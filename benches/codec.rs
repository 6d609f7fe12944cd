//! Codec benchmarks, umqtt side by side with the MQTT 3.1.1 codecs of
//! `mqttrs` (zero-copy, borrowed packets) and `mqttbytes` (`v4`, owned
//! packets over `bytes`), on the same bytes:
//!
//! - PUBLISH QoS 1, 16-byte topic, 64-byte and 1 KiB payloads;
//! - SUBSCRIBE with 4 filters;
//! - CONNECT with will and credentials.
//!
//! Each library decodes the packet's bytes, and encodes the packet it
//! decoded from them; the setup checks that all three produce the same
//! bytes, so like is compared with like. Buffers are reused; a decode by
//! `mqttbytes` consumes its `BytesMut`, whose refill is outside the
//! measured time. `scripts/codec-bench` runs this and prints the table.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use umqtt::packet::{
    self, Connect, LastWill, List, Packet, PacketId, ProtocolLevel, Publish, QoS, Subscribe,
    SubscribeTopic,
};

const MAX_SIZE: usize = 1 << 20;

/// The bytes of each benchmarked packet, made by umqtt.
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let encode = |p: &Packet<'_>| {
        let mut buf = vec![0u8; packet::encoded_len(p).unwrap()];
        packet::encode(p, &mut buf).unwrap();
        buf
    };
    let topic = "sensors/0123/tmp"; // 16 bytes
    assert_eq!(topic.len(), 16);
    let publish = |payload: &[u8]| {
        encode(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic,
            packet_id: PacketId::new(42),
            payload,
        }))
    };
    let small: Vec<u8> = (0..64u8).collect();
    let large: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
    let topics = [
        SubscribeTopic { filter: "sensors/+/temp", qos: QoS::AtLeastOnce },
        SubscribeTopic { filter: "sensors/+/humidity", qos: QoS::AtMostOnce },
        SubscribeTopic { filter: "devices/esp32-c3-01/cmd/#", qos: QoS::AtLeastOnce },
        SubscribeTopic { filter: "$SYS/broker/uptime", qos: QoS::AtMostOnce },
    ];
    let subscribe = encode(&Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(7).unwrap(),
        topics: List::Items(&topics),
    }));
    let connect = encode(&Packet::Connect(Connect {
        protocol: ProtocolLevel::V311,
        clean_session: true,
        keep_alive: 60,
        client_id: "esp32-c3-01",
        will: Some(LastWill {
            topic: "devices/esp32-c3-01/status",
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: Some("device-user"),
        password: Some(b"correct horse battery staple"),
    }));
    vec![
        ("publish_64", publish(&small)),
        ("publish_1k", publish(&large)),
        ("subscribe_4", subscribe),
        ("connect_will_credentials", connect),
    ]
}

fn umqtt_encode(p: &Packet<'_>, out: &mut [u8]) -> usize {
    packet::encode(p, out).unwrap()
}

fn mqttrs_encode(p: &mqttrs::Packet<'_>, out: &mut [u8]) -> usize {
    mqttrs::encode_slice(p, out).unwrap()
}

fn mqttbytes_encode(p: &mqttbytes::v4::Packet, out: &mut BytesMut) -> usize {
    use mqttbytes::v4::Packet as P;
    match p {
        P::Publish(p) => p.write(out),
        P::Subscribe(s) => s.write(out),
        P::Connect(c) => c.write(out),
        other => panic!("not benchmarked: {other:?}"),
    }
    .unwrap()
}

fn bench(c: &mut Criterion) {
    for (name, bytes) in cases() {
        // Each library decodes the same bytes and re-encodes them exactly.
        // umqtt encodes what a client builds: a decoded list would be
        // checked again before encoding (`List::Encoded` is public).
        let decoded = packet::decode(&bytes).unwrap().packet;
        let items: Vec<SubscribeTopic<'_>>;
        let ours = match decoded {
            Packet::Subscribe(s) => {
                items = s.topics.iter().collect();
                Packet::Subscribe(Subscribe { packet_id: s.packet_id, topics: List::Items(&items) })
            }
            other => other,
        };
        let theirs_rs = mqttrs::decode_slice(&bytes).unwrap().unwrap();
        let theirs_bytes = mqttbytes::v4::read(&mut BytesMut::from(&bytes[..]), MAX_SIZE).unwrap();
        let mut out = vec![0u8; bytes.len()];
        let n = umqtt_encode(&ours, &mut out);
        assert_eq!(&out[..n], &bytes[..], "{name}: umqtt");
        let n = mqttrs_encode(&theirs_rs, &mut out);
        assert_eq!(&out[..n], &bytes[..], "{name}: mqttrs");
        let mut out_bytes = BytesMut::with_capacity(bytes.len());
        mqttbytes_encode(&theirs_bytes, &mut out_bytes);
        assert_eq!(&out_bytes[..], &bytes[..], "{name}: mqttbytes");

        let mut g = c.benchmark_group(format!("{name}/decode"));
        g.bench_function("umqtt", |b| b.iter(|| packet::decode(black_box(&bytes)).unwrap()));
        g.bench_function("mqttrs", |b| b.iter(|| mqttrs::decode_slice(black_box(&bytes)).unwrap()));
        g.bench_function("mqttbytes", |b| {
            b.iter_batched(
                || BytesMut::from(&bytes[..]),
                |mut buf| mqttbytes::v4::read(black_box(&mut buf), MAX_SIZE).unwrap(),
                BatchSize::SmallInput,
            )
        });
        g.finish();

        let mut g = c.benchmark_group(format!("{name}/encode"));
        g.bench_function("umqtt", |b| {
            b.iter(|| umqtt_encode(black_box(&ours), black_box(&mut out)))
        });
        g.bench_function("mqttrs", |b| {
            b.iter(|| mqttrs_encode(black_box(&theirs_rs), black_box(&mut out)))
        });
        g.bench_function("mqttbytes", |b| {
            b.iter(|| {
                out_bytes.clear();
                mqttbytes_encode(black_box(&theirs_bytes), black_box(&mut out_bytes))
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
