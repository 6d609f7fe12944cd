//! A fault-injecting loopback TCP proxy between a client and a broker.
//!
//! The test holds a [`Proxy`] handle and tells it, at any time, to drop
//! connections at a byte offset in either direction, to delay traffic, to
//! split it into tiny writes, or to black-hole it (sockets stay open,
//! nothing passes). Random choices come from a seeded [`Rng`], so a run is
//! repeatable up to the scheduling of the two sides.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// SplitMix64: a tiny seeded generator, good enough to place faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// Direction of traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to broker.
    Up,
    /// Broker to client.
    Down,
}

#[derive(Default)]
struct Plan {
    /// Drop the connection after this many more bytes in this direction.
    kill: Option<(Dir, u64)>,
    /// Pause before each forwarded piece.
    delay: Duration,
    /// Forward in pieces of 1..=n bytes, each written and flushed alone.
    chunk: Option<usize>,
    rng: Option<Rng>,
}

struct Shared {
    plan: Mutex<Plan>,
    black_hole: AtomicBool,
    kills: AtomicU64,
    killed: Notify,
    connections: AtomicU64,
    bytes: [AtomicU64; 2],
    holed: [AtomicU64; 2],
    live: Mutex<Vec<watch::Sender<bool>>>,
}

/// A running proxy; dropped, it stops and closes every connection.
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on an ephemeral loopback port and forwards each connection
    /// to `127.0.0.1:upstream`. Must run inside a tokio runtime.
    pub async fn start(upstream: u16, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            plan: Mutex::new(Plan { rng: Some(Rng::new(seed)), ..Plan::default() }),
            black_hole: AtomicBool::new(false),
            kills: AtomicU64::new(0),
            killed: Notify::new(),
            connections: AtomicU64::new(0),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            holed: [AtomicU64::new(0), AtomicU64::new(0)],
            live: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, Arc::clone(&shared)));
        Self { port, shared, accept }
    }

    /// Drops the connection carrying the `after`-th next byte in `dir`
    /// (`after` = 0: at the next byte). The bytes before it are
    /// delivered. Replaces an armed kill that has not fired.
    pub fn kill_after(&self, dir: Dir, after: u64) {
        self.shared.plan.lock().unwrap().kill = Some((dir, after));
    }

    /// Arms a kill in a random direction at a random offset: up to
    /// `max_up` bytes upstream or `max_down` bytes downstream. Returns
    /// what it chose.
    pub fn kill_random(&self, max_up: u64, max_down: u64) -> (Dir, u64) {
        let mut plan = self.shared.plan.lock().unwrap();
        let rng = plan.rng.as_mut().unwrap();
        let choice = if rng.coin() {
            (Dir::Up, rng.range(0, max_up))
        } else {
            (Dir::Down, rng.range(0, max_down))
        };
        plan.kill = Some(choice);
        choice
    }

    /// Whether a kill is armed and has not fired.
    pub fn kill_armed(&self) -> bool {
        self.shared.plan.lock().unwrap().kill.is_some()
    }

    /// Drops every open connection now.
    pub fn kill_now(&self) {
        let live = std::mem::take(&mut *self.shared.live.lock().unwrap());
        if !live.is_empty() {
            self.shared.kills.fetch_add(1, Ordering::SeqCst);
            self.shared.killed.notify_waiters();
        }
        for conn in live {
            let _ = conn.send(true);
        }
    }

    /// Waits until the number of kills reaches `n`.
    pub async fn wait_kills(&self, n: u64) {
        loop {
            let notified = self.shared.killed.notified();
            if self.kills() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Connections dropped so far by the proxy.
    pub fn kills(&self) -> u64 {
        self.shared.kills.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far in `dir`.
    pub fn bytes(&self, dir: Dir) -> u64 {
        self.shared.bytes[dir as usize].load(Ordering::SeqCst)
    }

    /// Bytes discarded so far by the black hole in `dir`.
    pub fn black_holed(&self, dir: Dir) -> u64 {
        self.shared.holed[dir as usize].load(Ordering::SeqCst)
    }

    /// Pauses `delay` before forwarding each piece.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.plan.lock().unwrap().delay = delay;
    }

    /// Splits traffic into writes of 1..=`max` bytes (`None`: as read).
    pub fn set_chunk(&self, max: Option<usize>) {
        self.shared.plan.lock().unwrap().chunk = max.map(|m| m.max(1));
    }

    /// Black-holes (`true`) or restores (`false`) both directions: the
    /// sockets stay open and what arrives is discarded.
    pub fn set_black_hole(&self, on: bool) {
        self.shared.black_hole.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for conn in std::mem::take(&mut *self.shared.live.lock().unwrap()) {
            let _ = conn.send(true);
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: u16, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream)).await else {
            continue; // broker down: the client sees the connection close
        };
        let _ = client.set_nodelay(true);
        let _ = broker.set_nodelay(true);
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let (stop_tx, stop_rx) = watch::channel(false);
        shared.live.lock().unwrap().retain(|c| !c.is_closed());
        shared.live.lock().unwrap().push(stop_tx.clone());
        let (client_r, client_w) = client.into_split();
        let (broker_r, broker_w) = broker.into_split();
        let stop = Arc::new(stop_tx);
        for (dir, r, w) in [
            (Dir::Up, Box::new(client_r) as Box<dyn Read>, Box::new(broker_w) as Box<dyn Write>),
            (Dir::Down, Box::new(broker_r), Box::new(client_w)),
        ] {
            let task = pump(dir, r, w, Arc::clone(&shared), Arc::clone(&stop), stop_rx.clone());
            tokio::spawn(task);
        }
    }
}

