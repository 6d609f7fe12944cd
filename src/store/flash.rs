//! [`FlashStore`]: the session records in a NOR-flash partition, through
//! `sequential-storage`'s map (wear levelling, safe against power cuts).
//!
//! One record per packet identifier in use: the key tells outbound
//! (`0x1_0000 | id`) from inbound (`0x2_0000 | id`); an outbound record's
//! value is a sequence number (the publication order) and the encoded
//! PUBLISH, or its PUBREL once released; an inbound record is empty.

use core::future::Future;
use core::ops::Range;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_storage_async::nor_flash::MultiwriteNorFlash;
use sequential_storage::Error as FlashError;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage, SerializationError, Value};

use super::{BlockingStore, Store, StoreError, StoreOp};
use crate::engine::Engine;
use crate::packet::PacketId;

const OUTBOUND: u32 = 0x1_0000;
const INBOUND: u32 = 0x2_0000;

type NoCache = Cache<Uncached, Uncached, Uncached, u32>;

/// One stored value: the order, then the packet (empty for an inbound
/// identifier).
struct Record<'a> {
    seq: u32,
    packet: &'a [u8],
}

impl<'a> Value<'a> for Record<'a> {
    fn serialize_into(&self, buffer: &mut [u8]) -> Result<usize, SerializationError> {
        let len = 4 + self.packet.len();
        let out = buffer.get_mut(..len).ok_or(SerializationError::BufferTooSmall)?;
        let (seq, packet) = out.split_at_mut(4);
        seq.copy_from_slice(&self.seq.to_le_bytes());
        packet.copy_from_slice(self.packet);
        Ok(len)
    }

    fn deserialize_from(buffer: &'a [u8]) -> Result<(Self, usize), SerializationError> {
        let (seq, packet) =
            buffer.split_first_chunk::<4>().ok_or(SerializationError::InvalidFormat)?;
        Ok((Self { seq: u32::from_le_bytes(*seq), packet }, buffer.len()))
    }
}

/// The session records of a client in a flash partition: a
/// [`Store`] and a [`BlockingStore`] over an `embedded-storage-async`
/// NOR flash that can write a word twice (`MultiwriteNorFlash`: the
/// internal flash of the RP2040, the ESP32 family, STM32, nRF).
///
/// `buf` holds one record while it is written or read: at least the
/// largest PUBLISH the client sends plus 12 bytes, rounded up to the
/// flash's word size. The partition must hold a record per message in
/// flight and per QoS 2 slot, plus one free page (sequential-storage
/// keeps one for garbage collection).
///
/// The blocking store runs the flash's futures to completion by polling:
/// give it a flash whose operations do not wait (any blocking flash
/// wrapped as async, such as [`RamFlash`](super::RamFlash)).
pub struct FlashStore<'b, F: MultiwriteNorFlash> {
    map: MapStorage<u32, F, NoCache>,
    buf: &'b mut [u8],
    /// The sequence number of the next outbound record.
    next_seq: u32,
    loaded: bool,
}

impl<'b, F: MultiwriteNorFlash> FlashStore<'b, F> {
    /// A store in the pages `range` of `flash` (page-aligned, at least two
    /// pages), with `buf` to serialise records in.
    pub fn new(flash: F, range: Range<u32>, buf: &'b mut [u8]) -> Result<Self, StoreError> {
        let config = MapConfig::try_new(range).map_err(|_| StoreError::Failed)?;
        Ok(Self {
            map: MapStorage::new(flash, config, Cache::new_uncached()),
            buf,
            next_seq: 0,
            loaded: false,
        })
    }

    /// Erases the partition: every record is gone.
    pub async fn erase_all(&mut self) -> Result<(), StoreError> {
        self.map.erase_all().await.map_err(convert)
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.map.destroy().0
    }

