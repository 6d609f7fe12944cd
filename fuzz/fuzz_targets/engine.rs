//! The sans-I/O engine driven directly: a fuzz-chosen sequence of plain
//! calls (commands, `poll_transmit` / `on_written` of any length,
//! `on_flushed`, `read_buf` / `on_read` of fuzz bytes or of well-formed
//! server packets, `poll`, `handle_timeout`, time passing, transport
//! errors, session handover to a new engine over the same buffers), in
//! any order, including orders no driver of ours uses.
//!
//! Checked: no panic; every call's error that is fatal leaves the state
//! `Failed`; the bytes written on each connection are whole, valid client
//! packets (CONNECT first, nothing after DISCONNECT) up to a possibly
//! partial last one; the unfinished messages are exactly those a model
//! says (each QoS 1/2 publish stored until its `Published`, which only
//! comes for a stored id, all of them discarded and counted by a clean
//! connect); never more than `max_in_flight`; a QoS 2 message is only
//! delivered with receive slots.
//!
//! With persistence on (bit 7 of the first configuration byte), a pending
//! store operation is served before each operation (`on_stored`, or
//! `on_store_failed` when the operation byte is 0xf1), after checking that
//! nothing is written while it is pending and that a recorded PUBLISH is
//! the stored message; a refused PUBLISH leaves the model too.
//!
//! Input layout: 3 configuration bytes, then operations (one byte each,
//! some followed by an argument byte or bytes).
#![no_main]

use embassy_time::Instant;
use libfuzzer_sys::fuzz_target;
use umqtt::engine::{Engine, Event, StoreOp, Transmit};
use umqtt::packet::{self, DecodeError, Packet, PacketId};
use umqtt::{ConnectOptions, QoS, State, SubscribeTopic};

const TOPICS: [&str; 3] = ["a/b", "t", "sensors/01/temperature"];

/// The bytes the engine wrote on one connection.
fn check_written(mut written: &[u8]) {
    let mut first = true;
    let mut disconnected = false;
    loop {
        let d = match packet::decode(written) {
            Ok(d) => d,
            Err(DecodeError::Incomplete { .. }) => return, // cut mid-write
            Err(e) => panic!("engine wrote an invalid packet ({e}): {written:02x?}"),
        };
        assert!(!disconnected, "{:?} after DISCONNECT", d.packet);
        assert_eq!(
            first,
            matches!(d.packet, Packet::Connect(_)),
            "CONNECT not first: {:?}",
            d.packet
        );
        match d.packet {
            Packet::Disconnect => disconnected = true,
            Packet::Connect(_)
            | Packet::Publish(_)
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq => {}
            other => panic!("a client must not send {other:?}"),
        }
        first = false;
        written = &written[d.len..];
    }
}

