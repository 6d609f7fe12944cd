//! [`RecordFramed`]: a socket adapter that hands embedded-tls whole TLS
//! records only, which makes reads of the TLS stream cancel-safe.
//!
//! embedded-tls 0.19 reads a record's 5-byte header into a local of its
//! read future, then the body into its buffer. Dropping that future while
//! the record is still arriving (a record split across TCP segments; the
//! client's `check_msg` does exactly that, and so does any `select` with a
//! timer) loses the header and corrupts the stream. Under the adapter,
//! embedded-tls's reads of the socket return `Pending` only *between*
//! records, where embedded-tls holds no state in its future: a record's
//! bytes are collected here first, and once it is whole it is served
//! without ever waiting.
//!
//! Writes: embedded-tls 0.19 seals a record (with the current sequence
//! number as its AES-GCM nonce), hands it to `write_all`, and advances the
//! sequence number only when `write_all` returns. Dropped in between, the
//! record is half on the wire and the next record reuses the nonce. With
//! an outbox ([`RecordFramed::with_outbox`]), `write_all` copies the sealed
//! record and returns at once, so embedded-tls counts it in the same poll
//! that sealed it; the copy goes to the socket in `flush` (embedded-tls's
//! default policy flushes after every record), and a drain that a dropped
//! call left unfinished is finished first by the next write or flush.

use core::fmt;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

/// TLS record header: content type (1), legacy version (2), length (2).
const HEADER_LEN: usize = 5;

/// Read side of a socket, framed into whole TLS records; writes pass
/// straight through, or with an outbox ([`with_outbox`](Self::with_outbox))
/// are taken whole without waiting and sent on the next `flush`.
/// [`connect`](super::connect) puts it under every stream it returns; use
/// it yourself only if you drive `embedded_tls::TlsConnection` directly.
///
/// `buffer` must hold the largest record the server may send: header
/// plus ciphertext, [`framing_buffer_len`](super::framing_buffer_len)
/// bytes (16 645 without max fragment length negotiation). A larger
/// record fails the read with [`FramedError::RecordTooLarge`].
///
/// Cancel safety: dropping a pending `read` loses nothing, provided the
/// socket's own `read` is cancel-safe (embassy-net's and tokio's are).
pub struct RecordFramed<'b, S> {
    socket: S,
    buffer: &'b mut [u8],
    /// Next byte to hand out.
    start: usize,
    /// End of the complete records buffered; `start..ready` is served
    /// without waiting.
    ready: usize,
    /// End of the bytes read from the socket; `ready..end` is the start
    /// of a record not yet complete.
    end: usize,
    /// Sealed records taken by `write_all` and not yet sent:
    /// `outbox[sent..queued]`.
    outbox: &'b mut [u8],
    sent: usize,
    queued: usize,
}

impl<'b, S> RecordFramed<'b, S> {
    /// Frames reads of `socket`, collecting records in `buffer`.
    /// Writes pass straight through.
    pub fn new(socket: S, buffer: &'b mut [u8]) -> Self {
        Self::with_outbox(socket, buffer, &mut [])
    }

    /// Frames reads as [`new`](Self::new) does, and takes every record
    /// embedded-tls writes that fits `outbox` whole, without waiting (see
    /// the module docs: what makes writes cancel-safe). `outbox` should
    /// hold embedded-tls's write record buffer; a larger record (only a
    /// handshake message can be) is written straight through.
    pub fn with_outbox(socket: S, buffer: &'b mut [u8], outbox: &'b mut [u8]) -> Self {
        Self { socket, buffer, start: 0, ready: 0, end: 0, outbox, sent: 0, queued: 0 }
    }

    /// Bytes of sealed records taken and not yet sent to the socket.
    pub fn unsent(&self) -> usize {
        self.queued - self.sent
    }

    /// The socket back (bytes buffered or unsent are dropped).
    pub fn into_socket(self) -> S {
        self.socket
    }

    /// The socket.
    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.socket
    }

    /// Bytes read from the socket and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Length of the record that starts at `ready`, once its header is in.
    fn next_record_len(&self) -> Option<usize> {
        match self.buffer.get(self.ready..self.end)? {
            [_, _, _, high, low, ..] => {
                Some(HEADER_LEN + usize::from(u16::from_be_bytes([*high, *low])))
            }
            _ => None,
        }
    }
}

/// A read of [`RecordFramed`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramedError<E> {
    /// The socket failed.
    Transport(E),
    /// A record of `len` bytes (header included) does not fit the
    /// framing buffer: the server ignored the negotiated max fragment
    /// length, or the peer does not speak TLS.
    RecordTooLarge {
        /// Record length the header announced, header included.
        len: usize,
    },
    /// The socket accepted no byte of a write (closed).
    WriteZero,
}