trait Read: tokio::io::AsyncRead + Unpin + Send {}
impl<T: tokio::io::AsyncRead + Unpin + Send> Read for T {}
trait Write: tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncWrite + Unpin + Send> Write for T {}

/// Forwards one direction until EOF, an error, or a kill of the connection.
/// Either side ending ends both (a TCP proxy that half-closes would let a
/// test pass that a real network would fail).
async fn pump(
    dir: Dir,
    mut from: Box<dyn Read>,
    mut to: Box<dyn Write>,
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<bool>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = stopped.wait_for(|s| *s) => break,
        };
        if shared.black_hole.load(Ordering::SeqCst) {
            shared.holed[dir as usize].fetch_add(n as u64, Ordering::SeqCst);
            continue;
        }
        let (forward, kill, delay, pieces) = {
            let mut plan = shared.plan.lock().unwrap();
            let (mut forward, mut kill) = (n, false);
            if let Some((d, left)) = plan.kill {
                if d == dir {
                    if left < n as u64 {
                        forward = left as usize;
                        kill = true;
                        plan.kill = None;
                    } else {
                        plan.kill = Some((d, left - n as u64));
                    }
                }
            }
            let mut pieces = Vec::new();
            let mut rest = forward;
            while rest > 0 {
                let size = match plan.chunk {
                    Some(max) => {
                        (plan.rng.as_mut().unwrap().range(1, max as u64) as usize).min(rest)
                    }
                    None => rest,
                };
                pieces.push(size);
                rest -= size;
            }
            (forward, kill, plan.delay, pieces)
        };
        let mut at = 0;
        for size in pieces {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if to.write_all(&buf[at..at + size]).await.is_err() || to.flush().await.is_err() {
                break;
            }
            at += size;
        }
        shared.bytes[dir as usize].fetch_add(forward as u64, Ordering::SeqCst);
        if kill {
            shared.kills.fetch_add(1, Ordering::SeqCst);
            shared.killed.notify_waiters();
            break;
        }
    }
    // Ends the other direction too, then closes this one's sockets.
    let _ = stop.send(true);
}
