//! A small command-line MQTT 3.1.1 client modelled on `mosquitto_sub` and
//! `mosquitto_pub`.
//!
//! ```text
//! cli sub -h HOST -p PORT -t FILTER [-t FILTER...] [-q 0|1|2] [-C COUNT] [-i ID]
//!         [-k KEEPALIVE] [-c] [-u USER -P PASS] [-v] [-V 31|311] [--connect-retry SECS]
//!         [--will-topic T --will-payload P --will-qos Q --will-retain]
//! cli pub -h HOST -p PORT -t TOPIC -m MSG [-q 0|1|2] [-r] [-i ID] [-k KEEPALIVE]
//!         [-c] [-u USER -P PASS] [-V 31|311] [--repeat N] [--interval-ms MS]
//!         [--connect-retry SECS] [-c --store FILE]
//! ```
//!
//! `sub` prints each payload on its own line (with `-v`: topic, a space,
//! payload) and exits 0 after COUNT messages; `-c` asks for a persistent
//! session (clean session false, needs `-i`). `pub` publishes MSG, REPEAT
//! times (default 1) INTERVAL_MS apart, then disconnects. Any error prints
//! one line `error: ...` on stderr and exits 1.
//!
//! Both stay connected as `mosquitto_sub` does, through the always-connected
//! client (`umqtt::robust`): a connection that breaks is re-established by
//! itself (after 1 s, doubling to 30 s), each time with one `warning:` line
//! on stderr. With `-c -i ID` the broker keeps the session, and a QoS 1 or 2
//! message not yet acknowledged is resent on the new connection (DUP=1,
//! same packet id): `pub` exits 0 only once every message is acknowledged.
//! `sub` subscribes again when the broker did not keep the session, and
//! still exits after COUNT. Without `-c`, a reconnect starts a new session:
//! a message `pub` had not seen acknowledged is discarded (error, exit 1).
//! The first connection is the exception, as with `mosquitto_pub`: if it
//! fails (no TCP, TLS or WebSocket, CONNACK refused, no CONNACK), the
//! command reports it and exits 1; `--connect-retry SECS` retries it for up
//! to SECS seconds first.
//!
//! `-q 2` is QoS 2: `pub` returns once the PUBCOMP arrived; `sub` subscribes
//! at QoS 2 and receives exactly once. The ids of QoS 2 messages awaiting
//! PUBREL live in the process, so with `-c` a message the broker
//! redelivers after `sub` was restarted may print twice.
//!
//! `pub -c -i ID --store FILE` keeps the session in FILE (a 64 KiB
//! file-backed flash, `umqtt::store::FlashStore`): a publisher killed and
//! started again with the same arguments resends what was not
//! acknowledged (DUP=1, same packet ids) and goes on. `{n}` in MSG is the
//! message's number, 0..REPEAT; the next number to publish is kept in
//! FILE.progress, and numbers still in the stored session are not
//! published again. With `--store`, `pub` uses one connection through the
//! plain client (the always-connected one has no store yet): if it breaks,
//! `pub` exits 1 and the next run resends.
//!
//! `--ws PATH` (build with `--features ws`) speaks MQTT over a WebSocket
//! opened on PATH (`ws://`; with the TLS flags, `wss://`).

mod cli_connect;
mod tls_open;

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embedded_io_async::{Read, Write};
use tokio::sync::Notify;
use umqtt::connect::{Connector, TokioConnector};
use umqtt::robust::{self, Backoff, Config, DisconnectReason, Event, Hooks, Runner, State, Stop};
use umqtt::store::{FileFlash, FlashStore, Store};
use umqtt::{Client, ConnectOptions, Error, ProtocolLevel, Publish, QoS};

use cli_connect::{Describe, LastFailure, Reporting};

