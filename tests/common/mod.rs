//! Shared test harness: a private Mosquitto per test on an ephemeral
//! loopback port, and tokio TCP transports for the client.
#![allow(dead_code)]

pub mod external;
pub mod proxy;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use embedded_io_adapters::tokio_1::FromTokio;

/// A transport for the client: tokio TCP through embedded-io-adapters.
pub type Tcp = FromTokio<tokio::net::TcpStream>;

/// Connects a client transport to `127.0.0.1:port` with TCP_NODELAY.
pub async fn tcp(port: u16) -> Tcp {
    let stream =
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect to broker");
    stream.set_nodelay(true).unwrap();
    FromTokio::new(stream)
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Whether tests must fail instead of skipping when Mosquitto is missing.
pub fn mosquitto_required() -> bool {
    std::env::var("UMQTT_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1")
}

/// A Mosquitto broker owned by one test, killed on drop.
pub struct Mosquitto {
    /// Its plaintext listener port.
    pub port: u16,
    /// Its private directory (config, persistence, certificates).
    pub dir: PathBuf,
    child: Child,
}

static NEXT_DIR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh private temp directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("umqtt-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Mosquitto {
    /// Starts Mosquitto with `listener PORT 127.0.0.1`, anonymous access
    /// and `extra` config lines. Returns `None` (after printing one skip
    /// line) when `mosquitto` is not installed, unless
    /// `UMQTT_REQUIRE_MOSQUITTO=1`, which makes that a failure.
    pub fn start(test: &str, extra: &str) -> Option<Self> {
        Self::start_in(test, &temp_dir(test), extra)
    }

    /// Like [`start`](Self::start) in a given directory (to restart a
    /// broker on its persistence files).
    pub fn start_in(test: &str, dir: &Path, extra: &str) -> Option<Self> {
        Self::start_on(test, dir, free_port(), extra)
    }

    /// Like [`start_in`](Self::start_in) on a given port.
    pub fn start_on(test: &str, dir: &Path, port: u16, extra: &str) -> Option<Self> {
        if !on_path("mosquitto") && !Path::new("/usr/sbin/mosquitto").exists() {
            assert!(
                !mosquitto_required(),
                "{test}: mosquitto not found and UMQTT_REQUIRE_MOSQUITTO=1"
            );
            println!(
                "SKIPPED {test}: mosquitto not on PATH (set UMQTT_REQUIRE_MOSQUITTO=1 to fail instead)"
            );
            return None;
        }
        let program = if on_path("mosquitto") { "mosquitto" } else { "/usr/sbin/mosquitto" };
        let config = dir.join("mosquitto.conf");
        let mut text = format!("user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n");
        if !extra.contains("persistence ") {
            text.push_str("persistence false\n");
        }
        text.push_str(extra);
        std::fs::write(&config, text).unwrap();
        let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
        let child = Command::new(program)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mosquitto");
        let broker = Self { port, dir: dir.to_owned(), child };
        broker.wait_ready(port);
        Some(broker)
    }

    /// Blocks until `port` accepts an MQTT CONNECT and answers CONNACK.
    pub fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                // CONNECT, clean session, client id "ready".
                let connect = [
                    0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 10, 0, 5, b'r', b'e', b'a',
                    b'd', b'y',
                ];
                let mut ack = [0u8; 4];
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                if s.write_all(&connect).is_ok() && s.read_exact(&mut ack).is_ok() && ack[0] == 0x20
                {
                    let _ = s.write_all(&[0xe0, 0]);
                    return;
                }
            }
            assert!(Instant::now() < deadline, "mosquitto did not come up; log: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Kills the broker abruptly (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}
