//! umqtt on a Raspberry Pi Pico W (RP2040 + CYW43439 Wi-Fi), with embassy.
//!
//! The always-connected client (`umqtt::robust`) keeps the MQTT connection
//! up: its runner task connects through [`link::WifiLink`] (join Wi-Fi if
//! the link is down, wait for DHCP, then TCP to `MQTT_HOST` by name over
//! embassy-net, with `tls` TLS 1.3 over it), reconnects with exponential
//! backoff, resubscribes when the broker did not keep the session and
//! resends the QoS 1 publishes awaiting PUBACK. The app (this task)
//! subscribes to `umqtt/<client id>/cmd` and publishes `{"msg": n}` to
//! `umqtt/<client id>/data` every few seconds through a `Client` handle;
//! `command_task` receives the messages. Events go to the defmt log.
//!
//! With the `store` feature the session (the QoS 1 publishes awaiting
//! PUBACK) is kept in the last 64 KiB of the flash too, so that it
//! survives a reset: module `store` (the runner takes no store yet).
//!
//! Settings come from environment variables at build time: see `config.rs`
//! and README.md.

#![no_std]
#![no_main]

mod config;
mod link;
mod nvram;

use core::fmt::Write as _;

use cyw43::{A4, Aligned};
use cyw43_pio::{DEFAULT_CLOCK_DIVIDER, PioSpi};
use defmt::{info, unwrap};
use embassy_executor::Spawner;
use embassy_net::StackResources;
use embassy_net::dns::DnsSocket;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_rp::bind_interrupts;
use embassy_rp::clocks::RoscRng;
use embassy_rp::dma;
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::{DMA_CH0, PIO0};
use embassy_rp::pio::{self, Pio};
use embassy_time::Duration;
use static_cell::StaticCell;
use umqtt::ConnectOptions;
use umqtt::connect::TcpConnector;
use umqtt::robust::{self, Backoff};
use {defmt_rtt as _, panic_probe as _};

use crate::config::*;
use crate::link::WifiLink;

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

/// TCP to `MQTT_HOST:MQTT_PORT`, the name resolved on every connect.
type Tcp = TcpConnector<
    'static,
    TcpClient<'static, TCP_SOCKETS, TCP_BUFFER, TCP_BUFFER>,
    DnsSocket<'static>,
>;
/// What the runner connects through: Wi-Fi, then TCP (and TLS).
#[cfg(not(feature = "tls"))]
type Mqtt = WifiLink<Tcp>;
#[cfg(feature = "tls")]
type Mqtt = WifiLink<umqtt::tls::TlsConnector<'static, Tcp, RoscRng>>;

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
    control.set_power_management(cyw43::PowerManagementMode::PowerSave).await;

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
    let tcp = TcpConnector::new(tcp, DnsSocket::new(stack), MQTT_HOST, MQTT_PORT);
    #[cfg(feature = "tls")]
    let tcp = tls::connector(tcp, rng);
    let connector = WifiLink::new(control, stack, tcp);

    // clean_session(false): the broker keeps our subscription (and queues
    // QoS 1 messages) while we are away.
    let opts =
        ConnectOptions::new(MQTT_CLIENT_ID).keep_alive_secs(KEEP_ALIVE_SECS).clean_session(false);
    let config = robust::Config {
        backoff: Backoff {
            min: Duration::from_secs(BACKOFF_MIN_SECS),
            max: Duration::from_secs(BACKOFF_MAX_SECS),
            ..Backoff::default()
        },
        connect_timeout: Duration::from_secs(CONNECT_TIMEOUT_SECS),
        ..robust::Config::default()
    };

    let mut data_topic: heapless::String<64> = heapless::String::new();
    let mut cmd_topic: heapless::String<64> = heapless::String::new();
    unwrap!(write!(data_topic, "umqtt/{}/data", MQTT_CLIENT_ID));
    unwrap!(write!(cmd_topic, "umqtt/{}/cmd", MQTT_CLIENT_ID));

    #[cfg(not(feature = "store"))]
    let store = umqtt::store::NoStore;
    #[cfg(feature = "store")]
    let store = store::open(p.FLASH);
    app::run(spawner, connector, store, opts, config, &cmd_topic, &data_topic).await;
}

/// Jitter for the reconnect backoff, from the ring oscillator.
fn jitter() -> u32 {
    RoscRng.next_u32()
}

