//! PEM → DER without allocation: the certificate and key files users have
//! (`ca.crt`, `client.crt`, `client.key`) decoded into a caller buffer.
//!
//! Text around the blocks (for example `openssl x509 -text` output) is
//! ignored. A file with several certificates (a CA bundle) is refused with
//! [`PemError::MultipleCertificates`]: embedded-tls verifies against one CA,
//! and silently picking the first would make the others look trusted. Use
//! [`blocks`] to choose one yourself.

use core::fmt;

use super::der;

/// Why a PEM file could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemError {
    /// No `-----BEGIN …-----` block with the wanted label (for example a
    /// key file given where a certificate was expected).
    NotFound,
    /// A `-----BEGIN …-----` line without its matching `-----END …-----`.
    MissingEnd,
    /// The base64 body is invalid at this byte offset of the block body.
    InvalidBase64 {
        /// Offset of the offending byte from the start of the body.
        offset: usize,
    },
    /// A block with an empty body.
    Empty,
    /// More than one certificate (a bundle); umqtt verifies against one CA.
    MultipleCertificates,
    /// More than one private key in the file.
    MultipleKeys,
    /// The output buffer is too small: this many bytes are needed.
    BufferTooSmall {
        /// Bytes the decoded block needs.
        needed: usize,
    },
    /// A password-protected key (`ENCRYPTED PRIVATE KEY` or
    /// `Proc-Type: 4,ENCRYPTED`); decrypt it first (`openssl pkey -in k -out k2`).
    EncryptedKey,
    /// A key that is not an ECDSA P-256 key (RSA, P-384, Ed25519…); TLS
    /// client authentication supports ECDSA P-256 only.
    UnsupportedKey,
    /// The DER inside the block is not the structure its label promises.
    MalformedDer,
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no PEM block with the expected label"),
            Self::MissingEnd => f.write_str("PEM BEGIN line without matching END line"),
            Self::InvalidBase64 { offset } => write!(f, "invalid base64 at body offset {offset}"),
            Self::Empty => f.write_str("empty PEM block"),
            Self::MultipleCertificates => {
                f.write_str("several certificates in one file (bundle); give exactly one CA")
            }
            Self::MultipleKeys => f.write_str("several private keys in one file"),
            Self::BufferTooSmall { needed } => write!(f, "buffer too small, need {needed} bytes"),
            Self::EncryptedKey => f.write_str("encrypted private key; decrypt it first"),
            Self::UnsupportedKey => f.write_str("private key is not ECDSA P-256"),
            Self::MalformedDer => f.write_str("malformed DER inside PEM block"),
        }
    }
}

impl core::error::Error for PemError {}

#[cfg(feature = "defmt")]
impl defmt::Format for PemError {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block, not yet decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PemBlock<'p> {
    label: &'p [u8],
    body: &'p [u8],
}

impl<'p> PemBlock<'p> {
    /// The label, such as `CERTIFICATE` or `PRIVATE KEY` (ASCII bytes).
    pub fn label(&self) -> &'p [u8] {
        self.label
    }

    /// Decodes the base64 body into `out` and returns the DER bytes.
    pub fn decode<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], PemError> {
        let len = base64_decode(self.body, out)?;
        if len == 0 {
            return Err(PemError::Empty);
        }
        out.get(..len).ok_or(PemError::BufferTooSmall { needed: len })
    }

    /// Whether the body carries RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`).
    fn has_headers(&self) -> bool {
        self.body.contains(&b':')
    }
}

/// Iterates over the PEM blocks of `pem`, in order. Yields
/// `Err(PemError::MissingEnd)` (and then stops) for an unterminated block.
pub fn blocks(pem: &[u8]) -> Blocks<'_> {
    Blocks { rest: pem }
}

/// Iterator returned by [`blocks`].
#[derive(Debug, Clone)]
pub struct Blocks<'p> {
    rest: &'p [u8],
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

impl<'p> Iterator for Blocks<'p> {
    type Item = Result<PemBlock<'p>, PemError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = find(self.rest, BEGIN)? + BEGIN.len();
        let after_begin = self.rest.get(start..).unwrap_or_default();
        let parsed = (|| {
            let label_len = find(after_begin, DASHES).ok_or(PemError::MissingEnd)?;
            let label = after_begin.get(..label_len).ok_or(PemError::MissingEnd)?;
            let body_and_rest = after_begin.get(label_len + DASHES.len()..).unwrap_or_default();
            let body_len = find(body_and_rest, END).ok_or(PemError::MissingEnd)?;
            let body = body_and_rest.get(..body_len).unwrap_or_default();
            let end_line = body_and_rest.get(body_len + END.len()..).unwrap_or_default();
            let end_ok = end_line.starts_with(label)
                && end_line.get(label.len()..).is_some_and(|t| t.starts_with(DASHES));
            if !end_ok {
                return Err(PemError::MissingEnd);
            }
            let consumed = body_len + END.len() + label.len() + DASHES.len();
            let rest = body_and_rest.get(consumed..).unwrap_or_default();
            Ok((PemBlock { label, body }, rest))
        })();
        match parsed {
            Ok((block, rest)) => {
                self.rest = rest;
                Some(Ok(block))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes the one `CERTIFICATE` block of `pem` into `out` and returns its
/// DER bytes. Other blocks (a key in the same file) are ignored; two or more
/// certificates are refused with [`PemError::MultipleCertificates`].
///
/// ```
/// # use umqtt::tls::pem::{certificate_der, PemError};
/// let mut buf = [0u8; 8];
/// let pem = b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
/// assert_eq!(certificate_der(pem, &mut buf)?, &[0x30, 0x03, 0x02, 0x01, 0x01]);
/// # Ok::<(), PemError>(())
/// ```
pub fn certificate_der<'o>(pem: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], PemError> {
    let mut found = None;
    for block in blocks(pem) {
        let block = block?;
        if block.label == b"CERTIFICATE" {
            if found.is_some() {
                return Err(PemError::MultipleCertificates);
            }
            found = Some(block);
        }
    }
    let der = found.ok_or(PemError::NotFound)?.decode(out)?;
    // A certificate is a DER SEQUENCE; catch a mislabelled or truncated file now.
    match der::Reader::new(der).single() {
        Some((der::SEQUENCE, _)) => Ok(der),
        _ => Err(PemError::MalformedDer),
    }
}

/// An ECDSA P-256 private key as SEC1 `ECPrivateKey` DER, ready for
/// [`TlsOptions::client_certificate`](super::TlsOptions::client_certificate).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EcPrivateKey<'k> {
    sec1_der: &'k [u8],
}

impl core::fmt::Debug for EcPrivateKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EcPrivateKey(..)")
    }
}

