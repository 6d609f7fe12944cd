//! Certificate chain and CertificateVerify checks, in place of
//! embedded-tls 0.19's `pki::CertVerifier` (which verifies ECDSA only
//! without `alloc`, matches DNS names but not IP addresses, and keeps the
//! whole chain for the CertificateVerify).
//!
//! Parsing is the bounds-checked DER of [`super::der`]; malformed input
//! gives an error, never a panic. What is checked:
//!
//! - each certificate's signature with its issuer's key (the next entry;
//!   the CA for the last one, or the last one itself when the server sends
//!   the CA certificate too): ECDSA P-256 with SHA-256, P-384 with SHA-384
//!   (feature `tls-p384`), RSA PKCS#1 v1.5 and RSASSA-PSS with SHA-256/384/512
//!   (feature `tls-rsa`, moduli of 2048 to 4096 bits);
//! - every issuer in the chain is a CA (`basicConstraints cA=TRUE`);
//! - validity times of every certificate sent, when a clock is given;
//! - the leaf names the server: an IP address (v4 or v6) only against
//!   `iPAddress` SANs, a DNS name only against `dNSName` SANs (RFC 6125
//!   wildcards: `*.example.com` covers one label), and the common name only
//!   when the certificate has no subjectAltName;
//! - the CertificateVerify signature with the leaf's key, in a scheme the
//!   ClientHello offered.

use core::fmt;
use core::net::IpAddr;

use embedded_tls::{SignatureScheme, TlsError};

use super::der::{self, Reader};
#[cfg(feature = "tls-rsa")]
use super::rsa::{self, Hash, RsaError, RsaPublicKey};

/// Bytes kept of the leaf's SubjectPublicKeyInfo for the CertificateVerify
/// (an RSA-4096 key takes 550).
pub(super) const LEAF_KEY_CAPACITY: usize = 600;

/// Why the server's certificate chain or signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateError {
    /// The server sent no certificate.
    NoCertificate,
    /// A certificate (or the CA certificate) is not valid DER X.509.
    Malformed,
    /// A signature or key algorithm this build does not verify (RSA needs
    /// feature `tls-rsa`, P-384 `tls-p384`).
    UnsupportedAlgorithm,
    /// An RSA key under 2048 bits (or over 4096).
    WeakKey {
        /// Bits of the modulus.
        bits: usize,
    },
    /// A signature does not verify: the chain is not issued by the CA, a
    /// certificate was tampered with, or the server does not hold the key.
    BadSignature,
    /// An issuer in the chain is not a CA certificate.
    IssuerNotCa,
    /// A certificate is outside its validity period (with a clock).
    Expired,
    /// The leaf does not name the server (DNS name or IP address).
    NameMismatch,
    /// The leaf key is larger than the verifier keeps.
    KeyTooLarge,
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCertificate => f.write_str("no server certificate"),
            Self::Malformed => f.write_str("malformed certificate"),
            Self::UnsupportedAlgorithm => f.write_str("unsupported signature or key algorithm"),
            Self::WeakKey { bits } => write!(f, "RSA key of {bits} bits (2048 to 4096 accepted)"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::IssuerNotCa => f.write_str("issuer is not a CA"),
            Self::Expired => f.write_str("certificate outside its validity period"),
            Self::NameMismatch => f.write_str("certificate does not name the server"),
            Self::KeyTooLarge => f.write_str("server key too large"),
        }
    }
}

impl core::error::Error for CertificateError {}