const USAGE: &str = "usage:
  cli sub -h HOST -p PORT -t FILTER [-t FILTER...] [-q 0|1|2] [-C COUNT] [-i ID] [-k KEEPALIVE]
          [-c] [-u USER -P PASS] [-v] [-V 31|311] [--connect-retry SECS]
          [--will-topic T --will-payload P --will-qos Q --will-retain]
  cli pub -h HOST -p PORT -t TOPIC -m MSG [-q 0|1|2] [-r] [-i ID] [-k KEEPALIVE]
          [-c] [-u USER -P PASS] [-V 31|311] [--repeat N] [--interval-ms MS] [--connect-retry SECS]
          [-c --store FILE]   (session in FILE, survives a kill; {n} in MSG: its number)
  Both reconnect by themselves once connected (-c -i ID keeps the session: unacknowledged
  messages are resent, pub exits 0 once all are acknowledged); a first connection that
  fails is an error, unless --connect-retry SECS: retry it for up to SECS seconds.
  With --store, pub keeps one connection (no reconnect; run it again to resend).
  TLS (build with --features tls): --cafile FILE [--cert FILE --key FILE]
          [--tls-server-name NAME (default: the host)] [--insecure]; -p defaults to 8883
  WebSocket (build with --features ws): --ws PATH (e.g. /mqtt; with the TLS flags, wss)";

/// Where and how to connect: the options both commands share.
struct Connection {
    host: String,
    port: u16,
    /// `-p` was given (else 8883 with TLS).
    port_given: bool,
    tls: tls_open::TlsArgs,
    /// `--ws PATH`: MQTT over a WebSocket on this path.
    ws_path: Option<String>,
    client_id: Option<String>,
    keep_alive: u16,
    clean_session: bool,
    username: Option<String>,
    password: Option<String>,
    protocol: ProtocolLevel,
    will_topic: Option<String>,
    will_payload: String,
    will_qos: QoS,
    will_retain: bool,
}