impl<'k> EcPrivateKey<'k> {
    /// Checks that `der` is a P-256 key in PKCS#8 (`PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`) DER form, and returns its SEC1 part.
    pub fn from_der(der: &'k [u8]) -> Result<Self, PemError> {
        der::p256_sec1_key(der).map(|sec1_der| Self { sec1_der })
    }

    /// The SEC1 `ECPrivateKey` DER bytes.
    pub fn sec1_der(&self) -> &'k [u8] {
        self.sec1_der
    }
}

/// Decodes the private key of `pem` (`PRIVATE KEY` = PKCS#8 or
/// `EC PRIVATE KEY` = SEC1, as `openssl ecparam -genkey` and
/// `openssl genpkey` write them) into `out`. `EC PARAMETERS` blocks and
/// certificates in the same file are skipped. Only ECDSA P-256 keys are
/// accepted.
pub fn private_key<'o>(pem: &[u8], out: &'o mut [u8]) -> Result<EcPrivateKey<'o>, PemError> {
    let mut found = None;
    for block in blocks(pem) {
        let block = block?;
        match block.label {
            b"PRIVATE KEY" | b"EC PRIVATE KEY" => {}
            b"ENCRYPTED PRIVATE KEY" => return Err(PemError::EncryptedKey),
            b"RSA PRIVATE KEY" | b"DSA PRIVATE KEY" | b"OPENSSH PRIVATE KEY" => {
                return Err(PemError::UnsupportedKey);
            }
            _ => continue,
        }
        if block.has_headers() {
            return Err(PemError::EncryptedKey);
        }
        if found.is_some() {
            return Err(PemError::MultipleKeys);
        }
        found = Some(block);
    }
    let der = found.ok_or(PemError::NotFound)?.decode(out)?;
    EcPrivateKey::from_der(der)
}

/// Value of a base64 character, `None` for anything else.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Strict standard base64 (RFC 4648 §4, padded) with whitespace ignored.
/// Returns the decoded length; when `out` is too short, the whole input is
/// still checked and [`PemError::BufferTooSmall`] carries the full length.
pub(super) fn base64_decode(text: &[u8], out: &mut [u8]) -> Result<usize, PemError> {
    let mut acc: u32 = 0;
    let mut in_quad = 0usize; // sextets (and pads) in the current group of four
    let mut pads = 0usize;
    let mut len = 0usize;
    for (offset, &c) in text.iter().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let bad = PemError::InvalidBase64 { offset };
        if c == b'=' {
            // Padding only in positions 3 and 4 of the last group.
            if in_quad < 2 {
                return Err(bad);
            }
            pads += 1;
            in_quad += 1;
            if in_quad == 4 {
                in_quad = 0;
            }
            continue;
        }
        if pads > 0 {
            return Err(bad); // data after padding
        }
        acc = (acc << 6) | u32::from(sextet(c).ok_or(bad)?);
        in_quad += 1;
        if in_quad == 4 {
            for shift in [16, 8, 0] {
                if let Some(slot) = out.get_mut(len) {
                    *slot = (acc >> shift) as u8;
                }
                len += 1;
            }
            acc = 0;
            in_quad = 0;
        }
    }
    let end = PemError::InvalidBase64 { offset: text.len() };
    if in_quad != 0 {
        return Err(end); // unpadded or truncated final group
    }
    match pads {
        0 => {}
        1 | 2 => {
            // The last group held 4 - pads sextets; flush its bytes, and
            // reject non-zero bits below the last byte (non-canonical).
            let sextets = 4 - pads;
            let bits = sextets * 6;
            let bytes = bits / 8;
            let spare = bits % 8;
            let value = acc;
            if value & ((1 << spare) - 1) != 0 {
                return Err(end);
            }
            for i in 0..bytes {
                let shift = bits - 8 * (i + 1);
                if let Some(slot) = out.get_mut(len) {
                    *slot = (value >> shift) as u8;
                }
                len += 1;
            }
        }
        _ => return Err(end),
    }
    if len > out.len() {
        return Err(PemError::BufferTooSmall { needed: len });
    }
    Ok(len)
}
