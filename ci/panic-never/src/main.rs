//! The panic-never proof of the codec.
//!
//! Decodes and encodes every packet type, validates and matches topics, on
//! bytes the optimizer cannot see through (`black_box`), in a firmware
//! build (release, LTO). The panic handler calls `never_panic`, which is
//! defined nowhere: if any panic path of the codec survives optimization,
//! the link fails with "undefined symbol: never_panic".
//!
//! `scripts/panic-never` builds it for thumbv7em-none-eabihf.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;

use umqtt::packet::{
    self, ConnAck, Connect, ConnectReturnCode, FixedHeader, LastWill, List, Packet, PacketId,
    ProtocolLevel, Publish, QoS, SubAck, Subscribe, SubscribeReturnCode, SubscribeTopic,
    Unsubscribe,
};
use umqtt::topic::{TopicFilter, TopicName};

#[cfg(not(feature = "diagnose"))]
unsafe extern "C" {
    /// Defined nowhere: referencing it fails the link.
    fn never_panic() -> !;
}

#[cfg(feature = "diagnose")]
#[unsafe(no_mangle)]
extern "C" fn never_panic() -> ! {
    loop {}
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    // SAFETY: never returns; with `diagnose` a plain loop.
    #[allow(unused_unsafe)]
    unsafe {
        never_panic()
    }
}

/// One packet of every type, as a stream: CONNECT (will and credentials),
/// CONNACK, PUBLISH QoS 1, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE (two
/// filters), SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT.
static STREAM: &[u8] = &[
    0x10, 0x28, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xee, 0x00, 0x3c, 0x00, 0x02, b'i', b'd',
    0x00, 0x05, b'w', b'/', b'd', b'i', b'e', 0x00, 0x03, b'b', b'y', b'e', 0x00, 0x04, b'u', b's',
    b'e', b'r', 0x00, 0x06, b's', b'e', b'c', b'r', b'e', b't', // CONNECT
    0x20, 0x02, 0x01, 0x00, // CONNACK
    0x32, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x07, b'p', b'a', b'y', // PUBLISH
    0x40, 0x02, 0x00, 0x07, // PUBACK
    0x50, 0x02, 0x00, 0x08, // PUBREC
    0x62, 0x02, 0x00, 0x08, // PUBREL
    0x70, 0x02, 0x00, 0x08, // PUBCOMP
    0x82, 0x0c, 0x00, 0x09, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x01, b'#',
    0x00, // SUBSCRIBE
    0x90, 0x04, 0x00, 0x09, 0x01, 0x80, // SUBACK
    0xa2, 0x05, 0x00, 0x0a, 0x00, 0x01, b'#', // UNSUBSCRIBE
    0xb0, 0x02, 0x00, 0x0a, // UNSUBACK
    0xc0, 0x00, 0xd0, 0x00, 0xe0, 0x00, // PINGREQ, PINGRESP, DISCONNECT
];

static mut OUT: [u8; 256] = [0; 256];

/// Everything the codec offers on one decoded packet; returns a number
/// that depends on all of it.
fn exercise(p: &Packet<'_>, out: &mut [u8], filter: &str) -> usize {
    let mut sum = p.packet_type() as usize;
    sum += packet::encoded_len(p).unwrap_or(1);
    if let Ok(n) = packet::encode(p, out) {
        sum += n;
        if let Ok(h) = FixedHeader::parse(out) {
            sum += h.packet_len();
            if let Some(body) = out.get(h.header_len..h.packet_len()) {
                sum += usize::from(packet::decode_body(&h, body).is_ok());
            }
        }
    }
    let filter = TopicFilter::new(filter);
    match p {
        Packet::Publish(publish) => {
            if let (Ok(f), Ok(n)) = (filter, TopicName::new(publish.topic)) {
                sum += usize::from(f.matches(&n));
            }
            sum += publish.payload.len();
        }
        Packet::Subscribe(s) => {
            sum += s.topics.len();
            sum += s
                .topics
                .iter()
                .map(|t| t.qos as usize + t.filter.len())
                .sum::<usize>();
        }
        Packet::SubAck(s) => {
            sum += s
                .return_codes
                .iter()
                .filter(|c| *c == SubscribeReturnCode::Failure)
                .count()
        }
        Packet::Unsubscribe(u) => sum += u.filters.iter().map(str::len).sum::<usize>(),
        Packet::PubAck(id)
        | Packet::PubRec(id)
        | Packet::PubRel(id)
        | Packet::PubComp(id)
        | Packet::UnsubAck(id) => {
            sum += usize::from(id.next().get());
        }
        _ => {}
    }
    sum
}

#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // SAFETY: the only reference to OUT, taken once.
    let out: &mut [u8; 256] = unsafe { &mut *core::ptr::addr_of_mut!(OUT) };
    let out: &mut [u8] = black_box(out);
    let mut sum = 0usize;

    // Decode the opaque stream packet by packet, re-encode each.
    let filter: &str = black_box("+/#");
    let mut rest: &[u8] = black_box(STREAM);
    while let Ok(d) = packet::decode(rest) {
        sum += exercise(&d.packet, out, filter);
        rest = rest.get(d.len..).unwrap_or(&[]);
    }

    // Encode hand-built packets of every type from opaque fields.
    let text: &str = black_box("sensors/01/temp");
    let bytes: &[u8] = black_box(b"payload");
    let qos = QoS::from_bits(black_box(1)).unwrap_or(QoS::AtMostOnce);
    let id = PacketId::new(black_box(7)).unwrap_or(PacketId::MAX);
    let topics = [
        SubscribeTopic { filter: text, qos },
        SubscribeTopic { filter, qos },
    ];
    let codes = [
        SubscribeReturnCode::Success(qos),
        SubscribeReturnCode::Failure,
    ];
    let filters = [text, filter];
    let code = ConnectReturnCode::from_u8(black_box(0)).unwrap_or(ConnectReturnCode::NotAuthorized);
    let packets = [
        Packet::Connect(Connect {
            protocol: if black_box(true) {
                ProtocolLevel::V311
            } else {
                ProtocolLevel::V31
            },
            clean_session: black_box(true),
            keep_alive: black_box(60),
            client_id: text,
            will: Some(LastWill {
                topic: text,
                payload: bytes,
                qos,
                retain: black_box(true),
            }),
            username: Some(text),
            password: Some(bytes),
        }),
        Packet::ConnAck(ConnAck {
            session_present: black_box(false),
            code,
        }),
        Packet::Publish(Publish {
            dup: black_box(false),
            qos,
            retain: black_box(false),
            topic: text,
            packet_id: Some(id),
            payload: bytes,
        }),
        Packet::PubAck(id),
        Packet::PubRec(id),
        Packet::PubRel(id),
        Packet::PubComp(id),
        Packet::Subscribe(Subscribe {
            packet_id: id,
            topics: List::Items(black_box(&topics[..])),
        }),
        Packet::SubAck(SubAck {
            packet_id: id,
            return_codes: List::Items(black_box(&codes[..])),
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            filters: List::Items(black_box(&filters[..])),
        }),
        Packet::UnsubAck(id),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect,
    ];
    for p in black_box(&packets) {
        sum += exercise(p, out, filter);
    }
    black_box(sum);
    loop {
        core::hint::spin_loop();
    }
}
