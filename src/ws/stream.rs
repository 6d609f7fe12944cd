//! [`WsStream`]: a byte stream carried in WebSocket frames both ways.

use embedded_io_async::{ErrorType, Read, Write};
use rand_core::RngCore;

use super::frame::{
    self, BINARY, CLOSE, CONTINUATION, CONTROL_HEADER, MAX_CONTROL_PAYLOAD, MAX_SERVER_HEADER,
    PING, PONG, Start,
};
use super::{Error, FrameError};

/// Where the read side is in the server's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// `have` bytes of a frame header are in `header`.
    Header { have: usize },
    /// `remaining` payload bytes of a binary or continuation frame.
    Data { remaining: u64 },
    /// A control frame's payload of `len` bytes, `have` of them in
    /// `control` after the room for the reply's header.
    Control { opcode: u8, len: usize, have: usize },
    /// The server's close frame came, with status `code`.
    Closed { code: Option<u16> },
}

/// The part `start..end` of a buffer still to be written.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pending {
    pub start: usize,
    pub end: usize,
}

impl Pending {
    fn is_empty(self) -> bool {
        self.start >= self.end
    }
}

/// An open WebSocket connection over transport `T` (RFC 6455, client
/// side), returned by [`connect`](super::connect); implements
/// embedded-io-async `Read` + `Write`, so [`Client`](crate::Client) runs
/// over it unchanged. `R` makes the masking keys.
///
/// **Writes**: each `write` takes as many bytes as fit in the write
/// buffer (less [`FRAME_OVERHEAD`](super::FRAME_OVERHEAD)) and makes them
/// one masked binary frame, with a fresh key; the frame goes out on the
/// next `write`, `flush` or `read` that must wait. MQTT 3.1.1 §6 lets a
/// packet span frames, and a frame hold several packets.
///
/// **Reads** hand out the payload of binary frames, whatever their size
/// and fragmentation, straight into the caller's buffer (server frames
/// are not masked): only a frame header (at most 10 bytes, read no
/// further than its end) and a control frame's payload (at most 125
/// bytes) are kept here. A ping is answered with a pong (written and
/// flushed by the read before it next waits), a pong ignored;
/// a close frame is answered with one echoing its status code, and the
/// read fails with [`Error::Closed`]. A frame the RFC forbids fails with
/// [`Error::Frame`].
///
/// **Cancel safety**: every byte read is accounted for before the next
/// await, and outgoing frames are written from buffers with their
/// progress kept here; so dropping a pending `read`, `write`, `flush` or
/// [`close`](Self::close) loses no byte and never leaves half a frame:
/// the next call resumes it. (Provided the transport's own `read` and
/// `write` are cancel-safe, as embassy-net's and tokio's are.)
pub struct WsStream<'b, T, R> {
    transport: T,
    rng: R,
    /// Data frames (and our close frame) on their way out.
    tx: &'b mut [u8],
    tx_out: Pending,
    /// An inbound control frame's payload, then the pong or close reply
    /// built over it.
    control: [u8; CONTROL_HEADER + MAX_CONTROL_PAYLOAD],
    control_out: Pending,
    header: [u8; MAX_SERVER_HEADER],
    inbound: Inbound,
    /// A fragmented binary message is unfinished (its last frame had no FIN).
    in_message: bool,
    /// Our close frame is queued or sent: no data frame may follow.
    close_sent: bool,
    /// A reply was written but the transport not yet flushed (a TLS
    /// stream holds writes until then).
    unflushed: bool,
}

