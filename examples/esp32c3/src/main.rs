//! umqtt on an ESP32-C3, with esp-hal, esp-radio (Wi-Fi), esp-rtos
//! (embassy executor and time driver) and embassy-net.
//!
//! Joins Wi-Fi, gets an address over DHCP, resolves the broker, connects
//! with a client id and keepalive, subscribes to `umqtt/<client id>/cmd`,
//! publishes `{"msg": n}` to `umqtt/<client id>/data` every few seconds and
//! polls for incoming messages with `check_msg`. On any error it opens a new
//! TCP connection after an exponential backoff and continues the MQTT
//! session on it with a new `Client` (`into_session` / `with_session`), which
//! resends the QoS 1 publishes still awaiting PUBACK, and subscribes again
//! when the broker did not keep the session.
//!
//! With the `tls` feature each TCP connection is wrapped in umqtt's TLS 1.3
//! stream (module `tls` below), verifying the broker against `ca.pem`.
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
use umqtt::{Client, ConnectOptions, Publish, QoS, Session};
use {esp_alloc as _, esp_backtrace as _, esp_println as _};

use crate::config::*;

// Application descriptor the ESP-IDF second-stage bootloader checks.
esp_bootloader_esp_idf::esp_app_desc!();

/// Two pooled TCP sockets: a connection's socket returns to the pool when
/// the connection (or the TLS stream over it) is dropped; the second one
/// covers a socket the stack has not finished closing yet.
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

    // The hardware RNG is a true RNG while the radio runs (esp-radio
    // registers Wi-Fi as its entropy source in `WifiController::new`).
    #[cfg(feature = "tls")]
    let mut tls = tls::Tls::new(unwrap!(esp_hal::rng::Trng::try_new()));

    let mut backoff = Backoff::new();
    let mut mqtt_rx = [0u8; 1024];
    let mut mqtt_tx = [0u8; 1024];
    // What outlives a connection: the packet identifiers and the QoS 1
    // publishes awaiting PUBACK (kept encoded in `mqtt_tx`). Each connection
    // gets a new `Client` that continues it, because a TLS stream borrows
    // its record buffers for its whole life and so cannot be swapped into a
    // running client; the plain build does the same, to keep one code path.
    let mut session = Session::default();
    #[cfg(feature = "store")]
    let mut store_buf = [0u8; 1024 + 16];
    #[cfg(feature = "store")]
    let mut store = store::open(peripherals.FLASH, &mut store_buf);
    let mut counter: u32 = 0;
    loop {
        let socket = open_connection(&mut controller, stack, &tcp, &mut backoff).await;
        #[cfg(feature = "tls")]
        let Some(socket) = tls.open(socket).await else {
            backoff.wait().await;
            continue;
        };
        let client =
            Client::with_session(socket, &mut mqtt_rx, &mut mqtt_tx, on_message, session);
        // The first connect loads what the flash holds.
        #[cfg(feature = "store")]
        let client = client.with_store(&mut store);
        let mut client = client;

        // With clean_session false, connect resends the QoS 1 publishes the
        // previous connection left unacknowledged, with DUP set.
        match client.connect(&opts).await {
            Ok(connected) => {
                let session_present = connected.session_present;
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
                                Err(e) => break 'session e.error,
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

        // Drops the connection (its socket goes back to the pool) and keeps
        // the session for the next one.
        session = client.into_session();
        backoff.wait().await;
    }
}

/// Logs a received message.
fn on_message(msg: &Publish<'_>) {
    match core::str::from_utf8(msg.payload) {
        Ok(text) => info!("message on {}: {}", msg.topic, text),
        Err(_) => info!("message on {}: {} bytes", msg.topic, msg.payload.len()),
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
            // With the `tls` feature the caller wraps it in TLS (`tls::Tls::open`).
            Ok(Ok(connection)) => return connection,
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

/// The session store in the last 64 KiB of the 4 MiB flash (feature
/// `store`): outside the default partition table's app and data
/// partitions (which end at 0x110000 for a 1 MiB factory app).
#[cfg(feature = "store")]
mod store {
    use esp_hal::peripherals::FLASH;
    use esp_storage::FlashStorage;
    use umqtt::store::{BlockingFlash, FlashStore};

    const PARTITION: core::ops::Range<u32> = 0x3F_0000..0x40_0000;

    /// The store over the flash, with `buf` for one record (the largest
    /// PUBLISH plus 16 bytes).
    pub fn open<'b>(
        flash: FLASH<'static>,
        buf: &'b mut [u8],
    ) -> FlashStore<'b, BlockingFlash<FlashStorage<'static>>> {
        let flash = BlockingFlash(FlashStorage::new(flash));
        defmt::unwrap!(FlashStore::new(flash, PARTITION, buf))
    }
}

#[cfg(feature = "tls")]
mod tls {
    //! ==================== TLS (feature `tls`) ====================
    //! Wraps each TCP connection in umqtt's TLS 1.3 stream: the broker must
    //! present a certificate chain issued by the CA in `ca.pem` for the name
    //! `MQTT_HOST` (also sent as SNI), with an ECDSA P-256 or P-384 key.
    //!
    //! RAM: the record buffers are statics (`.bss`): [`READ_RECORD`]
    //! (8 709 bytes with a 4 KiB max fragment length) + [`WRITE_RECORD`]
    //! (1 152 bytes) + the CA in DER ([`CA_DER_CAPACITY`], 2 048 bytes).
    //! A stream borrows its record buffers for its whole life; each
    //! connection builds a new stream on the same buffers once the previous
    //! one is dropped (see the loop in `main`).
    //!
    //! Randomness (ECDHE key, ClientHello random) comes from esp-hal's
    //! `Trng`, which implements rand_core 0.6 `CryptoRng`: the hardware RNG,
    //! which draws true entropy from the RF noise while Wi-Fi is on.
    //! `Trng::try_new` fails otherwise.

    use defmt::{info, warn};
    use embassy_time::{Duration, with_timeout};
    use esp_hal::rng::Trng;
    use static_cell::ConstStaticCell;
    use umqtt::tls::{self, MaxFragmentLength, TLS_RECORD_OVERHEAD, TlsOptions, TlsStream};

    use crate::Connection;
    use crate::config::MQTT_HOST;

    /// PEM CA certificate that signs the broker's certificate.
    pub const CA_PEM: &str = include_str!("../ca.pem");

    /// Records of at most 4 KiB (RFC 6066 max fragment length), so the read
    /// record buffer is 8 709 bytes instead of 33 285. Mosquitto (OpenSSL)
    /// honours it; a broker that ignores it sends records too large for the
    /// buffer and the connection fails.
    const MAX_FRAGMENT_LENGTH: MaxFragmentLength = MaxFragmentLength::Bits12;
    /// Read record buffer for [`MAX_FRAGMENT_LENGTH`]: 8 709 bytes.
    pub const READ_RECORD: usize = tls::read_record_buffer_len(Some(MAX_FRAGMENT_LENGTH));
    /// Write record buffer: one MQTT packet of the 1 024-byte `tx` buffer
    /// per record, plus the record overhead (larger writes are split).
    pub const WRITE_RECORD: usize = 1024 + TLS_RECORD_OVERHEAD;
    /// Room for the CA certificate in DER (PEM is about 4/3 of it).
    pub const CA_DER_CAPACITY: usize = 2048;
    /// Longest TCP-connected-to-TLS-ready time before giving up.
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

    static READ_BUFFER: ConstStaticCell<[u8; READ_RECORD]> = ConstStaticCell::new([0; READ_RECORD]);
    static WRITE_BUFFER: ConstStaticCell<[u8; WRITE_RECORD]> =
        ConstStaticCell::new([0; WRITE_RECORD]);
    static CA_DER: ConstStaticCell<[u8; CA_DER_CAPACITY]> =
        ConstStaticCell::new([0; CA_DER_CAPACITY]);

    /// The TLS side of the firmware: CA, record buffers and RNG.
    pub struct Tls {
        ca_der: &'static [u8],
        read_record: &'static mut [u8; READ_RECORD],
        write_record: &'static mut [u8; WRITE_RECORD],
        rng: Trng,
    }

    impl Tls {
        /// Decodes `ca.pem`; stops with a panic when it holds no
        /// certificate (the placeholder shipped with the example).
        pub fn new(rng: Trng) -> Self {
            let ca_der = match tls::pem::certificate_der(CA_PEM.as_bytes(), CA_DER.take()) {
                Ok(der) => der,
                Err(e) => defmt::panic!(
                    "ca.pem: {} (put the PEM CA certificate of your broker in \
                     examples/esp32c3/ca.pem and rebuild)",
                    e
                ),
            };
            info!("TLS to {}: CA certificate of {} bytes", MQTT_HOST, ca_der.len());
            Self { ca_der, read_record: READ_BUFFER.take(), write_record: WRITE_BUFFER.take(), rng }
        }

        /// Runs the TLS handshake over `socket`. `None` (logged) when it
        /// fails: the caller backs off and opens a new TCP connection.
        pub async fn open<'t, 'd: 't>(
            &'t mut self,
            socket: Connection<'d>,
        ) -> Option<TlsStream<'t, Connection<'d>>> {
            let options =
                TlsOptions::new(MQTT_HOST, self.ca_der).max_fragment_length(MAX_FRAGMENT_LENGTH);
            let handshake = tls::connect(
                socket,
                &mut self.read_record[..],
                &mut self.write_record[..],
                &options,
                &mut self.rng,
            );
            match with_timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => {
                    info!("TLS connected, broker verified as {}", MQTT_HOST);
                    Some(stream)
                }
                Ok(Err(e)) if e.is_certificate_error() => {
                    warn!("TLS: broker not trusted: {} (check ca.pem and MQTT_HOST)", e);
                    None
                }
                Ok(Err(e)) => {
                    warn!("TLS handshake failed: {}", e);
                    None
                }
                Err(_) => {
                    warn!("TLS handshake timed out");
                    None
                }
            }
        }
    }
}
