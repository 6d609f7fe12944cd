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

    /// Budget for every client future on this target, checked when the
    /// firmware is compiled (issue 6: at most 512 bytes each).
    const FUTURE_BUDGET: usize = 512;

    fn poll<F: Future>(fut: F) -> bool {
        const { assert!(core::mem::size_of::<F>() <= FUTURE_BUDGET, "a client future exceeds its size budget") };
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(fut.as_mut().poll(&mut cx), Poll::Ready(_))
    }

    pub fn exercise(rx: &mut [u8], tx: &mut [u8]) -> u32 {
        let mut count = 0u32;
        let mut client = Client::new(Wire, rx, tx, |m: &Publish<'_>| {
            count += black_box(m.payload.len() as u32);
        });
        // Budget for the client itself, without its buffers (issue 6).
        const { assert!(core::mem::size_of::<Client<'static, Wire, fn(&Publish<'_>)>>() <= 128) };
        let opts = ConnectOptions::new(black_box("board-1")).keep_alive_secs(black_box(60));
        let mut done = 0u32;
        done += u32::from(poll(client.connect(&opts)));
        done += u32::from(poll(client.subscribe(black_box("cmd/#"), QoS::AtLeastOnce)));
        done += u32::from(poll(client.publish(black_box("t"), black_box(b"x"), QoS::AtLeastOnce, false)));
        done += u32::from(poll(client.publish(black_box("t"), black_box(b"x"), QoS::AtMostOnce, false)));
        done += u32::from(poll(client.wait_msg()));
        done += u32::from(poll(client.check_msg()));
        done += u32::from(poll(client.ping()));
        done += u32::from(poll(client.disconnect()));
        #[cfg(feature = "report")]
        report(&mut client, &opts);
        drop(client);
        done + count
    }

    /// Prints the sizes `scripts/size-report` tabulates, then exits QEMU.
    #[cfg(feature = "report")]
    fn report<H: FnMut(&Publish<'_>)>(client: &mut Client<'_, Wire, H>, opts: &ConnectOptions<'_>) {
        use core::mem::size_of_val;
        use cortex_m_semihosting::{debug, hprintln};
        hprintln!("size_of Client {}", size_of_val(client));
        hprintln!("size_of connect {}", size_of_val(&client.connect(opts)));
        hprintln!("size_of publish {}", size_of_val(&client.publish("t", b"x", QoS::AtLeastOnce, false)));
        hprintln!("size_of subscribe {}", size_of_val(&client.subscribe("t", QoS::AtLeastOnce)));
        hprintln!("size_of wait_msg {}", size_of_val(&client.wait_msg()));
        hprintln!("size_of check_msg {}", size_of_val(&client.check_msg()));
        hprintln!("size_of ping {}", size_of_val(&client.ping()));
        debug::exit(debug::EXIT_SUCCESS);
    }
}

#[entry]
fn main() -> ! {
    let mut rx = [0u8; 512];
    let mut tx = [0u8; 512];
    black_box(&mut rx);
    black_box(&mut tx);
    #[cfg(feature = "codec")]
    black_box(exercise_codec(&mut rx));
    #[cfg(feature = "client")]
    black_box(client::exercise(&mut rx, &mut tx));
    loop {
        black_box(&mut rx);
    }
}
