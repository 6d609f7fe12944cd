//! RSA signature verification without a heap (feature `tls-rsa`):
//! RSASSA-PKCS1-v1_5 and RSASSA-PSS (RFC 8017) with SHA-256, SHA-384 and
//! SHA-512, for moduli of 2048 to 4096 bits.
//!
//! The arithmetic is `crypto-bigint` 0.5's fixed-width `Uint` in Montgomery
//! form (`DynResidue`), the copy embedded-tls's elliptic-curve crates
//! already pull in: three widths (2048, 3072 and 4096 bits), each on the
//! stack, no allocation. Verification handles only public values, so its
//! time depends on the key and signature, which is fine.
//!
//! **Minimum key size: 2048 bits.** Smaller moduli are refused with
//! [`RsaError::KeyTooSmall`] (RSA-1024 is breakable with public
//! resources); larger than 4096 bits with [`RsaError::KeyTooLarge`].
//!
//! ```
//! use umqtt::tls::rsa::{Hash, RsaError, RsaPublicKey};
//! // A modulus under 2048 bits is refused before any arithmetic.
//! let n = [0xC5u8; 128];
//! assert_eq!(RsaPublicKey::new(&n, &[1, 0, 1]).err(), Some(RsaError::KeyTooSmall { bits: 1024 }));
//! # let _ = Hash::Sha256;
//! ```

use core::fmt;

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Limb, U2048, U3072, U4096, Uint, Word};
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::der::{self, Reader};

/// Smallest modulus accepted, in bits.
pub const MIN_MODULUS_BITS: usize = 2048;
/// Largest modulus accepted, in bits.
pub const MAX_MODULUS_BITS: usize = 4096;
const MAX_BYTES: usize = MAX_MODULUS_BITS / 8;
/// Largest digest (SHA-512).
const MAX_DIGEST: usize = 64;

/// 1.2.840.113549.1.1.1 rsaEncryption.
pub(super) const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Why an RSA verification failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RsaError {
    /// The public key is not a well-formed DER `RSAPublicKey` with a
    /// positive odd modulus and an odd exponent above 1.
    MalformedKey,
    /// The modulus has fewer than [`MIN_MODULUS_BITS`] bits.
    KeyTooSmall {
        /// Bits of the modulus.
        bits: usize,
    },
    /// The modulus has more than [`MAX_MODULUS_BITS`] bits.
    KeyTooLarge {
        /// Bits of the modulus.
        bits: usize,
    },
    /// The signature does not verify (wrong length, out of range, wrong
    /// padding or digest).
    BadSignature,
}

impl fmt::Display for RsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedKey => f.write_str("malformed RSA public key"),
            Self::KeyTooSmall { bits } => {
                write!(f, "RSA key of {bits} bits, under the {MIN_MODULUS_BITS}-bit minimum")
            }
            Self::KeyTooLarge { bits } => {
                write!(f, "RSA key of {bits} bits, over the {MAX_MODULUS_BITS}-bit maximum")
            }
            Self::BadSignature => f.write_str("RSA signature does not verify"),
        }
    }
}

impl core::error::Error for RsaError {}

#[cfg(feature = "defmt")]
impl defmt::Format for RsaError {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

/// Digest of an RSA signature (and of PSS's MGF1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256
    Sha256,
    /// SHA-384
    Sha384,
    /// SHA-512
    Sha512,
}

impl Hash {
    /// Output length in bytes.
    #[allow(clippy::len_without_is_empty, reason = "a digest is never empty")]
    pub const fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Digest of the concatenation of `parts` into `out`; returns its length.
    fn digest(self, parts: &[&[u8]], out: &mut [u8; MAX_DIGEST]) -> usize {
        fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8]) {
            let mut d = D::new();
            for part in parts {
                d.update(part);
            }
            let h = d.finalize();
            let n = h.len().min(out.len());
            if let (Some(o), Some(h)) = (out.get_mut(..n), h.get(..n)) {
                o.copy_from_slice(h);
            }
        }
        match self {
            Self::Sha256 => run::<Sha256>(parts, out),
            Self::Sha384 => run::<Sha384>(parts, out),
            Self::Sha512 => run::<Sha512>(parts, out),
        }
        self.len()
    }

    /// DER `DigestInfo` prefix of PKCS#1 v1.5 (RFC 8017 §9.2 note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// An RSA public key borrowed from DER: big-endian modulus (no leading
