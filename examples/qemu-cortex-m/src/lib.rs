//! Board support for running `umqtt` on QEMU's `mps2-an385` (ARM AN385 FPGA
//! image: Cortex-M3 at 25 MHz, CMSDK APB UARTs and timers).
//!
//! - [`time_driver`]: an embassy-time driver: time from CMSDK timer 0 (a
//!   free-running 25 MHz counter), alarms checked by a 1 kHz SysTick
//!   interrupt, the executor-integrated timer queue.
//! - [`uart`]: UART0 as an async `embedded_io_async::Read + Write` byte
//!   stream. QEMU connects it to a TCP socket (`-serial tcp:HOST:PORT`), so
//!   it is the MQTT transport.
//! - [`stack`]: the stack high-water mark (cortex-m-rt's `paint-stack`
//!   feature fills the stack with `0xCCCC_CCCC` at reset).
//! - [`exit`]: semihosting exit status, plus panic and HardFault handlers
//!   that exit non-zero.
//!
//! `unsafe` is used here for register access and linker symbols; the library
//! under test (`umqtt`) itself forbids it.
#![no_std]

pub mod exit;
pub mod stack;
pub mod time_driver;
pub mod uart;
mod waker;

pub use cortex_m_semihosting::hprintln as println;

/// Main clock of the AN385 image (QEMU's `SYSCLK_FRQ`): SysTick, UART and
/// timers all count at this rate.
pub const SYSCLK_HZ: u32 = 25_000_000;

/// Bring up the board: the time driver (timer 0 and SysTick) and UART0 (with
/// its interrupts).
/// Call once, at the start of `main`.
pub fn init() -> uart::Uart0 {
    // Safety: called once at start-up; nothing else owns the core
    // peripherals in this firmware.
    let mut core = unsafe { cortex_m::Peripherals::steal() };
    time_driver::init(&mut core.SYST);
    uart::Uart0::init()
}