    /// The smallest key of the kind `kind` above `after`, and for an
    /// outbound record the smallest sequence number above `after`
    /// (`by_seq`). A record superseded or removed may be found: the caller
    /// checks it with `fetch_item`.
    async fn next_record(
        &mut self,
        kind: u32,
        after: Option<u32>,
        by_seq: bool,
    ) -> Result<Option<(u32, u32)>, StoreError> {
        let mut best: Option<(u32, u32)> = None; // (order, key)
        let mut items = self.map.fetch_all_items(self.buf).await.map_err(convert)?;
        while let Some((key, record)) = items.next::<Record<'_>>(self.buf).await.map_err(convert)? {
            if key & !0xFFFF != kind {
                continue;
            }
            let order = if by_seq { record.seq } else { key };
            if after.is_none_or(|a| order > a) && best.is_none_or(|(b, _)| order < b) {
                best = Some((order, key));
            }
        }
        Ok(best)
    }

    async fn load_async(&mut self, engine: &mut Engine<'_>) -> Result<(), StoreError> {
        if self.loaded {
            return Ok(());
        }
        // Outbound: in the order recorded, one scan per record (the
        // partition is small and this runs once per boot; no heap).
        let mut after = None;
        while let Some((seq, key)) = self.next_record(OUTBOUND, after, true).await? {
            after = Some(seq);
            let record =
                self.map.fetch_item::<Record<'_>>(self.buf, &key).await.map_err(convert)?;
            if let Some(record) = record.filter(|r| r.seq == seq) {
                engine.restore_outbound(record.packet).map_err(|_| StoreError::DoesNotFit)?;
            }
        }
        self.next_seq = after.map_or(0, |seq| seq.wrapping_add(1));
        let mut after = None;
        while let Some((key, _)) = self.next_record(INBOUND, after, false).await? {
            after = Some(key);
            if self.map.fetch_item::<Record<'_>>(self.buf, &key).await.map_err(convert)?.is_some() {
                let id = PacketId::new(key as u16).ok_or(StoreError::Failed)?;
                engine.restore_inbound(id).map_err(|_| StoreError::DoesNotFit)?;
            }
        }
        self.loaded = true;
        Ok(())
    }

    async fn record_async(&mut self, op: StoreOp<'_>) -> Result<(), StoreError> {
        let out = |id: PacketId| OUTBOUND | u32::from(id.get());
        let inb = |id: PacketId| INBOUND | u32::from(id.get());
        let result = match op {
            StoreOp::Publish { id, packet } => {
                let seq = self.next_seq;
                self.next_seq = seq.wrapping_add(1);
                self.map.store_item(self.buf, &out(id), &Record { seq, packet }).await
            }
            StoreOp::Release { id, packet } => {
                // Keeps its place in the order.
                let found = self.map.fetch_item::<Record<'_>>(self.buf, &out(id)).await;
                let seq = match found.map_err(convert)? {
                    Some(record) => record.seq,
                    None => {
                        let seq = self.next_seq;
                        self.next_seq = seq.wrapping_add(1);
                        seq
                    }
                };
                self.map.store_item(self.buf, &out(id), &Record { seq, packet }).await
            }
            StoreOp::Complete(id) => self.map.remove_item(self.buf, &out(id)).await,
            StoreOp::Receive(id) => {
                self.map.store_item(self.buf, &inb(id), &Record { seq: 0, packet: &[] }).await
            }
            StoreOp::Released(id) => self.map.remove_item(self.buf, &inb(id)).await,
            StoreOp::ClearReceived => {
                while let Some((key, _)) = self.next_record(INBOUND, None, false).await? {
                    self.map.remove_item(self.buf, &key).await.map_err(convert)?;
                }
                Ok(())
            }
            StoreOp::Clear => self.map.remove_all_items(self.buf).await,
        };
        result.map_err(convert)
    }
}

/// A sequential-storage error as a store error.
fn convert<E>(e: FlashError<E>) -> StoreError {
    match e {
        FlashError::FullStorage => StoreError::Full,
        FlashError::BufferTooSmall(_) | FlashError::ItemTooBig => StoreError::TooLarge,
        _ => StoreError::Failed,
    }
}

impl<F: MultiwriteNorFlash> Store for FlashStore<'_, F> {
    async fn load(&mut self, engine: &mut Engine<'_>) -> Result<(), StoreError> {
        self.load_async(engine).await
    }

    async fn record(&mut self, op: StoreOp<'_>) -> Result<(), StoreError> {
        self.record_async(op).await
    }
}

impl<F: MultiwriteNorFlash> BlockingStore for FlashStore<'_, F> {
    fn load(&mut self, engine: &mut Engine<'_>) -> Result<(), StoreError> {
        block_on(self.load_async(engine))
    }

    fn record(&mut self, op: StoreOp<'_>) -> Result<(), StoreError> {
        block_on(self.record_async(op))
    }
}

/// Runs `future` to completion by polling it (a flash that does not wait
/// completes at the first poll).
fn block_on<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
