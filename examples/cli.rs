//! A small command-line MQTT 3.1.1 client modelled on `mosquitto_sub` and
//! `mosquitto_pub`.
//!
//! ```text
//! cli sub -h HOST -p PORT -t FILTER [-t FILTER...] [-q 0|1|2] [-C COUNT] [-i ID]
//!         [-k KEEPALIVE] [-c] [-u USER -P PASS] [-v] [-V 31|311]
//!         [--will-topic T --will-payload P --will-qos Q --will-retain]
//! cli pub -h HOST -p PORT -t TOPIC -m MSG [-q 0|1|2] [-r] [-i ID] [-k KEEPALIVE]
//!         [-u USER -P PASS] [-V 31|311] [--repeat N] [--interval-ms MS]
//!         [-c --store FILE]
//! ```
//!
//! `sub` prints each payload on its own line (with `-v`: topic, a space,
//! payload) and exits 0 after COUNT messages; `-c` asks for a persistent
//! session (clean session false, needs `-i`). `pub` publishes MSG, REPEAT
//! times (default 1) INTERVAL_MS apart, then disconnects. Any error prints
//! one line `error: ...` on stderr and exits 1.
//!
//! `-q 2` is QoS 2: `pub` returns once the PUBCOMP arrived; `sub` subscribes
//! at QoS 2 and receives exactly once (`Client::receive_qos2`). The ids of
//! QoS 2 messages awaiting PUBREL live in the process, so with `-c` a
//! message the broker redelivers after `sub` was restarted may print twice.
//!
//! `pub -c -i ID --store FILE` keeps the session in FILE (a 64 KiB
//! file-backed flash, `umqtt::store::FlashStore`): a publisher killed and
//! started again with the same arguments resends what was not
//! acknowledged (DUP=1, same packet ids) and goes on. `{n}` in MSG is the
//! message's number, 0..REPEAT; the next number to publish is kept in
//! FILE.progress, and numbers still in the stored session are not
//! published again.
//!
//! `--ws PATH` (build with `--features ws`) speaks MQTT over a WebSocket
//! opened on PATH (`ws://`; with the TLS flags, `wss://`).

mod tls_open;

use std::cell::Cell;
use std::io::Write as _;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{Read, Write};
use umqtt::store::{FileFlash, FlashStore, Store};
use umqtt::{
    Client, ConnectOptions, Error, ProtocolLevel, Publish, QoS, SubscribeReturnCode, SubscribeTopic,
};

const USAGE: &str = "usage:
  cli sub -h HOST -p PORT -t FILTER [-t FILTER...] [-q 0|1|2] [-C COUNT] [-i ID] [-k KEEPALIVE]
          [-c] [-u USER -P PASS] [-v] [-V 31|311]
          [--will-topic T --will-payload P --will-qos Q --will-retain]
  cli pub -h HOST -p PORT -t TOPIC -m MSG [-q 0|1|2] [-r] [-i ID] [-k KEEPALIVE]
          [-u USER -P PASS] [-V 31|311] [--repeat N] [--interval-ms MS]
          [-c --store FILE]   (session in FILE, survives a kill; {n} in MSG: its number)
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

