//! Draining an inbound packet larger than the receive buffer.
//!
//! The packet's bytes are discarded as they arrive, except the two that
//! hold a QoS 1 or QoS 2 PUBLISH's packet identifier, which are picked out
//! on the way wherever they fall, so the PUBLISH is acknowledged (PUBACK or
//! PUBREC) even when its topic alone is longer than the buffer (rumqttc
//! #614: an unacknowledged oversize message is redelivered forever).

use crate::client::Oversize;
use crate::packet::{FixedHeader, PacketId, PacketType, QoS};

/// Progress through an oversize packet.
#[derive(Debug, Clone, Copy)]
pub(super) struct Drain {
    /// Bytes of the packet not yet seen.
    remaining: u32,
    /// Bytes of the packet seen so far.
    seen: u32,
    /// Offset of the packet identifier in the packet (0: none to read).
    id_at: u32,
    /// The identifier's bytes collected so far.
    id: u16,
    id_bytes: u8,
    packet_type: PacketType,
    /// QoS of a PUBLISH (QoS 0 for other packets).
    qos: QoS,
    /// The PUBLISH's topic length, if [`TOPIC_LEN`] is set.
    topic_len: u16,
    /// [`TOPIC_LEN`], [`ACKNOWLEDGED`], [`FINISHED`]: one byte, so the
    /// drain takes 20 bytes and the engine stays within its size budget.
    flags: u8,
}

/// `Drain::topic_len` was read.
const TOPIC_LEN: u8 = 1;
/// Once done: the packet was acknowledged.
const ACKNOWLEDGED: u8 = 2;
/// Done and handled: kept only as the report of the oversize packet.
const FINISHED: u8 = 4;

impl Drain {
    /// Starts draining the packet `header` describes, of which `buffered`
    /// (the bytes already received, at most the receive buffer) are
    /// consumed at once. Returns `None` while the start of a PUBLISH that
    /// the buffer can hold has not arrived yet.
    pub(super) fn start(header: &FixedHeader, buffered: &[u8], capacity: usize) -> Option<Self> {
        let total = u32::try_from(header.packet_len()).unwrap_or(u32::MAX);
        let mut drain = Self {
            remaining: total,
            seen: 0,
            id_at: 0,
            id: 0,
            id_bytes: 0,
            packet_type: header.packet_type,
            qos: QoS::AtMostOnce,
            topic_len: 0,
            flags: 0,
        };
        if header.packet_type == PacketType::Publish {
            drain.qos = QoS::from_bits((header.flags >> 1) & 0b11).unwrap_or(QoS::AtMostOnce);
            let topic_len_at = header.header_len;
            match buffered.get(topic_len_at..topic_len_at + 2) {
                Some(&[hi, lo]) => {
                    let topic_len = u16::from_be_bytes([hi, lo]);
                    drain.topic_len = topic_len;
                    drain.flags |= TOPIC_LEN;
                    if (header.flags >> 1) & 0b11 != 0 {
                        drain.id_at =
                            u32::try_from(topic_len_at + 2 + usize::from(topic_len)).unwrap_or(0);
                    }
                }
                // Wait until the topic length is in, unless it never fits.
                _ if topic_len_at + 2 <= capacity => return None,
                _ => {}
            }
        }
        drain.consume(buffered);
        Some(drain)
    }

    /// Takes `bytes`, the next bytes of the packet (at most what remains).
    pub(super) fn consume(&mut self, bytes: &[u8]) {
        let n = u32::try_from(bytes.len()).unwrap_or(u32::MAX).min(self.remaining);
        let end = self.seen + n;
        if self.id_at != 0 {
            for at in self.id_at..self.id_at + 2 {
                if (self.seen..end).contains(&at) {
                    let byte = bytes.get((at - self.seen) as usize).copied().unwrap_or(0);
                    self.id = (self.id << 8) | u16::from(byte);
                    self.id_bytes += 1;
                }
            }
        }
        self.seen = end;
        self.remaining -= n;
    }

    /// How many of the next `available` bytes belong to the packet.
    pub(super) fn wants(&self, available: usize) -> usize {
        available.min(self.remaining as usize)
    }

    /// Whether every byte of the packet has been consumed.
    pub(super) fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// The packet identifier to acknowledge: `Some(Ok(id))` once read,
    /// `Some(Err(()))` for identifier 0, `None` when there is none.
    pub(super) fn packet_id(&self) -> Option<Result<PacketId, ()>> {
        (self.id_at != 0 && self.id_bytes == 2).then(|| PacketId::new(self.id).ok_or(()))
    }

    /// The QoS of the drained PUBLISH (QoS 0 for any other packet).
    pub(super) fn qos(&self) -> QoS {
        self.qos
    }

    /// Records that the packet was acknowledged.
    pub(super) fn set_acknowledged(&mut self) {
        self.flags |= ACKNOWLEDGED;
    }

    /// Marks the drained packet handled (acknowledged if it had to be).
    pub(super) fn finish(&mut self) {
        self.flags |= FINISHED;
    }

    /// Whether the drained packet was handled: only its report is left.
    pub(super) fn is_finished(&self) -> bool {
        self.flags & FINISHED != 0
    }

    /// What to tell the caller.
    pub(super) fn report(&self) -> Oversize {
        Oversize {
            packet_type: self.packet_type,
            size: self.seen as usize,
            topic_len: (self.flags & TOPIC_LEN != 0).then_some(self.topic_len),
            acknowledged: self.flags & ACKNOWLEDGED != 0,
        }
    }
}
