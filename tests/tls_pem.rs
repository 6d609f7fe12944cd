//! PEM → DER decoding of `umqtt::tls::pem`: base64 edge cases, typed
//! errors for malformed input, bundles refused, key forms as `openssl`
//! writes them, and no panic on arbitrary bytes.
#![cfg(feature = "tls")]

mod tls_common;

use proptest::prelude::*;
use tls_common::{have_openssl, pki};
use umqtt::tls::pem::{self, PemError, certificate_der, private_key};

fn cert(body: &str) -> String {
    format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
}

#[test]
fn pem_certificate_with_surrounding_text_and_crlf_decodes() {
    // DER SEQUENCE { INTEGER 1 } = 30 03 02 01 01 = "MAMCAQE=".
    let text = "Certificate:\r\n  Data: ...\r\n-----BEGIN CERTIFICATE-----\r\nMAMC\r\nAQE=\r\n-----END CERTIFICATE-----\r\n";
    let mut out = [0u8; 16];
    assert_eq!(certificate_der(text.as_bytes(), &mut out).unwrap(), &[0x30, 3, 2, 1, 1]);
}

#[test]
fn pem_bundle_of_two_certificates_is_refused() {
    let bundle = cert("MAMCAQE=") + &cert("MAMCAQI=");
    let mut out = [0u8; 16];
    assert_eq!(certificate_der(bundle.as_bytes(), &mut out), Err(PemError::MultipleCertificates));
    // The blocks iterator lets a caller pick one explicitly.
    let second = pem::blocks(bundle.as_bytes()).nth(1).unwrap().unwrap();
    assert_eq!(second.decode(&mut out).unwrap(), &[0x30, 3, 2, 1, 2]);
}

#[test]
fn pem_malformed_inputs_give_typed_errors() {
    let mut out = [0u8; 16];
    let cases: &[(&str, PemError)] = &[
        ("", PemError::NotFound),
        ("-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n", PemError::NotFound),
        ("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n", PemError::MissingEnd),
        (
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n",
            PemError::MissingEnd,
        ),
        // Offsets count from the start of the body (its leading newline).
        (&cert("MAMC*QE="), PemError::InvalidBase64 { offset: 5 }),
        (&cert("MAMCAQE"), PemError::InvalidBase64 { offset: 9 }), // unpadded end
        (&cert("MAMCAQ=E"), PemError::InvalidBase64 { offset: 8 }), // data after padding
        (&cert("MAMCAR=="), PemError::InvalidBase64 { offset: 10 }), // non-zero spare bits
        (&cert("M==="), PemError::InvalidBase64 { offset: 2 }),
        (&cert(""), PemError::Empty),
        (&cert("AAAA"), PemError::MalformedDer),
    ];
    for (text, want) in cases {
        assert_eq!(certificate_der(text.as_bytes(), &mut out), Err(*want), "{text:?}");
    }
}

#[test]
fn pem_output_buffer_too_small_reports_needed_length() {
    let mut out = [0u8; 4];
    assert_eq!(
        certificate_der(cert("MAMCAQE=").as_bytes(), &mut out),
        Err(PemError::BufferTooSmall { needed: 5 })
    );
}

#[test]
fn pem_encrypted_and_non_p256_keys_are_refused() {
    let mut out = [0u8; 64];
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_eq!(private_key(encrypted.as_bytes(), &mut out), Err(PemError::EncryptedKey));
    let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMAA=\n-----END EC PRIVATE KEY-----\n";
    assert_eq!(private_key(legacy.as_bytes(), &mut out), Err(PemError::EncryptedKey));
    let rsa = "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(private_key(rsa.as_bytes(), &mut out), Err(PemError::UnsupportedKey));
}

#[test]
fn pem_keys_written_by_openssl_decode_in_both_forms() {
    if !have_openssl("pem_keys") {
        return;
    }
    let pki = pki();
    let mut out = [0u8; 512];
    // server.key: PKCS#8 "PRIVATE KEY" (openssl genpkey).
    let pkcs8 = pki.read("server.key");
    assert!(pkcs8.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    let key = private_key(&pkcs8, &mut out).unwrap();
    assert_eq!(key.sec1_der().first(), Some(&0x30));
    // client.key: "EC PARAMETERS" block then SEC1 "EC PRIVATE KEY".
    let sec1 = pki.read("client.key");
    assert!(sec1.starts_with(b"-----BEGIN EC PARAMETERS-----"));
    private_key(&sec1, &mut out).unwrap();
    // A certificate file is not a key file, and vice versa.
    assert_eq!(private_key(&pki.read("ca.pem"), &mut out).err(), Some(PemError::NotFound));
    assert_eq!(certificate_der(&pkcs8, &mut out).err(), Some(PemError::NotFound));
    let der = certificate_der(&pki.read("ca.pem"), &mut out).unwrap();
    assert!(der.len() > 300, "CA DER is {} bytes", der.len());
}

proptest! {
    #[test]
    fn pem_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), wrap in any::<bool>()) {
        let mut text = bytes.clone();
        if wrap {
            text = [b"-----BEGIN CERTIFICATE-----\n".as_slice(), &bytes, b"\n-----END CERTIFICATE-----"].concat();
        }
        let mut out = [0u8; 64];
        let _ = certificate_der(&text, &mut out);
        let _ = private_key(&text, &mut out);
        for block in pem::blocks(&text).flatten() {
            let _ = block.decode(&mut out);
        }
    }

    #[test]
    fn pem_base64_round_trips(der in proptest::collection::vec(any::<u8>(), 1..100)) {
        let mut text = String::from("-----BEGIN X-----\n");
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (i, chunk) in der.chunks(3).enumerate() {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for j in 0..4 {
                if j <= chunk.len() {
                    text.push(table[((n >> (18 - 6 * j)) & 63) as usize] as char);
                } else {
                    text.push('=');
                }
            }
            if i % 16 == 15 {
                text.push('\n');
            }
        }
        text.push_str("\n-----END X-----\n");
        let mut out = [0u8; 128];
        let block = pem::blocks(text.as_bytes()).next().unwrap().unwrap();
        prop_assert_eq!(block.decode(&mut out).unwrap(), der.as_slice());
    }
}