struct Args {
    command: Command,
    connection: Connection,
    /// `-t`: filters for `sub`, the one topic for `pub`.
    topics: Vec<String>,
    qos: QoS,
    count: Option<u64>,
    verbose: bool,
    message: Option<String>,
    retain: bool,
    repeat: u64,
    interval: Duration,
    /// `--store FILE`: the publisher's session survives a restart.
    store: Option<std::path::PathBuf>,
    /// `--connect-retry SECS`: how long a failing first connection is retried.
    connect_retry: Option<Duration>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Command {
    Sub,
    Pub,
}

fn number<N: std::str::FromStr>(flag: &str, value: &str) -> Result<N, String> {
    value.parse().map_err(|_| format!("{flag}: invalid number {value:?}"))
}

fn qos(flag: &str, value: &str) -> Result<QoS, String> {
    match value {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        _ => Err(format!("{flag}: QoS must be 0, 1 or 2, not {value:?}")),
    }
}

/// Parses the command line; `Ok(None)` means `--help` was printed.
fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let command = match argv.next().as_deref() {
        Some("sub") => Command::Sub,
        Some("pub") => Command::Pub,
        Some("--help") => return Ok(None),
        Some(other) => return Err(format!("unknown command {other:?}: expected sub or pub")),
        None => return Err("missing command: expected sub or pub (see --help)".into()),
    };
    let mut args = Args {
        command,
        connection: Connection {
            host: "127.0.0.1".into(),
            port: 1883,
            port_given: false,
            tls: tls_open::TlsArgs::default(),
            ws_path: None,
            client_id: None,
            keep_alive: 60,
            clean_session: true,
            username: None,
            password: None,
            protocol: ProtocolLevel::V311,
            will_topic: None,
            will_payload: String::new(),
            will_qos: QoS::AtMostOnce,
            will_retain: false,
        },
        topics: Vec::new(),
        qos: QoS::AtMostOnce,
        count: None,
        verbose: false,
        message: None,
        retain: false,
        repeat: 1,
        interval: Duration::ZERO,
        store: None,
        connect_retry: None,
    };
    let c = &mut args.connection;
    while let Some(flag) = argv.next() {
        let sub = command == Command::Sub;
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--help" => return Ok(None),
            "-h" => c.host = value()?,
            "-p" => {
                c.port = number(&flag, &value()?)?;
                c.port_given = true;
            }
            f if c.tls.parse_flag(f, &mut value)? => {}
            "--ws" if cfg!(feature = "ws") => c.ws_path = Some(value()?),
            "--ws" => return Err("--ws needs a build with WebSocket: --features ws".into()),
            "-i" => c.client_id = Some(value()?),
            "-k" => c.keep_alive = number(&flag, &value()?)?,
            "-u" => c.username = Some(value()?),
            "-P" => c.password = Some(value()?),
            "-V" => {
                c.protocol = match value()?.as_str() {
                    "31" | "mqttv31" => ProtocolLevel::V31,
                    "311" | "mqttv311" => ProtocolLevel::V311,
                    other => return Err(format!("-V: expected 31 or 311, not {other:?}")),
                }
            }
            "-t" => args.topics.push(value()?),
            "-q" => args.qos = qos(&flag, &value()?)?,
            "-C" if sub => args.count = Some(number(&flag, &value()?)?),
            "-c" => c.clean_session = false,
            "-v" if sub => args.verbose = true,
            "--will-topic" if sub => c.will_topic = Some(value()?),
            "--will-payload" if sub => c.will_payload = value()?,
            "--will-qos" if sub => c.will_qos = qos(&flag, &value()?)?,
            "--will-retain" if sub => c.will_retain = true,
            "-m" if !sub => args.message = Some(value()?),
            "-r" if !sub => args.retain = true,
            "--repeat" if !sub => args.repeat = number(&flag, &value()?)?,
            "--store" if !sub => args.store = Some(value()?.into()),
            "--connect-retry" => {
                args.connect_retry = Some(Duration::from_secs(number(&flag, &value()?)?));
            }
            "--interval-ms" if !sub => {
                args.interval = Duration::from_millis(number(&flag, &value()?)?);
            }
            _ => return Err(format!("unknown option {flag} (see --help)")),
        }
    }
    if args.topics.is_empty() {
        return Err("-t is required".into());
    }
    if command == Command::Pub && (args.topics.len() > 1 || args.message.is_none()) {
        return Err("pub needs exactly one -t TOPIC and -m MESSAGE".into());
    }
    if args.topics.len() > umqtt::MAX_SUBSCRIBE_TOPICS {
        return Err(format!("at most {} -t filters", umqtt::MAX_SUBSCRIBE_TOPICS));
    }
    if args.store.is_some() && args.connection.clean_session {
        return Err("--store needs a persistent session (-c -i ID)".into());
    }
    if args.store.is_some() && args.connect_retry.is_some() {
        return Err("--connect-retry does not apply to --store (one connection)".into());
    }
    if !args.connection.clean_session && args.connection.client_id.is_none() {
        return Err("-c needs a client id (-i)".into());
    }
    if args.connection.password.is_some() && args.connection.username.is_none() {
        return Err("-P needs a user name (-u)".into());
    }
    args.connection.tls.validate()?;
    if args.connection.tls.wanted() && !args.connection.port_given {
        args.connection.port = tls_open::DEFAULT_TLS_PORT;
    }
    Ok(Some(args))
}

impl Connection {
    fn options<'a>(&'a self, default_id: &'a str) -> ConnectOptions<'a> {
        let mut opts = ConnectOptions::new(self.client_id.as_deref().unwrap_or(default_id))
            .keep_alive_secs(self.keep_alive)
            .clean_session(self.clean_session)
            .protocol(self.protocol);
        opts.username = self.username.as_deref();
        opts.password = self.password.as_deref().map(str::as_bytes);
        if let Some(topic) = &self.will_topic {
            opts = opts.will(topic, self.will_payload.as_bytes(), self.will_qos, self.will_retain);
        }
        opts
    }
}

/// Bytes a command passes from the handles to the runner: the longest
/// topic plus `-m` message `pub` sends (or filter `sub` subscribes to).
const COMMAND_BYTES: usize = 256 * 1024;

/// Bytes of the remembered subscriptions (3 plus the filter's length
/// each), sent again when the broker did not keep the session.
const SUBSCRIPTION_BYTES: usize = 16 * 1024;

