//! umqtt on an ESP32-C3, with esp-hal, esp-radio (Wi-Fi), esp-rtos
//! (embassy executor and time driver) and embassy-net.
//!
//! Joins Wi-Fi, gets an address over DHCP, resolves the broker, connects
//! with a client id and keepalive, subscribes to `umqtt/<client id>/cmd`,
//! publishes `{"msg": n}` to `umqtt/<client id>/data` every few seconds and
//! polls for incoming messages with `check_msg`. On any error it opens a new
//! TCP connection after an exponential backoff, calls `client.reconnect`, and
//! subscribes again when the broker did not keep the session.
//!
//! Settings come from environment variables at build time: see `config.rs`
//! and README.md.

#![no_std]
#![no_main]

mod config;

use core::fmt::Write as _;
use core::net::SocketAddr;

use defmt::{info, unwrap, warn};
use embassy_executor::Spawner;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::client::{TcpClient, TcpClientState, TcpConnection};
use embassy_net::{Stack, StackResources};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use embedded_nal_async::TcpConnect;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, Interface, WifiController,
};
use static_cell::StaticCell;
use umqtt::{Client, ConnectOptions, Publish, QoS};
use {esp_alloc as _, esp_backtrace as _, esp_println as _};

use crate::config::*;

// Application descriptor the ESP-IDF second-stage bootloader checks.
esp_bootloader_esp_idf::esp_app_desc!();

/// Two pooled TCP sockets: on reconnect the new connection is opened while
/// the client still owns the old one, which is freed when `reconnect`
/// replaces it.
const TCP_SOCKETS: usize = 2;
const TCP_BUFFER: usize = 2048;
type Connection<'d> = TcpConnection<'d, TCP_SOCKETS, TCP_BUFFER, TCP_BUFFER>;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Interface>) -> ! {
    runner.run().await
}

#[esp_rtos::main]
async fn main(spawner: Spawner) {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    info!("umqtt ESP32-C3 example, client id {}", MQTT_CLIENT_ID);

    // The Wi-Fi driver allocates; umqtt itself never does.
    esp_alloc::heap_allocator!(size: 72 * 1024);

    // esp-rtos: scheduler for the Wi-Fi driver, embassy executor and the
    // embassy-time driver.
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    let interface = Interface::station();
    let mut controller = unwrap!(WifiController::new(peripherals.WIFI, Default::default()));
    let authentication = if WIFI_PASSWORD.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(unwrap!(WIFI_PASSWORD.try_into()))
    };
    let station = StationConfig::default()
        .with_ssid(unwrap!(WIFI_SSID.try_into()))
        .with_authentication(authentication);
    unwrap!(controller.set_config(&WifiConfig::Station(station)));

    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        interface,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(unwrap!(net_task(runner)));

    // TCP connections come from a small pool so that each (re)connect gets a
    // fresh socket. A socket that hears nothing for 1.5 keepalives is dead.
    static TCP_STATE: StaticCell<TcpClientState<TCP_SOCKETS, TCP_BUFFER, TCP_BUFFER>> =
        StaticCell::new();
    let mut tcp = TcpClient::new(stack, TCP_STATE.init(TcpClientState::new()));
    tcp.set_timeout(Some(Duration::from_secs(KEEP_ALIVE_SECS as u64 * 3 / 2)));

    let mut data_topic: heapless::String<64> = heapless::String::new();
    let mut cmd_topic: heapless::String<64> = heapless::String::new();
    unwrap!(write!(data_topic, "umqtt/{}/data", MQTT_CLIENT_ID));
    unwrap!(write!(cmd_topic, "umqtt/{}/cmd", MQTT_CLIENT_ID));

    // clean_session(false): the broker keeps our subscription (and queues
    // QoS 1 messages) while we are away, so a reconnect that finds the
    // session present does not need to subscribe again.
    let opts = ConnectOptions::new(MQTT_CLIENT_ID)
        .keep_alive_secs(KEEP_ALIVE_SECS)
        .clean_session(false);

    let mut backoff = Backoff::new();
    let first = open_connection(&mut controller, stack, &tcp, &mut backoff).await;

    let mut mqtt_rx = [0u8; 1024];
    let mut mqtt_tx = [0u8; 1024];
    let mut client = Client::new(first, &mut mqtt_rx, &mut mqtt_tx, |msg: &Publish<'_>| {
        match core::str::from_utf8(msg.payload) {
            Ok(text) => info!("message on {}: {}", msg.topic, text),
            Err(_) => info!("message on {}: {} bytes", msg.topic, msg.payload.len()),
        }
    });

    let mut connected = client.connect(&opts).await;
    let mut counter: u32 = 0;
    loop {
        match connected {
            Ok(session_present) => {
                info!("MQTT connected (session present: {})", session_present);
                backoff.reset();
                // ---- the session: runs until the first error ----
                let error = 'session: {
                    if !session_present {
                        match client.subscribe(&cmd_topic, QoS::AtLeastOnce).await {
                            Ok(granted) => {
                                info!("subscribed to {} with {}", cmd_topic.as_str(), granted)
                            }
                            Err(e) => break 'session e,
                        }
                    }
                    let mut next_publish = Instant::now();
                    loop {
                        // Deliver everything that has arrived; returns at
                        // once when nothing is waiting.
                        loop {
                            match client.check_msg().await {
                                Ok(true) => continue,
                                Ok(false) => break,
                                Err(e) => break 'session e,
                            }
                        }
                        if Instant::now() >= next_publish {
                            counter = counter.wrapping_add(1);
                            let mut payload: heapless::String<32> = heapless::String::new();
                            unwrap!(write!(payload, "{{\"msg\": {}}}", counter));
                            match client
                                .publish(&data_topic, payload.as_bytes(), QoS::AtLeastOnce, false)
                                .await
                            {
                                Ok(()) => info!(
                                    "published {} to {}",
                                    payload.as_str(),
                                    data_topic.as_str()
                                ),
                                Err(e) => break 'session e,
                            }
                            next_publish += Duration::from_secs(PUBLISH_INTERVAL_SECS);
                        }
                        Timer::after_millis(100).await;
                    }
                };
                warn!("MQTT session ended: {}", error);
            }
            Err(e) => warn!("MQTT connect failed: {}", e),
        }

        backoff.wait().await;
        let socket = open_connection(&mut controller, stack, &tcp, &mut backoff).await;
        connected = client.reconnect(socket, &opts).await;
    }
}

