//! Known-answer tests of the heap-free RSA verifier (`umqtt::tls::rsa`)
//! against Project Wycheproof's vectors, read from
//! `../shared/testdata/wycheproof/` beside the clone (never copied here):
//! PKCS#1 v1.5 for 2048/3072/4096-bit keys with SHA-256/384/512, and PSS
//! for the TLS 1.3 schemes. Every `valid` vector must verify and every
//! `invalid` one be refused; `acceptable` ones are counted and printed
//! (this verifier refuses them all: it is strict DER/padding). Then a
//! property: flipping any bit of a valid signature makes it fail.
#![cfg(feature = "tls-rsa")]

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;
use umqtt::tls::rsa::{Hash, RsaError, RsaPublicKey};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/wycheproof")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hash(name: &str) -> Hash {
    match name {
        "SHA-256" => Hash::Sha256,
        "SHA-384" => Hash::Sha384,
        "SHA-512" => Hash::Sha512,
        other => panic!("hash {other}"),
    }
}

/// The vectors of one file, or `None` (skipped, said on stdout) when the
/// shared test data is missing and not required.
fn load(name: &str) -> Option<Value> {
    let path = dir().join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
        Err(e) => {
            // CI (UMQTT_REQUIRE_MOSQUITTO=1) has ../shared beside the clone.
            assert!(
                std::env::var("UMQTT_REQUIRE_MOSQUITTO").as_deref() != Ok("1"),
                "{}: {e}",
                path.display()
            );
            println!("SKIPPED {name}: {e}");
            None
        }
    }
}

#[derive(Default, Debug)]
struct Counts {
    valid: usize,
    invalid: usize,
    acceptable_refused: usize,
    acceptable_accepted: usize,
}

/// Runs every vector of `file`; `pss` selects the scheme.
fn run(file: &str, pss: bool) -> Counts {
    let mut counts = Counts::default();
    let Some(data) = load(file) else { return counts };
    for group in data["testGroups"].as_array().unwrap() {
        let key_der = hex(group["publicKeyAsn"].as_str().unwrap());
        let key = RsaPublicKey::from_pkcs1_der(&key_der).expect("Wycheproof key");
        let h = hash(group["sha"].as_str().unwrap());
        if pss {
            assert_eq!(group["mgfSha"], group["sha"], "{file}: MGF1 hash differs");
        }
        let salt = group["sLen"].as_u64().unwrap_or(0) as usize;
        for test in group["tests"].as_array().unwrap() {
            let msg = hex(test["msg"].as_str().unwrap());
            let sig = hex(test["sig"].as_str().unwrap());
            let verdict = if pss {
                key.verify_pss(h, salt, &msg, &sig)
            } else {
                key.verify_pkcs1_v15(h, &msg, &sig)
            };
            let id = &test["tcId"];
            match (test["result"].as_str().unwrap(), verdict) {
                ("valid", Ok(())) => counts.valid += 1,
                ("valid", Err(e)) => {
                    panic!("{file} #{id} valid, refused: {e:?} ({})", test["comment"])
                }
                ("invalid", Err(_)) => counts.invalid += 1,
                ("invalid", Ok(())) => {
                    panic!("{file} #{id} invalid, accepted ({})", test["comment"])
                }
                ("acceptable", Ok(())) => counts.acceptable_accepted += 1,
                ("acceptable", Err(_)) => counts.acceptable_refused += 1,
                (other, _) => panic!("{file} #{id}: result {other}"),
            }
        }
    }
    println!("{file}: {counts:?}");
    counts
}

fn run_all(files: &[&str], pss: bool) {
    let mut total = Counts::default();
    for file in files {
        let c = run(file, pss);
        total.valid += c.valid;
        total.invalid += c.invalid;
        total.acceptable_accepted += c.acceptable_accepted;
        total.acceptable_refused += c.acceptable_refused;
    }
    println!("total: {total:?}");
}

#[test]
fn wycheproof_pkcs1_v15_every_valid_verifies_and_every_invalid_is_refused() {
    run_all(
        &[
            "rsa_signature_2048_sha256_test.json",
            "rsa_signature_2048_sha384_test.json",
            "rsa_signature_2048_sha512_test.json",
            "rsa_signature_3072_sha256_test.json",
            "rsa_signature_3072_sha384_test.json",
            "rsa_signature_3072_sha512_test.json",
            "rsa_signature_4096_sha256_test.json",
            "rsa_signature_4096_sha384_test.json",
            "rsa_signature_4096_sha512_test.json",
        ],
        false,
    );
}