#[cfg(feature = "defmt")]
impl defmt::Format for CertificateError {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl CertificateError {
    /// The embedded-tls error the verifier trait returns for it.
    pub(super) fn tls_error(self) -> TlsError {
        match self {
            Self::UnsupportedAlgorithm => TlsError::InvalidSignatureScheme,
            Self::BadSignature => TlsError::InvalidSignature,
            Self::Malformed => TlsError::DecodeError,
            _ => TlsError::InvalidCertificate,
        }
    }
}

#[cfg(feature = "tls-rsa")]
impl From<RsaError> for CertificateError {
    fn from(e: RsaError) -> Self {
        match e {
            RsaError::KeyTooSmall { bits } | RsaError::KeyTooLarge { bits } => {
                Self::WeakKey { bits }
            }
            RsaError::MalformedKey => Self::Malformed,
            _ => Self::BadSignature,
        }
    }
}

type Result<T> = core::result::Result<T, CertificateError>;

/// 1.2.840.10045.4.3.2 ecdsa-with-SHA256.
const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// 1.2.840.10045.4.3.3 ecdsa-with-SHA384.
const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// 1.2.840.113549.1.1.{11,12,13} sha{256,384,512}WithRSAEncryption.
const RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
/// 1.2.840.113549.1.1.10 id-RSASSA-PSS.
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// 1.2.840.113549.1.1.8 id-mgf1.
const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
/// 2.16.840.1.101.3.4.2.{1,2,3} SHA-256, SHA-384, SHA-512.
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
/// 1.2.840.10045.2.1 id-ecPublicKey, and the curves.
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// 2.5.29.17 subjectAltName; 2.5.4.3 commonName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;

/// Digests a signature can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn from_oid(oid: &[u8]) -> Option<Self> {
        match oid {
            SHA256 => Some(Self::Sha256),
            SHA384 => Some(Self::Sha384),
            SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    #[cfg(feature = "tls-rsa")]
    fn rsa(self) -> Hash {
        match self {
            Self::Sha256 => Hash::Sha256,
            Self::Sha384 => Hash::Sha384,
            Self::Sha512 => Hash::Sha512,
        }
    }
}

/// A signature algorithm, from a certificate or a CertificateVerify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Ecdsa(Digest),
    RsaPkcs1(Digest),
    RsaPss { digest: Digest, salt_len: usize },
}

impl Algorithm {
    /// From an X.509 `AlgorithmIdentifier` (contents of the SEQUENCE).
    fn from_der(identifier: &[u8]) -> Result<Self> {
        let mut fields = Reader::new(identifier);
        let oid = fields.expect(der::OID).ok_or(CertificateError::Malformed)?;
        Ok(match oid {
            ECDSA_SHA256 => Self::Ecdsa(Digest::Sha256),
            ECDSA_SHA384 => Self::Ecdsa(Digest::Sha384),
            RSA_SHA256 => Self::RsaPkcs1(Digest::Sha256),
            RSA_SHA384 => Self::RsaPkcs1(Digest::Sha384),
            RSA_SHA512 => Self::RsaPkcs1(Digest::Sha512),
            RSA_PSS => {
                let params = fields.expect(der::SEQUENCE).ok_or(CertificateError::Malformed)?;
                pss_params(params)?
            }
            _ => return Err(CertificateError::UnsupportedAlgorithm),
        })
    }

    /// From a TLS 1.3 CertificateVerify scheme (RFC 8446 §4.4.3).
    fn from_scheme(scheme: SignatureScheme) -> Result<Self> {
        Ok(match scheme {
            SignatureScheme::EcdsaSecp256r1Sha256 => Self::Ecdsa(Digest::Sha256),
            SignatureScheme::EcdsaSecp384r1Sha384 => Self::Ecdsa(Digest::Sha384),
            SignatureScheme::RsaPssRsaeSha256 => {
                Self::RsaPss { digest: Digest::Sha256, salt_len: 32 }
            }
            SignatureScheme::RsaPssRsaeSha384 => {
                Self::RsaPss { digest: Digest::Sha384, salt_len: 48 }
            }
            SignatureScheme::RsaPssRsaeSha512 => {
                Self::RsaPss { digest: Digest::Sha512, salt_len: 64 }
            }
            _ => return Err(CertificateError::UnsupportedAlgorithm),
        })
    }
}

