//! Leaving QEMU with a status: semihosting `SYS_EXIT`. QEMU exits 0 for
//! `ADP_Stopped_ApplicationExit` and 1 for any other reason, which is what
//! the test script checks.
use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::{debug, hprintln};

/// Exit QEMU with status 0.
pub fn success() -> ! {
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Exit QEMU with a non-zero status.
pub fn failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("PANIC: {}", info);
    failure()
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("HardFault: {:?}", frame);
    failure()
}
