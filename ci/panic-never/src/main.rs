//! The panic-never proof of the codec, and (features) of the async client,
//! the blocking client and the TLS stream.
//!
//! Decodes and encodes every packet type, validates and matches topics, on
//! bytes the optimizer cannot see through (`black_box`), in a firmware
//! build (release, LTO). With `client`, `blocking` or `tls`, also drives
//! that part of umqtt over a black-box transport (`Wire`), each call polled
//! or made once, which links all of its code. The panic handler calls `never_panic`, which is
//! defined nowhere: if any panic path of the codec survives optimization,
//! the link fails with "undefined symbol: never_panic".
//!
//! `scripts/panic-never` builds it for thumbv7em-none-eabihf.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;

use umqtt::packet::{
    self, ConnAck, Connect, ConnectReturnCode, FixedHeader, LastWill, List, Packet, PacketId,
    ProtocolLevel, Publish, QoS, SubAck, Subscribe, SubscribeReturnCode, SubscribeTopic,
    Unsubscribe,
};
use umqtt::topic::{TopicFilter, TopicName};

#[cfg(not(feature = "diagnose"))]
unsafe extern "C" {
    /// Defined nowhere: referencing it fails the link.
    fn never_panic() -> !;
}

#[cfg(feature = "diagnose")]
#[unsafe(no_mangle)]
extern "C" fn never_panic() -> ! {
    loop {}
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // With `diagnose`, keep the panic's message and location alive, so that
    // the panic functions of core (expect_failed, panic_bounds_check, the
    // async fn "resumed after completion" panic, ...) stay distinct and
    // are not merged into one by LLVM's function merging: scripts/panic-never
    // tells them apart by name.
    #[cfg(feature = "diagnose")]
    black_box(info);
    #[cfg(not(feature = "diagnose"))]
    let _ = info;
    // SAFETY: never returns; with `diagnose` a plain loop.
    #[allow(unused_unsafe)]
    unsafe {
        never_panic()
    }
}

/// One packet of every type, as a stream: CONNECT (will and credentials),
/// CONNACK, PUBLISH QoS 1, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE (two
/// filters), SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT.
static STREAM: &[u8] = &[
    0x10, 0x28, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xee, 0x00, 0x3c, 0x00, 0x02, b'i', b'd',
    0x00, 0x05, b'w', b'/', b'd', b'i', b'e', 0x00, 0x03, b'b', b'y', b'e', 0x00, 0x04, b'u', b's',
    b'e', b'r', 0x00, 0x06, b's', b'e', b'c', b'r', b'e', b't', // CONNECT
    0x20, 0x02, 0x01, 0x00, // CONNACK
    0x32, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x07, b'p', b'a', b'y', // PUBLISH
    0x40, 0x02, 0x00, 0x07, // PUBACK
    0x50, 0x02, 0x00, 0x08, // PUBREC
    0x62, 0x02, 0x00, 0x08, // PUBREL
    0x70, 0x02, 0x00, 0x08, // PUBCOMP
    0x82, 0x0c, 0x00, 0x09, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x01, b'#',
    0x00, // SUBSCRIBE
    0x90, 0x04, 0x00, 0x09, 0x01, 0x80, // SUBACK
    0xa2, 0x05, 0x00, 0x0a, 0x00, 0x01, b'#', // UNSUBSCRIBE
    0xb0, 0x02, 0x00, 0x0a, // UNSUBACK
    0xc0, 0x00, 0xd0, 0x00, 0xe0, 0x00, // PINGREQ, PINGRESP, DISCONNECT
];

static mut OUT: [u8; 256] = [0; 256];

