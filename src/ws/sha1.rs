//! SHA-1 (FIPS 180-4 §6.1), for `Sec-WebSocket-Accept` only: the handshake
//! hashes 60 bytes once per connection, so a small loop rather than an
//! unrolled crate (about 2.5 KB less flash on a Cortex-M). SHA-1's
//! weaknesses do not matter here: RFC 6455 uses it to show the server
//! understood the handshake, not for security.

/// The digest of `parts`, concatenated.
pub(super) fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut state = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];
    let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
    // The message, 0x80, zeros up to 56 mod 64, the length in bits.
    let zeros = (119 - (len & 63)) & 63;
    let padding = core::iter::once(0x80).chain(core::iter::repeat_n(0, zeros as usize));
    let bytes = parts.iter().flat_map(|p| p.iter().copied()).chain(padding);
    let mut block = [0u8; 64];
    let mut filled = 0;
    for byte in bytes.chain(len.wrapping_mul(8).to_be_bytes()) {
        if let Some(slot) = block.get_mut(filled) {
            *slot = byte;
        }
        filled += 1;
        if filled == block.len() {
            compress(&mut state, &block);
            filled = 0;
        }
    }
    let mut digest = [0; 20];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// One 64-byte block into the state, with the 16-word message schedule.
fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 16];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        if let &[a, b, c, d] = bytes {
            *word = u32::from_be_bytes([a, b, c, d]);
        }
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    for i in 0..80 {
        if i >= 16 {
            let x = w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15];
            w[i & 15] = x.rotate_left(1);
        }
        let (f, k) = match i {
            0..20 => ((b & c) | (!b & d), 0x5a82_7999),
            20..40 => (b ^ c ^ d, 0x6ed9_eba1),
            40..60 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
            _ => (b ^ c ^ d, 0xca62_c1d6),
        };
        let t = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(w[i & 15]);
        (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::sha1;

    fn hex(digest: [u8; 20]) -> std::string::String {
        digest.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    /// FIPS 180-4 examples: one block, two blocks, and the empty message.
    #[test]
    fn fips_180_examples() {
        assert_eq!(hex(sha1(&[b"abc"])), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let two = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(
            hex(sha1(&[&two[..20], &two[20..]])),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(hex(sha1(&[])), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(hex(sha1(&[&[b'a'; 64]])), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
    }
}
