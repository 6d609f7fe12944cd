//! umqtt on a Raspberry Pi Pico W (RP2040 + CYW43439 Wi-Fi), with embassy.
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
//! With the `store` feature the session (the QoS 1 publishes awaiting
//! PUBACK) is kept in the last 64 KiB of the flash too, so that it
//! survives a reset: after a reboot the first connect resends them.
//!
//! With the `tls` feature each TCP connection is wrapped in umqtt's TLS 1.3
//! stream (module `tls` below), verifying the broker against `ca.pem`.
//!
//! Settings come from environment variables at build time: see `config.rs`
//! and README.md.

#![no_std]
#![no_main]

mod config;
mod nvram;

use core::fmt::Write as _;
use core::net::SocketAddr;

use cyw43::{A4, Aligned, JoinOptions};
use cyw43_pio::{DEFAULT_CLOCK_DIVIDER, PioSpi};
use defmt::{info, unwrap, warn};
use embassy_executor::Spawner;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::client::{TcpClient, TcpClientState, TcpConnection};
use embassy_net::{Stack, StackResources};
use embassy_rp::bind_interrupts;
use embassy_rp::clocks::RoscRng;
use embassy_rp::dma;
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::{DMA_CH0, PIO0};
use embassy_rp::pio::{self, Pio};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use embedded_nal_async::TcpConnect;
use static_cell::StaticCell;
use umqtt::{Client, ConnectOptions, Publish, QoS, Session};
use {defmt_rtt as _, panic_probe as _};

use crate::config::*;

bind_interrupts!(struct Irqs {
    PIO0_IRQ_0 => pio::InterruptHandler<PIO0>;
    DMA_IRQ_0 => dma::InterruptHandler<DMA_CH0>;
});

/// CYW43439 firmware from the `cyw43-firmware` crate, copied into a
/// 4-byte-aligned static as the driver requires.
static WIFI_FIRMWARE: Aligned<A4, [u8; cyw43_firmware::CYW43_43439A0.len()]> =
    Aligned(*cyw43_firmware::CYW43_43439A0);

/// Two pooled TCP sockets: a connection's socket returns to the pool when
/// the connection (or the TLS stream over it) is dropped; the second one
/// covers a socket the stack has not finished closing yet.
const TCP_SOCKETS: usize = 2;
const TCP_BUFFER: usize = 2048;
type Connection<'d> = TcpConnection<'d, TCP_SOCKETS, TCP_BUFFER, TCP_BUFFER>;

type WifiSpi = PioSpi<'static, PIO0, 0>;

#[embassy_executor::task]
async fn cyw43_task(runner: cyw43::Runner<'static, cyw43::SpiBus<Output<'static>, WifiSpi>>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, cyw43::NetDriver<'static>>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    let mut rng = RoscRng;
    info!("umqtt Pico W example, client id {}", MQTT_CLIENT_ID);

    // The CYW43439 sits on a PIO-driven half-duplex SPI: PWR on GPIO23,
    // CS on GPIO25, DIO on GPIO24, CLK on GPIO29.
    let pwr = Output::new(p.PIN_23, Level::Low);
    let cs = Output::new(p.PIN_25, Level::High);
    let mut pio = Pio::new(p.PIO0, Irqs);
    let spi = PioSpi::new(
        &mut pio.common,
        pio.sm0,
        DEFAULT_CLOCK_DIVIDER,
        pio.irq0,
        cs,
        p.PIN_24,
        p.PIN_29,
        dma::Channel::new(p.DMA_CH0, Irqs),
    );

    static CYW43_STATE: StaticCell<cyw43::State> = StaticCell::new();
    let state = CYW43_STATE.init(cyw43::State::new());
    let (net_device, mut control, runner) =
        cyw43::new(state, pwr, spi, &WIFI_FIRMWARE, nvram::NVRAM).await;
    spawner.spawn(unwrap!(cyw43_task(runner)));

    control.init(cyw43_firmware::CYW43_43439A0_CLM).await;
    control
        .set_power_management(cyw43::PowerManagementMode::PowerSave)
        .await;

    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        net_device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        rng.next_u64(),
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

    #[cfg(feature = "tls")]
    let mut tls = tls::Tls::new(rng);

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
    let mut store = store::open(p.FLASH, &mut store_buf);
    let mut counter: u32 = 0;
    loop {
        let socket = open_connection(&mut control, stack, &tcp, &mut backoff).await;
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

/// The session store in the last 64 KiB of the 2 MiB flash (feature
/// `store`; memory.x keeps the firmware out of them).
#[cfg(feature = "store")]
mod store {
    use embassy_rp::Peri;
    use embassy_rp::flash::{Blocking, Flash};
    use embassy_rp::peripherals::FLASH;
    use umqtt::store::{BlockingFlash, FlashStore};

    const FLASH_SIZE: usize = 2 * 1024 * 1024;
    const PARTITION: core::ops::Range<u32> = (FLASH_SIZE - 64 * 1024) as u32..FLASH_SIZE as u32;

    /// The store over the flash, with `buf` for one record (the largest
    /// PUBLISH plus 16 bytes).
    pub fn open<'b>(
        flash: Peri<'static, FLASH>,
        buf: &'b mut [u8],
    ) -> FlashStore<'b, BlockingFlash<Flash<'static, FLASH, Blocking, FLASH_SIZE>>> {
        let flash = BlockingFlash(Flash::new_blocking(flash));
        defmt::unwrap!(FlashStore::new(flash, PARTITION, buf))
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
    control: &mut cyw43::Control<'_>,
    stack: Stack<'_>,
    tcp: &'d TcpClient<'_, TCP_SOCKETS, TCP_BUFFER, TCP_BUFFER>,
    backoff: &mut Backoff,
) -> Connection<'d> {
    loop {
        if !stack.is_link_up() {
            info!("joining Wi-Fi network {}", WIFI_SSID);
            let options = if WIFI_PASSWORD.is_empty() {
                JoinOptions::new_open()
            } else {
                JoinOptions::new(WIFI_PASSWORD.as_bytes())
            };
            if let Err(e) = control.join(WIFI_SSID, options).await {
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
    //! Randomness (ECDHE key, ClientHello random) comes from `RoscRng`, the
    //! ring oscillator's RANDOMBIT, the only entropy source of the RP2040:
    //! embassy-rp implements rand_core 0.6 `CryptoRng` for it. Its bits are
    //! not whitened; see README.md.

    use defmt::{info, warn};
    use embassy_rp::clocks::RoscRng;
    use embassy_time::{Duration, with_timeout};
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
        rng: RoscRng,
    }

    impl Tls {
        /// Decodes `ca.pem`; stops with a panic when it holds no
        /// certificate (the placeholder shipped with the example).
        pub fn new(rng: RoscRng) -> Self {
            let ca_der = match tls::pem::certificate_der(CA_PEM.as_bytes(), CA_DER.take()) {
                Ok(der) => der,
                Err(e) => defmt::panic!(
                    "ca.pem: {} (put the PEM CA certificate of your broker in \
                     examples/rp2040-pico-w/ca.pem and rebuild)",
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