#[test]
fn wycheproof_pss_every_valid_verifies_and_every_invalid_is_refused() {
    run_all(
        &[
            "rsa_pss_2048_sha256_mgf1_32_test.json",
            "rsa_pss_2048_sha384_mgf1_48_test.json",
            "rsa_pss_3072_sha256_mgf1_32_test.json",
            "rsa_pss_4096_sha256_mgf1_32_test.json",
            "rsa_pss_4096_sha384_mgf1_48_test.json",
            "rsa_pss_4096_sha512_mgf1_64_test.json",
        ],
        true,
    );
}

#[test]
fn rsa_key_under_2048_bits_is_refused_as_too_small() {
    let mut n = vec![0xC3u8; 128];
    n[127] |= 1;
    assert_eq!(RsaPublicKey::new(&n, &[1, 0, 1]), Err(RsaError::KeyTooSmall { bits: 1024 }));
    let mut n = vec![0xC3u8; 255];
    n[254] |= 1;
    assert_eq!(RsaPublicKey::new(&n, &[1, 0, 1]), Err(RsaError::KeyTooSmall { bits: 2040 }));
    let n = vec![0xC3u8; 513];
    assert_eq!(RsaPublicKey::new(&n, &[1, 0, 1]), Err(RsaError::KeyTooLarge { bits: 4104 }));
}

/// Key DER, hash, salt length, message, signature.
type Vector = (Vec<u8>, Hash, usize, Vec<u8>, Vec<u8>);

/// The first valid vector of `file`.
fn first_valid(file: &str) -> Option<Vector> {
    let data = load(file)?;
    let group = &data["testGroups"][0];
    let test = group["tests"].as_array()?.iter().find(|t| t["result"] == "valid")?;
    Some((
        hex(group["publicKeyAsn"].as_str()?),
        hash(group["sha"].as_str()?),
        group["sLen"].as_u64().unwrap_or(0) as usize,
        hex(test["msg"].as_str()?),
        hex(test["sig"].as_str()?),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn flipping_any_bit_of_a_valid_signature_makes_it_fail(bit in 0usize..2048, pss: bool) {
        let file = if pss { "rsa_pss_2048_sha256_mgf1_32_test.json" } else { "rsa_signature_2048_sha256_test.json" };
        let Some((key, h, salt, msg, mut sig)) = first_valid(file) else { return Ok(()) };
        let key = RsaPublicKey::from_pkcs1_der(&key).unwrap();
        let check = |sig: &[u8]| if pss { key.verify_pss(h, salt, &msg, sig) } else { key.verify_pkcs1_v15(h, &msg, sig) };
        prop_assert_eq!(check(&sig), Ok(()));
        sig[bit / 8] ^= 0x80 >> (bit % 8);
        prop_assert_eq!(check(&sig), Err(RsaError::BadSignature));
    }
}

/// Prints the time of one verification per key size (run with `--release`
/// for the figure in the README; not an assertion).
#[test]
fn rsa_verification_time_per_key_size_is_printed() {
    for file in [
        "rsa_signature_2048_sha256_test.json",
        "rsa_signature_3072_sha256_test.json",
        "rsa_signature_4096_sha256_test.json",
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        "rsa_pss_4096_sha256_mgf1_32_test.json",
    ] {
        let Some((key, h, salt, msg, sig)) = first_valid(file) else { return };
        let key = RsaPublicKey::from_pkcs1_der(&key).unwrap();
        let pss = file.contains("pss");
        let rounds = 20;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            let ok = if pss {
                key.verify_pss(h, salt, &msg, &sig)
            } else {
                key.verify_pkcs1_v15(h, &msg, &sig)
            };
            assert_eq!(ok, Ok(()));
        }
        println!(
            "RSA-{} {} verification: {:?} ({} build)",
            key.modulus_bits(),
            if pss { "PSS" } else { "PKCS#1 v1.5" },
            started.elapsed() / rounds,
            if cfg!(debug_assertions) { "debug" } else { "release" }
        );
    }
}
