//! The inbound QoS 2 messages delivered and awaiting PUBREL (the
//! specification's method B, section 4.3.3): their packet identifiers, kept
//! in slots the caller provides. An identifier is stored when its PUBLISH is
//! delivered and removed by its PUBREL; a PUBLISH whose identifier is stored
//! is a redelivery, answered with PUBREC and not delivered again.

use crate::packet::PacketId;

/// Packet identifiers in caller-provided slots; 0 marks a free slot.
pub(super) struct AwaitingRelease<'b> {
    slots: &'b mut [u16],
}

impl<'b> AwaitingRelease<'b> {
    /// Over `slots`, whose non-zero entries are kept: they are identifiers
    /// an earlier client stored (session handover).
    pub(super) fn new(slots: &'b mut [u16]) -> Self {
        Self { slots }
    }

    /// Whether there are slots at all (QoS 2 reception is enabled).
    pub(super) fn is_enabled(&self) -> bool {
        !self.slots.is_empty()
    }

    /// Whether `id` awaits its PUBREL.
    pub(super) fn contains(&self, id: PacketId) -> bool {
        self.slots.contains(&id.get())
    }

    /// Whether a slot is free.
    pub(super) fn has_free_slot(&self) -> bool {
        self.slots.contains(&0)
    }

    /// Stores `id`; `false` when every slot is taken.
    pub(super) fn insert(&mut self, id: PacketId) -> bool {
        match self.slots.iter_mut().find(|slot| **slot == 0) {
            Some(slot) => {
                *slot = id.get();
                true
            }
            None => false,
        }
    }

    /// Removes `id` (its PUBREL arrived); returns whether it was stored.
    pub(super) fn remove(&mut self, id: PacketId) -> bool {
        match self.slots.iter_mut().find(|slot| **slot == id.get()) {
            Some(slot) => {
                *slot = 0;
                true
            }
            None => false,
        }
    }

    /// Whether no identifier awaits its PUBREL.
    pub(super) fn is_empty(&self) -> bool {
        self.slots.iter().all(|slot| *slot == 0)
    }

    /// Forgets every identifier (a clean session starts without them).
    pub(super) fn clear(&mut self) {
        self.slots.fill(0);
    }
}
