//! ECDSA P-384 chains (feature `tls-p384`) in a real TLS 1.3 handshake
//! against Mosquitto, and their refusal without the feature. Not in the
//! default test command (the feature costs about 150 KB of flash; run with
//! `cargo test --features tls-p384 --test tls_p384`).
#![cfg(feature = "tls")]

#[path = "tls_common/chains.rs"]
mod chains;
mod common;
mod tls_common;

use chains::{Outcome, round_trip};
#[cfg(not(feature = "tls-p384"))]
use umqtt::tls::{CertificateError, ConnectError};

#[tokio::test]
async fn p384_root_and_leaf_verify_with_tls_p384_and_are_refused_without() {
    let outcome = round_trip("p384_chain", "p384-leaf", "p384-root", "localhost").await;
    match outcome {
        Outcome::Skipped => {}
        #[cfg(feature = "tls-p384")]
        Outcome::Delivered(took) => {
            println!("P-384 chain verified and delivered; handshake {took:?}")
        }
        #[cfg(not(feature = "tls-p384"))]
        Outcome::Refused(ConnectError::Rejected(CertificateError::UnsupportedAlgorithm)) => {}
        #[allow(unreachable_patterns, reason = "which arm is expected depends on the feature")]
        other => panic!(
            "P-384 chain: unexpected {}",
            match other {
                Outcome::Delivered(_) => "acceptance".to_string(),
                Outcome::Refused(e) => format!("{e:?}"),
                Outcome::Skipped => unreachable!(),
            }
        ),
    }
}
