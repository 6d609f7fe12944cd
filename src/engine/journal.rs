//! The engine's side of persistence: which change of the session state
//! must be recorded in a store before the wire may go on. The engine never
//! calls a store (it does no I/O); it holds one pending [`StoreOp`] at a
//! time, and while one is pending it writes nothing, handles no inbound
//! packet and queues no command. The driver records the operation and
//! reports it with [`Engine::on_stored`](super::Engine::on_stored).

use crate::packet::PacketId;

/// A change of the session state to record durably, from
/// [`Engine::poll_store`](super::Engine::poll_store). Records are keyed by
/// packet identifier: outbound messages and inbound QoS 2 identifiers are
/// two separate sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StoreOp<'a> {
    /// Record the outbound QoS 1 or QoS 2 message `id`: `packet` is its
    /// encoded PUBLISH, about to be written for the first time. Keep the
    /// records in the order they were made: a loaded session resends in
    /// that order.
    Publish {
        /// Its packet identifier.
        id: PacketId,
        /// The encoded PUBLISH (DUP as first sent).
        packet: &'a [u8],
    },
    /// The QoS 2 message `id` got its PUBREC: from now on it is its 4-byte
    /// PUBREL (`packet`), kept in the PUBLISH's place in the order. The
    /// PUBREL is written only once this is durable.
    Release {
        /// Its packet identifier.
        id: PacketId,
        /// The encoded PUBREL.
        packet: &'a [u8],
    },
    /// The outbound message `id` is complete (PUBACK or PUBCOMP): forget it.
    Complete(PacketId),
    /// The inbound QoS 2 message `id` is about to be delivered: remember
    /// its identifier until its PUBREL. Nothing is delivered nor
    /// acknowledged before this is durable.
    Receive(PacketId),
    /// The inbound QoS 2 message `id` was released (PUBREL): forget its
    /// identifier. The PUBCOMP is written only once this is durable.
    Released(PacketId),
    /// The broker holds no session for the client any more (a CONNACK
    /// without session present): forget every inbound identifier.
    ClearReceived,
    /// A clean session starts: forget everything.
    Clear,
}

/// The one pending store operation, in 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Journal {
    /// Persistence is off: no operation is ever pending.
    Off,
    /// Nothing to record.
    Idle,
    Publish(PacketId),
    Release(PacketId),
    Complete(PacketId),
    /// An inbound QoS 2 PUBLISH waits in `rx`, not yet delivered.
    Receive(PacketId),
    /// Like `Receive` for an oversize one, drained and already in a slot.
    ReceiveDrained(PacketId),
    /// `Receive` is durable and the identifier in a slot: the PUBLISH in
    /// `rx` is delivered by the next `poll`. Not pending.
    Received(PacketId),
    Released(PacketId),
    ClearReceived,
    Clear,
}

impl Journal {
    /// Whether an operation waits to be recorded.
    pub(super) fn is_pending(self) -> bool {
        !matches!(self, Self::Off | Self::Idle | Self::Received(_))
    }

    /// Whether a command must wait: an operation is pending, or a recorded
    /// inbound message waits to be delivered (a command's record would
    /// take its place).
    pub(super) fn blocks_commands(self) -> bool {
        self.is_pending() || matches!(self, Self::Received(_))
    }

    /// Whether persistence is on.
    pub(super) fn is_on(self) -> bool {
        self != Self::Off
    }
}
