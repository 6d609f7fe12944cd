//! A minimal host program over tokio TCP: connect to a broker by host name,
//! subscribe, publish, print every message from a `wait_msg` loop, and
//! disconnect on Ctrl-C.
//!
//! ```text
//! cargo run --example host_tokio -- [HOST [PORT [COUNT]]]
//! ```
//!
//! HOST defaults to `localhost`, PORT to 1883. It subscribes to
//! `umqtt/host_tokio/#` and publishes COUNT messages (default 1) to
//! `umqtt/host_tokio/temp` at QoS 1, so it receives its own messages back.
//! Given COUNT, it disconnects after receiving COUNT messages; without it,
//! it runs until Ctrl-C. The `Cargo.toml` lines it needs are in the
//! README's "Host (tokio)" section.

use std::cell::Cell;
use std::pin::pin;

use embedded_io_adapters::tokio_1::FromTokio;
use tokio::net::TcpStream;
use umqtt::{Client, ConnectOptions, Duration, Publish, QoS};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port: u16 = args.next().map_or(Ok(1883), |p| p.parse())?;
    let count: Option<u32> = args.next().map(|n| n.parse()).transpose()?;

    // tokio resolves the host name; `FromTokio` makes the stream an
    // `embedded_io_async::Read + Write` transport.
    let socket = FromTokio::new(TcpStream::connect((host.as_str(), port)).await?);
    let received = Cell::new(0u32);
    let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    let mut client = Client::new(socket, &mut rx, &mut tx, |msg: &Publish<'_>| {
        println!("{}: {}", msg.topic, String::from_utf8_lossy(msg.payload));
        received.set(received.get() + 1);
    });

    let client_id = format!("umqtt-host-tokio-{}", std::process::id());
    let opts = ConnectOptions::new(&client_id)
        .keep_alive_secs(30)
        .ack_timeout(Duration::from_secs(10))
        // true: a new session each run; this program never reconnects, so
        // no unacknowledged message is left for a later session to resend.
        .clean_session(true);
    client.connect(&opts).await?;
    client.subscribe("umqtt/host_tokio/#", QoS::AtLeastOnce).await?;
    for n in 1..=count.unwrap_or(1) {
        let payload = format!("{{\"msg\": {n}}}");
        client
            .publish("umqtt/host_tokio/temp", payload.as_bytes(), QoS::AtLeastOnce, false)
            .await?;
    }

    // Dropping `wait_msg` when Ctrl-C wins loses nothing: every call is
    // cancel-safe over tokio's TCP stream.
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    while count.is_none_or(|count| received.get() < count) {
        tokio::select! {
            result = client.wait_msg() => result?,
            signal = &mut ctrl_c => {
                signal?;
                break;
            }
        }
    }
    client.disconnect().await?;
    Ok(())
}