/// Everything the codec offers on one decoded packet; returns a number
/// that depends on all of it.
fn exercise(p: &Packet<'_>, out: &mut [u8], filter: &str) -> usize {
    let mut sum = p.packet_type() as usize;
    sum += packet::encoded_len(p).unwrap_or(1);
    if let Ok(n) = packet::encode(p, out) {
        sum += n;
        if let Ok(h) = FixedHeader::parse(out) {
            sum += h.packet_len();
            if let Some(body) = out.get(h.header_len..h.packet_len()) {
                sum += usize::from(packet::decode_body(&h, body).is_ok());
            }
        }
    }
    let filter = TopicFilter::new(filter);
    match p {
        Packet::Publish(publish) => {
            if let (Ok(f), Ok(n)) = (filter, TopicName::new(publish.topic)) {
                sum += usize::from(f.matches(&n));
            }
            sum += publish.payload.len();
        }
        Packet::Subscribe(s) => {
            sum += s.topics.len();
            sum += s
                .topics
                .iter()
                .map(|t| t.qos as usize + t.filter.len())
                .sum::<usize>();
        }
        Packet::SubAck(s) => {
            sum += s
                .return_codes
                .iter()
                .filter(|c| *c == SubscribeReturnCode::Failure)
                .count()
        }
        Packet::Unsubscribe(u) => sum += u.filters.iter().map(str::len).sum::<usize>(),
        Packet::PubAck(id)
        | Packet::PubRec(id)
        | Packet::PubRel(id)
        | Packet::PubComp(id)
        | Packet::UnsubAck(id) => {
            sum += usize::from(id.next().get());
        }
        _ => {}
    }
    sum
}

/// A time driver whose time black_box decides: enough to link
/// embassy-time for the async client.
#[cfg(feature = "client")]
mod clock {
    struct BoxClock;

    impl embassy_time_driver::Driver for BoxClock {
        fn now(&self) -> u64 {
            core::hint::black_box(0)
        }
        fn schedule_wake(&self, _at: u64, waker: &core::task::Waker) {
            core::hint::black_box(waker);
        }
    }

    embassy_time_driver::time_driver_impl!(static DRIVER: BoxClock = BoxClock);
}

/// The async client over a transport whose reads and writes black_box
/// decides; every method polled once.
#[cfg(feature = "client")]
mod client {
    use core::future::Future;
    use core::hint::black_box;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};

    use umqtt::{Client, ConnectOptions, Publish, QoS};

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

    /// Polls `fut` once; returns its output if it finished.
    pub fn poll<F: Future>(fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        }
    }

    /// Every public method of the async client, once.
    #[cfg_attr(feature = "robust", allow(dead_code))]
    pub fn exercise<T>(transport: T, rx: &mut [u8], tx: &mut [u8]) -> usize
    where
        T: embedded_io_async::Read + embedded_io_async::Write,
    {
        let mut sum = 0usize;
        let mut slots = [0u16; 4];
        let client = Client::new(transport, rx, tx, |m: &Publish<'_>| {
            sum += black_box(m.payload.len());
        });
        let mut client = client.receive_qos2(black_box(&mut slots[..]));
        let opts = ConnectOptions::new(black_box("board-1"))
            .keep_alive_secs(black_box(60))
            .clean_session(black_box(false));
        let mut done = 0usize;
        done += usize::from(poll(client.connect(&opts)).is_some_and(|r| r.is_ok()));
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let qos = black_box(qos);
            done += usize::from(poll(client.subscribe(black_box("cmd/#"), qos)).is_some());
            done += usize::from(poll(client.publish(black_box("t"), black_box(b"x"), qos, black_box(false))).is_some());
            done += usize::from(poll(client.publish_no_wait(black_box("t"), black_box(b"x"), qos, false)).is_some());
        }
        done += usize::from(poll(client.unsubscribe(black_box("cmd/#"))).is_some());
        done += usize::from(poll(client.wait_msg()).is_some());
        done += usize::from(poll(client.check_msg()).is_some());
        done += usize::from(poll(client.ping()).is_some());
        done += usize::from(poll(client.disconnect()).is_some());
        done += client.in_flight();
        black_box(client.state());
        drop(client);
        done + sum
    }
}

/// The always-connected client over a connector of black-box transports:
/// the runner and every handle method polled once.
#[cfg(feature = "robust")]
mod robust {
    use core::hint::black_box;

    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use umqtt::robust::{Config, Runner, State};
    use umqtt::{ConnectOptions, QoS};

    use crate::client::{Wire, poll};

    struct Dial;

    impl umqtt::connect::Connector for Dial {
        type Transport<'c> = Wire;
        type Error = ();

        async fn connect(&mut self) -> Result<Wire, ()> {
            if black_box(true) { Ok(Wire) } else { Err(()) }
        }
    }

