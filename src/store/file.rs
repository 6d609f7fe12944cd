//! [`FileFlash`]: a NOR flash kept in a file, for host tools (the CLI's
//! `--store FILE`). Each write goes to the file before it returns, so what
//! it holds survives the process being killed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashErrorKind, ReadNorFlash,
};

/// A NOR flash of 4-byte words and 4 KiB pages in a file: writes AND the
/// bits in, an erase sets a page to 0xFF.
pub struct FileFlash {
    file: File,
    len: usize,
}

impl FileFlash {
    /// Opens `path` as a flash of `len` bytes (a multiple of 4096),
    /// creating it erased if it does not exist or has another length.
    pub fn open(path: &Path, len: usize) -> std::io::Result<Self> {
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        if file.metadata()?.len() != len as u64 {
            file.set_len(0)?;
            for _ in 0..len / 4096 {
                file.write_all(&[0xFF; 4096])?;
            }
            file.sync_all()?;
        }
        Ok(Self { file, len })
    }

    fn io(&mut self, offset: u32, len: usize) -> Result<(), NorFlashErrorKind> {
        if offset as usize + len > self.len {
            return Err(NorFlashErrorKind::OutOfBounds);
        }
        self.file
            .seek(SeekFrom::Start(u64::from(offset)))
            .map(|_| ())
            .map_err(|_| NorFlashErrorKind::Other)
    }
}

impl ErrorType for FileFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.io(offset, bytes.len())?;
        self.file.read_exact(bytes).map_err(|_| NorFlashErrorKind::Other)
    }

    fn capacity(&self) -> usize {
        self.len
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if !from.is_multiple_of(4096) || !to.is_multiple_of(4096) || to < from {
            return Err(NorFlashErrorKind::NotAligned);
        }
        self.io(from, (to - from) as usize)?;
        for _ in 0..(to - from) / 4096 {
            self.file.write_all(&[0xFF; 4096]).map_err(|_| NorFlashErrorKind::Other)?;
        }
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if !offset.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        self.io(offset, bytes.len())?;
        let mut at = offset;
        for chunk in bytes.chunks(256) {
            let old = &mut [0u8; 256][..chunk.len()];
            self.io(at, chunk.len())?;
            self.file.read_exact(old).map_err(|_| NorFlashErrorKind::Other)?;
            old.iter_mut().zip(chunk).for_each(|(o, n)| *o &= n);
            self.io(at, chunk.len())?;
            self.file.write_all(old).map_err(|_| NorFlashErrorKind::Other)?;
            at += chunk.len() as u32;
        }
        Ok(())
    }
}

impl MultiwriteNorFlash for FileFlash {}