/// A well-formed server packet chosen by `kind`, with packet id `id`.
fn server_packet(kind: u8, id: u16) -> Vec<u8> {
    let [hi, lo] = id.max(1).to_be_bytes();
    match kind % 10 {
        0 => vec![0x20, 0x02, kind >> 7, 0x00],
        1 => vec![0x40, 0x02, hi, lo],
        2 => vec![0x50, 0x02, hi, lo],
        3 => vec![0x62, 0x02, hi, lo],
        4 => vec![0x70, 0x02, hi, lo],
        5 => vec![0x34 | ((kind >> 4) & 0x08), 0x07, 0x00, 0x03, b'a', b'/', b'b', hi, lo],
        6 => vec![0x32, 0x08, 0x00, 0x03, b'a', b'/', b'b', hi, lo, 0x00],
        7 => vec![0x90, 0x03, hi, lo, (kind >> 4) % 3],
        8 => vec![0xb0, 0x02, hi, lo],
        _ => vec![0xd0, 0x00],
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((config, ops)) = data.split_first_chunk::<3>() else {
        return;
    };
    let mut rx = vec![0u8; 8 + usize::from(config[0] & 0x7f)];
    let mut tx = vec![0u8; 8 + usize::from(config[1]) * 2];
    let mut slots = vec![0u16; usize::from(config[2] & 0b11)];
    let keep_alive = [0u16, 1, 5, 60][usize::from((config[2] >> 2) & 0b11)];
    let max_in_flight = 1 + u16::from(config[2] >> 5);
    let opts = ConnectOptions::new("fuzz")
        .keep_alive_secs(keep_alive)
        .clean_session(config[2] & 0x10 == 0)
        .max_in_flight(max_in_flight);
    let payload = [0xa5u8; 200];

    let persist = config[0] & 0x80 != 0;
    let mut engine = Engine::new(&mut rx, &mut tx);
    engine.receive_qos2(&mut slots);
    if persist {
        engine.persist();
    }
    let receives_qos2 = engine.receives_qos2();
    let mut now = 0u64;
    // The stored (unfinished) outbound messages, by the model.
    let mut stored: Vec<PacketId> = Vec::new();
    let mut written: Vec<u8> = Vec::new();

    let mut ops = ops.iter().copied();
    // Fatal errors leave the state Failed.
    macro_rules! checked {
        ($result:expr) => {{
            let result = $result;
            if let Err(e) = &result
                && e.is_fatal()
            {
                assert_eq!(engine.state(), State::Failed, "fatal {e:?}");
            }
            result
        }};
    }
    while let Some(op) = ops.next() {
        if persist && engine.store_pending() {
            assert!(engine.poll_transmit().is_none(), "a write while a record is pending");
            let recorded = match engine.poll_store() {
                Some(StoreOp::Publish { id, packet }) => {
                    let d = packet::decode(packet).expect("a recorded PUBLISH decodes");
                    assert!(matches!(d.packet, Packet::Publish(p) if p.packet_id == Some(id)));
                    assert!(stored.contains(&id), "recorded {id:?} is not a stored message");
                    Some(id)
                }
                Some(_) => None,
                None => panic!("store_pending without an operation"),
            };
            if op == 0xf1 {
                let refused = engine.on_store_failed();
                assert_eq!(refused, recorded, "only a new PUBLISH is taken back");
                stored.retain(|s| Some(*s) != refused);
            } else {
                engine.on_stored();
            }
            assert_eq!(engine.in_flight(), stored.len(), "the outbox and the model differ");
            continue;
        }
        let at = Instant::from_millis(now);
        let arg = op >> 4;
        match op & 0x0f {
            0 => {
                let before = stored.len();
                check_written(&written);
                written.clear();
                if checked!(engine.connect(&opts, at)).is_ok() || opts.clean_session {
                    if opts.clean_session {
                        assert_eq!(usize::from(engine.discarded()), before);
                        stored.clear();
                    } else {
                        assert_eq!(engine.discarded(), 0);
                    }
                }
            }
            1 => {
                let qos =
                    [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(arg % 3)];
                let topic = TOPICS[usize::from(arg % 3)];
                let body = &payload[..usize::from(arg) * 13];
                match checked!(engine.publish(topic, body, qos, arg & 8 != 0)) {
                    Ok(Some(id)) => {
                        assert_ne!(qos, QoS::AtMostOnce);
                        assert!(!stored.contains(&id), "{id:?} given twice");
                        stored.push(id);
                    }
                    Ok(None) => assert_eq!(qos, QoS::AtMostOnce),
                    Err(_) => {}
                }
            }
            2 => {
                let qos =
                    [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(arg % 3)];
                let topics =
                    [SubscribeTopic { filter: "a/+", qos }, SubscribeTopic { filter: "#", qos }];
                if let Ok(id) = checked!(engine.subscribe(&topics[..1 + usize::from(arg & 1)])) {
                    assert!(!stored.contains(&id), "SUBSCRIBE took stored id {id:?}");
                }
            }
            3 => {
                if let Ok(id) = checked!(engine.unsubscribe(&["a/+"])) {
                    assert!(!stored.contains(&id), "UNSUBSCRIBE took stored id {id:?}");
                }
            }
            4 => _ = checked!(engine.ping(at)),
            5 => {
                if checked!(engine.disconnect()).is_ok() {
                    assert_eq!(engine.state(), State::Disconnected);
                }
            }
            6 => {
                let n = usize::from(ops.next().unwrap_or(0));
                if let Some(Transmit::Write(bytes)) = engine.poll_transmit() {
                    let n = n.min(bytes.len());
                    written.extend_from_slice(&bytes[..n]);
                    _ = checked!(engine.on_written(n));
                }
            }
            7 => engine.on_flushed(at),
            8 | 14 | 15 => {
                let bytes: Vec<u8> = match op & 0x0f {
                    8 => {
                        let n = usize::from(ops.next().unwrap_or(0));
                        ops.by_ref().take(n).collect()
                    }
                    14 => server_packet(ops.next().unwrap_or(0), u16::from(arg) + 1),
                    _ => ops.next().into_iter().collect(),
                };
                let mut rest = &bytes[..];
                while let Ok(buf) = engine.read_buf() {
                    let n = buf.len().min(rest.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    // Until all is in, or `rx` is full of packets to poll.
                    if checked!(engine.on_read(n, at)).is_err() || rest.is_empty() {
                        break;
                    }
                }
            }
            9 => {
                for _ in 0..=arg {
                    // Owned, so the result does not borrow the engine.
                    let seen = engine.poll(at).map(|event| {
                        event.map(|event| match event {
                            Event::Published(id) => (Some(id), None),
                            Event::Message(m) => (None, Some(m.qos)),
                            _ => (None, None),
                        })
                    });
                    let (published, qos) = match checked!(seen) {
                        Ok(Some(seen)) => seen,
                        _ => break,
                    };
                    if let Some(id) = published {
                        let Some(i) = stored.iter().position(|&s| s == id) else {
                            panic!("Published({id:?}) for a message not stored");
                        };
                        stored.remove(i);
                    }
                    if qos == Some(QoS::ExactlyOnce) {
                        assert!(receives_qos2, "QoS 2 message without slots");
                    }
                }
            }
            10 => {
                if let Ok(Some(next)) = checked!(engine.handle_timeout(at)) {
                    assert!(next >= at, "timer in the past");
                }
            }
            11 => now += u64::from(arg) * 500,
            12 => engine.on_transport_error(),
            _ => {
                // Hand the session to a new engine over the same buffers.
                let session = engine.session();
                drop(engine);
                engine = Engine::new(&mut rx, &mut tx);
                engine.resume(session);
                engine.receive_qos2(&mut slots);
                if persist {
                    engine.persist();
                }
                check_written(&written);
                written.clear();
            }
        }
        assert_eq!(engine.in_flight(), stored.len(), "the outbox and the model differ");
        assert!(stored.iter().all(|&id| engine.is_in_flight(id)));
        assert!(engine.in_flight() <= usize::from(max_in_flight));
    }
    check_written(&written);
});
