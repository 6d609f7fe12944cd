//! RSA certificate chains (feature `tls-rsa`) in real TLS 1.3 handshakes
//! against Mosquitto, with a PKI made by openssl per run: RSA-2048 ×3,
//! RSA-4096 root + RSA-3072 intermediate, an RSA root over a P-256 leaf,
//! a PSS-signed leaf; refusals with typed errors (another key, a tampered
//! signature, a 1024-bit intermediate, an expired leaf, a wrong name).
//! Prints the handshake times.
#![cfg(feature = "tls-rsa")]

#[path = "tls_common/chains.rs"]
mod chains;
mod common;
mod tls_common;

use chains::{Outcome, round_trip, round_trip_with};
use umqtt::tls::{CertificateError, ConnectError, MaxFragmentLength};

fn delivered(outcome: Outcome, what: &str) {
    match outcome {
        Outcome::Skipped => {}
        Outcome::Delivered(took) => println!(
            "{what}: verified and delivered; handshake {took:?} ({} build)",
            if cfg!(debug_assertions) { "debug" } else { "release" }
        ),
        Outcome::Refused(e) => panic!("{what}: refused: {e:?}"),
    }
}

fn refused(outcome: Outcome, expected: CertificateError, what: &str) {
    match outcome {
        Outcome::Skipped => {}
        Outcome::Delivered(_) => panic!("{what}: accepted"),
        Outcome::Refused(ConnectError::Rejected(e)) => assert_eq!(e, expected, "{what}"),
        Outcome::Refused(e) => panic!("{what}: expected Rejected({expected:?}), got {e:?}"),
    }
}

#[tokio::test]
async fn rsa_2048_root_intermediate_and_leaf_verify_and_deliver() {
    delivered(round_trip("rsa_2048x3", "rsa2048-chain", "r2048", "localhost").await, "RSA-2048 ×3");
}

#[tokio::test]
async fn rsa_4096_root_over_3072_intermediate_verifies_and_delivers() {
    delivered(
        round_trip("rsa_4096_3072", "rsa4096-chain", "r4096", "localhost").await,
        "RSA-4096 root (SHA-512) → RSA-3072 intermediate (SHA-384) → RSA-2048 leaf",
    );
}

#[tokio::test]
async fn rsa_root_over_p256_leaf_verifies_and_delivers() {
    delivered(
        round_trip("rsa_over_ec", "rsa-over-ec", "r2048", "localhost").await,
        "RSA root → P-256 leaf",
    );
}

#[tokio::test]
async fn pss_signed_leaf_verifies_and_delivers() {
    delivered(
        round_trip("rsa_pss_leaf", "pss-leaf", "r2048", "localhost").await,
        "PSS-signed leaf",
    );
}

#[tokio::test]
async fn rsa_chain_signed_by_another_key_is_refused_as_bad_signature() {
    refused(
        round_trip("rsa_other_key", "other-chain", "r2048", "localhost").await,
        CertificateError::BadSignature,
        "chain under another root key with the same name",
    );
}

#[tokio::test]
async fn rsa_leaf_with_tampered_signature_is_refused_as_bad_signature() {
    refused(
        round_trip("rsa_tampered", "tampered", "r2048", "localhost").await,
        CertificateError::BadSignature,
        "one signature byte flipped",
    );
}

#[tokio::test]
async fn rsa_1024_bit_intermediate_is_refused_as_weak_key() {
    refused(
        round_trip("rsa_weak", "weak-chain", "r2048", "localhost").await,
        CertificateError::WeakKey { bits: 1024 },
        "1024-bit intermediate",
    );
}

#[tokio::test]
async fn expired_rsa_leaf_is_refused_with_a_clock() {
    refused(
        round_trip("rsa_expired", "expired-rsa-chain", "r2048", "localhost").await,
        CertificateError::Expired,
        "expired RSA leaf",
    );
}

#[tokio::test]
async fn rsa_chain_for_another_host_name_is_refused_as_name_mismatch() {
    refused(
        round_trip("rsa_wrong_name", "rsa2048-chain", "r2048", "broker.example.com").await,
        CertificateError::NameMismatch,
        "wrong host name",
    );
}

#[tokio::test]
async fn rsa_4096_chain_fits_the_boards_4k_max_fragment_length_read_buffer() {
    delivered(
        round_trip_with(
            "rsa_4096_mfl",
            "rsa4096-chain",
            "r4096",
            "localhost",
            Some(MaxFragmentLength::Bits12),
        )
        .await,
        "RSA-4096/3072 chain with 4 KiB records (8,709-byte read buffer)",
    );
}