/// zero) and exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsaPublicKey<'a> {
    n: &'a [u8],
    e: &'a [u8],
}

/// Strips the sign byte of a DER INTEGER; `None` if negative or empty.
fn unsigned(integer: &[u8]) -> Option<&[u8]> {
    match integer {
        [] => None,
        [first, ..] if *first & 0x80 != 0 => None,
        _ => {
            let start = integer.iter().position(|&b| b != 0).unwrap_or(integer.len());
            integer.get(start..)
        }
    }
}

fn bit_len(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(&top) => be.len() * 8 - top.leading_zeros() as usize,
    }
}

impl<'a> RsaPublicKey<'a> {
    /// A key from its big-endian modulus and public exponent (leading
    /// zeros allowed), checked: odd modulus of 2048 to 4096 bits, odd
    /// exponent above 1 and below the modulus.
    pub fn new(modulus: &'a [u8], exponent: &'a [u8]) -> Result<Self, RsaError> {
        let start = modulus.iter().position(|&b| b != 0).unwrap_or(modulus.len());
        let n = modulus.get(start..).unwrap_or_default();
        let start = exponent.iter().position(|&b| b != 0).unwrap_or(exponent.len());
        let e = exponent.get(start..).unwrap_or_default();
        let bits = bit_len(n);
        if bits < MIN_MODULUS_BITS {
            return Err(RsaError::KeyTooSmall { bits });
        }
        if bits > MAX_MODULUS_BITS {
            return Err(RsaError::KeyTooLarge { bits });
        }
        let odd = |x: &[u8]| x.last().is_some_and(|b| b & 1 == 1);
        if !odd(n) || !odd(e) || e == [1] || e.len() > n.len() {
            return Err(RsaError::MalformedKey);
        }
        Ok(Self { n, e })
    }

    /// A key from DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER,
    /// publicExponent INTEGER }` (PKCS#1, the contents of an X.509
    /// rsaEncryption subjectPublicKey).
    pub fn from_pkcs1_der(der: &'a [u8]) -> Result<Self, RsaError> {
        let (tag, body) = Reader::new(der).single().ok_or(RsaError::MalformedKey)?;
        if tag != der::SEQUENCE {
            return Err(RsaError::MalformedKey);
        }
        let mut fields = Reader::new(body);
        let n = fields.expect(der::INTEGER).and_then(unsigned).ok_or(RsaError::MalformedKey)?;
        let e = fields.expect(der::INTEGER).and_then(unsigned).ok_or(RsaError::MalformedKey)?;
        if !fields.is_empty() {
            return Err(RsaError::MalformedKey);
        }
        Self::new(n, e)
    }

    /// A key from a DER `SubjectPublicKeyInfo` with algorithm
    /// rsaEncryption.
    pub fn from_spki_der(der: &'a [u8]) -> Result<Self, RsaError> {
        let (tag, body) = Reader::new(der).single().ok_or(RsaError::MalformedKey)?;
        if tag != der::SEQUENCE {
            return Err(RsaError::MalformedKey);
        }
        let mut fields = Reader::new(body);
        let algorithm = fields.expect(der::SEQUENCE).ok_or(RsaError::MalformedKey)?;
        let mut algorithm = Reader::new(algorithm);
        if algorithm.expect(der::OID) != Some(RSA_ENCRYPTION) {
            return Err(RsaError::MalformedKey);
        }
        let key = fields.expect(der::BIT_STRING).ok_or(RsaError::MalformedKey)?;
        match key.split_first() {
            Some((0, pkcs1)) => Self::from_pkcs1_der(pkcs1),
            _ => Err(RsaError::MalformedKey),
        }
    }

