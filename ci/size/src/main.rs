//! The smallest firmware that uses a given part of umqtt, so that
//! `scripts/size-report` can subtract a baseline and attribute flash to the
//! library. Inputs go through `black_box` so nothing is folded away.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;

use cortex_m_rt::entry;

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        cortex_m::asm::nop();
    }
}

/// A time driver that never advances: enough to link embassy-time.
struct NoClock;

impl embassy_time_driver::Driver for NoClock {
    fn now(&self) -> u64 {
        black_box(0)
    }
    fn schedule_wake(&self, _at: u64, _waker: &core::task::Waker) {}
}

embassy_time_driver::time_driver_impl!(static DRIVER: NoClock = NoClock);

#[cfg(feature = "codec")]
fn exercise_codec(buf: &mut [u8]) -> usize {
    use umqtt::packet;
    let mut used = 0;
    let mut rest: &[u8] = black_box(&*buf);
    while let Ok(d) = packet::decode(rest) {
        let mut out = [0u8; 256];
        used += packet::encode(&d.packet, &mut out).unwrap_or(0);
        used += packet::encoded_len(&d.packet).unwrap_or(0);
        rest = rest.get(d.len..).unwrap_or_default();
    }
    used
}

#[cfg(feature = "client")]
mod client {
    use core::future::Future;
    use core::hint::black_box;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};

    use umqtt::{Client, ConnectOptions, Publish, QoS};

    /// A transport whose reads and writes take whatever black_box says.
    pub struct Wire;

    impl embedded_io_async::ErrorType for Wire {
        type Error = embedded_io_async::ErrorKind;
    }

    impl embedded_io_async::Read for Wire {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let n = black_box(buf.len());
            if let Some(b) = buf.first_mut() {
                *b = black_box(0x30);
            }
            Ok(n)
        }
    }

    impl embedded_io_async::Write for Wire {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            Ok(black_box(buf.len()))
        }

        async fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    /// A NOR flash whose contents black_box says (feature `store`).
    #[cfg(feature = "store")]
    pub struct Flash;

    #[cfg(feature = "store")]
    mod flash {
        use core::hint::black_box;

        use embedded_storage_async::nor_flash::{
            ErrorType, MultiwriteNorFlash, NorFlash, NorFlashErrorKind, ReadNorFlash,
        };

        impl ErrorType for super::Flash {
            type Error = NorFlashErrorKind;
        }

        impl ReadNorFlash for super::Flash {
            const READ_SIZE: usize = 1;
            async fn read(&mut self, _: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
                bytes.fill(black_box(0xFF));
                Ok(())
            }
            fn capacity(&self) -> usize {
                black_box(8 * 4096)
            }
        }

        impl NorFlash for super::Flash {
            const WRITE_SIZE: usize = 4;
            const ERASE_SIZE: usize = 4096;
            async fn erase(&mut self, from: u32, _: u32) -> Result<(), Self::Error> {
                black_box(from);
                Ok(())
            }
            async fn write(&mut self, _: u32, bytes: &[u8]) -> Result<(), Self::Error> {
                black_box(bytes);
                Ok(())
            }
        }

        impl MultiwriteNorFlash for super::Flash {}
    }

    /// Budget for every client future over a plain transport on this
    /// target, checked when the firmware is compiled (issue 6: at most 512
    /// bytes each).
    pub const FUTURE_BUDGET: usize = if cfg!(feature = "store") { STORE_FUTURE_BUDGET } else { 512 };

    /// With a [`FlashStore`](umqtt::store::FlashStore) each future holds
    /// the store's own (sequential-storage's) futures too.
    pub const STORE_FUTURE_BUDGET: usize = 2048;

    /// Polls `fut` once and tells whether it finished; `BUDGET` bounds its
    /// size at compile time.
    pub fn poll<const BUDGET: usize, F: Future>(fut: F) -> bool {
        const { assert!(core::mem::size_of::<F>() <= BUDGET, "a client future exceeds its size budget") };
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(fut.as_mut().poll(&mut cx), Poll::Ready(_))
    }

    /// Polls `fut` once and returns its output if it finished.
    #[cfg(any(feature = "tls", feature = "ws"))]
    pub fn poll_output<F: Future>(fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        }
    }

    #[cfg_attr(
        all(any(feature = "tls", feature = "ws", feature = "robust"), not(feature = "report")),
        allow(dead_code)
    )]
    #[cfg_attr(feature = "report", allow(dead_code))]
    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> u32 {
        let mut count = 0u32;
        #[cfg(feature = "qos2")]
        let mut slots = [0u16; 8];
        let client = Client::new(Wire, rx, tx, |m: &Publish<'_>| {
            count += black_box(m.payload.len() as u32);
        });
        #[cfg(feature = "qos2")]
        let client = client.receive_qos2(black_box(&mut slots[..]));
        #[cfg(feature = "store")]
        let mut record = [0u8; 128];
        #[cfg(feature = "store")]
        let client = {
            let range = 0..black_box(8 * 4096);
            let Ok(store) = umqtt::store::FlashStore::new(Flash, range, &mut record) else {
                loop {}
            };
            client.with_store(store)
        };
        let mut client = client;
        // Budget for the client itself, without its buffers (issue 6).
        const { assert!(core::mem::size_of::<Client<'static, Wire, fn(&Publish<'_>)>>() <= 128) };
        let opts = ConnectOptions::new(black_box("board-1")).keep_alive_secs(black_box(60));
        // Written out rather than through `exercise_client`, so that the
        // figure stays comparable with earlier reports.
        let mut done = 0u32;
        done += u32::from(poll::<FUTURE_BUDGET, _>(client.connect(&opts)));
        done += u32::from(poll::<FUTURE_BUDGET, _>(client.subscribe(black_box("cmd/#"), QoS::AtLeastOnce)));
        done += u32::from(poll::<FUTURE_BUDGET, _>(client.publish(black_box("t"), black_box(b"x"), QoS::AtLeastOnce, false)));
        done += u32::from(poll::<FUTURE_BUDGET, _>(client.publish(black_box("t"), black_box(b"x"), QoS::AtMostOnce, false)));
        #[cfg(feature = "qos2")]
        {
            done += u32::from(poll::<FUTURE_BUDGET, _>(client.publish(black_box("t"), black_box(b"x"), QoS::ExactlyOnce, false)));
            done += u32::from(poll::<FUTURE_BUDGET, _>(client.subscribe(black_box("q2/#"), QoS::ExactlyOnce)));
        }
        done += u32::from(poll::<FUTURE_BUDGET, _>(client.wait_msg()));
        done += u32::from(poll::<FUTURE_BUDGET, _>(client.check_msg()));
        done += u32::from(poll::<FUTURE_BUDGET, _>(client.ping()));
        done += u32::from(poll::<FUTURE_BUDGET, _>(client.disconnect()));
        #[cfg(feature = "report")]
        {
            report(&mut client, &opts, if cfg!(feature = "store") { "store-" } else { "" });
            cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
        }
        done + count
    }

    /// Connects, subscribes, publishes, receives, pings and disconnects,
    /// each client future bounded by `BUDGET` bytes.
    #[cfg(any(feature = "tls", feature = "ws"))]
    pub fn exercise_client<const BUDGET: usize, T, H>(
        client: &mut Client<'_, T, H>,
        opts: &ConnectOptions<'_>,
    ) -> u32
    where
        T: embedded_io_async::Read + embedded_io_async::Write,
        H: FnMut(&Publish<'_>),
    {
        let mut done = 0u32;
        done += u32::from(poll::<BUDGET, _>(client.connect(opts)));
        done += u32::from(poll::<BUDGET, _>(client.subscribe(black_box("cmd/#"), QoS::AtLeastOnce)));
        done += u32::from(poll::<BUDGET, _>(client.publish(black_box("t"), black_box(b"x"), QoS::AtLeastOnce, false)));
        done += u32::from(poll::<BUDGET, _>(client.publish(black_box("t"), black_box(b"x"), QoS::AtMostOnce, false)));
        done += u32::from(poll::<BUDGET, _>(client.wait_msg()));
        done += u32::from(poll::<BUDGET, _>(client.check_msg()));
        done += u32::from(poll::<BUDGET, _>(client.ping()));
        done += u32::from(poll::<BUDGET, _>(client.disconnect()));
        done
    }

    /// Prints the sizes `scripts/size-report` tabulates, names prefixed
    /// with `prefix`.
    #[cfg(feature = "report")]
    pub fn report<T, H, S>(client: &mut Client<'_, T, H, S>, opts: &ConnectOptions<'_>, prefix: &str)
    where
        T: embedded_io_async::Read + embedded_io_async::Write,
        H: FnMut(&Publish<'_>),
        S: umqtt::store::Store,
    {
        use core::mem::size_of_val;
        use cortex_m_semihosting::hprintln;
        hprintln!("size_of {}Client {}", prefix, size_of_val(client));
        hprintln!("size_of {}connect {}", prefix, size_of_val(&client.connect(opts)));
        hprintln!("size_of {}publish {}", prefix, size_of_val(&client.publish("t", b"x", QoS::AtLeastOnce, false)));
        hprintln!("size_of {}subscribe {}", prefix, size_of_val(&client.subscribe("t", QoS::AtLeastOnce)));
        hprintln!("size_of {}wait_msg {}", prefix, size_of_val(&client.wait_msg()));
        hprintln!("size_of {}check_msg {}", prefix, size_of_val(&client.check_msg()));
        hprintln!("size_of {}ping {}", prefix, size_of_val(&client.ping()));
    }
}

/// An RNG whose output black_box decides (rand_core 0.6 `CryptoRng`): TLS
/// key exchange, WebSocket keys and masks.
#[cfg(any(feature = "tls", feature = "ws"))]
mod rng {
    use core::hint::black_box;

    pub struct Rng;

    impl rand_core::RngCore for Rng {
        fn next_u32(&mut self) -> u32 {
            black_box(4)
        }
        fn next_u64(&mut self) -> u64 {
            black_box(4)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(black_box(4));
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl rand_core::CryptoRng for Rng {}
}
#[cfg(any(feature = "tls", feature = "ws"))]
use rng::Rng;

/// The client over umqtt's TLS stream (max fragment length 4 KiB, server
/// verified against a CA, no client certificate, no clock): what a board
/// with the `tls` feature links.
#[cfg(feature = "tls")]
mod tls {
    use core::hint::black_box;

    use umqtt::tls::{self, MaxFragmentLength, TLS_RECORD_OVERHEAD, TlsOptions};
    use umqtt::{Client, ConnectOptions, Publish};

    use crate::Rng;
    use crate::client::{Wire, exercise_client, poll_output};

    const CA_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
    const MFL: MaxFragmentLength = MaxFragmentLength::Bits12;
    const READ_RECORD: usize = tls::read_record_buffer_len(Some(MFL));
    const WRITE_RECORD: usize = 1024 + TLS_RECORD_OVERHEAD;

    /// No compile-time bound for the futures over TLS: scripts/size-report
    /// checks their budgets on the sizes the `report` run prints.
    const UNBOUNDED: usize = usize::MAX;

    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> u32 {
        let mut read = [0u8; READ_RECORD];
        let mut write = [0u8; WRITE_RECORD];
        // The CA embedded as PEM and decoded at start-up, as the boards do.
        let mut ca_der = [0u8; 1024];
        let Ok(ca) = tls::pem::certificate_der(black_box(CA_PEM), &mut ca_der) else {
            return 0;
        };
        let options = TlsOptions::new(black_box("broker.example.com"), ca).max_fragment_length(MFL);
        let opts = ConnectOptions::new(black_box("board-1")).keep_alive_secs(black_box(60));
        let connect = tls::connect(Wire, &mut read, &mut write, &options, Rng);
        #[cfg(feature = "report")]
        let handshake_size = core::mem::size_of_val(&connect);
        let done = match poll_output(connect) {
            Some(Ok(stream)) => {
                let mut client = Client::new(stream, &mut *rx, &mut *tx, |m: &Publish<'_>| {
                    black_box(m.payload.len());
                });
                exercise_client::<UNBOUNDED, _, _>(&mut client, &opts)
            }
            _ => 0,
        };
        #[cfg(feature = "report")]
        {
            use cortex_m_semihosting::hprintln;
            hprintln!("size_of tls-handshake {}", handshake_size);
            hprintln!(
                "size_of TlsStream {} (+ {} read and {} write record buffers)",
                core::mem::size_of::<tls::TlsStream<'static, Wire>>(),
                READ_RECORD,
                WRITE_RECORD
            );
            // The handshake above cannot succeed on `Wire`: measure the
            // client futures over a stream that was never opened.
            let (record, framing) = read.split_at_mut(READ_RECORD - tls::framing_buffer_len(Some(MFL)));
            let (write, outbox) = write.split_at_mut(WRITE_RECORD / 2);
            let (write_len, outbox_len) = (write.len(), outbox.len());
            let framed = tls::RecordFramed::with_outbox(Wire, framing, outbox);
            let connection = embedded_tls::TlsConnection::new(framed, record, write);
            let stream = tls::TlsStream::from_connection(connection, write_len, outbox_len);
            let mut client = Client::new(stream, rx, tx, |_: &Publish<'_>| {});
            crate::client::report(&mut client, &opts, "tls-");
        }
        done
    }
}

/// Instructions one RSA verification takes on a Cortex-M3, counted in QEMU
/// with `-icount shift=0` (one instruction per virtual nanosecond) through
/// SysTick, whose ticks-per-instruction ratio is calibrated first on a loop
/// of known length. Prints, then exits QEMU (feature `rsa-cycles`).
#[cfg(feature = "rsa-cycles")]
mod rsa_vectors;

#[cfg(feature = "rsa-cycles")]
mod rsa_cycles {
    use core::hint::black_box;

    use cortex_m::peripheral::{SYST, syst::SystClkSource};
    use cortex_m_semihosting::{debug, hprintln};
    use umqtt::tls::rsa::{Hash, RsaPublicKey};

    use crate::rsa_vectors as vectors;

    fn ticks(syst: &mut SYST, f: impl FnOnce()) -> u32 {
        syst.clear_current();
        let start = SYST::get_current();
        f();
        // A 24-bit down-counter cleared to 0 (it reloads at the first
        // tick): the difference modulo 2^24 (runs shorter than 2^24 ticks).
        start.wrapping_sub(SYST::get_current()) & 0x00ff_ffff
    }

    pub fn run() -> ! {
        let mut peripherals = cortex_m::Peripherals::take().unwrap();
        let syst = &mut peripherals.SYST;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00ff_ffff);
        syst.enable_counter();
        // Calibration: `asm::delay(n)` runs n + 1 iterations of `subs; bne`,
        // 2 instructions each.
        let calibration = ticks(syst, || cortex_m::asm::delay(black_box(999_999)));
        hprintln!("rsa-cycles calibration: 2000000 instructions = {} SysTick ticks", calibration);
        for (bits, key, sig) in [
            (2048, &vectors::KEY_2048[..], &vectors::SIG_2048[..]),
            (4096, &vectors::KEY_4096[..], &vectors::SIG_4096[..]),
        ] {
            let key = RsaPublicKey::from_pkcs1_der(black_box(key)).unwrap();
            let mut ok = false;
            let t = ticks(syst, || {
                ok = key.verify_pkcs1_v15(Hash::Sha256, black_box(vectors::MESSAGE), black_box(sig)).is_ok();
            });
            hprintln!("rsa-cycles RSA-{} PKCS#1 v1.5 SHA-256 verification: {} SysTick ticks (verified: {})", bits, t, ok);
        }
        debug::exit(debug::EXIT_SUCCESS);
        loop {}
    }
}

/// The client over umqtt's WebSocket stream (`ws://`, frame buffer for
/// the client's 512-byte packets): what a board with the `ws` feature
/// links.
#[cfg(feature = "ws")]
mod ws {
    use core::hint::black_box;

    use umqtt::ws::{self, FRAME_OVERHEAD, WsOptions};
    use umqtt::{Client, ConnectOptions, Publish};

    use crate::Rng;
    use crate::client::{FUTURE_BUDGET, Wire, exercise_client, poll_output};

    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> u32 {
        let mut ws_tx = [0u8; 512 + FRAME_OVERHEAD];
        let options = WsOptions::new(black_box("broker.example.com:8083"), black_box("/mqtt"));
        let opts = ConnectOptions::new(black_box("board-1")).keep_alive_secs(black_box(60));
        let connect = ws::connect(Wire, &mut ws_tx, &options, Rng);
        #[cfg(feature = "report")]
        {
            use cortex_m_semihosting::hprintln;
            hprintln!("size_of ws-handshake {}", core::mem::size_of_val(&connect));
            hprintln!(
                "size_of WsStream {} (+ {} frame buffer)",
                core::mem::size_of::<ws::WsStream<'static, Wire, Rng>>(),
                512 + FRAME_OVERHEAD
            );
        }
        match poll_output(connect) {
            Some(Ok(stream)) => {
                let mut client = Client::new(stream, rx, tx, |m: &Publish<'_>| {
                    black_box(m.payload.len());
                });
                exercise_client::<FUTURE_BUDGET, _, _>(&mut client, &opts)
            }
            _ => 0,
        }
    }
}

/// The engine alone, driven with plain calls as a custom driver would:
/// no transport, no clock, no futures.
#[cfg(feature = "engine")]
mod engine {
    use core::hint::black_box;

    use embassy_time::Instant;
    use umqtt::engine::{Engine, Event, Transmit};
    use umqtt::{ConnectOptions, QoS, SubscribeTopic};

    #[cfg_attr(feature = "report", allow(dead_code))]
    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> u32 {
        let mut slots = [0u16; 8];
        let mut engine = Engine::new(rx, tx);
        engine.receive_qos2(black_box(&mut slots[..]));
        let now = || Instant::from_ticks(black_box(0));
        let opts = ConnectOptions::new(black_box("board-1")).keep_alive_secs(black_box(60));
        let mut sum = 0u32;
        sum += u32::from(engine.connect(&opts, now()).is_ok());
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let qos = black_box(qos);
            if let Ok(Some(id)) = engine.publish(black_box("t"), black_box(b"x"), qos, false) {
                sum += u32::from(id.get());
            }
        }
        let topics = [SubscribeTopic { filter: black_box("cmd/#"), qos: black_box(QoS::ExactlyOnce) }];
        sum += u32::from(engine.subscribe(&topics).is_ok());
        for _ in 0..black_box(4) {
            while let Some(t) = engine.poll_transmit() {
                match t {
                    Transmit::Write(bytes) => {
                        let n = black_box(bytes.len());
                        if engine.on_written(n).is_err() {
                            return sum;
                        }
                    }
                    Transmit::Flush => engine.on_flushed(now()),
                }
            }
            if let Ok(buf) = engine.read_buf() {
                let n = black_box(buf.len());
                if let Some(b) = buf.first_mut() {
                    *b = black_box(0x30);
                }
                if engine.on_read(n, now()).is_err() {
                    return sum;
                }
            }
            while let Ok(Some(event)) = engine.poll(now()) {
                sum += match event {
                    Event::Message(m) => m.payload.len() as u32,
                    Event::Published(id) => u32::from(id.get()),
                    _ => 1,
                };
            }
            if let Ok(Some(at)) = engine.handle_timeout(now()) {
                sum += at.as_ticks() as u32;
            }
        }
        sum
    }
}

