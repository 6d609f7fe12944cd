//! The seed scenario on a host: subscribe to a topic, publish `{"msg": n}`
//! to it every second, print every message received, disconnect cleanly.
//!
//! ```text
//! cargo run --example demo                      # in-process broker on loopback
//! cargo run --example demo -- --host 127.0.0.1 --port 1883 --rounds 10
//! ```
//!
//! Options: `--host H`, `--port P` (default 1883 with `--host`), `--rounds N`
//! (default 5), `--topic T` (default `umqtt/demo`), `--id CLIENT_ID`.
//!
//! TLS variant (build with `--features tls`; needs `--host`, port default 8883):
//! `--tls --cafile CA.pem [--cert C.pem --key K.pem] [--tls-server-name NAME]`,
//! or `--tls --insecure` for a test broker (no certificate verification).
//! Without `--host` it starts the in-process broker of `common/broker.rs`
//! on an ephemeral loopback port, so it runs on a machine without a broker.

mod common;
mod tls_open;

use std::process::ExitCode;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{Read, Write};
use umqtt::{Client, ConnectOptions, Publish, QoS};

struct Args {
    host: Option<String>,
    port: u16,
    port_given: bool,
    tls: tls_open::TlsArgs,
    rounds: u32,
    topic: String,
    client_id: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: None,
        port: 1883,
        port_given: false,
        tls: tls_open::TlsArgs::default(),
        rounds: 5,
        topic: "umqtt/demo".into(),
        client_id: format!("umqtt-demo-{}", std::process::id()),
    };
    let mut it = std::env::args().skip(1);
    let mut use_tls = false;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = Some(value()?),
            "--port" => {
                args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?;
                args.port_given = true;
            }
            "--tls" => use_tls = true,
            f if args.tls.parse_flag(f, &mut value)? => {}
            "--rounds" => args.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--topic" => args.topic = value()?,
            "--id" => args.client_id = value()?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    args.tls.validate()?;
    if use_tls != args.tls.wanted() {
        return Err("--tls needs --cafile FILE (or --insecure), and they need --tls".into());
    }
    if use_tls && args.host.is_none() {
        return Err("--tls needs --host (the in-process broker is plaintext)".into());
    }
    if use_tls && !args.port_given {
        args.port = tls_open::DEFAULT_TLS_PORT;
    }
    Ok(args)
}

/// A plain TCP transport to `host:port`.
async fn open_transport(host: &str, port: u16) -> Result<FromTokio<tokio::net::TcpStream>, String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(FromTokio::new(stream))
}

/// Runs the scenario over `transport`, whatever it is (TCP, TLS).
async fn run<T>(transport: T, args: &Args) -> Result<(), String>
where
    T: Read + Write,
    T::Error: std::fmt::Debug,
{
    let mut rx = [0u8; 1024];
    let mut tx = [0u8; 1024];
    let mut client = Client::new(transport, &mut rx, &mut tx, |m: &Publish<'_>| {
        println!("received {}: {}", m.topic, String::from_utf8_lossy(m.payload));
    });
    let opts = ConnectOptions::new(&args.client_id).keep_alive_secs(30);
    client.connect(&opts).await.map_err(|e| format!("connect: {e}"))?;
    let granted = client
        .subscribe(&args.topic, QoS::AtLeastOnce)
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    println!("subscribed to {} (granted {granted:?})", args.topic);

    let mut next_round = tokio::time::Instant::now();
    for n in 1..=args.rounds {
        let payload = format!("{{\"msg\": {n}}}");
        client
            .publish(&args.topic, payload.as_bytes(), QoS::AtLeastOnce, false)
            .await
            .map_err(|e| format!("publish: {e}"))?;
        println!("published {payload}");
        // Receive until the next round is due (after the last one, for a
        // second more). wait_msg sends PINGREQ when keepalive requires it
        // and is cancel-safe, so dropping it in select loses nothing.
        next_round += Duration::from_secs(1);
        loop {
            tokio::select! {
                received = client.wait_msg() => received.map_err(|e| format!("receive: {e}"))?,
                () = tokio::time::sleep_until(next_round) => break,
            }
        }
    }
    client.disconnect().await.map_err(|e| format!("disconnect: {e}"))?;
    println!("disconnected");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let result = async {
        let args = parse_args()?;
        let _broker;
        let (host, port) = match &args.host {
            Some(host) => (host.clone(), args.port),
            None => {
                let broker = common::broker::Broker::start().map_err(|e| format!("broker: {e}"))?;
                println!("in-process broker on 127.0.0.1:{}", broker.port());
                let port = broker.port();
                _broker = broker;
                ("127.0.0.1".to_owned(), port)
            }
        };
        let transport = open_transport(&host, port).await?;
        #[cfg(feature = "tls")]
        if args.tls.wanted() {
            let material = tls_open::Material::load(&args.tls, &host)?;
            let options = material.options()?;
            let (mut read, mut write) = tls_open::buffers();
            let stream =
                umqtt::tls::connect(transport, &mut read, &mut write, &options, tls_open::OsRng)
                    .await
                    .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
            println!("TLS 1.3 to {host}:{port} ({})", options.server_name());
            return run(stream, &args).await;
        }
        run(transport, &args).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