/// Opens the transport to the broker: plain TCP.
async fn open_transport(c: &Connection) -> Result<FromTokio<tokio::net::TcpStream>, String> {
    let stream = tokio::net::TcpStream::connect((c.host.as_str(), c.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", c.host, c.port))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(FromTokio::new(stream))
}

/// Describes a client error with what was being done.
fn context<E: std::fmt::Debug>(what: &str) -> impl FnOnce(Error<E>) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Runs `sub` over any transport.
async fn subscribe<T>(transport: T, args: &Args) -> Result<(), String>
where
    T: Read + Write,
    T::Error: std::fmt::Debug,
{
    let (mut rx, mut tx) = (vec![0u8; 256 * 1024], vec![0u8; 4096]);
    let received = Rc::new(Cell::new(0u64));
    let stdout_closed = Rc::new(Cell::new(false));
    let (seen, closed) = (received.clone(), stdout_closed.clone());
    let (limit, verbose) = (args.count.unwrap_or(u64::MAX), args.verbose);
    // Ids of QoS 2 messages delivered and awaiting PUBREL: one per message
    // the broker may have in flight to us (Mosquitto's default is 20).
    let mut slots = vec![0u16; 64];
    let client = Client::new(transport, &mut rx, &mut tx, move |m: &Publish<'_>| {
        if seen.get() >= limit {
            return;
        }
        seen.set(seen.get() + 1);
        let mut out = std::io::stdout().lock();
        let topic = if verbose { write!(out, "{} ", m.topic) } else { Ok(()) };
        let written = topic.and_then(|()| out.write_all(m.payload));
        if written.and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()).is_err() {
            closed.set(true);
        }
    });
    let mut client =
        if args.qos == QoS::ExactlyOnce { client.receive_qos2(&mut slots) } else { client };
    let default_id = format!("umqtt-sub-{}", std::process::id());
    client.connect(&args.connection.options(&default_id)).await.map_err(context("connect"))?;
    let topics: Vec<_> =
        args.topics.iter().map(|filter| SubscribeTopic { filter, qos: args.qos }).collect();
    let codes = client.subscribe_many(&topics).await.map_err(context("subscribe"))?;
    for (topic, code) in args.topics.iter().zip(&codes) {
        if *code == SubscribeReturnCode::Failure {
            return Err(format!("subscription to {topic:?} refused by the broker"));
        }
    }
    while received.get() < limit {
        if stdout_closed.get() {
            return Err("cannot write to standard output".into());
        }
        match client.wait_msg().await {
            Ok(()) => {}
            Err(Error::PacketTooLarge(o)) => {
                eprintln!("warning: skipped a {}-byte message (larger than the buffer)", o.size);
            }
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    client.disconnect().await.map_err(context("disconnect"))
}

/// Runs `pub` over any transport.
async fn publish<T>(transport: T, args: &Args) -> Result<(), String>
where
    T: Read + Write,
    T::Error: std::fmt::Debug,
{
    let (topic, message) = (&args.topics[0], args.message.as_deref().unwrap_or_default());
    let packet_len = topic.len() + message.len() + 64;
    let (mut rx, mut tx) = (vec![0u8; 4096], vec![0u8; packet_len]);
    let client = Client::new(transport, &mut rx, &mut tx, |_: &Publish<'_>| {});
    let Some(path) = &args.store else {
        return publish_all(client, args, 0, None).await;
    };
    let flash =
        FileFlash::open(path, STORE_BYTES).map_err(|e| format!("store {}: {e}", path.display()))?;
    let mut record = vec![0u8; packet_len + 16];
    let mut store = FlashStore::new(flash, 0..STORE_BYTES as u32, &mut record)
        .map_err(|e| format!("store: {e}"))?;
    let progress = path.with_extension("progress");
    let next = std::fs::read_to_string(&progress).ok().and_then(|t| t.trim().parse().ok());
    publish_all(client.with_store(&mut store), args, next.unwrap_or(0), Some(&progress)).await
}

/// Size of the `--store` file: 16 flash pages of 4 KiB.
const STORE_BYTES: usize = 64 * 1024;

/// Publishes messages `first..REPEAT` (and with a store, resends what it
/// held), recording the next number in `progress` after each.
async fn publish_all<T, S>(
    mut client: Client<'_, T, impl FnMut(&Publish<'_>), S>,
    args: &Args,
    first: u64,
    progress: Option<&std::path::Path>,
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
        if let Some(path) = progress {
            // Written whole or not at all (rename), so a kill leaves it readable.
            let tmp = path.with_extension("progress.tmp");
            std::fs::write(&tmp, (n + 1).to_string())
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        client.wait_acked(id).await.map_err(context("publish"))?;
    }
    client.wait_all_acked().await.map_err(context("wait for acknowledgments"))?;
    client.disconnect().await.map_err(context("disconnect"))
}

async fn run(args: &Args) -> Result<(), String> {
    let transport = open_transport(&args.connection).await?;
    #[cfg(feature = "tls")]
    if args.connection.tls.wanted() {
        let c = &args.connection;
        let material = tls_open::Material::load(&c.tls, &c.host)?;
        let options = material.options()?;
        let (mut read, mut write) = tls_open::buffers();
        let stream =
            umqtt::tls::connect(transport, &mut read, &mut write, &options, tls_open::OsRng)
                .await
                .map_err(|e| format!("TLS with {}:{}: {e}", c.host, c.port))?;
        return over_ws(stream, args).await;
    }
    over_ws(transport, args).await
}

/// Runs the command over `transport`, through a WebSocket with `--ws`.
async fn over_ws<T>(transport: T, args: &Args) -> Result<(), String>
where
    T: Read + Write,
    T::Error: std::fmt::Debug,
{
    #[cfg(feature = "ws")]
    if let Some(path) = &args.connection.ws_path {
        use umqtt::ws::{self, FRAME_OVERHEAD, WsOptions};
        let c = &args.connection;
        let host = format!("{}:{}", c.host, c.port);
        let mut ws_tx = vec![0u8; 4096 + FRAME_OVERHEAD];
        let options = WsOptions::new(&host, path);
        let stream = ws::connect(transport, &mut ws_tx, &options, tls_open::OsRng)
            .await
            .map_err(|e| format!("WebSocket {host}{path}: {e}"))?;
        return command(stream, args).await;
    }
    command(transport, args).await
}

async fn command<T>(transport: T, args: &Args) -> Result<(), String>
where
    T: Read + Write,
    T::Error: std::fmt::Debug,
{
    match args.command {
        Command::Sub => subscribe(transport, args).await,
        Command::Pub => publish(transport, args).await,
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