    static STATE: State<CriticalSectionRawMutex, 128, 128, 64> = State::new();

    /// A critical section for the link check (a single-core firmware would
    /// take cortex-m's).
    struct NoInterrupts;
    critical_section::set_impl!(NoInterrupts);

    // SAFETY: the firmware is never run, only linked.
    unsafe impl critical_section::Impl for NoInterrupts {
        unsafe fn acquire() -> critical_section::RawRestoreState {
            black_box(())
        }

        unsafe fn release(_: critical_section::RawRestoreState) {}
    }

    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> usize {
        let mut slots = [0u16; 4];
        let opts = ConnectOptions::new(black_box("board-1"))
            .keep_alive_secs(black_box(60))
            .clean_session(black_box(false));
        let (runner, client) = Runner::new(Dial, &STATE, rx, tx, opts, Config::default());
        let mut runner = runner.with_rng(|| black_box(7));
        runner.receive_qos2(black_box(&mut slots[..]));
        let mut done = usize::from(poll(runner.run()).is_some());
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let qos = black_box(qos);
            done += usize::from(poll(client.subscribe(black_box("cmd/#"), qos)).is_some());
            done += usize::from(poll(client.publish(black_box("t"), black_box(b"x"), qos, false)).is_some());
        }
        done += usize::from(poll(client.unsubscribe(black_box("cmd/#"))).is_some());
        let mut buf = [0u8; 64];
        done += usize::from(poll(client.receive(black_box(&mut buf[..]))).is_some());
        done += usize::from(client.try_receive(black_box(&mut buf[..])).is_ok());
        done += usize::from(poll(client.close()).is_some());
        black_box((client.state(), client.stats()));
        done
    }
}

/// The blocking client over a transport and clock black_box decides;
/// every method called once.
#[cfg(feature = "blocking")]
mod blocking {
    use core::hint::black_box;

    use embassy_time::{Duration, Instant};
    use umqtt::blocking::{Client, Clock, Transport};
    use umqtt::{ConnectOptions, Publish, QoS};

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

    struct BoxClock;

    impl Clock for BoxClock {
        fn now(&self) -> Instant {
            Instant::from_ticks(black_box(0))
        }
    }

    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> usize {
        let mut sum = 0usize;
        let mut slots = [0u16; 4];
        let client = Client::new(Wire, rx, tx, |m: &Publish<'_>| {
            sum += black_box(m.payload.len());
        }, BoxClock);
        let mut client = client.receive_qos2(black_box(&mut slots[..]));
        let opts = ConnectOptions::new(black_box("board-1"))
            .keep_alive_secs(black_box(60))
            .clean_session(black_box(false));
        let mut done = 0usize;
        done += usize::from(client.connect(&opts).is_ok());
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let qos = black_box(qos);
            done += usize::from(client.subscribe(black_box("cmd/#"), qos).is_ok());
            done += usize::from(client.publish(black_box("t"), black_box(b"x"), qos, black_box(false)).is_ok());
            if let Ok(id) = client.publish_no_wait(black_box("t"), black_box(b"x"), qos, false) {
                done += usize::from(client.wait_acked(id).is_ok());
            }
        }
        done += usize::from(client.wait_all_acked().is_ok());
        done += usize::from(client.unsubscribe(black_box("cmd/#")).is_ok());
        done += usize::from(client.wait_msg().is_ok());
        done += usize::from(client.check_msg().is_ok());
        done += usize::from(client.ping().is_ok());
        done += usize::from(client.reconnect(Wire, &opts).is_ok());
        done += usize::from(client.disconnect().is_ok());
        done += client.in_flight();
        black_box(client.state());
        black_box(client.into_session());
        done + sum
    }
}

/// The async client over umqtt's TLS stream: PEM decoding, the handshake
/// (server verified against a CA), then the client over the stream.
#[cfg(feature = "tls")]
mod tls {
    use core::hint::black_box;

    use umqtt::tls::{self, MaxFragmentLength, TLS_RECORD_OVERHEAD, TlsOptions};

    use crate::client::{Wire, exercise, poll};

    struct Rng;

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

    const CA_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
    const MFL: MaxFragmentLength = MaxFragmentLength::Bits12;
    const READ_RECORD: usize = tls::read_record_buffer_len(Some(MFL));
    const WRITE_RECORD: usize = 1024 + TLS_RECORD_OVERHEAD;