    /// Bits of the modulus.
    pub fn modulus_bits(&self) -> usize {
        bit_len(self.n)
    }

    /// Bytes of the modulus (and of every signature under it).
    pub fn len(&self) -> usize {
        self.n.len()
    }

    /// Never: a checked key has at least 2048 bits.
    pub fn is_empty(&self) -> bool {
        self.n.is_empty()
    }

    /// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) of `signature`
    /// over `message` with `hash`.
    pub fn verify_pkcs1_v15(
        &self,
        hash: Hash,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), RsaError> {
        let mut em = [0u8; MAX_BYTES];
        let em = self.public_op(signature, &mut em)?;
        let mut digest = [0u8; MAX_DIGEST];
        let h_len = hash.digest(&[message], &mut digest);
        let prefix = hash.digest_info_prefix();
        // EM = 00 01 FF..FF 00 DigestInfo, at least 8 bytes of FF.
        let t_len = prefix.len() + h_len;
        let Some(ps_len) = em.len().checked_sub(t_len + 3).filter(|&n| n >= 8) else {
            return Err(RsaError::BadSignature);
        };
        let mut ok = em.first() == Some(&0) && em.get(1) == Some(&1);
        ok &= em.get(2..2 + ps_len).is_some_and(|ps| ps.iter().all(|&b| b == 0xff));
        ok &= em.get(2 + ps_len) == Some(&0);
        let t = em.get(3 + ps_len..).unwrap_or_default();
        ok &= t.get(..prefix.len()) == Some(prefix);
        ok &= t.get(prefix.len()..) == digest.get(..h_len);
        if ok { Ok(()) } else { Err(RsaError::BadSignature) }
    }

    /// RSASSA-PSS verification (RFC 8017 §8.1.2, EMSA-PSS-VERIFY §9.1.2)
    /// of `signature` over `message`, with `hash` for the message and
    /// MGF1 and a salt of exactly `salt_len` bytes (TLS 1.3: the digest
    /// length).
    pub fn verify_pss(
        &self,
        hash: Hash,
        salt_len: usize,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), RsaError> {
        let mut buffer = [0u8; MAX_BYTES];
        let em = self.public_op(signature, &mut buffer)?;
        let em_bits = self.modulus_bits() - 1;
        let em_len = em_bits.div_ceil(8);
        // The public operation gives k bytes; EM is the last em_len.
        let (high, em) = em.split_at_mut(em.len() - em_len);
        if high.iter().any(|&b| b != 0) {
            return Err(RsaError::BadSignature);
        }
        let h_len = hash.len();
        if em_len < h_len + salt_len + 2 || em.last() != Some(&0xbc) {
            return Err(RsaError::BadSignature);
        }
        let db_len = em_len - h_len - 1;
        let (masked_db, rest) = em.split_at_mut(db_len);
        let h = rest.get(..h_len).unwrap_or_default();
        let unused_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8.checked_shr(unused_bits as u32).unwrap_or(0);
        if masked_db.first().is_some_and(|&b| b & !top_mask != 0) {
            return Err(RsaError::BadSignature);
        }
        // DB = maskedDB xor MGF1(H), in place.
        let mut block = [0u8; MAX_DIGEST];
        for (counter, chunk) in (0u32..).zip(masked_db.chunks_mut(h_len.max(1))) {
            hash.digest(&[h, &counter.to_be_bytes()], &mut block);
            for (b, m) in chunk.iter_mut().zip(block.iter()) {
                *b ^= m;
            }
        }
        let db = masked_db;
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        let ps_len = db_len - salt_len - 1;
        let mut ok = db.get(..ps_len).is_some_and(|ps| ps.iter().all(|&b| b == 0));
        ok &= db.get(ps_len) == Some(&1);
        let salt = db.get(ps_len + 1..).unwrap_or_default();
        let mut m_hash = [0u8; MAX_DIGEST];
        hash.digest(&[message], &mut m_hash);
        let mut h2 = [0u8; MAX_DIGEST];
        hash.digest(&[&[0u8; 8], m_hash.get(..h_len).unwrap_or_default(), salt], &mut h2);
        ok &= h2.get(..h_len) == Some(h);
        if ok { Ok(()) } else { Err(RsaError::BadSignature) }
    }