/// `RSASSA-PSS-params` (RFC 4055): SHA-2 hash, MGF1 with the same hash,
/// explicit salt length, trailer 1. SHA-1 (the defaults) is refused.
fn pss_params(params: &[u8]) -> Result<Algorithm> {
    let mut fields = Reader::new(params);
    let (mut digest, mut mgf_digest, mut salt_len) = (None, None, 20usize);
    let hash_of =
        |identifier: &[u8]| Reader::new(identifier).expect(der::OID).and_then(Digest::from_oid);
    while let Some((tag, value)) = fields.next_tlv() {
        let inner = Reader::new(value).single();
        match (tag, inner) {
            (0xa0, Some((der::SEQUENCE, id))) => digest = hash_of(id),
            (0xa1, Some((der::SEQUENCE, mgf))) => {
                let mut mgf = Reader::new(mgf);
                if mgf.expect(der::OID) != Some(MGF1) {
                    return Err(CertificateError::UnsupportedAlgorithm);
                }
                mgf_digest = mgf.expect(der::SEQUENCE).and_then(hash_of);
            }
            (0xa2, Some((der::INTEGER, n))) if n.len() <= 2 => {
                salt_len = n.iter().fold(0, |acc, &b| (acc << 8) | usize::from(b));
            }
            (0xa3, Some((der::INTEGER, [1]))) => {}
            _ => return Err(CertificateError::Malformed),
        }
    }
    match (digest, mgf_digest) {
        (Some(d), Some(m)) if d == m => Ok(Algorithm::RsaPss { digest: d, salt_len }),
        _ => Err(CertificateError::UnsupportedAlgorithm),
    }
}

/// The parts of an X.509 certificate the checks use.
pub(super) struct Certificate<'a> {
    /// The whole `tbsCertificate` TLV: what the signature covers.
    tbs: &'a [u8],
    algorithm: &'a [u8],
    signature: &'a [u8],
    not_before: u64,
    not_after: u64,
    subject: &'a [u8],
    /// The whole `subjectPublicKeyInfo` TLV.
    spki: &'a [u8],
    extensions: &'a [u8],
}

fn bit_string(contents: &[u8]) -> Result<&[u8]> {
    match contents.split_first() {
        Some((0, bits)) => Ok(bits),
        _ => Err(CertificateError::Malformed),
    }
}

impl<'a> Certificate<'a> {
    pub(super) fn parse(der_bytes: &'a [u8]) -> Result<Self> {
        let bad = CertificateError::Malformed;
        let (tag, body) = Reader::new(der_bytes).single().ok_or(bad)?;
        if tag != der::SEQUENCE {
            return Err(bad);
        }
        let mut outer = Reader::new(body);
        let (tag, tbs_body, tbs) = outer.next_tlv_raw().ok_or(bad)?;
        let algorithm = outer.expect(der::SEQUENCE).ok_or(bad)?;
        let signature = bit_string(outer.expect(der::BIT_STRING).ok_or(bad)?)?;
        if tag != der::SEQUENCE || !outer.is_empty() {
            return Err(bad);
        }
        let mut fields = Reader::new(tbs_body);
        let (mut tag, _) = fields.next_tlv().ok_or(bad)?;
        if tag == 0xa0 {
            (tag, _) = fields.next_tlv().ok_or(bad)?; // version; then serial
        }
        if tag != der::INTEGER {
            return Err(bad);
        }
        let inner_algorithm = fields.expect(der::SEQUENCE).ok_or(bad)?;
        let _issuer = fields.expect(der::SEQUENCE).ok_or(bad)?;
        let mut validity = Reader::new(fields.expect(der::SEQUENCE).ok_or(bad)?);
        let not_before = validity.next_tlv().and_then(time).ok_or(bad)?;
        let not_after = validity.next_tlv().and_then(time).ok_or(bad)?;
        let subject = fields.expect(der::SEQUENCE).ok_or(bad)?;
        let (tag, _, spki) = fields.next_tlv_raw().ok_or(bad)?;
        if tag != der::SEQUENCE || inner_algorithm != algorithm {
            return Err(bad);
        }
        let mut extensions: &[u8] = &[];
        while let Some((tag, value)) = fields.next_tlv() {
            if tag == 0xa3 {
                extensions = Reader::new(value).expect(der::SEQUENCE).ok_or(bad)?;
            }
        }
        Ok(Self { tbs, algorithm, signature, not_before, not_after, subject, spki, extensions })
    }

