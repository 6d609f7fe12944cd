//! Whatever decodes encodes back to the identical bytes, and those decode
//! to an equal packet: decode -> encode -> decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umqtt::packet::{self, EncodeError, Malformed, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(first) = packet::decode(data) else {
        return;
    };
    let mut buf = vec![0u8; first.len];
    match packet::encode(&first.packet, &mut buf) {
        Ok(n) => {
            assert_eq!(n, first.len);
            assert_eq!(packet::encoded_len(&first.packet), Ok(n));
            assert_eq!(
                buf,
                &data[..first.len],
                "re-encoded bytes differ: {:?}",
                first.packet
            );
            let second = packet::decode(&buf).expect("re-encoded packet decodes");
            assert_eq!(second, first);
        }
        // The one packet a server must read but a client must not send:
        // an empty client id without a clean session ([MQTT-3.1.3-7/8]).
        Err(EncodeError::Invalid(Malformed::EmptyClientIdWithSession)) => {
            assert!(
                matches!(first.packet, Packet::Connect(c) if c.client_id.is_empty() && !c.clean_session)
            );
        }
        Err(e) => panic!("decoded {:?} but cannot encode it: {e}", first.packet),
    }
});