    /// `signature^e mod n` as k big-endian bytes in `out` (k = modulus
    /// length); refuses a signature of another length or not below n.
    fn public_op<'o>(
        &self,
        signature: &[u8],
        out: &'o mut [u8; MAX_BYTES],
    ) -> Result<&'o mut [u8], RsaError> {
        let k = self.n.len();
        if signature.len() != k {
            return Err(RsaError::BadSignature);
        }
        let result = out.get_mut(MAX_BYTES - k..).ok_or(RsaError::BadSignature)?;
        match k {
            ..=256 => modpow::<{ U2048::LIMBS }>(self.n, self.e, signature, result)?,
            257..=384 => modpow::<{ U3072::LIMBS }>(self.n, self.e, signature, result)?,
            _ => modpow::<{ U4096::LIMBS }>(self.n, self.e, signature, result)?,
        }
        Ok(result)
    }
}

/// Big-endian bytes (at most the width) into a `Uint`. Byte by byte, with
/// no length assertion (`Uint::from_be_slice` asserts the exact width).
fn to_uint<const L: usize>(be: &[u8]) -> Option<Uint<L>> {
    if be.len() > L * Limb::BYTES {
        return None;
    }
    let mut words = [0 as Word; L];
    for (i, &byte) in be.iter().rev().enumerate() {
        if let Some(word) = words.get_mut(i / Limb::BYTES) {
            *word |= Word::from(byte) << (8 * (i % Limb::BYTES));
        }
    }
    Some(Uint::from_words(words))
}

/// `base^e mod n` into `out` (n's length, big-endian).
fn modpow<const L: usize>(n: &[u8], e: &[u8], base: &[u8], out: &mut [u8]) -> Result<(), RsaError> {
    let modulus = to_uint::<L>(n).ok_or(RsaError::MalformedKey)?;
    let exponent = to_uint::<L>(e).ok_or(RsaError::MalformedKey)?;
    let s = to_uint::<L>(base).ok_or(RsaError::BadSignature)?;
    if s >= modulus {
        return Err(RsaError::BadSignature);
    }
    // `new` panics on an even modulus; `new_checked` reports it.
    #[allow(deprecated, reason = "the non-panicking constructor of crypto-bigint 0.5")]
    let params = Option::<DynResidueParams<L>>::from(DynResidueParams::new_checked(&modulus))
        .ok_or(RsaError::MalformedKey)?;
    // Left-to-right square-and-multiply over the bits of the public
    // exponent (17 for 65537): 16 squarings and 1 multiplication, with no
    // window table (crypto-bigint's `pow` keeps 16 residues on the stack,
    // 8 KiB at 4096 bits, to save multiplications a short exponent does
    // not need).
    let base = DynResidue::new(&s, params);
    let mut acc = base;
    let bits = exponent.bits();
    for i in (0..bits.saturating_sub(1)).rev() {
        acc = acc.square();
        if exponent.bit_vartime(i) {
            acc = acc.mul(&base);
        }
    }
    let words = acc.retrieve().to_words();
    // Little-endian limbs to the big-endian bytes of `out` (n's length).
    for (i, byte) in out.iter_mut().rev().enumerate() {
        let word = words.get(i / Limb::BYTES).copied().unwrap_or(0);
        *byte = (word >> (8 * (i % Limb::BYTES))) as u8;
    }
    Ok(())
}