    /// Whether `now` (Unix seconds) is inside the validity period.
    fn valid_at(&self, now: u64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Checks that the key `issuer_spki` signed this certificate.
    fn verify_signed_by(&self, issuer_spki: &[u8]) -> Result<()> {
        let algorithm = Algorithm::from_der(self.algorithm)?;
        verify(issuer_spki, algorithm, self.tbs, self.signature)
    }

    /// The contents of the subjectAltName `GeneralNames`, if present.
    fn subject_alt_names(&self) -> Result<Option<&'a [u8]>> {
        let mut extensions = Reader::new(self.extensions);
        while let Some((tag, extension)) = extensions.next_tlv() {
            let mut extension = Reader::new(extension);
            if tag != der::SEQUENCE {
                return Err(CertificateError::Malformed);
            }
            if extension.expect(der::OID) != Some(SUBJECT_ALT_NAME) {
                continue;
            }
            let (mut tag, mut value) = extension.next_tlv().ok_or(CertificateError::Malformed)?;
            if tag == der::BOOLEAN {
                (tag, value) = extension.next_tlv().ok_or(CertificateError::Malformed)?;
            }
            if tag != der::OCTET_STRING {
                return Err(CertificateError::Malformed);
            }
            let names = Reader::new(value).single().filter(|(t, _)| *t == der::SEQUENCE);
            return names.map(|(_, n)| Some(n)).ok_or(CertificateError::Malformed);
        }
        Ok(None)
    }

