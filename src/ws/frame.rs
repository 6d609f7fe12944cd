//! RFC 6455 §5.2 base framing, sans-I/O: the header of a frame from the
//! server, checked as soon as its first two bytes are in, and the header
//! of a (masked) client frame.

use super::FrameError;

/// Opcode of a continuation frame.
pub(super) const CONTINUATION: u8 = 0x0;
/// Opcode of a text frame (not allowed for MQTT).
pub(super) const TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub(super) const BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub(super) const CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub(super) const PING: u8 = 0x9;
/// Opcode of a pong frame.
pub(super) const PONG: u8 = 0xa;

/// Largest payload of a control frame (§5.5).
pub(super) const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest header of a server frame: 2 bytes and a 64-bit length.
pub(super) const MAX_SERVER_HEADER: usize = 10;
/// Largest header of a client frame: 2 bytes, a 64-bit length, the mask.
pub(super) const MAX_CLIENT_HEADER: usize = 14;
/// Header of a client control frame: 2 bytes and the mask.
pub(super) const CONTROL_HEADER: usize = 6;

const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const MASK: u8 = 0x80;

/// The first two bytes of a server frame, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Start {
    /// Final fragment of a message.
    pub fin: bool,
    /// Continuation, binary, close, ping or pong.
    pub opcode: u8,
    /// The 7-bit payload length: the length itself, or 126/127 for the
    /// 16- and 64-bit forms.
    len7: u8,
}

impl Start {
    /// Checks the first two bytes of a server frame: no reserved bit
    /// (no extension is ever negotiated), no mask (§5.1), a defined
    /// opcode other than text (MQTT `[MQTT-6.0.0-1]`), and a control
    /// frame unfragmented with at most 125 bytes (§5.5).
    pub fn parse(b0: u8, b1: u8) -> Result<Self, FrameError> {
        if b0 & RSV != 0 {
            return Err(FrameError::ReservedBits);
        }
        if b1 & MASK != 0 {
            return Err(FrameError::MaskedFrame);
        }
        let (fin, opcode, len7) = (b0 & FIN != 0, b0 & 0x0f, b1 & 0x7f);
        match opcode {
            CONTINUATION | BINARY => {}
            TEXT => return Err(FrameError::TextFrame),
            CLOSE | PING | PONG => {
                if !fin {
                    return Err(FrameError::FragmentedControl);
                }
                if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                    return Err(FrameError::ControlTooLong);
                }
            }
            other => return Err(FrameError::ReservedOpcode(other)),
        }
        Ok(Self { fin, opcode, len7 })
    }

    /// Length of the whole header: 2, 4 (16-bit length) or 10 (64-bit).
    pub fn header_len(self) -> usize {
        match self.len7 {
            126 => 4,
            127 => MAX_SERVER_HEADER,
            _ => 2,
        }
    }

    /// The payload length, from the header's bytes after the first two
    /// (`header_len() - 2` of them). The length must be in its minimal
    /// form and a 64-bit one must have its top bit clear (§5.2).
    pub fn payload_len(self, extended: &[u8]) -> Result<u64, FrameError> {
        match (self.len7, extended) {
            (126, [hi, lo]) => {
                let len = u16::from_be_bytes([*hi, *lo]);
                if len < 126 {
                    return Err(FrameError::NonMinimalLength);
                }
                Ok(u64::from(len))
            }
            (127, &[a, b, c, d, e, f, g, h]) => {
                let len = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                if len >> 63 != 0 {
                    return Err(FrameError::LengthTooLarge);
                }
                if len <= u64::from(u16::MAX) {
                    return Err(FrameError::NonMinimalLength);
                }
                Ok(len)
            }
            (len, []) if len < 126 => Ok(u64::from(len)),
            // A caller bug (wrong slice length): refuse rather than panic.
            _ => Err(FrameError::NonMinimalLength),
        }
    }
}

/// Header length of a client frame carrying `len` payload bytes.
pub(super) fn client_header_len(len: usize) -> usize {
    match len {
        0..126 => CONTROL_HEADER,
        126..=0xffff => 8,
        _ => MAX_CLIENT_HEADER,
    }
}

/// Writes the header of a final client frame (`opcode`, `len` bytes of
/// payload, masking key `mask`) to the front of `out`; returns its length,
/// `None` when `out` is too short.
pub(super) fn write_client_header(
    opcode: u8,
    len: usize,
    mask: [u8; 4],
    out: &mut [u8],
) -> Option<usize> {
    let header_len = client_header_len(len);
    let header = out.get_mut(..header_len)?;
    let (first, rest) = header.split_at_mut(2);
    let (length, key) = rest.split_at_mut(header_len - CONTROL_HEADER);
    first.copy_from_slice(&[
        FIN | opcode,
        MASK | match header_len {
            CONTROL_HEADER => u8::try_from(len).ok()?,
            8 => 126,
            _ => 127,
        },
    ]);
    match length.len() {
        2 => length.copy_from_slice(&u16::try_from(len).ok()?.to_be_bytes()),
        8 => length.copy_from_slice(&u64::try_from(len).ok()?.to_be_bytes()),
        _ => {}
    }
    key.copy_from_slice(&mask);
    Some(header_len)
}

/// Masks (or unmasks) `payload` with `mask` (§5.3).
pub(super) fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    for (byte, key) in payload.iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_header_forms() {
        let mut out = [0u8; MAX_CLIENT_HEADER];
        let key = [1, 2, 3, 4];
        assert_eq!(write_client_header(BINARY, 125, key, &mut out), Some(6));
        assert_eq!(out[..6], [0x82, 0x80 | 125, 1, 2, 3, 4]);
        assert_eq!(write_client_header(BINARY, 126, key, &mut out), Some(8));
        assert_eq!(out[..8], [0x82, 0xfe, 0, 126, 1, 2, 3, 4]);
        assert_eq!(write_client_header(BINARY, 65_536, key, &mut out), Some(14));
        assert_eq!(out, [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]);
        assert_eq!(write_client_header(BINARY, 126, key, &mut out[..7]), None);
    }
}
