//! Board NVRAM of the Raspberry Pi Pico W's CYW43439 (Infineon) radio.
//!
//! Since cyw43 0.7 the driver no longer carries this table and the
//! `cyw43-firmware` crate only ships the firmware and CLM blobs, so the
//! board description lives here: the `key=value` settings the chip needs at
//! boot (board ids, crystal frequency, RF calibration, MAC placeholder),
//! each ending in NUL, the whole list ending in an extra NUL. The values are
//! the Pico W's published ones (Raspberry Pi `wifi_nvram_43439.h`, the same
//! table embassy's `nvram_rp2040` carries); change them only for another
//! board.

use cyw43::{A4, Aligned};

const TEXT: &str = concat!(
    "NVRAMRev=$Rev$\0",
    "manfid=0x2d0\0",
    "prodid=0x0727\0",
    "vendid=0x14e4\0",
    "devid=0x43e2\0",
    "boardtype=0x0887\0",
    "boardrev=0x1100\0",
    "boardnum=22\0",
    "macaddr=00:A0:50:b5:59:5e\0",
    "sromrev=11\0",
    "boardflags=0x00404001\0",
    "boardflags3=0x04000000\0",
    "xtalfreq=37400\0",
    "nocrc=1\0",
    "ag0=255\0",
    "aa2g=1\0",
    "ccode=ALL\0",
    "pa0itssit=0x20\0",
    "extpagain2g=0\0",
    "pa2ga0=-168,6649,-778\0",
    "AvVmid_c0=0x0,0xc8\0",
    "cckpwroffset0=5\0",
    "maxp2ga0=84\0",
    "txpwrbckof=6\0",
    "cckbw202gpo=0\0",
    "legofdmbw202gpo=0x66111111\0",
    "mcsbw202gpo=0x77711111\0",
    "propbw202gpo=0xdd\0",
    "ofdmdigfilttype=18\0",
    "ofdmdigfilttypebe=18\0",
    "papdmode=1\0",
    "papdvalidtest=1\0",
    "pacalidx2g=45\0",
    "papdepsoffset=-30\0",
    "papdendidx=58\0",
    "ltecxmux=0\0",
    "ltecxpadnum=0x0102\0",
    "ltecxfnsel=0x44\0",
    "ltecxgcigpio=0x01\0",
    "il0macaddr=00:90:4c:c5:12:38\0",
    "wl0id=0x431b\0",
    "deadman_to=0xffffffff\0",
    "muxenab=0x100\0",
    "spurconfig=0x3\0",
    "glitch_based_crsmin=1\0",
    "btc_mode=1\0",
    "\0",
);

const fn to_array<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

static NVRAM_ALIGNED: Aligned<A4, [u8; TEXT.len()]> = Aligned(to_array(TEXT));

/// The NVRAM image, 4-byte aligned as `cyw43::new` requires.
pub static NVRAM: &Aligned<A4, [u8]> = &NVRAM_ALIGNED;
