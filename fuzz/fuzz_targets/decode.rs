//! Arbitrary bytes into the decoder: never a panic, a decoded packet fits
//! the input and agrees with its fixed header, and `Incomplete` always
//! asks for at least one byte.
#![no_main]

use std::fmt::Write;

use libfuzzer_sys::fuzz_target;
use umqtt::packet::{self, DecodeError, FixedHeader, Packet};

fuzz_target!(|data: &[u8]| {
    let mut sink = String::new();
    match packet::decode(data) {
        Ok(d) => {
            assert!(d.len >= 2 && d.len <= data.len());
            let header = FixedHeader::parse(data).expect("header of a decoded packet");
            assert_eq!(header.packet_len(), d.len);
            assert_eq!(header.packet_type, d.packet.packet_type());
            // One byte short is incomplete by exactly one byte.
            assert_eq!(
                packet::decode(&data[..d.len - 1]),
                Err(DecodeError::Incomplete { needed: 1 })
            );
            // Walk the decoded lists and format everything.
            match d.packet {
                Packet::Subscribe(s) => assert_eq!(s.topics.iter().count(), s.topics.len()),
                Packet::SubAck(s) => {
                    assert_eq!(s.return_codes.iter().count(), s.return_codes.len())
                }
                Packet::Unsubscribe(u) => assert_eq!(u.filters.iter().count(), u.filters.len()),
                _ => {}
            }
            write!(sink, "{:?}", d.packet).unwrap();
        }
        Err(DecodeError::Incomplete { needed }) => {
            assert!(needed >= 1);
            write!(sink, "{}", DecodeError::Incomplete { needed }).unwrap();
        }
        Err(e @ DecodeError::Malformed(m)) => write!(sink, "{e} {m:?}").unwrap(),
    }
});
