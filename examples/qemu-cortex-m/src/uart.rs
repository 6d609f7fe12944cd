//! UART0 of the AN385 (a CMSDK APB UART at 0x4000_4000, RX IRQ 0, TX IRQ 1)
//! as an async byte stream: `embedded_io_async::{Read, Write, ReadReady,
//! WriteReady}`.
//!
//! How QEMU models this UART (hw/char/cmsdk-apb-uart.c) decides the design:
//! - Receive: a one-byte buffer. QEMU's `can_receive` callback reports room
//!   only while RX is enabled and that byte is not full, so QEMU leaves
//!   further bytes in the TCP socket until the guest reads `DATA`. Nothing is
//!   dropped, however slow the guest is (flow control through the socket).
//!   The interrupt handler moves the byte into a 512-byte ring; when the ring
//!   is full it leaves the byte in `DATA`, which stops QEMU, and the reader
//!   drains it later. The ring only saves interrupt round trips.
//! - Transmit: a one-byte buffer handed to the socket at once; `TXFULL`
//!   stays set only while the socket would block, and its clearing raises
//!   the TX interrupt (enabled only while a writer waits). Writing `DATA`
//!   while `TXFULL` is set would be an overrun, so the writer never does.
//! - The model does not call `qemu_chr_fe_accept_input` when `DATA` is read,
//!   so QEMU's main loop only looks at the socket again at its next event;
//!   the 1 kHz SysTick provides one at least every millisecond.
use core::cell::RefCell;
use core::future::poll_fn;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};

use crate::waker::WakerSlot;

const BASE: usize = 0x4000_4000;
const DATA: usize = BASE;
const STATE: usize = BASE + 0x4;
const CTRL: usize = BASE + 0x8;
const INTSTATUS: usize = BASE + 0xC;
const BAUDDIV: usize = BASE + 0x10;

const STATE_TXFULL: u32 = 1 << 0;
const STATE_RXFULL: u32 = 1 << 1;
const STATE_RXOVERRUN: u32 = 1 << 3;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_TX_INTEN: u32 = 1 << 2;
const CTRL_RX_INTEN: u32 = 1 << 3;
const INT_TX: u32 = 1 << 0;
const INT_RX: u32 = 1 << 1;

#[derive(Clone, Copy)]
enum Irq {
    Uart0Rx = 0,
    Uart0Tx = 1,
}

// Safety: the numbers are the AN385 UART0 IRQ lines (QEMU hw/arm/mps2.c).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

fn read_reg(addr: usize) -> u32 {
    // Safety: `addr` is one of the UART0 registers above.
    unsafe { read_volatile(addr as *const u32) }
}

fn write_reg(addr: usize, value: u32) {
    // Safety: `addr` is one of the UART0 registers above.
    unsafe { write_volatile(addr as *mut u32, value) }
}

const RING: usize = 512;

struct Ring {
    buf: [u8; RING],
    head: usize,
    len: usize,
    overrun: bool,
}

impl Ring {
    const fn new() -> Self {
        Self {
            buf: [0; RING],
            head: 0,
            len: 0,
            overrun: false,
        }
    }

    /// Move received bytes from the UART into the ring while there is room.
    fn fill_from_hw(&mut self) {
        loop {
            let state = read_reg(STATE);
            if state & STATE_RXOVERRUN != 0 {
                // Cannot happen with QEMU's flow control; never hide it.
                self.overrun = true;
                write_reg(STATE, STATE_RXOVERRUN);
            }
            if state & STATE_RXFULL == 0 || self.len == RING {
                return;
            }
            let byte = read_reg(DATA) as u8;
            self.buf[(self.head + self.len) % RING] = byte;
            self.len += 1;
        }
    }

    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for slot in &mut out[..n] {
            *slot = self.buf[self.head];
            self.head = (self.head + 1) % RING;
        }
        self.len -= n;
        n
    }
}

static RX: Mutex<RefCell<Ring>> = Mutex::new(RefCell::new(Ring::new()));
static RX_WAKER: WakerSlot = WakerSlot::new();
static TX_WAKER: WakerSlot = WakerSlot::new();
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Transport errors of the UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartError {
    /// A received byte was lost (the UART reported an RX overrun).
    Overrun,
}