/// The blocking client over a black-box transport and clock.
#[cfg(feature = "blocking")]
mod blocking {
    use core::hint::black_box;

    use embassy_time::{Duration, Instant};
    use umqtt::blocking::{Client, Clock, Transport};
    use umqtt::{ConnectOptions, Publish, QoS};

    /// A transport whose reads and writes take whatever black_box says.
    pub struct Wire;

    impl embedded_io::ErrorType for Wire {
        type Error = embedded_io::ErrorKind;
    }

    impl embedded_io::Read for Wire {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let n = black_box(buf.len());
            if let Some(b) = buf.first_mut() {
                *b = black_box(0x30);
            }
            Ok(n)
        }
    }

    impl embedded_io::Write for Wire {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            Ok(black_box(buf.len()))
        }

        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    impl Transport for Wire {
        fn wait_readable(&mut self, timeout: Option<Duration>) -> Result<bool, Self::Error> {
            black_box(timeout);
            Ok(black_box(true))
        }
    }

    /// A clock whose time black_box decides.
    pub struct BoxClock;

    impl Clock for BoxClock {
        fn now(&self) -> Instant {
            Instant::from_ticks(black_box(0))
        }
    }

    #[cfg_attr(not(feature = "report"), allow(dead_code))]
    pub type BlockingClient<'b> = Client<'b, Wire, fn(&Publish<'_>), BoxClock>;

    #[cfg_attr(feature = "report", allow(dead_code))]
    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> u32 {
        let mut count = 0u32;
        #[cfg(feature = "qos2")]
        let mut slots = [0u16; 8];
        let client = Client::new(Wire, rx, tx, |m: &Publish<'_>| {
            count += black_box(m.payload.len() as u32);
        }, BoxClock);
        #[cfg(feature = "qos2")]
        let client = client.receive_qos2(black_box(&mut slots[..]));
        let mut client = client;
        let opts = ConnectOptions::new(black_box("board-1")).keep_alive_secs(black_box(60));
        let mut done = 0u32;
        done += u32::from(client.connect(&opts).is_ok());
        done += u32::from(client.subscribe(black_box("cmd/#"), QoS::AtLeastOnce).is_ok());
        done += u32::from(client.publish(black_box("t"), black_box(b"x"), QoS::AtLeastOnce, false).is_ok());
        done += u32::from(client.publish(black_box("t"), black_box(b"x"), QoS::AtMostOnce, false).is_ok());
        #[cfg(feature = "qos2")]
        {
            done += u32::from(client.publish(black_box("t"), black_box(b"x"), QoS::ExactlyOnce, false).is_ok());
            done += u32::from(client.subscribe(black_box("q2/#"), QoS::ExactlyOnce).is_ok());
        }
        done += u32::from(client.wait_msg().is_ok());
        done += u32::from(client.check_msg().is_ok());
        done += u32::from(client.ping().is_ok());
        done += u32::from(client.disconnect().is_ok());
        done + count
    }
}

