//! The umqtt.simple seed scenario with the blocking client, no executor:
//! connect, subscribe, publish `{"msg": n}` every second, `wait_msg` for
//! what arrives (printed), disconnect.
//!
//! ```text
//! cargo run --example blocking                  # in-process broker on loopback
//! cargo run --example blocking -- --host 127.0.0.1 --port 1883 --rounds 10
//! ```
//!
//! Options: `--host H`, `--port P` (default 1883), `--rounds N` (default
//! 5), `--topic T` (default `umqtt/blocking`). Without `--host` it starts
//! the in-process broker of `common/broker.rs` on an ephemeral port.

mod common;

use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use embedded_io_adapters::std::FromStd;
use umqtt::blocking::{Client, StdClock};
use umqtt::{ConnectOptions, Publish, QoS};

struct Args {
    host: Option<String>,
    port: u16,
    rounds: u32,
    topic: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { host: None, port: 1883, rounds: 5, topic: "umqtt/blocking".into() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = Some(value()?),
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--rounds" => args.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--topic" => args.topic = value()?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

fn run(host: &str, port: u16, args: &Args) -> Result<(), String> {
    let socket = TcpStream::connect((host, port)).map_err(|e| format!("{host}:{port}: {e}"))?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    let handler = |m: &Publish<'_>| {
        println!("received {}: {}", m.topic, String::from_utf8_lossy(m.payload));
    };
    let mut client = Client::new(FromStd::new(socket), &mut rx, &mut tx, handler, StdClock::new());
    let id = format!("umqtt-blocking-{}", std::process::id());
    client
        .connect(&ConnectOptions::new(&id).keep_alive_secs(30))
        .map_err(|e| format!("connect: {e}"))?;
    let granted =
        client.subscribe(&args.topic, QoS::AtLeastOnce).map_err(|e| format!("subscribe: {e}"))?;
    println!("subscribed to {} (granted {granted:?})", args.topic);
    for n in 1..=args.rounds {
        let payload = format!("{{\"msg\": {n}}}");
        client
            .publish(&args.topic, payload.as_bytes(), QoS::AtLeastOnce, false)
            .map_err(|e| format!("publish: {e}"))?;
        println!("published {payload}");
        // wait_msg blocks until a message (here our own, echoed by the
        // broker) is delivered, sending PINGREQ meanwhile if keepalive asks.
        let next_round = Instant::now() + Duration::from_secs(1);
        client.wait_msg().map_err(|e| format!("receive: {e}"))?;
        // check_msg never blocks: handle whatever else arrives meanwhile.
        while Instant::now() < next_round {
            if !client.check_msg().map_err(|e| format!("receive: {e}"))? {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    client.disconnect().map_err(|e| format!("disconnect: {e}"))?;
    println!("disconnected");
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| match &args.host {
        Some(host) => run(host, args.port, &args),
        None => {
            let broker = common::broker::Broker::start().map_err(|e| format!("broker: {e}"))?;
            println!("in-process broker on 127.0.0.1:{}", broker.port());
            run("127.0.0.1", broker.port(), &args)
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
