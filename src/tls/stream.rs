//! [`TlsStream`]: the TLS connection [`connect`](super::connect) returns,
//! with writes that complete or do not start.
//!
//! embedded-tls 0.19 alone is not cancel-safe on writes: it seals a record
//! into its write buffer, empties the buffer, `write_all`s the record and
//! only then advances the record sequence number. A write dropped in
//! between leaves a truncated record on the wire, loses the data, and seals
//! the next record under the same sequence number, that is the same
//! AES-GCM nonce, over different plaintext.
//!
//! Two parts close that:
//!
//! - [`RecordFramed`]'s outbox takes each sealed record whole without
//!   waiting, so sealing and counting a record happen in one poll; the
//!   record goes to the socket in the flush embedded-tls does next.
//! - This wrapper never lets a `write` seal a record (it keeps each call
//!   within the room left in the open record, so embedded-tls only copies),
//!   seals only in `flush` (or when the record is full, before taking more),
//!   and, when a dropped call may have left a sealed record in the outbox,
//!   first gets it onto the wire with an empty application-data record
//!   (RFC 8446 §5.1 allows them) whose flush drains the outbox before the
//!   empty record is taken: if that is dropped, only the empty record is
//!   lost, sealed but never sent and never counted.
//!
//! So a `write` that returned `Ok(n)` has its `n` bytes in the open record
//! or on their way; a dropped `write` took nothing; a dropped `flush` is
//! finished by the next call; and every record on the wire is whole and
//! carries its own sequence number.

use embedded_io_async::{ErrorType, Read, Write};
use embedded_tls::{TLS_RECORD_OVERHEAD, TlsConnection, TlsError};

use super::{CipherSuite, RecordFramed};

/// Record header embedded-tls writes at the start of its write buffer.
const HEADER_LEN: usize = 5;

/// An open TLS connection over socket `S` (read and written through
/// [`RecordFramed`]); implements embedded-io-async `Read` + `Write`, so
/// [`Client`](crate::Client) runs over it unchanged. Reads and writes are
/// cancel-safe when the socket's are (see [`connect`](super::connect)).
pub struct TlsStream<'b, S: Read + Write + 'b> {
    tls: TlsConnection<'b, RecordFramed<'b, S>, CipherSuite>,
    /// Plaintext bytes one record takes here: one less than embedded-tls's
    /// record room, so that its `write` never finds the record full (and
    /// never seals and sends from inside `write`).
    capacity: usize,
    /// Plaintext bytes in the open record.
    pending: usize,
    /// A flush was under way when its call was dropped: a sealed record
    /// may be in the outbox, not yet (wholly) sent.
    unsent: bool,
}

impl<'b, S: Read + Write + 'b> TlsStream<'b, S> {
    /// Wraps a connection you opened yourself (with
    /// [`TlsProvider`](super::TlsProvider) and `TlsConnection::open`;
    /// [`connect`](super::connect) does all this): `write_record_len` is
    /// the length of the write record buffer given to
    /// `TlsConnection::new`, and its socket must be a
    /// [`RecordFramed::with_outbox`] whose outbox is `outbox_len` bytes.
    /// Without an outbox the writes are not cancel-safe.
    pub fn from_connection(
        tls: TlsConnection<'b, RecordFramed<'b, S>, CipherSuite>,
        write_record_len: usize,
        outbox_len: usize,
    ) -> Self {
        let room = write_record_len.saturating_sub(TLS_RECORD_OVERHEAD + HEADER_LEN + 1);
        // A sealed record: header, plaintext, content type, 16-byte tag.
        let fits_outbox = outbox_len.saturating_sub(HEADER_LEN + 1 + 16);
        Self { tls, capacity: room.min(fits_outbox).max(1), pending: 0, unsent: false }
    }

    /// Plaintext bytes per record written: embedded-tls's record room less
    /// one byte, or less if a sealed record would not fit the outbox.
    pub fn record_capacity(&self) -> usize {
        self.capacity
    }

    /// Seals the open record and sends it.
    async fn seal(&mut self) -> Result<(), TlsError> {
        // Both before the first await, so both hold once the call has been
        // polled: the record is sealed and counted in that first poll.
        self.unsent = true;
        self.pending = 0;
        self.tls.flush().await?;
        self.unsent = false;
        Ok(())
    }

    /// Sends what a dropped flush left in the outbox, through an empty
    /// record (see the module docs). No-op when nothing was left.
    async fn finish(&mut self) -> Result<(), TlsError> {
        if self.unsent {
            // Opens an empty record: nothing is sealed or sent here.
            self.tls.write(&[]).await?;
            self.tls.flush().await?;
            self.unsent = false;
        }
        Ok(())
    }

    /// Sends close_notify and returns the socket.
    pub async fn close(mut self) -> Result<S, TlsError> {
        self.finish().await?;
        match self.tls.close().await {
            Ok(framed) => Ok(framed.into_socket()),
            Err((_, e)) => Err(e),
        }
    }
}

impl<'b, S: Read + Write + 'b> ErrorType for TlsStream<'b, S> {
    type Error = TlsError;
}

impl<'b, S: Read + Write + 'b> Read for TlsStream<'b, S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        // A request whose flush was dropped goes out before waiting for
        // its answer.
        self.finish().await?;
        self.tls.read(buf).await
    }
}

impl<'b, S: Read + Write + 'b> Write for TlsStream<'b, S> {
    /// Takes up to the room left in the open record; never waits on the
    /// socket for these bytes (it may for an earlier record).
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.finish().await?;
        if self.pending >= self.capacity {
            self.seal().await?;
        }
        let room = self.capacity - self.pending;
        let n = buf.len().min(room);
        // Completes in its first poll: the record is not full after it,
        // so embedded-tls only copies.
        let taken = self.tls.write(buf.get(..n).unwrap_or_default()).await?;
        self.pending += taken;
        Ok(taken)
    }

    /// Seals the open record and sends it, or finishes what a dropped
    /// flush left.
    async fn flush(&mut self) -> Result<(), Self::Error> {
        if self.pending > 0 { self.seal().await } else { self.finish().await }
    }
}