    /// Whether this (leaf) certificate names `host`.
    pub(super) fn names(&self, host: &str) -> Result<bool> {
        let ip = host.parse::<IpAddr>().ok();
        let ip_bytes: ([u8; 16], usize) = match ip {
            Some(IpAddr::V4(v4)) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&v4.octets());
                (b, 4)
            }
            Some(IpAddr::V6(v6)) => (v6.octets(), 16),
            None => ([0; 16], 0),
        };
        match self.subject_alt_names()? {
            Some(names) => {
                let mut names = Reader::new(names);
                while let Some((tag, value)) = names.next_tlv() {
                    let hit = match (tag, ip) {
                        (IP_ADDRESS, Some(_)) => Some(value) == ip_bytes.0.get(..ip_bytes.1),
                        (DNS_NAME, None) => dns_name_matches(value, host.as_bytes()),
                        _ => false,
                    };
                    if hit {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            // No subjectAltName: the common name, for DNS names only.
            None if ip.is_none() => {
                Ok(common_name(self.subject)
                    .is_some_and(|cn| dns_name_matches(cn, host.as_bytes())))
            }
            None => Ok(false),
        }
    }
}

/// The (last) common name in a `Name`.
fn common_name(name: &[u8]) -> Option<&[u8]> {
    let mut found = None;
    let mut rdns = Reader::new(name);
    while let Some((_, set)) = rdns.next_tlv() {
        let mut attributes = Reader::new(set);
        while let Some((_, attribute)) = attributes.next_tlv() {
            let mut attribute = Reader::new(attribute);
            if attribute.expect(der::OID) == Some(COMMON_NAME) {
                found = attribute.next_tlv().map(|(_, v)| v);
            }
        }
    }
    found
}

/// RFC 6125 §6.4: case-insensitive equality of letters, digits, `-` and
/// `.`; a `*` only as the whole leftmost label of a name with at least
/// three labels, standing for exactly one non-empty label.
pub(super) fn dns_name_matches(pattern: &[u8], host: &[u8]) -> bool {
    let valid = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.';
    if host.is_empty() || !host.iter().all(valid) {
        return false;
    }
    if let Some(suffix) = pattern.strip_prefix(b"*.") {
        let labels = suffix.split(|&b| b == b'.');
        if !suffix.iter().all(valid)
            || labels.clone().count() < 2
            || labels.clone().any(<[u8]>::is_empty)
        {
            return false;
        }
        return match host.iter().position(|&b| b == b'.') {
            Some(dot) if dot > 0 => {
                host.get(dot + 1..).is_some_and(|h| h.eq_ignore_ascii_case(suffix))
            }
            _ => false,
        };
    }
    pattern.iter().all(valid) && pattern.eq_ignore_ascii_case(host)
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as
/// Unix seconds.
fn time((tag, value): (u8, &[u8])) -> Option<u64> {
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter()
            .try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0')))
    };
    let (year, rest) = match (tag, value.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(value.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, value.get(2..)?)
        }
        (GENERALIZED_TIME, 15) => (digits(value.get(..4)?)?, value.get(4..)?),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| rest.get(i..i + 2).and_then(digits);
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    if year < 1970 {
        return Some(0);
    }
    // Days from civil (H. Hinnant), years from 1970 on.
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// A key from a SubjectPublicKeyInfo TLV.
#[cfg_attr(
    not(all(feature = "tls-p384", feature = "tls-rsa")),
    allow(dead_code, reason = "keys this build recognises but does not verify")
)]
enum PublicKey<'a> {
    P256(&'a [u8]),
    P384(&'a [u8]),
    Rsa(&'a [u8]),
}

fn public_key(spki: &[u8]) -> Result<PublicKey<'_>> {
    let bad = CertificateError::Malformed;
    let (_, body) = Reader::new(spki).single().ok_or(bad)?;
    let mut fields = Reader::new(body);
    let mut algorithm = Reader::new(fields.expect(der::SEQUENCE).ok_or(bad)?);
    let key = bit_string(fields.expect(der::BIT_STRING).ok_or(bad)?)?;
    match algorithm.expect(der::OID).ok_or(bad)? {
        EC_PUBLIC_KEY => match algorithm.expect(der::OID) {
            Some(P256) => Ok(PublicKey::P256(key)),
            Some(P384) => Ok(PublicKey::P384(key)),
            _ => Err(CertificateError::UnsupportedAlgorithm),
        },
        #[cfg(feature = "tls-rsa")]
        rsa::RSA_ENCRYPTION => Ok(PublicKey::Rsa(key)),
        _ => Err(CertificateError::UnsupportedAlgorithm),
    }
}

/// Verifies `signature` over `message` with the key in `spki`.
fn verify(spki: &[u8], algorithm: Algorithm, message: &[u8], signature: &[u8]) -> Result<()> {
    let key = public_key(spki)?;
    match (key, algorithm) {
        (PublicKey::P256(point), Algorithm::Ecdsa(Digest::Sha256)) => {
            use p256::ecdsa::signature::Verifier;
            use p256::ecdsa::{Signature, VerifyingKey};
            let key =
                VerifyingKey::from_sec1_bytes(point).map_err(|_| CertificateError::Malformed)?;
            let signature =
                Signature::from_der(signature).map_err(|_| CertificateError::BadSignature)?;
            key.verify(message, &signature).map_err(|_| CertificateError::BadSignature)
        }
        #[cfg(feature = "tls-p384")]
        (PublicKey::P384(point), Algorithm::Ecdsa(Digest::Sha384)) => {
            use p384::ecdsa::signature::Verifier;
            use p384::ecdsa::{Signature, VerifyingKey};
            let key =
                VerifyingKey::from_sec1_bytes(point).map_err(|_| CertificateError::Malformed)?;
            let signature =
                Signature::from_der(signature).map_err(|_| CertificateError::BadSignature)?;
            key.verify(message, &signature).map_err(|_| CertificateError::BadSignature)
        }
        #[cfg(feature = "tls-rsa")]
        (PublicKey::Rsa(pkcs1), Algorithm::RsaPkcs1(digest)) => {
            let key = RsaPublicKey::from_pkcs1_der(pkcs1)?;
            Ok(key.verify_pkcs1_v15(digest.rsa(), message, signature)?)
        }
        #[cfg(feature = "tls-rsa")]
        (PublicKey::Rsa(pkcs1), Algorithm::RsaPss { digest, salt_len }) => {
            let key = RsaPublicKey::from_pkcs1_der(pkcs1)?;
            Ok(key.verify_pss(digest.rsa(), salt_len, message, signature)?)
        }
        _ => Err(CertificateError::UnsupportedAlgorithm),
    }
}

/// Checks the RSA key size of `spki` (if RSA) before anything else, so that
/// a weak key is reported as such even where a signature would fail too.
fn check_key_size(spki: &[u8]) -> Result<()> {
    #[cfg(feature = "tls-rsa")]
    if let PublicKey::Rsa(pkcs1) = public_key(spki)? {
        RsaPublicKey::from_pkcs1_der(pkcs1)?;
    }
    #[cfg(not(feature = "tls-rsa"))]
    public_key(spki)?;
    Ok(())
}

/// Verifies the server's chain `entries` (leaf first) against the CA
/// certificate `ca`, names and clock; returns the leaf's SPKI.
pub(super) fn verify_chain<'c>(
    ca: &[u8],
    entries: &[&'c [u8]],
    host: &str,
    now: Option<u64>,
) -> Result<&'c [u8]> {
    let (&leaf_der, issuers) = entries.split_first().ok_or(CertificateError::NoCertificate)?;
    // A chain that ends with the CA certificate itself: the CA anchors it.
    let issuers = match issuers.split_last() {
        Some((&last, rest)) if last == ca => rest,
        _ => issuers,
    };
    let anchor = Certificate::parse(ca)?;
    let mut issuer_spki = anchor.spki;
    check_key_size(issuer_spki)?;
    // From the top of the chain down to the leaf.
    let chain = issuers.iter().rev().map(|&c| (c, true));
    for (der_bytes, is_issuer) in chain.chain(core::iter::once((leaf_der, false))) {
        let certificate = Certificate::parse(der_bytes)?;
        check_key_size(certificate.spki)?;
        if now.is_some_and(|now| !certificate.valid_at(now)) {
            return Err(CertificateError::Expired);
        }
        certificate.verify_signed_by(issuer_spki)?;
        if is_issuer && !der::is_ca_certificate(der_bytes) {
            return Err(CertificateError::IssuerNotCa);
        }
        issuer_spki = certificate.spki;
    }
    let leaf = Certificate::parse(leaf_der)?;
    if !leaf.names(host)? {
        return Err(CertificateError::NameMismatch);
    }
    Ok(leaf.spki)
}