impl core::fmt::Display for UartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UART receive overrun: a byte was lost")
    }
}

impl core::error::Error for UartError {}

impl embedded_io::Error for UartError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// UART0, the only instance (see [`crate::init`]).
pub struct Uart0 {
    _private: (),
}

impl Uart0 {
    pub(crate) fn init() -> Self {
        assert!(!TAKEN.swap(true, Ordering::AcqRel), "UART0 already taken");
        // 25 MHz / 16: the fastest valid divider. QEMU ignores the rate on a
        // socket but warns when TX is enabled with an invalid divider.
        write_reg(BAUDDIV, 16);
        write_reg(INTSTATUS, INT_TX | INT_RX);
        write_reg(CTRL, CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN);
        // Safety: the handlers below are ready and share state only through
        // critical sections.
        unsafe {
            NVIC::unmask(Irq::Uart0Rx);
            NVIC::unmask(Irq::Uart0Tx);
        }
        Self { _private: () }
    }
}

fn modify_ctrl(_cs: CriticalSection<'_>, set: u32, clear: u32) {
    write_reg(CTRL, (read_reg(CTRL) | set) & !clear);
}

fn on_rx_irq() {
    write_reg(INTSTATUS, INT_RX);
    critical_section::with(|cs| {
        RX.borrow_ref_mut(cs).fill_from_hw();
        RX_WAKER.wake(cs);
    });
}

fn on_tx_irq() {
    write_reg(INTSTATUS, INT_TX);
    critical_section::with(|cs| {
        modify_ctrl(cs, 0, CTRL_TX_INTEN);
        TX_WAKER.wake(cs);
    });
}

/// Wait until the transmit buffer can take a byte.
async fn tx_ready() {
    poll_fn(|cx| {
        if read_reg(STATE) & STATE_TXFULL == 0 {
            return Poll::Ready(());
        }
        critical_section::with(|cs| {
            TX_WAKER.register(cs, cx.waker());
            modify_ctrl(cs, CTRL_TX_INTEN, 0);
        });
        // The socket may have drained before the interrupt was enabled:
        // the model raises the interrupt only on the transition.
        if read_reg(STATE) & STATE_TXFULL == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

impl embedded_io::ErrorType for Uart0 {
    type Error = UartError;
}

impl embedded_io_async::Read for Uart0 {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            critical_section::with(|cs| {
                let mut ring = RX.borrow_ref_mut(cs);
                ring.fill_from_hw();
                if ring.overrun {
                    ring.overrun = false;
                    return Poll::Ready(Err(UartError::Overrun));
                }
                if ring.len == 0 {
                    RX_WAKER.register(cs, cx.waker());
                    return Poll::Pending;
                }
                let n = ring.pop_into(buf);
                // A byte left in DATA while the ring was full can move now.
                ring.fill_from_hw();
                Poll::Ready(Ok(n))
            })
        })
        .await
    }
}

impl embedded_io_async::Write for Uart0 {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, UartError> {
        if buf.is_empty() {
            return Ok(0);
        }
        tx_ready().await;
        let mut n = 0;
        while n < buf.len() && read_reg(STATE) & STATE_TXFULL == 0 {
            write_reg(DATA, u32::from(buf[n]));
            n += 1;
        }
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), UartError> {
        // Every byte is in QEMU's socket once the last one left the buffer.
        tx_ready().await;
        Ok(())
    }
}

impl embedded_io::ReadReady for Uart0 {
    fn read_ready(&mut self) -> Result<bool, UartError> {
        critical_section::with(|cs| {
            let mut ring = RX.borrow_ref_mut(cs);
            ring.fill_from_hw();
            Ok(ring.len > 0)
        })
    }
}

impl embedded_io::WriteReady for Uart0 {
    fn write_ready(&mut self) -> Result<bool, UartError> {
        Ok(read_reg(STATE) & STATE_TXFULL == 0)
    }
}

// Without cortex-m-rt's `device` feature every external interrupt lands in
// `DefaultHandler`, which receives the IRQ number.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    match irqn {
        0 => on_rx_irq(),
        1 => on_tx_irq(),
        other => {
            cortex_m_semihosting::hprintln!("unexpected exception/IRQ {}", other);
            crate::exit::failure();
        }
    }
}
