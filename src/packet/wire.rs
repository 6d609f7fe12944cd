//! Byte-level reading and writing: the fixed header, the variable-length
//! remaining length, two-byte integers, UTF-8 strings and binary data
//! (sections 1.5 and 2.2 of the specification).

use super::{Malformed, PacketId};

/// Largest value of the remaining length field (section 2.2.3).
pub const MAX_REMAINING_LEN: usize = 268_435_455;

/// Number of bytes the variable-length encoding of `len` takes.
pub(crate) const fn var_int_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Cursor over the bytes of one packet's variable header and payload.
///
/// Running out of bytes means the remaining length disagrees with the
/// fields, so every read fails with [`Malformed::Truncated`].
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        let (&b, rest) = self.buf.split_first().ok_or(Malformed::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Malformed> {
        let (b, rest) = self.buf.split_first_chunk::<2>().ok_or(Malformed::Truncated)?;
        self.buf = rest;
        Ok(u16::from_be_bytes(*b))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let (head, rest) = self.buf.split_at_checked(n).ok_or(Malformed::Truncated)?;
        self.buf = rest;
        Ok(head)
    }

    /// Binary data: a two-byte length then that many bytes (section 1.5.3).
    pub(crate) fn binary(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// A UTF-8 encoded string, checked against `[MQTT-1.5.3-1]` and
    /// `[MQTT-1.5.3-2]`.
    pub(crate) fn str(&mut self) -> Result<&'a str, Malformed> {
        let bytes = self.binary()?;
        let s = core::str::from_utf8(bytes).map_err(|_| Malformed::InvalidUtf8)?;
        check_no_null(s)?;
        Ok(s)
    }

    pub(crate) fn packet_id(&mut self) -> Result<PacketId, Malformed> {
        PacketId::new(self.u16()?).ok_or(Malformed::ZeroPacketId)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), Malformed> {
        if self.buf.is_empty() { Ok(()) } else { Err(Malformed::TrailingBytes) }
    }
}

/// `[MQTT-1.5.3-2]`: a string must not contain U+0000.
#[inline(never)] // called for every string: one copy of the unrolled loop
pub(crate) fn check_no_null(s: &str) -> Result<(), Malformed> {
    // A fold without early exit is vectorized: on the short strings of
    // MQTT several times faster than `contains` (a memchr call).
    if s.bytes().fold(false, |found, b| found | (b == 0)) {
        Err(Malformed::NullCharacter)
    } else {
        Ok(())
    }
}

/// Checks a string field before encoding and returns its encoded length.
pub(crate) fn str_len(s: &str) -> Result<usize, Malformed> {
    check_no_null(s)?;
    binary_len(s.as_bytes())
}

/// Checks a binary field before encoding and returns its encoded length.
pub(crate) fn binary_len(b: &[u8]) -> Result<usize, Malformed> {
    if b.len() > usize::from(u16::MAX) { Err(Malformed::StringTooLong) } else { Ok(2 + b.len()) }
}

/// Cursor writing one packet into a buffer that the caller has already
/// checked is large enough; a short buffer still yields an error, never a
/// panic.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) const fn position(&self) -> usize {
        self.pos
    }

    #[inline(never)] // every field goes through it: one copy, not one per field
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), Malformed> {
        let end = self.pos + b.len();
        self.buf.get_mut(self.pos..end).ok_or(Malformed::Truncated)?.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, b: u8) -> Result<(), Malformed> {
        self.bytes(&[b])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), Malformed> {
        self.bytes(&v.to_be_bytes())
    }

    /// Binary data with its two-byte length; the length was checked by
    /// [`binary_len`] when the packet length was computed.
    pub(crate) fn binary(&mut self, b: &[u8]) -> Result<(), Malformed> {
        let len = u16::try_from(b.len()).map_err(|_| Malformed::StringTooLong)?;
        self.u16(len)?;
        self.bytes(b)
    }

    pub(crate) fn str(&mut self, s: &str) -> Result<(), Malformed> {
        self.binary(s.as_bytes())
    }

    /// The fixed header: first byte and the remaining length.
    pub(crate) fn fixed_header(
        &mut self,
        first: u8,
        mut remaining: usize,
    ) -> Result<(), Malformed> {
        self.u8(first)?;
        loop {
            // Truncation is intended: the low seven bits of what is left.
            let mut byte = (remaining % 128) as u8;
            remaining /= 128;
            if remaining > 0 {
                byte |= 0x80;
            }
            self.u8(byte)?;
            if remaining == 0 {
                return Ok(());
            }
        }
    }
}
