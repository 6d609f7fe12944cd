//! The blocking client on the host: [`StdClock`], and [`Transport`] for
//! `std::net::TcpStream` through `embedded-io-adapters`' `FromStd`.

extern crate std;

use std::io::ErrorKind;
use std::net::TcpStream;

use embassy_time::{Duration, Instant};
use embedded_io_adapters::std::FromStd;

use super::{Clock, Transport};

/// [`Clock`] from `std::time::Instant`, counting from its creation.
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    start: std::time::Instant,
}

impl StdClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { start: std::time::Instant::now() }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now(&self) -> Instant {
        let micros = self.start.elapsed().as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

impl Transport for FromStd<TcpStream> {
    /// Peeks with the socket's read timeout set to `timeout` (non-blocking
    /// for zero), so nothing is consumed.
    fn wait_readable(&mut self, timeout: Option<Duration>) -> Result<bool, Self::Error> {
        let socket = self.inner_mut();
        let zero = timeout.is_some_and(|t| t.as_ticks() == 0);
        if zero {
            socket.set_nonblocking(true)?;
        } else {
            let limit = timeout.map(|t| std::time::Duration::from_micros(t.as_micros()));
            socket.set_read_timeout(limit)?;
        }
        let peeked = socket.peek(&mut [0u8; 1]);
        if zero {
            socket.set_nonblocking(false)?;
        }
        match peeked {
            Ok(_) => Ok(true), // bytes, or end of stream
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }
}