    pub fn run(rx: &mut [u8], tx: &mut [u8]) -> usize {
        let mut read = [0u8; READ_RECORD];
        let mut write = [0u8; WRITE_RECORD];
        let mut ca_der = [0u8; 1024];
        let Ok(ca) = tls::pem::certificate_der(black_box(CA_PEM), &mut ca_der) else {
            return 0;
        };
        let options = TlsOptions::new(black_box("broker.example.com"), ca).max_fragment_length(MFL);
        match poll(tls::connect(Wire, &mut read, &mut write, &options, Rng)) {
            Some(Ok(stream)) => exercise(stream, rx, tx),
            _ => 1,
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // SAFETY: the only reference to OUT, taken once.
    let out: &mut [u8; 256] = unsafe { &mut *core::ptr::addr_of_mut!(OUT) };
    let out: &mut [u8] = black_box(out);
    let mut sum = 0usize;

    // Decode the opaque stream packet by packet, re-encode each.
    let filter: &str = black_box("+/#");
    let mut rest: &[u8] = black_box(STREAM);
    while let Ok(d) = packet::decode(rest) {
        sum += exercise(&d.packet, out, filter);
        rest = rest.get(d.len..).unwrap_or(&[]);
    }

    // Encode hand-built packets of every type from opaque fields.
    let text: &str = black_box("sensors/01/temp");
    let bytes: &[u8] = black_box(b"payload");
    let qos = QoS::from_bits(black_box(1)).unwrap_or(QoS::AtMostOnce);
    let id = PacketId::new(black_box(7)).unwrap_or(PacketId::MAX);
    let topics = [
        SubscribeTopic { filter: text, qos },
        SubscribeTopic { filter, qos },
    ];
    let codes = [
        SubscribeReturnCode::Success(qos),
        SubscribeReturnCode::Failure,
    ];
    let filters = [text, filter];
    let code = ConnectReturnCode::from_u8(black_box(0)).unwrap_or(ConnectReturnCode::NotAuthorized);
    let packets = [
        Packet::Connect(Connect {
            protocol: if black_box(true) {
                ProtocolLevel::V311
            } else {
                ProtocolLevel::V31
            },
            clean_session: black_box(true),
            keep_alive: black_box(60),
            client_id: text,
            will: Some(LastWill {
                topic: text,
                payload: bytes,
                qos,
                retain: black_box(true),
            }),
            username: Some(text),
            password: Some(bytes),
        }),
        Packet::ConnAck(ConnAck {
            session_present: black_box(false),
            code,
        }),
        Packet::Publish(Publish {
            dup: black_box(false),
            qos,
            retain: black_box(false),
            topic: text,
            packet_id: Some(id),
            payload: bytes,
        }),
        Packet::PubAck(id),
        Packet::PubRec(id),
        Packet::PubRel(id),
        Packet::PubComp(id),
        Packet::Subscribe(Subscribe {
            packet_id: id,
            topics: List::Items(black_box(&topics[..])),
        }),
        Packet::SubAck(SubAck {
            packet_id: id,
            return_codes: List::Items(black_box(&codes[..])),
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            filters: List::Items(black_box(&filters[..])),
        }),
        Packet::UnsubAck(id),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect,
    ];
    for p in black_box(&packets) {
        sum += exercise(p, out, filter);
    }

    #[cfg(any(feature = "client", feature = "blocking"))]
    {
        let mut rx = [0u8; 512];
        let mut tx = [0u8; 512];
        let (rx, tx) = (black_box(&mut rx[..]), black_box(&mut tx[..]));
        #[cfg(all(feature = "client", not(feature = "tls"), not(feature = "robust")))]
        {
            sum += client::exercise(client::Wire, rx, tx);
        }
        #[cfg(feature = "robust")]
        {
            sum += robust::exercise(rx, tx);
        }
        #[cfg(feature = "tls")]
        {
            sum += tls::run(rx, tx);
        }
        #[cfg(feature = "blocking")]
        {
            sum += blocking::exercise(rx, tx);
        }
    }
    black_box(sum);
    loop {
        core::hint::spin_loop();
    }
}