/// The always-connected client: a runner over a black-box connector, and
/// every handle call, each polled once.
#[cfg(feature = "robust")]
mod robust {
    use core::hint::black_box;

    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use umqtt::robust::{Config, Runner, State};
    use umqtt::{ConnectOptions, QoS};

    use crate::client::{Wire, poll};

    /// Opens a [`Wire`], or fails, as black_box says.
    struct Dial;

    impl umqtt::connect::Connector for Dial {
        type Transport<'c> = Wire;
        type Error = ();

        async fn connect(&mut self) -> Result<Wire, ()> {
            if black_box(true) { Ok(Wire) } else { Err(()) }
        }
    }

    static STATE: State<CriticalSectionRawMutex, 128, 128, 64> = State::new();

    /// Budget for the runner's `run` future on this target (161 to 192
    /// bytes measured, over a zero-sized transport and connector).
    const RUN_BUDGET: usize = 256;

    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> u32 {
        let opts = ConnectOptions::new(black_box("board-1")).keep_alive_secs(black_box(60));
        let (mut runner, client) = Runner::new(Dial, &STATE, rx, tx, opts, Config::default());
        let mut done = u32::from(poll::<RUN_BUDGET, _>(runner.run()));
        done += u32::from(poll::<{ crate::client::FUTURE_BUDGET }, _>(client.subscribe(black_box("cmd/#"), QoS::AtLeastOnce)));
        done += u32::from(poll::<{ crate::client::FUTURE_BUDGET }, _>(client.publish(black_box("t"), black_box(b"x"), QoS::AtLeastOnce, false)));
        done += u32::from(poll::<{ crate::client::FUTURE_BUDGET }, _>(client.publish(black_box("t"), black_box(b"x"), QoS::AtMostOnce, false)));
        let mut buf = [0u8; 64];
        done += u32::from(poll::<{ crate::client::FUTURE_BUDGET }, _>(client.receive(&mut buf)));
        done += u32::from(client.try_receive(&mut buf).is_ok());
        done += client.stats().reconnects + client.state() as u32;
        done += u32::from(poll::<{ crate::client::FUTURE_BUDGET }, _>(client.close()));
        done
    }
}