impl<'b, T, R> WsStream<'b, T, R> {
    /// A stream over `transport`, whose handshake is done.
    pub(super) fn new(transport: T, tx: &'b mut [u8], rng: R) -> Self {
        Self {
            transport,
            rng,
            tx,
            tx_out: Pending::default(),
            control: [0; CONTROL_HEADER + MAX_CONTROL_PAYLOAD],
            control_out: Pending::default(),
            header: [0; MAX_SERVER_HEADER],
            inbound: Inbound::Header { have: 0 },
            in_message: false,
            close_sent: false,
            unflushed: false,
        }
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The transport, e.g. to close a TLS stream after
    /// [`close`](Self::close). Bytes not yet written are lost.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// The error for a write after a close frame either way.
    fn closed(&self) -> Option<u16> {
        match self.inbound {
            Inbound::Closed { code } => code,
            _ => None,
        }
    }
}

impl<T: Read + Write, R: RngCore> WsStream<'_, T, R> {
    /// Closes the connection with status `code` (1000: normal closure):
    /// sends a close frame (unless one was sent in reply to the
    /// server's), then reads until the server's close frame, discarding
    /// data. Returns the server's status code; `None` when it gave none
    /// or ended the connection without a close frame. Cancel-safe: call
    /// it again to resume.
    pub async fn close(&mut self, code: u16) -> Result<Option<u16>, Error<T::Error>> {
        if !self.close_sent {
            self.drain().await?;
            let mask = self.mask();
            let len =
                frame::write_client_header(CLOSE, 2, mask, self.tx).ok_or(Error::WriteZero)?;
            let payload = self.tx.get_mut(len..len + 2).ok_or(Error::WriteZero)?;
            payload.copy_from_slice(&code.to_be_bytes());
            frame::apply_mask(payload, mask);
            self.tx_out = Pending { start: 0, end: len + 2 };
            self.close_sent = true;
        }
        self.flush().await?;
        let mut discard = [0; 16];
        loop {
            match self.read(&mut discard).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(Error::Closed { code }) => return Ok(code),
                Err(e) => return Err(e),
            }
        }
    }

    /// A fresh masking key (§5.3).
    fn mask(&mut self) -> [u8; 4] {
        self.rng.next_u32().to_le_bytes()
    }

    /// Writes what is queued: the data frame first (it was queued first:
    /// a control reply is only queued by a read, and a write drains both
    /// before queueing), then the control reply.
    async fn drain(&mut self) -> Result<(), Error<T::Error>> {
        write_out(&mut self.transport, self.tx, &mut self.tx_out).await?;
        write_out(&mut self.transport, &self.control, &mut self.control_out).await
    }

    /// Writes a queued pong or close reply and flushes it out, so that it
    /// leaves even while the client only reads.
    async fn send_reply(&mut self) -> Result<(), Error<T::Error>> {
        if !self.control_out.is_empty() {
            self.drain().await?;
            self.unflushed = true;
        }
        if self.unflushed {
            self.transport.flush().await.map_err(Error::Transport)?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// Masks the `len` payload bytes in `control` and puts the header of
    /// an `opcode` frame before them: the reply to write next.
    fn queue_control(&mut self, opcode: u8, len: usize) {
        let mask = self.mask();
        let end = CONTROL_HEADER + len.min(MAX_CONTROL_PAYLOAD);
        frame::apply_mask(self.control.get_mut(CONTROL_HEADER..end).unwrap_or_default(), mask);
        if frame::write_client_header(opcode, end - CONTROL_HEADER, mask, &mut self.control)
            .is_some()
        {
            self.control_out = Pending { start: 0, end };
        }
    }

    /// A frame header is complete: check it against the message state
    /// and go on to its payload.
    fn begin_frame(&mut self, start: Start, len: u64) -> Result<(), FrameError> {
        self.inbound = match start.opcode {
            CONTINUATION if !self.in_message => return Err(FrameError::UnexpectedContinuation),
            BINARY if self.in_message => return Err(FrameError::UnfinishedMessage),
            CONTINUATION | BINARY => {
                self.in_message = !start.fin;
                Inbound::Data { remaining: len }
            }
            // Start::parse checked the length of a control frame.
            opcode => Inbound::Control {
                opcode,
                len: usize::try_from(len).unwrap_or(MAX_CONTROL_PAYLOAD),
                have: 0,
            },
        };
        Ok(())
    }

    /// A control frame's payload is in: queue the pong or close reply.
    fn end_control(&mut self, opcode: u8, len: usize) -> Result<(), FrameError> {
        self.inbound = Inbound::Header { have: 0 };
        match opcode {
            PING if !self.close_sent => self.queue_control(PONG, len),
            CLOSE => {
                let payload = self.control.get(CONTROL_HEADER..CONTROL_HEADER + len);
                let code = match payload.unwrap_or_default() {
                    [] => None,
                    [_] => return Err(FrameError::BadClosePayload),
                    [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
                };
                if !self.close_sent {
                    // Echo the status code (§5.5.1), the first 2 bytes.
                    self.queue_control(CLOSE, if code.is_some() { 2 } else { 0 });
                    self.close_sent = true;
                }
                self.inbound = Inbound::Closed { code };
            }
            _ => {} // a pong, or a ping after our close
        }
        Ok(())
    }

    /// Reads into `buf` (not empty) from the transport; end of stream
    /// inside a frame is [`Error::Truncated`].
    async fn read_some(transport: &mut T, buf: &mut [u8]) -> Result<usize, Error<T::Error>> {
        match transport.read(buf).await.map_err(Error::Transport)? {
            0 => Err(Error::Truncated),
            n => Ok(n.min(buf.len())),
        }
    }
}

/// Writes `buf[out.start..out.end]` to `transport`, keeping the progress
/// in `out` so that a dropped call is resumed. Unlike `write_all`, a
/// transport that takes nothing (or claims more than it was given) is an
/// error or the end, never a panic.
pub(super) async fn write_out<T: Write>(
    transport: &mut T,
    buf: &[u8],
    out: &mut Pending,
) -> Result<(), Error<T::Error>> {
    while !out.is_empty() {
        let bytes = buf.get(out.start..out.end).unwrap_or_default();
        match transport.write(bytes).await.map_err(Error::Transport)? {
            0 => return Err(Error::WriteZero),
            n => out.start = out.start.saturating_add(n),
        }
    }
    *out = Pending::default();
    Ok(())
}

/// The largest number of payload bytes, at most `want`, whose client
/// frame fits `capacity` bytes.
fn payload_fit(capacity: usize, want: usize) -> usize {
    [CONTROL_HEADER, 8, frame::MAX_CLIENT_HEADER]
        .into_iter()
        .map(|header| want.min(capacity.saturating_sub(header)))
        .filter(|&n| frame::client_header_len(n).saturating_add(n) <= capacity)
        .max()
        .unwrap_or(0)
}

impl<T: ErrorType, R> ErrorType for WsStream<'_, T, R> {
    type Error = Error<T::Error>;
}

impl<T: Read + Write, R: RngCore> Read for WsStream<'_, T, R> {
    /// Hands out binary payload bytes. Returns `Ok(0)` when the
    /// transport ends between frames of no unfinished message; fails with
    /// [`Error::Closed`] once the server's close frame came.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.inbound {
                Inbound::Closed { code } => {
                    self.send_reply().await?;
                    return Err(Error::Closed { code });
                }
                Inbound::Data { remaining: 0 } => self.inbound = Inbound::Header { have: 0 },
                Inbound::Data { remaining } => {
                    let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(buf.len());
                    let into = buf.get_mut(..want).unwrap_or_default();
                    let n = Self::read_some(&mut self.transport, into).await?;
                    let left = remaining.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
                    self.inbound = Inbound::Data { remaining: left };
                    return Ok(n);
                }
                Inbound::Header { have } => {
                    let start = match self.header.get(..2) {
                        Some(&[b0, b1]) if have >= 2 => Some(Start::parse(b0, b1)?),
                        _ => None,
                    };
                    let need = start.map_or(2, Start::header_len);
                    if let (Some(start), true) = (start, have >= need) {
                        let len =
                            start.payload_len(self.header.get(2..need).unwrap_or_default())?;
                        self.begin_frame(start, len)?;
                        continue;
                    }
                    if have == 0 {
                        // Answer a ping before waiting for more.
                        self.send_reply().await?;
                    }
                    let into = self.header.get_mut(have..need).unwrap_or_default();
                    let n = match self.transport.read(into).await.map_err(Error::Transport)? {
                        0 if have == 0 && !self.in_message => return Ok(0),
                        0 => return Err(Error::Truncated),
                        n => n.min(need - have),
                    };
                    self.inbound = Inbound::Header { have: have + n };
                }
                Inbound::Control { opcode, len, have } if have >= len => {
                    self.end_control(opcode, len)?;
                }
                Inbound::Control { opcode, len, have } => {
                    // The payload goes where the last reply was built.
                    self.send_reply().await?;
                    let into = self.control.get_mut(CONTROL_HEADER + have..CONTROL_HEADER + len);
                    let n = Self::read_some(&mut self.transport, into.unwrap_or_default()).await?;
                    self.inbound = Inbound::Control { opcode, len, have: have + n };
                }
            }
        }
    }
}

