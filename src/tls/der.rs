//! The little DER reading the TLS module needs: unwrapping a PKCS#8 P-256
//! key to SEC1, and reading a certificate's basicConstraints. Bounds-checked
//! throughout; malformed input gives `None`, never a panic.

use super::pem::PemError;

pub(super) const BOOLEAN: u8 = 0x01;
pub(super) const INTEGER: u8 = 0x02;
pub(super) const BIT_STRING: u8 = 0x03;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const OID: u8 = 0x06;
pub(super) const SEQUENCE: u8 = 0x30;
/// `[0]` constructed: SEC1 parameters, X.509 version.
const CONTEXT_0: u8 = 0xa0;
/// `[3]` constructed: X.509 extensions.
const CONTEXT_3: u8 = 0xa3;

/// 1.2.840.10045.2.1 id-ecPublicKey.
const ID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7 prime256v1 (secp256r1, NIST P-256).
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 2.5.29.19 basicConstraints.
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

/// Reads consecutive TLVs from a byte slice.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The next TLV as (tag, contents); `None` when finished or malformed.
    pub(super) fn next_tlv(&mut self) -> Option<(u8, &'a [u8])> {
        self.next_tlv_raw().map(|(tag, contents, _)| (tag, contents))
    }

    /// Whether every TLV has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next TLV as (tag, contents, the whole TLV with its header).
    pub(super) fn next_tlv_raw(&mut self) -> Option<(u8, &'a [u8], &'a [u8])> {
        let whole = self.rest;
        let (&tag, rest) = self.rest.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 3 {
                return None; // indefinite or absurd length
            }
            let (bytes, tail) = rest.split_at_checked(count)?;
            rest = tail;
            bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (contents, tail) = rest.split_at_checked(len)?;
        self.rest = tail;
        let raw = whole.get(..whole.len() - tail.len())?;
        Some((tag, contents, raw))
    }

    /// The one TLV that makes up the whole input.
    pub(super) fn single(mut self) -> Option<(u8, &'a [u8])> {
        let tlv = self.next_tlv()?;
        self.rest.is_empty().then_some(tlv)
    }

    /// The next TLV, which must carry `tag`.
    pub(super) fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next_tlv()? {
            (t, contents) if t == tag => Some(contents),
            _ => None,
        }
    }
}

/// Returns the SEC1 `ECPrivateKey` inside `der` (PKCS#8 `PrivateKeyInfo` or
/// SEC1 itself) after checking that the key is on P-256.
pub(super) fn p256_sec1_key(der: &[u8]) -> Result<&[u8], PemError> {
    let (tag, body) = Reader::new(der).single().ok_or(PemError::MalformedDer)?;
    if tag != SEQUENCE {
        return Err(PemError::MalformedDer);
    }
    let mut fields = Reader::new(body);
    let version = fields.expect(INTEGER).ok_or(PemError::MalformedDer)?;
    match version {
        // PKCS#8 v1: AlgorithmIdentifier { id-ecPublicKey, prime256v1 }, OCTET STRING { SEC1 }
        [0] => {
            let algorithm = fields.expect(SEQUENCE).ok_or(PemError::MalformedDer)?;
            let mut algorithm = Reader::new(algorithm);
            if algorithm.expect(OID) != Some(ID_EC_PUBLIC_KEY) {
                return Err(PemError::UnsupportedKey);
            }
            if algorithm.expect(OID) != Some(PRIME256V1) {
                return Err(PemError::UnsupportedKey);
            }
            let sec1 = fields.expect(OCTET_STRING).ok_or(PemError::MalformedDer)?;
            check_sec1(sec1)?;
            Ok(sec1)
        }
        // SEC1 ECPrivateKey version 1
        [1] => check_sec1(der).map(|()| der),
        _ => Err(PemError::MalformedDer),
    }
}

/// SEC1 `ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
/// [0] parameters OPTIONAL, [1] publicKey OPTIONAL }`, P-256 only.
fn check_sec1(der: &[u8]) -> Result<(), PemError> {
    let (tag, body) = Reader::new(der).single().ok_or(PemError::MalformedDer)?;
    if tag != SEQUENCE {
        return Err(PemError::MalformedDer);
    }
    let mut fields = Reader::new(body);
    if fields.expect(INTEGER) != Some(&[1]) {
        return Err(PemError::MalformedDer);
    }
    let scalar = fields.expect(OCTET_STRING).ok_or(PemError::MalformedDer)?;
    if scalar.len() != 32 {
        return Err(PemError::UnsupportedKey);
    }
    while let Some((tag, contents)) = fields.next_tlv() {
        if tag == CONTEXT_0 && Reader::new(contents).expect(OID) != Some(PRIME256V1) {
            return Err(PemError::UnsupportedKey);
        }
    }
    if !fields.rest.is_empty() {
        return Err(PemError::MalformedDer);
    }
    Ok(())
}

/// Whether the X.509 certificate `der` says `basicConstraints: cA=TRUE`.
/// Malformed certificates and certificates without the extension are not
/// CAs (RFC 5280 §4.2.1.9: an issuer of certificates must assert it).
pub(super) fn is_ca_certificate(der: &[u8]) -> bool {
    is_ca(der).unwrap_or(false)
}

fn is_ca(der: &[u8]) -> Option<bool> {
    let certificate = Reader::new(der).single().filter(|(t, _)| *t == SEQUENCE)?.1;
    let tbs = Reader::new(certificate).expect(SEQUENCE)?;
    let mut fields = Reader::new(tbs);
    while let Some((tag, contents)) = fields.next_tlv() {
        if tag != CONTEXT_3 {
            continue;
        }
        let mut extensions = Reader::new(Reader::new(contents).expect(SEQUENCE)?);
        while let Some(extension) = extensions.expect(SEQUENCE) {
            let mut extension = Reader::new(extension);
            if extension.expect(OID)? != BASIC_CONSTRAINTS {
                continue;
            }
            let (mut tag, mut value) = extension.next_tlv()?;
            if tag == BOOLEAN {
                (tag, value) = extension.next_tlv()?; // skip `critical`
            }
            if tag != OCTET_STRING {
                return None;
            }
            let constraints = Reader::new(value).expect(SEQUENCE)?;
            return Some(matches!(
                Reader::new(constraints).next_tlv(),
                Some((BOOLEAN, [flag])) if *flag != 0
            ));
        }
        return Some(false);
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_form_lengths_are_read_and_truncation_is_refused() {
        let mut long = [0u8; 3 + 200];
        long[..3].copy_from_slice(&[0x04, 0x81, 200]);
        assert_eq!(Reader::new(&long).single().map(|(t, c)| (t, c.len())), Some((0x04, 200)));
        assert_eq!(Reader::new(&long[..100]).next_tlv(), None);
        assert_eq!(Reader::new(&[0x30, 0x80, 0, 0]).next_tlv(), None, "indefinite length");
        assert_eq!(Reader::new(&[0x30]).next_tlv(), None);
    }

    #[test]
    fn rsa_pkcs8_key_is_unsupported() {
        // PrivateKeyInfo { 0, { rsaEncryption, NULL }, OCTET STRING {} }
        let der = [
            0x30, 0x14, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
            0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x04, 0x00,
        ];
        assert_eq!(p256_sec1_key(&der), Err(PemError::UnsupportedKey));
    }

    #[test]
    fn garbage_is_not_a_ca() {
        assert!(!is_ca_certificate(&[]));
        assert!(!is_ca_certificate(&[0x30, 0x03, 0x30, 0x01, 0xa3]));
    }
}