/// What the runner and its handles share. Received messages are printed
/// by the runner's hooks, so the mailbox is empty.
type CliState = State<CriticalSectionRawMutex, COMMAND_BYTES, 0, SUBSCRIPTION_BYTES>;

/// Reconnect delays: 1 s doubling to 30 s, less up to 25 % at random; a
/// connection up for 30 s starts again at 1 s.
const BACKOFF: Backoff = Backoff {
    min: umqtt::Duration::from_secs(1),
    max: umqtt::Duration::from_secs(30),
    factor: 2,
    jitter_percent: 25,
    stable_after: umqtt::Duration::from_secs(30),
};

/// What the runner's hooks and the command share about the link.
struct Link {
    /// The connector's last failure, described.
    connector_failure: LastFailure,
    /// Until when a failing first connection is retried (`--connect-retry`).
    retry_until: Option<std::time::Instant>,
    /// The broker accepted a connection once: from then on every loss is
    /// re-established.
    connected: Cell<bool>,
    /// Why the first connection failed, once given up.
    failure: RefCell<Option<String>>,
    /// Notified when `failure` is set.
    failed: Notify,
    /// Why the last connection ended, told with the next attempt's delay.
    lost: RefCell<Option<String>>,
}

impl Link {
    fn new(connector_failure: LastFailure, retry: Option<Duration>) -> Self {
        Self {
            connector_failure,
            retry_until: retry.map(|d| std::time::Instant::now() + d),
            connected: Cell::new(false),
            failure: RefCell::new(None),
            failed: Notify::new(),
            lost: RefCell::new(None),
        }
    }
}

/// A message as `sub` prints it later.
type Held = (String, Vec<u8>);

/// What `sub` prints, from the runner's hooks.
struct Printer {
    verbose: bool,
    limit: u64,
    printed: Cell<u64>,
    /// Messages that arrived before every filter was subscribed (each
    /// filter is its own SUBSCRIBE), printed after: the first line `sub`
    /// prints means it is subscribed to all, as with mosquitto_sub.
    held: RefCell<Option<Vec<Held>>>,
    stdout_closed: Cell<bool>,
    /// Notified when `limit` is reached or stdout closed.
    done: Notify,
}

impl Printer {
    fn new(args: &Args) -> Self {
        Self {
            verbose: args.verbose,
            limit: args.count.unwrap_or(u64::MAX),
            printed: Cell::new(0),
            held: RefCell::new(Some(Vec::new())),
            stdout_closed: Cell::new(false),
            done: Notify::new(),
        }
    }

    /// Whether `sub` is done: COUNT printed, or stdout closed.
    fn finished(&self) -> bool {
        self.printed.get() >= self.limit || self.stdout_closed.get()
    }

    /// Prints (or holds) a received message; those after COUNT are dropped.
    fn receive(&self, topic: &str, payload: &[u8]) {
        if let Some(held) = self.held.borrow_mut().as_mut() {
            held.push((topic.to_owned(), payload.to_vec()));
            return;
        }
        if self.finished() {
            return;
        }
        self.printed.set(self.printed.get() + 1);
        let mut out = std::io::stdout().lock();
        let topic = if self.verbose { write!(out, "{topic} ") } else { Ok(()) };
        let written = topic.and_then(|()| out.write_all(payload));
        if written.and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()).is_err() {
            self.stdout_closed.set(true);
        }
        if self.finished() {
            self.done.notify_one();
        }
    }

    /// Every filter is subscribed: prints what was held.
    fn release(&self) {
        let held = self.held.borrow_mut().take();
        for (topic, payload) in held.into_iter().flatten() {
            self.receive(&topic, &payload);
        }
    }
}

/// The runner's hooks: the link's events, and `sub`'s messages.
struct CliHooks<'a> {
    link: &'a Link,
    printer: Option<&'a Printer>,
}

