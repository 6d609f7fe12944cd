//! Stack high-water mark.
//!
//! cortex-m-rt's `paint-stack` feature makes the reset handler fill
//! everything from `_stack_end` (end of `.bss`/`.uninit`) up to
//! `_stack_start` (top of RAM) with `0xCCCC_CCCC` before `main`. The deepest
//! word that no longer holds the pattern marks the most stack ever used.
//! (A function that reserved stack but never wrote its deepest words is not
//! counted; for a high-water mark that is the usual, small, error.)
use core::ptr::addr_of;

const PAINT: u32 = 0xCCCC_CCCC;

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
    static __sdata: u32;
}

/// Stack figures in bytes.
#[derive(Debug, Clone, Copy)]
pub struct StackUsage {
    /// Most stack ever used since reset.
    pub used: usize,
    /// Size of the stack region (all RAM above the statics).
    pub size: usize,
    /// RAM taken by statics (`.data` + `.bss` + `.uninit`), which includes
    /// the embassy task storage, i.e. the async state machines.
    pub statics: usize,
}

/// Scan the painted stack region from its low end for the first overwritten word.
pub fn usage() -> StackUsage {
    let low = addr_of!(_stack_end) as usize;
    let top = addr_of!(_stack_start) as usize;
    let ram = addr_of!(__sdata) as usize;
    let mut p = low;
    while p < top {
        // Safety: [low, top) is RAM owned by the stack region; reading it is
        // harmless (it is the deep, unused end of the stack or live frames
        // above ours, which we only read).
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PAINT {
            break;
        }
        p += 4;
    }
    StackUsage {
        used: top - p,
        size: top - low,
        statics: low - ram,
    }
}
