//! The async driver's one loop: moving bytes between the transport and
//! the engine, sleeping until the engine's next timer, and handing
//! messages to the handler, for whatever [`Call`] is in progress.
//!
//! Cancel safety rests on the engine: every received byte is handed to it
//! before any await can be dropped, and an outgoing packet stays queued in
//! `tx` with its progress recorded, so a dropped write is resumed by the
//! next call instead of corrupting the stream.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embassy_time::{Instant, with_deadline};
use embedded_io_async::{Read, Write};

use super::call::{self, Call, Output, Step, Wake};
use super::{Client, Error, State};
use crate::engine::Transmit;
use crate::packet;
use crate::store::Store;

/// Polls `fut` once: its output if ready, `None` (and `fut` dropped) if not.
async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        Poll::Ready(match fut.as_mut().poll(cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        })
    })
    .await
}

impl<T, H, S> Client<'_, T, H, S>
where
    T: Read + Write,
    H: FnMut(&packet::Publish<'_>),
    S: Store,
{
    pub(super) fn ensure_connected(&self) -> Result<(), Error<T::Error>> {
        if self.engine.state() == State::Connected { Ok(()) } else { Err(Error::NotConnected) }
    }

    /// Runs `call` to its end: the one loop every method goes through.
    pub(super) async fn run(&mut self, call: &mut Call<'_>) -> Result<Output, Error<T::Error>> {
        loop {
            match call::step(&mut self.engine, call, &Instant::now, &mut self.handler)
                .map_err(Error::widen)?
            {
                Step::Done(output) => return Ok(output),
                // Never without a store (the engine persists only with one).
                Step::Store if !S::PERSISTS => continue,
                Step::Store => {
                    let Some(op) = self.engine.poll_store() else { continue };
                    match self.store.record(op).await {
                        Ok(()) => self.engine.on_stored(),
                        Err(e) => {
                            self.engine.on_store_failed();
                            return Err(Error::Store(e));
                        }
                    }
                }
                Step::Transmit => {
                    let result = match self.engine.poll_transmit() {
                        Some(Transmit::Write(bytes)) => self.transport.write(bytes).await,
                        _ => self.transport.flush().await.map(|()| 0),
                    };
                    self.wrote(result)?;
                }
                Step::Read(Wake::IfReady) => match poll_once(self.fill()).await {
                    None => return Ok(Output::Delivered(false)),
                    Some(filled) => filled?,
                },
                Step::Read(Wake::At(Some(at))) => {
                    // On expiry the next step runs the timers again.
                    if let Ok(filled) = with_deadline(at, self.fill()).await {
                        filled?;
                    }
                }
                Step::Read(_) => self.fill().await?,
            }
        }
    }

    /// Takes the result of a write (or of a flush, `Ok(0)`).
    fn wrote(&mut self, result: Result<usize, T::Error>) -> Result<(), Error<T::Error>> {
        match result {
            Err(e) => {
                self.engine.on_transport_error();
                Err(Error::Transport(e))
            }
            Ok(_) if self.engine.poll_transmit() == Some(Transmit::Flush) => {
                self.engine.on_flushed(Instant::now());
                Ok(())
            }
            Ok(n) => self.engine.on_written(n).map_err(Error::widen),
        }
    }

    /// Reads more bytes into the engine. Cancel-safe when the transport's
    /// `read` is.
    async fn fill(&mut self) -> Result<(), Error<T::Error>> {
        let buf = self.engine.read_buf().map_err(Error::widen)?;
        match self.transport.read(buf).await {
            Ok(n) => self.engine.on_read(n, Instant::now()).map_err(Error::widen),
            Err(e) => {
                self.engine.on_transport_error();
                Err(Error::Transport(e))
            }
        }
    }
}