impl<E: fmt::Debug> fmt::Display for FramedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "transport error: {e:?}"),
            Self::RecordTooLarge { len } => {
                write!(f, "TLS record of {len} bytes exceeds the framing buffer")
            }
            Self::WriteZero => f.write_str("socket accepted no byte of a write"),
        }
    }
}

impl<E: embedded_io_async::Error> embedded_io_async::Error for FramedError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Transport(e) => e.kind(),
            Self::RecordTooLarge { .. } => ErrorKind::InvalidData,
            Self::WriteZero => ErrorKind::WriteZero,
        }
    }
}

impl<E: fmt::Debug> core::error::Error for FramedError<E> {}

#[cfg(feature = "defmt")]
impl<E: fmt::Debug> defmt::Format for FramedError<E> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl<S: ErrorType> ErrorType for RecordFramed<'_, S> {
    type Error = FramedError<S::Error>;
}

impl<S: Write> RecordFramed<'_, S> {
    /// Sends what the outbox holds. Cancel-safe when the socket's `write`
    /// is: what is sent is counted, the rest stays for the next call.
    async fn drain(&mut self) -> Result<(), FramedError<S::Error>> {
        while self.sent < self.queued {
            let rest = self.outbox.get(self.sent..self.queued).unwrap_or_default();
            let n = self.socket.write(rest).await.map_err(FramedError::Transport)?;
            if n == 0 {
                return Err(FramedError::WriteZero);
            }
            self.sent += n.min(rest.len());
        }
        (self.sent, self.queued) = (0, 0);
        Ok(())
    }
}

impl<S: Read> Read for RecordFramed<'_, S> {
    /// Hands out bytes of complete records. Waits (the only place it
    /// can return `Pending`) only when every complete record has been
    /// handed out, that is between records. Returns `Ok(0)` at the end
    /// of the stream.
    async fn read(&mut self, out: &mut [u8]) -> Result<usize, Self::Error> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.start < self.ready {
                let ready = self.buffer.get(self.start..self.ready).unwrap_or_default();
                let n = ready.len().min(out.len());
                out.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(ready.get(..n).unwrap_or_default());
                self.start += n;
                if self.start == self.end {
                    (self.start, self.ready, self.end) = (0, 0, 0);
                }
                return Ok(n);
            }
            if let Some(len) = self.next_record_len() {
                if len > self.buffer.len() {
                    return Err(FramedError::RecordTooLarge { len });
                }
                if self.end - self.ready >= len {
                    self.ready += len;
                    continue;
                }
            } else if self.buffer.len() < HEADER_LEN {
                return Err(FramedError::RecordTooLarge { len: HEADER_LEN });
            }
            // Nothing whole to hand out: move the partial record to the
            // front (it fits, checked above) and read more after it.
            if self.start > 0 {
                crate::session::move_down(self.buffer, self.start..self.end, 0);
                self.end -= self.start;
                (self.start, self.ready) = (0, 0);
            }
            let free = self.buffer.get_mut(self.end..).unwrap_or_default();
            let n = self.socket.read(free).await.map_err(FramedError::Transport)?;
            if n == 0 {
                return Ok(0);
            }
            self.end += n;
        }
    }
}

impl<S: Write> Write for RecordFramed<'_, S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.drain().await?;
        if self.outbox.is_empty() {
            return self.socket.write(buf).await.map_err(FramedError::Transport);
        }
        let n = buf.len().min(self.outbox.len());
        self.queue(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Sends the outbox, then flushes the socket.
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.drain().await?;
        self.socket.flush().await.map_err(FramedError::Transport)
    }

    /// Takes `buf` (a sealed record) into the outbox and returns without
    /// waiting when the outbox is empty and `buf` fits: nothing between
    /// embedded-tls sealing the record and counting it can be dropped.
    /// Waits first only for records an earlier, dropped call left.
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.drain().await?;
        if buf.len() <= self.outbox.len() {
            self.queue(buf);
            return Ok(());
        }
        self.socket.write_all(buf).await.map_err(FramedError::Transport)
    }
}

impl<S> RecordFramed<'_, S> {
    /// Copies `bytes` into the empty outbox (the caller checked it fits).
    fn queue(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.outbox.len());
        if let Some(slot) = self.outbox.get_mut(..n) {
            slot.copy_from_slice(bytes.get(..n).unwrap_or_default());
        }
        (self.sent, self.queued) = (0, n);
    }
}