#[entry]
#[cfg_attr(feature = "rsa-cycles", allow(unreachable_code, reason = "the RSA count exits QEMU"))]
fn main() -> ! {
    #[cfg(feature = "rsa-cycles")]
    rsa_cycles::run();
    let mut rx = [0u8; 512];
    let mut tx = [0u8; 512];
    black_box(&mut rx);
    black_box(&mut tx);
    #[cfg(feature = "codec")]
    black_box(exercise_codec(&mut rx));
    #[cfg(all(feature = "engine", not(feature = "report")))]
    black_box(engine::exercise(&mut rx, &mut tx));
    #[cfg(all(feature = "blocking", not(feature = "report")))]
    black_box(blocking::exercise(&mut rx, &mut tx));
    #[cfg(feature = "report")]
    {
        use cortex_m_semihosting::hprintln;
        hprintln!("size_of Engine {}", core::mem::size_of::<umqtt::engine::Engine<'static>>());
        hprintln!("size_of blocking-Client {}", core::mem::size_of::<blocking::BlockingClient<'static>>());
    }
    // With `tls` the client runs over TLS only, so that the flash figure is
    // the client over TLS, not the client twice. With `report` both run,
    // TLS first: the plain client's report exits QEMU.
    #[cfg(feature = "tls")]
    black_box(tls::exercise(&mut rx, &mut tx));
    // The same for the client over WebSocket.
    #[cfg(feature = "ws")]
    black_box(ws::exercise(&mut rx, &mut tx));
    // The always-connected client alone (it drives the engine itself).
    #[cfg(feature = "robust")]
    black_box(robust::exercise(&mut rx, &mut tx));
    #[cfg(all(
        feature = "client",
        any(not(any(feature = "tls", feature = "ws", feature = "robust")), feature = "report")
    ))]
    black_box(client::exercise(&mut rx, &mut tx));
    loop {
        black_box(&mut rx);
    }
}
