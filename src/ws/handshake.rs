//! The opening handshake (RFC 6455 §4.1), sans-I/O: the HTTP/1.1 Upgrade
//! request, and the checks of the server's response.

use super::sha1::sha1;
use super::{HandshakeError, WsOptions};

/// The GUID the server appends to the key (§1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The subprotocol MQTT 3.1.1 §6 registers.
const SUBPROTOCOL: &[u8] = b"mqtt";

/// `Sec-WebSocket-Key`: 16 random bytes in base64.
pub(super) type Key = [u8; 24];

/// `Sec-WebSocket-Accept`: a SHA-1 digest in base64.
type Accept = [u8; 28];

/// The key for 16 bytes from the caller's RNG.
pub(super) fn key(nonce: &[u8; 16]) -> Key {
    let mut key = [0; 24];
    base64(nonce, &mut key);
    key
}

/// The `Sec-WebSocket-Accept` value the server must send for `key`.
fn accept(key: &Key) -> Accept {
    let digest = sha1(&[key, GUID]);
    let mut accept = [0; 28];
    base64(&digest, &mut accept);
    accept
}

/// Standard base64 with padding (RFC 4648 §4) of `input` into `out`,
/// which must be `4 * ceil(len / 3)` bytes.
fn base64(input: &[u8], out: &mut [u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let symbol = |bits: u32| ALPHABET.get((bits & 0x3f) as usize).copied().unwrap_or(b'=');
    for (chunk, quad) in input.chunks(3).zip(out.chunks_mut(4)) {
        let bytes = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let n = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        let mut symbols = [symbol(n >> 18), symbol(n >> 12), symbol(n >> 6), symbol(n)];
        for pad in symbols.iter_mut().skip(chunk.len() + 1) {
            *pad = b'=';
        }
        for (slot, s) in quad.iter_mut().zip(symbols) {
            *slot = s;
        }
    }
}

/// A cursor that writes the request into a buffer.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
    /// Bytes the request needs in all, counted on even past the end.
    needed: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let Some(end) = self.needed.checked_add(bytes.len()) else {
            self.needed = usize::MAX;
            return;
        };
        if let Some(slot) = self.buf.get_mut(self.needed..end) {
            for (to, from) in slot.iter_mut().zip(bytes) {
                *to = *from;
            }
            self.len = end;
        }
        self.needed = end;
    }
}

/// Whether `s` can go into a request line or header without ending it
/// early: visible ASCII, spaces and tabs only (no CR, LF or controls).
fn is_field_text(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// Writes the Upgrade request for `options` with `key` into `buf`;
/// returns its length.
pub(super) fn write_request(
    options: &WsOptions<'_>,
    key: &Key,
    buf: &mut [u8],
) -> Result<usize, HandshakeError> {
    let tokens = [options.host, options.path];
    let headers_ok = options.headers.iter().all(|(name, value)| {
        !name.is_empty()
            && !name.contains([':', ' ', '\t'])
            && is_field_text(name)
            && is_field_text(value)
    });
    if !options.path.starts_with('/')
        || !tokens.iter().all(|t| is_field_text(t) && !t.contains(' '))
        || !headers_ok
    {
        return Err(HandshakeError::InvalidRequest);
    }
    let mut out = Out { buf, len: 0, needed: 0 };
    for part in [b"GET ".as_slice(), options.path.as_bytes(), b" HTTP/1.1\r\nHost: "] {
        out.put(part);
    }
    out.put(options.host.as_bytes());
    out.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.put(key);
    out.put(b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n");
    for (name, value) in options.headers {
        for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
            out.put(part);
        }
    }
    out.put(b"\r\n");
    if out.len != out.needed {
        return Err(HandshakeError::BufferTooSmall { needed: out.needed });
    }
    Ok(out.len)
}

/// The end of the response head.
const END_OF_HEAD: &[u8; 4] = b"\r\n\r\n";

/// How many bytes may be read next without reading past the end of the
/// response head in `received`: 4 less the longest start of `\r\n\r\n`
/// that `received` ends with (0 once the head is complete).
pub(super) fn head_remaining(received: &[u8]) -> usize {
    (0..=4)
        .rev()
        .find(|&k| received.ends_with(END_OF_HEAD.get(..k).unwrap_or_default()))
        .map_or(4, |k| 4 - k)
}

/// Checks the server's response head (status line and headers, through
/// the blank line) to the request sent with `key`. Compares bytes (no
/// UTF-8 decoding); lines may end in LF alone.
pub(super) fn check_response(head: &[u8], key: &Key) -> Result<(), HandshakeError> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines.next().unwrap_or_default();
    let code = match status.strip_prefix(b"HTTP/1.1 ") {
        Some(&[a, b, c, ref rest @ ..])
            if [a, b, c].iter().all(u8::is_ascii_digit)
                && rest.first().is_none_or(|&s| s == b' ') =>
        {
            [a, b, c].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
        }
        _ => return Err(HandshakeError::MalformedResponse),
    };
    if code != 101 {
        return Err(HandshakeError::Status(code));
    }
    let (mut upgrade, mut connection, mut accepted, mut protocol) = (false, false, false, None);
    let expected = accept(key);
    for line in lines.take_while(|l| !l.is_empty()) {
        let colon =
            line.iter().position(|&b| b == b':').ok_or(HandshakeError::MalformedResponse)?;
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        let is = |wanted: &[u8]| name.eq_ignore_ascii_case(wanted);
        if is(b"upgrade") {
            upgrade |= value.eq_ignore_ascii_case(b"websocket");
        } else if is(b"connection") {
            connection |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"));
        } else if is(b"sec-websocket-accept") {
            if value != expected {
                return Err(HandshakeError::AcceptMismatch);
            }
            accepted = true;
        } else if is(b"sec-websocket-protocol") {
            protocol = Some(value == SUBPROTOCOL);
        } else if is(b"sec-websocket-extensions") {
            return Err(HandshakeError::UnrequestedExtension);
        }
    }
    if !upgrade || !connection {
        return Err(HandshakeError::NotUpgraded);
    }
    if !accepted {
        return Err(HandshakeError::AcceptMismatch);
    }
    match protocol {
        Some(true) => Ok(()),
        Some(false) => Err(HandshakeError::SubprotocolMismatch),
        None => Err(HandshakeError::SubprotocolMissing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 6455 §1.3.
    #[test]
    fn rfc6455_1_3_accept_example() {
        let sample: Key = *b"dGhlIHNhbXBsZSBub25jZQ==";
        assert_eq!(key(b"the sample nonce"), sample);
        assert_eq!(&accept(&sample), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn head_remaining_never_reads_past_the_blank_line() {
        assert_eq!(head_remaining(b""), 4);
        assert_eq!(head_remaining(b"HTTP"), 4);
        assert_eq!(head_remaining(b"x\r"), 3);
        assert_eq!(head_remaining(b"x\r\n"), 2);
        assert_eq!(head_remaining(b"x\r\n\r"), 1);
        assert_eq!(head_remaining(b"x\r\n\r\n"), 0);
    }
}