/// Verifies a TLS 1.3 server CertificateVerify (RFC 8446 §4.4.3) over the
/// transcript hash `transcript` with the leaf key `leaf_spki`.
pub(super) fn verify_certificate_verify(
    leaf_spki: &[u8],
    scheme: SignatureScheme,
    signature: &[u8],
    transcript: &[u8],
) -> Result<()> {
    const CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify\x00";
    let mut message = [0x20u8; 64 + CONTEXT.len() + 64];
    let end = 64 + CONTEXT.len() + transcript.len();
    let bad = CertificateError::Malformed;
    message.get_mut(64..64 + CONTEXT.len()).ok_or(bad)?.copy_from_slice(CONTEXT);
    message.get_mut(64 + CONTEXT.len()..end).ok_or(bad)?.copy_from_slice(transcript);
    let algorithm = Algorithm::from_scheme(scheme)?;
    verify(leaf_spki, algorithm, message.get(..end).ok_or(bad)?, signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_exactly_one_leftmost_label() {
        assert!(dns_name_matches(b"*.example.com", b"a.example.com"));
        assert!(dns_name_matches(b"*.EXAMPLE.com", b"A.example.COM"));
        assert!(!dns_name_matches(b"*.example.com", b"a.b.example.com"));
        assert!(!dns_name_matches(b"*.example.com", b"example.com"));
        assert!(!dns_name_matches(b"*.example.com", b".example.com"));
        assert!(!dns_name_matches(b"*.com", b"example.com"));
        assert!(!dns_name_matches(b"a.*.example.com", b"a.b.example.com"));
        assert!(!dns_name_matches(b"f*.example.com", b"foo.example.com"));
        assert!(!dns_name_matches(b"*.*.example.com", b"a.b.example.com"));
        assert!(dns_name_matches(b"broker.example.com", b"BROKER.example.com"));
        assert!(!dns_name_matches(b"broker.example.com", b"broker.example.co"));
        assert!(!dns_name_matches(b"*.example.com", b"*.example.com"));
    }

    #[test]
    fn times_convert_to_unix_seconds() {
        assert_eq!(time((UTC_TIME, b"700101000000Z")), Some(0));
        assert_eq!(time((UTC_TIME, b"250615120000Z")), Some(1_749_988_800));
        assert_eq!(time((GENERALIZED_TIME, b"20500101000000Z")), Some(2_524_608_000));
        assert_eq!(time((UTC_TIME, b"251315120000Z")), None);
        assert_eq!(time((UTC_TIME, b"2506151200Z")), None);
    }

    #[test]
    fn garbage_certificates_are_malformed_not_panics() {
        for len in 0..64 {
            let bytes: heapless::Vec<u8, 64> = (0..len).map(|i| (i * 37 + 0x30) as u8).collect();
            assert!(Certificate::parse(&bytes).is_err());
        }
        assert_eq!(
            verify_chain(&[0x30, 0], &[], "x", None).err(),
            Some(CertificateError::NoCertificate)
        );
    }
}