impl<T: Read + Write, R: RngCore> Write for WsStream<'_, T, R> {
    /// Writes what an earlier call queued, then queues as much of `buf`
    /// as fits the write buffer as one binary frame and returns its
    /// length: the frame is written by the next call (or `flush`).
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.drain().await?;
        if self.close_sent {
            return Err(Error::Closed { code: self.closed() });
        }
        let n = payload_fit(self.tx.len(), buf.len());
        let mask = self.mask();
        let header =
            frame::write_client_header(BINARY, n, mask, self.tx).ok_or(Error::WriteZero)?;
        let payload = self.tx.get_mut(header..header + n).ok_or(Error::WriteZero)?;
        payload.copy_from_slice(buf.get(..n).ok_or(Error::WriteZero)?);
        frame::apply_mask(payload, mask);
        if n == 0 {
            return Err(Error::WriteZero);
        }
        self.tx_out = Pending { start: 0, end: header + n };
        Ok(n)
    }

    /// Writes every queued frame, then flushes the transport.
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.drain().await?;
        self.transport.flush().await.map_err(Error::Transport)
    }
}

#[cfg(test)]
mod tests {
    use super::payload_fit;

    #[test]
    fn payload_fit_takes_the_largest_frame_that_fits() {
        assert_eq!(payload_fit(100, 10), 10);
        assert_eq!(payload_fit(100, 200), 94);
        assert_eq!(payload_fit(133, 200), 125);
        assert_eq!(payload_fit(200, 200), 192);
        assert_eq!(payload_fit(70_000, 70_000), 69_986);
        assert_eq!(payload_fit(5, 10), 0);
    }
}