impl Hooks for CliHooks<'_> {
    fn on_event(&mut self, event: &Event) {
        let link = self.link;
        match *event {
            Event::Connected { .. } => link.connected.set(true),
            Event::Disconnected { reason: DisconnectReason::Requested } => {}
            Event::Disconnected { reason } => {
                let up = link.connected.get();
                let what = describe(reason, link.connector_failure.take(), up);
                let retry = up || link.retry_until.is_some_and(|t| std::time::Instant::now() < t);
                if retry {
                    *link.lost.borrow_mut() = Some(what);
                } else if link.failure.borrow().is_none() {
                    *link.failure.borrow_mut() = Some(what);
                    link.failed.notify_one();
                }
            }
            Event::ReconnectAttempt { delay } => {
                if let Some(what) = link.lost.take() {
                    eprintln!("warning: {what}; reconnecting in {} ms", delay.as_millis());
                }
            }
            _ => {}
        }
    }

    fn on_message(&mut self, message: &Publish<'_>) -> bool {
        if let Some(printer) = self.printer {
            printer.receive(message.topic, message.payload);
        }
        true
    }
}

/// One line on why a connection (or an attempt) ended; `up`: a
/// connection was accepted before.
fn describe(reason: DisconnectReason, connector: Option<String>, up: bool) -> String {
    match reason {
        DisconnectReason::ConnectFailed => connector.unwrap_or_else(|| reason.to_string()),
        DisconnectReason::Refused(code) => format!("connect: connection refused: {code}"),
        _ if up => format!("connection lost: {reason}"),
        _ => format!("connect: {reason}"),
    }
}

/// A random `u32` for the backoff's jitter (0 if the OS has none).
fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_ne_bytes(bytes)
}

/// Bytes CONNECT takes at most with these options (and a default id).
fn connect_bound(c: &Connection) -> usize {
    let strings = [&c.client_id, &c.username, &c.password, &c.will_topic];
    let lengths: usize = strings.iter().map(|s| s.as_ref().map_or(0, String::len) + 2).sum();
    64 + lengths + c.will_payload.len() + 2
}

/// Runs `sub` or `pub` through the always-connected client: the
/// runner, and the command as a task using its handle, in one `select`.
async fn always_connected<K: Connector>(
    connector: K,
    args: &Args,
    link: &Link,
) -> Result<(), String> {
    let c = &args.connection;
    let sub = args.command == Command::Sub;
    let default_id = format!("umqtt-{}-{}", if sub { "sub" } else { "pub" }, std::process::id());
    let longest = args.topics.iter().map(String::len).max().unwrap_or(0);
    let message = args.message.as_deref().map_or(0, str::len);
    // rx: the largest message `sub` takes; tx: what is written at once
    // (a burst of acknowledgments, the stored PUBLISH with the next
    // CONNECT behind it).
    let (rx_len, tx_len) = match sub {
        true => (256 * 1024, 4096 + longest + connect_bound(c)),
        false => (4096, longest + message + 64 + connect_bound(c)),
    };
    let (mut rx, mut tx) = (vec![0u8; rx_len], vec![0u8; tx_len]);
    // Ids of QoS 2 messages delivered and awaiting PUBREL: one per message
    // the broker may have in flight to us (Mosquitto's default is 20).
    let mut slots = vec![0u16; 64];
    let state: Box<CliState> = Box::new(State::new());
    let printer = sub.then(|| Printer::new(args));
    let hooks = CliHooks { link, printer: printer.as_ref() };
    let config = Config { backoff: BACKOFF, ..Config::default() };
    let opts = c.options(&default_id);
    let (runner, client) = Runner::new(connector, &*state, &mut rx, &mut tx, opts, config);
    let mut runner = runner.with_rng(random_u32).with_hooks(hooks);
    if sub && args.qos == QoS::ExactlyOnce {
        runner.receive_qos2(&mut slots);
    }
    let failed = async {
        link.failed.notified().await;
        Err(link.failure.take().unwrap_or_default())
    };
    let work = async {
        let job = async {
            match &printer {
                Some(printer) => subscribe_and_print(client, args, printer).await,
                None => publish_each(client, args).await,
            }
        };
        let (Either::First(result) | Either::Second(result)) = select(job, failed).await;
        if result.is_ok() {
            // DISCONNECT, once every message is acknowledged.
            client.close().await;
        }
        result
    };
    match select(runner.run(), work).await {
        // Only after `close`, which the command calls once done.
        Either::First(Stop::Closed) => Ok(()),
        Either::First(Stop::Refused(code)) => Err(format!("connect: connection refused: {code}")),
        Either::First(stop) => Err(format!("the always-connected client stopped: {stop:?}")),
        Either::Second(result) => result,
    }
}

