//! The opening handshake (RFC 6455 §4.1), sans-I/O: the HTTP/1.1 Upgrade
//! request, and the checks of the server's response.

use sha1::{Digest, Sha1};

use super::{HandshakeError, WsOptions};

/// The GUID the server appends to the key (§1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The subprotocol MQTT 3.1.1 §6 registers.
const SUBPROTOCOL: &str = "mqtt";

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
    let digest = Sha1::new().chain_update(key).chain_update(GUID).finalize();
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
        let end = self.needed.saturating_add(bytes.len());
        if let Some(slot) = self.buf.get_mut(self.needed..end) {
            slot.copy_from_slice(bytes);
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
/// the blank line) to the request sent with `key`.
pub(super) fn check_response(head: &[u8], key: &Key) -> Result<(), HandshakeError> {
    let head = core::str::from_utf8(head).map_err(|_| HandshakeError::MalformedResponse)?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let code: u16 = match (version, code.len(), code.parse()) {
        ("HTTP/1.1", 3, Ok(code)) => code,
        _ => return Err(HandshakeError::MalformedResponse),
    };
    if code != 101 {
        return Err(HandshakeError::Status(code));
    }
    let (mut upgrade, mut connection, mut accepted, mut protocol) = (false, false, false, None);
    let expected = accept(key);
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(HandshakeError::MalformedResponse)?;
        let value = value.trim_matches([' ', '\t']);
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        let has_token = |wanted: &str| {
            value.split(',').any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(wanted))
        };
        if is("upgrade") {
            upgrade |= value.eq_ignore_ascii_case("websocket");
        } else if is("connection") {
            connection |= has_token("upgrade");
        } else if is("sec-websocket-accept") {
            if value.as_bytes() != expected {
                return Err(HandshakeError::AcceptMismatch);
            }
            accepted = true;
        } else if is("sec-websocket-protocol") {
            protocol = Some(value == SUBPROTOCOL);
        } else if is("sec-websocket-extensions") {
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