/// Joins Wi-Fi if the link is down, waits for DHCP, resolves the broker and
/// opens a TCP connection, retrying with backoff until one is open.
async fn open_connection<'d>(
    controller: &mut WifiController<'_>,
    stack: Stack<'_>,
    tcp: &'d TcpClient<'_, TCP_SOCKETS, TCP_BUFFER, TCP_BUFFER>,
    backoff: &mut Backoff,
) -> Connection<'d> {
    loop {
        if !stack.is_link_up() {
            info!("joining Wi-Fi network {}", WIFI_SSID);
            if let Err(e) = controller.connect_async().await {
                warn!("Wi-Fi join failed: {}", e);
                backoff.wait().await;
                continue;
            }
        }
        if with_timeout(Duration::from_secs(20), stack.wait_config_up())
            .await
            .is_err()
        {
            warn!("no DHCP lease yet");
            backoff.wait().await;
            continue;
        }

        let address = match stack.dns_query(MQTT_HOST, DnsQueryType::A).await {
            Ok(addresses) => match addresses.first() {
                Some(address) => *address,
                None => {
                    warn!("DNS: no address for {}", MQTT_HOST);
                    backoff.wait().await;
                    continue;
                }
            },
            Err(e) => {
                warn!("DNS lookup of {} failed: {}", MQTT_HOST, e);
                backoff.wait().await;
                continue;
            }
        };

        let remote = SocketAddr::new(address.into(), MQTT_PORT);
        info!("connecting to {}:{}", address, MQTT_PORT);
        match with_timeout(Duration::from_secs(10), tcp.connect(remote)).await {
            Ok(Ok(connection)) => {
                // TLS: with the `tls` feature the connection would be wrapped
                // here; see the `tls` module below.
                return connection;
            }
            Ok(Err(e)) => warn!("TCP connect failed: {}", e),
            Err(_) => warn!("TCP connect timed out"),
        }
        backoff.wait().await;
    }
}

/// Exponential reconnect backoff: 1 s, 2 s, 4 s ... up to 64 s.
struct Backoff {
    delay_secs: u64,
}

impl Backoff {
    const fn new() -> Self {
        Self {
            delay_secs: BACKOFF_MIN_SECS,
        }
    }

    fn reset(&mut self) {
        self.delay_secs = BACKOFF_MIN_SECS;
    }

    async fn wait(&mut self) {
        info!("retrying in {} s", self.delay_secs);
        Timer::after_secs(self.delay_secs).await;
        self.delay_secs = (self.delay_secs * 2).min(BACKOFF_MAX_SECS);
    }
}

#[cfg(feature = "tls")]
mod tls {
    //! ==================== TLS (feature `tls`) ====================
    //! TODO(umqtt tls): wire in umqtt's `tls` module once it is written.
    //! The broker's CA certificate is embedded from `ca.pem`; the TCP
    //! connection opened in `open_connection` is to be wrapped in an
    //! `embedded_tls::TlsConnection` configured by umqtt's tls helpers
    //! (server name = MQTT_HOST for SNI and verification) and that TLS
    //! connection handed to `Client::new` / `client.reconnect`.
    //!
    //! Open point: `TlsConnection<'a, ..>` borrows its two record buffers
    //! for `'a`, and the client keeps one transport type for its whole
    //! life, so a second TlsConnection cannot borrow the same buffers for
    //! `reconnect`. It needs either a two-slot buffer pool that hands
    //! buffers back on drop (what embassy-net's `TcpClientState` does for
    //! the TCP buffers used here) or a client whose session state outlives
    //! the transport (e.g. rebuilt per connection from a saved session).

    /// PEM CA certificate that signs the broker's certificate.
    pub const CA_PEM: &str = include_str!("../ca.pem");

    // Remove once the TLS wrapping above is written: never fall back to
    // plain MQTT on the TLS port.
    compile_error!("the `tls` feature waits for umqtt's tls module (see the TODO above)");
}
