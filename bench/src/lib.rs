//! Shared helpers of the benchmark binaries: argument parsing, payloads,
//! timing and the one-line `key=value` reports `scripts/bench_run.py` reads.

use std::time::Instant;

/// Payload of `size` bytes (printable, like a line of `mosquitto_pub -l`).
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Command-line arguments after the mode, as numbers or text.
pub struct Args(pub Vec<String>);

impl Args {
    /// The process arguments (without the program name).
    pub fn from_env() -> Self {
        Self(std::env::args().skip(1).collect())
    }

    /// Argument `i` as text.
    pub fn text(&self, i: usize) -> &str {
        self.0.get(i).map(String::as_str).unwrap_or_else(|| usage())
    }

    /// Argument `i` as a number.
    pub fn num(&self, i: usize) -> usize {
        self.text(i).parse().unwrap_or_else(|_| usage())
    }
}

/// Prints the modes and exits.
pub fn usage() -> ! {
    eprintln!(
        "usage: MODE ARGS\n\
         pub0 PORT TOPIC N SIZE            QoS 0 publish loop\n\
         pub1 PORT TOPIC N SIZE INFLIGHT   pipelined QoS 1 publish, until all PUBACKs\n\
         pub2 PORT TOPIC N SIZE INFLIGHT   pipelined QoS 2 publish, until all PUBCOMPs\n\
         rtt PORT TOPIC N SIZE             QoS 1 stop-and-wait round trips\n\
         prep PORT CLIENT_ID TOPIC QOS     persistent session: subscribe, disconnect\n\
         drain PORT CLIENT_ID N            resume the session, receive N messages\n\
         count PORT TOPIC QOS N            live subscriber: READY, then N messages (umqtt only)\n\
         fill PORT TOPIC N SIZE QOS        fast publisher for the drain workload (umqtt only)"
    );
    std::process::exit(2)
}

/// Seconds since `start`.
pub fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// Median and 99th percentile of round trips, in microseconds.
pub fn percentiles(rtts: &mut [f64]) -> (f64, f64) {
    rtts.sort_by(f64::total_cmp);
    let at = |q: f64| rtts[((rtts.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5) * 1e6, at(0.99) * 1e6)
}

/// Seconds since the Unix epoch (to line up events of two processes).
pub fn wall() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