/// Where the runner keeps the session: nowhere, or (feature `store`) in
/// flash.
#[cfg(not(feature = "store"))]
type Store = umqtt::store::NoStore;
#[cfg(feature = "store")]
type Store = store::Store;

/// The application over the always-connected client.
mod app {
    use core::fmt::Write as _;

    use defmt::{info, unwrap, warn};
    use embassy_executor::Spawner;
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use embassy_time::Timer;
    use static_cell::{ConstStaticCell, StaticCell};
    use umqtt::robust::{self, Event, Hooks, Runner};
    use umqtt::{ConnectOptions, QoS};

    use crate::config::PUBLISH_INTERVAL_SECS;
    use crate::{Mqtt, Store};

    /// What the runner and its handles share: a 128-byte command slot (the
    /// longest topic plus payload published), a mailbox of the size of
    /// `rx`, 128 bytes of remembered subscriptions, 4 calls waiting at once.
    /// Set up at run time, so that it takes no flash for initial values.
    static STATE: StaticCell<robust::State<CriticalSectionRawMutex, 128, 1024, 128, 4>> =
        StaticCell::new();
    static RX: ConstStaticCell<[u8; 1024]> = ConstStaticCell::new([0; 1024]);
    static TX: ConstStaticCell<[u8; 1024]> = ConstStaticCell::new([0; 1024]);

    /// Logs what the runner does.
    pub struct Log;

    impl Hooks for Log {
        fn on_event(&mut self, event: &Event) {
            match event {
                Event::Connected { session_present } => {
                    info!("MQTT connected (session present: {})", session_present)
                }
                Event::Resubscribed { count } => {
                    info!("subscriptions active ({} sent again)", count)
                }
                Event::Disconnected { reason } => warn!("MQTT disconnected: {}", reason),
                Event::ReconnectAttempt { delay } => {
                    info!("reconnecting in {} ms", delay.as_millis())
                }
                _ => {}
            }
        }
    }

    /// The connection: connects, reconnects, resends; never returns here.
    #[embassy_executor::task]
    async fn mqtt_task(mut runner: Runner<'static, Mqtt, fn() -> u32, Log, Store>) -> ! {
        let stop = runner.run().await;
        warn!("MQTT runner stopped: {}", stop);
        loop {
            core::future::pending::<()>().await;
        }
    }

    /// Logs every message on the subscribed topics.
    #[embassy_executor::task]
    async fn command_task(client: robust::Client<'static>) {
        let mut buf = [0u8; 1024];
        loop {
            match client.receive(&mut buf).await {
                Ok(msg) => match core::str::from_utf8(msg.payload) {
                    Ok(text) => info!("message on {}: {}", msg.topic, text),
                    Err(_) => info!("message on {}: {} bytes", msg.topic, msg.payload.len()),
                },
                Err(robust::Error::Stopped) => return,
                Err(e) => warn!("message dropped: {}", e),
            }
        }
    }

    /// Starts the runner and the command task, subscribes, and publishes
    /// a counter every few seconds.
    pub async fn run(
        spawner: Spawner,
        connector: Mqtt,
        store: Store,
        opts: ConnectOptions<'static>,
        config: robust::Config,
        cmd_topic: &str,
        data_topic: &str,
    ) -> ! {
        let state = STATE.init(robust::State::new());
        let (runner, client) = Runner::new(connector, state, RX.take(), TX.take(), opts, config);
        let runner =
            runner.with_rng(crate::jitter as fn() -> u32).with_hooks(Log).with_store(store);
        spawner.spawn(unwrap!(mqtt_task(runner)));
        spawner.spawn(unwrap!(command_task(client)));

        // Remembered: the runner subscribes again after a reconnect on
        // which the broker kept no session.
        match client.subscribe(cmd_topic, QoS::AtLeastOnce).await {
            Ok(()) => info!("subscribed to {}", cmd_topic),
            Err(e) => warn!("subscribing to {} failed: {}", cmd_topic, e),
        }
        let mut counter: u32 = 0;
        loop {
            counter = counter.wrapping_add(1);
            let mut payload: heapless::String<32> = heapless::String::new();
            unwrap!(write!(payload, "{{\"msg\": {}}}", counter));
            // QoS 1: returns at the PUBACK; while the link is down it waits
            // for the reconnect (the message is resent, never lost).
            match client.publish(data_topic, payload.as_bytes(), QoS::AtLeastOnce, false).await {
                Ok(()) => info!("published {} to {}", payload.as_str(), data_topic),
                Err(e) => warn!("publish failed: {}", e),
            }
            Timer::after_secs(PUBLISH_INTERVAL_SECS).await;
        }
    }
}

