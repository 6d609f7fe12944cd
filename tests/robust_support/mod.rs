//! Support for the always-connected client's broker tests: a tokio TCP
//! connector (the real ones come from `umqtt::connect`'s implementations),
//! hooks that forward events to the test thread, and figures.
#![allow(dead_code)]

use std::sync::mpsc::Sender;
use std::time::Instant;

use embedded_io_adapters::tokio_1::FromTokio;
use umqtt::connect::Connector;
use umqtt::robust::{Event, Hooks};

/// Opens a TCP connection to `127.0.0.1:port` per attempt.
pub struct TokioTcp {
    /// The broker's port.
    pub port: u16,
}

impl Connector for TokioTcp {
    type Transport<'c> = FromTokio<tokio::net::TcpStream>;
    type Error = std::io::Error;

    async fn connect(&mut self) -> Result<Self::Transport<'_>, std::io::Error> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream.set_nodelay(true)?;
        Ok(FromTokio::new(stream))
    }
}

/// Sends every event, with the instant it came, to the test thread.
pub struct Forward(pub Sender<(Instant, Event)>);

impl Hooks for Forward {
    fn on_event(&mut self, event: &Event) {
        let _ = self.0.send((Instant::now(), *event));
    }
}

/// Median and maximum of `ms` (sorted in place).
pub fn median_max(ms: &mut [f64]) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let median = if n % 2 == 1 { ms[n / 2] } else { (ms[n / 2 - 1] + ms[n / 2]) / 2.0 };
    (median, ms[n - 1])
}
