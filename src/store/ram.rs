//! A NOR flash in RAM, for host tests: NOR semantics (a write only clears
//! bits, an erase sets a whole page to 0xFF), wear counters, and power
//! cuts at any word of any write.

use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashErrorKind, ReadNorFlash,
};

/// What a [`RamFlash`] has done since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlashStats {
    /// Words written (4 bytes each).
    pub words_written: u64,
    /// Pages erased.
    pub erases: u64,
}

/// When the power of a [`RamFlash`] goes: after this many more word
/// writes (the next one is torn: only some of its bits are written).
/// Erases are atomic and count as one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut {
    /// Steps (words written, pages erased) still done in full.
    pub after: u64,
}

/// A NOR flash over a caller buffer (whose length is a multiple of
/// `ERASE` bytes): 4-byte words, `ERASE`-byte pages, writes AND the
/// bits in (so a word may be written twice: [`MultiwriteNorFlash`]).
pub struct RamFlash<'a, const ERASE: usize = 4096> {
    bytes: &'a mut [u8],
    stats: FlashStats,
    cut: Option<PowerCut>,
    dead: bool,
}

impl<'a, const ERASE: usize> RamFlash<'a, ERASE> {
    /// A flash over `bytes`, as they are (fill them with 0xFF for an
    /// erased one).
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Self { bytes, stats: FlashStats::default(), cut: None, dead: false }
    }

    /// Cuts the power after `cut` (`None`: never). Once cut, every write
    /// and erase fails until [`power_on`](Self::power_on).
    pub fn set_power_cut(&mut self, cut: Option<PowerCut>) {
        self.cut = cut;
    }

    /// Whether the power was cut.
    pub fn is_cut(&self) -> bool {
        self.dead
    }

    /// Power is back (a reboot): the flash keeps what it holds.
    pub fn power_on(&mut self) {
        self.dead = false;
        self.cut = None;
    }

    /// The wear counters.
    pub fn stats(&self) -> FlashStats {
        self.stats
    }

    /// The flash's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// One more step (a word written, a page erased): whether the power
    /// lasts for it.
    fn step(&mut self) -> bool {
        if self.dead {
            return false;
        }
        match self.cut.as_mut() {
            Some(cut) if cut.after == 0 => {
                self.dead = true;
                false
            }
            Some(cut) => {
                cut.after -= 1;
                true
            }
            None => true,
        }
    }

    fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, NorFlashErrorKind> {
        let start = usize::try_from(offset).map_err(|_| NorFlashErrorKind::OutOfBounds)?;
        let end = start.checked_add(len).ok_or(NorFlashErrorKind::OutOfBounds)?;
        if end > self.bytes.len() {
            return Err(NorFlashErrorKind::OutOfBounds);
        }
        Ok(start..end)
    }
}

impl<const ERASE: usize> ErrorType for RamFlash<'_, ERASE> {
    type Error = NorFlashErrorKind;
}

impl<const ERASE: usize> ReadNorFlash for RamFlash<'_, ERASE> {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let range = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(self.bytes.get(range).unwrap_or_default());
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl<const ERASE: usize> NorFlash for RamFlash<'_, ERASE> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = ERASE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let range = self.range(from, to.saturating_sub(from) as usize)?;
        if range.start % ERASE != 0 || range.end % ERASE != 0 {
            return Err(NorFlashErrorKind::NotAligned);
        }
        for page in range.step_by(ERASE) {
            if !self.step() {
                return Err(NorFlashErrorKind::Other);
            }
            self.bytes.get_mut(page..page + ERASE).unwrap_or_default().fill(0xFF);
            self.stats.erases += 1;
        }
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if self.dead {
            return Err(NorFlashErrorKind::Other);
        }
        let range = self.range(offset, bytes.len())?;
        if range.start % 4 != 0 || !bytes.len().is_multiple_of(4) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        for (i, word) in bytes.chunks(4).enumerate() {
            let at = range.start + 4 * i;
            let torn = !self.step();
            let Some(target) = self.bytes.get_mut(at..at + 4) else { break };
            for (j, (old, new)) in target.iter_mut().zip(word).enumerate() {
                // A torn word: only its first two bytes' bits are cleared.
                if !torn || j < 2 {
                    *old &= *new;
                }
            }
            if torn {
                return Err(NorFlashErrorKind::Other);
            }
            self.stats.words_written += 1;
        }
        Ok(())
    }
}

impl<const ERASE: usize> MultiwriteNorFlash for RamFlash<'_, ERASE> {}