/// The session kept in the last 64 KiB of the 2 MiB flash (feature
/// `store`; memory.x keeps the firmware out of them), handed to the runner
/// (`Runner::with_store`): it loads the session before the first connect
/// and records every step of it before the wire moves on.
#[cfg(feature = "store")]
mod store {
    use defmt::unwrap;
    use embassy_rp::Peri;
    use embassy_rp::flash::{Blocking, Flash};
    use embassy_rp::peripherals::FLASH;
    use static_cell::ConstStaticCell;
    use umqtt::store::{BlockingFlash, FlashStore};

    const FLASH_SIZE: usize = 2 * 1024 * 1024;
    const PARTITION: core::ops::Range<u32> = (FLASH_SIZE - 64 * 1024) as u32..FLASH_SIZE as u32;

    /// The flash store the runner keeps its session in.
    pub type Store =
        FlashStore<'static, BlockingFlash<Flash<'static, FLASH, Blocking, FLASH_SIZE>>>;

    /// Opens the store on the flash partition.
    pub fn open(flash: Peri<'static, FLASH>) -> Store {
        // One record: the largest PUBLISH plus 16 bytes.
        static RECORD: ConstStaticCell<[u8; 1024 + 16]> = ConstStaticCell::new([0; 1024 + 16]);
        let flash = BlockingFlash(Flash::<_, Blocking, FLASH_SIZE>::new_blocking(flash));
        unwrap!(FlashStore::new(flash, PARTITION, RECORD.take()))
    }
}

#[cfg(feature = "tls")]
mod tls {
    //! ==================== TLS (feature `tls`) ====================
    //! `umqtt::tls::TlsConnector` over the TCP connector: each connection
    //! is a new TLS 1.3 handshake on the same record buffers; the broker
    //! must present a certificate chain issued by the CA in `ca.pem` for
    //! the name `MQTT_HOST` (the TCP connector's host, also sent as SNI),
    //! with an ECDSA P-256 or P-384 key.
    //!
    //! RAM: the record buffers are statics (`.bss`): [`READ_RECORD`]
    //! (8 709 bytes with a 4 KiB max fragment length) + [`WRITE_RECORD`]
    //! (1 152 bytes) + the CA in DER ([`CA_DER_CAPACITY`], 2 048 bytes).
    //!
    //! Randomness (ECDHE key, ClientHello random) comes from `RoscRng`, the
    //! ring oscillator's RANDOMBIT, the only entropy source of the RP2040:
    //! embassy-rp implements rand_core 0.6 `CryptoRng` for it. Its bits are
    //! not whitened; see README.md.

    use defmt::info;
    use embassy_rp::clocks::RoscRng;
    use static_cell::ConstStaticCell;
    use umqtt::tls::{self, MaxFragmentLength, TLS_RECORD_OVERHEAD, TlsConnector, TlsOptions};

    use crate::Tcp;
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

    static READ_BUFFER: ConstStaticCell<[u8; READ_RECORD]> = ConstStaticCell::new([0; READ_RECORD]);
    static WRITE_BUFFER: ConstStaticCell<[u8; WRITE_RECORD]> =
        ConstStaticCell::new([0; WRITE_RECORD]);
    static CA_DER: ConstStaticCell<[u8; CA_DER_CAPACITY]> =
        ConstStaticCell::new([0; CA_DER_CAPACITY]);

    /// TLS over `tcp`, verified against `ca.pem`; stops with a panic when
    /// it holds no certificate (the placeholder shipped with the example).
    pub fn connector(tcp: Tcp, rng: RoscRng) -> TlsConnector<'static, Tcp, RoscRng> {
        let ca_der = match tls::pem::certificate_der(CA_PEM.as_bytes(), CA_DER.take()) {
            Ok(der) => der,
            Err(e) => defmt::panic!(
                "ca.pem: {} (put the PEM CA certificate of your broker in \
                 examples/rp2040-pico-w/ca.pem and rebuild)",
                e
            ),
        };
        info!("TLS to {}: CA certificate of {} bytes", MQTT_HOST, ca_der.len());
        let options = TlsOptions::for_host(ca_der).max_fragment_length(MAX_FRAGMENT_LENGTH);
        TlsConnector::new(tcp, options, READ_BUFFER.take(), WRITE_BUFFER.take(), rng)
    }
}