/// `sub`: subscribes to every filter (remembered: sent again after a
/// reconnect without session), then prints until COUNT.
async fn subscribe_and_print(
    client: robust::Client<'_>,
    args: &Args,
    printer: &Printer,
) -> Result<(), String> {
    for filter in &args.topics {
        match client.subscribe(filter, args.qos).await {
            // Lost before its SUBACK: sent again after the reconnect.
            Ok(()) | Err(robust::Error::ConnectionLost) => {}
            Err(robust::Error::SubscribeRefused) => {
                return Err(format!("subscription to {filter:?} refused by the broker"));
            }
            Err(e) => return Err(format!("subscribe: {e}")),
        }
    }
    printer.release();
    while !printer.finished() {
        printer.done.notified().await;
    }
    match printer.stdout_closed.get() {
        true => Err("cannot write to standard output".into()),
        false => Ok(()),
    }
}

/// `pub`: publishes MSG REPEAT times, INTERVAL apart, each acknowledged
/// (QoS 1, 2) or written (QoS 0) before the next, across reconnects.
async fn publish_each(client: robust::Client<'_>, args: &Args) -> Result<(), String> {
    let (topic, message) = (&args.topics[0], args.message.as_deref().unwrap_or_default());
    for n in 0..args.repeat {
        if n > 0 {
            // The runner answers keepalive meanwhile.
            tokio::time::sleep(args.interval).await;
        }
        let payload = message.replace("{n}", &n.to_string());
        client
            .publish(topic, payload.as_bytes(), args.qos, args.retain)
            .await
            .map_err(|e| format!("publish: {e}"))?;
    }
    Ok(())
}

/// Describes a client error with what was being done.
fn context<E: std::fmt::Debug>(what: &str) -> impl FnOnce(Error<E>) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// `pub --store FILE`: one connection (no reconnect) through the plain
/// client, whose session survives a kill in FILE.
async fn publish_stored<K: Connector>(
    mut connector: K,
    args: &Args,
    path: &std::path::Path,
    last: &LastFailure,
) -> Result<(), String> {
    let transport = connector.connect().await.map_err(|_| last.take().unwrap_or_default())?;
    let (topic, message) = (&args.topics[0], args.message.as_deref().unwrap_or_default());
    let packet_len = topic.len() + message.len() + 64;
    let (mut rx, mut tx) = (vec![0u8; 4096], vec![0u8; packet_len]);
    let client = Client::new(transport, &mut rx, &mut tx, |_: &Publish<'_>| {});
    let flash =
        FileFlash::open(path, STORE_BYTES).map_err(|e| format!("store {}: {e}", path.display()))?;
    let mut record = vec![0u8; packet_len + 16];
    let mut store = FlashStore::new(flash, 0..STORE_BYTES as u32, &mut record)
        .map_err(|e| format!("store: {e}"))?;
    let progress = path.with_extension("progress");
    let next = std::fs::read_to_string(&progress).ok().and_then(|t| t.trim().parse().ok());
    publish_all(client.with_store(&mut store), args, next.unwrap_or(0), &progress).await
}

/// Size of the `--store` file: 16 flash pages of 4 KiB.
const STORE_BYTES: usize = 64 * 1024;

/// Publishes messages `first..REPEAT` (and resends what the store held),
/// recording the next number in `progress` after each.
async fn publish_all<T, S>(
    mut client: Client<'_, T, impl FnMut(&Publish<'_>), S>,
    args: &Args,
    first: u64,
    progress: &std::path::Path,
) -> Result<(), String>
where
    T: Read + Write,
    T::Error: std::fmt::Debug,
    S: Store,
{
    let (topic, message) = (&args.topics[0], args.message.as_deref().unwrap_or_default());
    let default_id = format!("umqtt-pub-{}", std::process::id());
    client.connect(&args.connection.options(&default_id)).await.map_err(context("connect"))?;
    // A message stored but not yet counted in `progress` (killed in
    // between) is resent from the store: not published again.
    let (prefix, suffix) = message.split_once("{n}").unwrap_or((message, ""));
    let stored = client
        .stored_publishes()
        .filter_map(|p| {
            std::str::from_utf8(p.payload)
                .ok()?
                .strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse::<u64>()
                .ok()
        })
        .max();
    let first = first.max(stored.map_or(0, |n| n + 1));
    for n in first..args.repeat {
        if n > first {
            // Wait out the interval while answering keepalive.
            if let Ok(Err(e)) = tokio::time::timeout(args.interval, client.wait_msg()).await {
                return Err(format!("receive: {e}"));
            }
        }
        let payload = message.replace("{n}", &n.to_string());
        if args.qos == QoS::AtMostOnce {
            let sent = client.publish(topic, payload.as_bytes(), args.qos, args.retain).await;
            sent.map_err(|e| context("publish")(e.error))?;
            continue;
        }
        // Stored (and written) once this returns; counted in `progress`
        // before anything else happens, so that a kill leaves message n
        // either counted or stored as a PUBLISH (a QoS 2 message turns into
        // its PUBREL, which has no payload, only in a later call).
        let sent = client.publish_no_wait(topic, payload.as_bytes(), args.qos, args.retain).await;
        let id = sent.map_err(|e| context("publish")(e.error))?;
        // Written whole or not at all (rename), so a kill leaves it readable.
        let tmp = progress.with_extension("progress.tmp");
        std::fs::write(&tmp, (n + 1).to_string())
            .and_then(|()| std::fs::rename(&tmp, progress))
            .map_err(|e| format!("{}: {e}", progress.display()))?;
        client.wait_acked(id).await.map_err(context("publish"))?;
    }
    client.wait_all_acked().await.map_err(context("wait for acknowledgments"))?;
    client.disconnect().await.map_err(context("disconnect"))
}

/// Runs the command through TCP, TLS with the TLS flags.
async fn run(args: &Args) -> Result<(), String> {
    let c = &args.connection;
    let tcp = TokioConnector::new(c.host.as_str(), c.port);
    #[cfg(feature = "tls")]
    if c.tls.wanted() {
        let material = tls_open::Material::load(&c.tls, &c.host)?;
        let options = material.options()?;
        let (mut read, mut write) = tls_open::buffers();
        let tls =
            umqtt::tls::TlsConnector::new(tcp, options, &mut read, &mut write, tls_open::OsRng);
        return over_ws(tls, args).await;
    }
    over_ws(tcp, args).await
}

/// Runs the command over `connector`, through a WebSocket with `--ws`.
async fn over_ws<K: Connector>(connector: K, args: &Args) -> Result<(), String>
where
    K::Error: Describe,
{
    #[cfg(feature = "ws")]
    if let Some(path) = &args.connection.ws_path {
        let c = &args.connection;
        let host = format!("{}:{}", c.host, c.port);
        let ws = cli_connect::WsConnector::new(connector, host, path.clone());
        return command(ws, args).await;
    }
    command(connector, args).await
}

/// Runs the command over `connector`: always connected, except `pub
/// --store`.
async fn command<K: Connector>(connector: K, args: &Args) -> Result<(), String>
where
    K::Error: Describe,
{
    let c = &args.connection;
    let last = LastFailure::default();
    let connector = Reporting::new(connector, format!("{}:{}", c.host, c.port), last.clone());
    match &args.store {
        Some(path) => publish_stored(connector, args, path, &last).await,
        None => always_connected(connector, args, &Link::new(last, args.connect_retry)).await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let result = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => run(&args).await,
        Ok(None) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            Ok(())
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
