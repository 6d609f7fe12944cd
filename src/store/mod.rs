//! Messages survive a reboot: the session state kept in a store (flash).
//!
//! MQTT 3.1.1 keeps a session for as long as it lasts, across restarts of
//! the client when `clean_session` is false `[MQTT-3.1.2-4]`. The engine's
//! session lives in `tx` and the QoS 2 slots, both RAM; a [`Store`] keeps a
//! copy that a rebooted client loads.
//!
//! The engine does no I/O and never calls the store: it hands out one
//! [`StoreOp`] at a time ([`Engine::poll_store`]) and holds the wire back
//! until the driver reports it durable ([`Engine::on_stored`]). The order
//! that makes this safe, each rule with the failure it prevents:
//!
//! - a QoS 1 or 2 PUBLISH is recorded before its first byte is written
//!   ([`StoreOp::Publish`]): a message the broker may have is never missing
//!   after a reboot;
//! - the PUBREC → PUBREL step is durable before the PUBREL is written
//!   ([`StoreOp::Release`]): otherwise a reboot would resend the PUBLISH,
//!   which a broker that already released the identifier takes as new;
//! - an inbound QoS 2 identifier is durable before its message is delivered
//!   and before its PUBREC is written ([`StoreOp::Receive`]): a PUBLISH the
//!   broker resends after a reboot is recognised, not delivered twice;
//! - its removal on PUBREL is durable before the PUBCOMP is written
//!   ([`StoreOp::Released`]): once the broker has the PUBCOMP it may reuse
//!   the identifier, and a stale one would swallow that new message;
//! - removal on PUBACK / PUBCOMP ([`StoreOp::Complete`]) is lazy: it is
//!   recorded before anything else is written, but a call may return before
//!   it is durable. A reboot in between resends a QoS 1 PUBLISH with DUP=1
//!   (allowed) or a PUBREL (answered with PUBCOMP by the broker): harmless;
//! - the next packet identifier is not recorded: every identifier in use is
//!   a record, the loaded engine's allocator carries on after the newest,
//!   and skips every one in use.
//!
//! A client with a store ([`Client::with_store`](crate::Client::with_store),
//! [`blocking::Client::with_store`](crate::blocking::Client::with_store))
//! loads the stored session before its first `connect`. With
//! `clean_session` false the loaded messages are resent after CONNACK
//! exactly as after a reconnect (DUP=1, same identifiers; PUBREL for those
//! past PUBREC); with `clean_session` true they are discarded, counted in
//! [`Connected::discarded`](crate::Connected::discarded), and the store is
//! cleared.
//!
//! A full store makes `publish` fail with [`Error::Store`](crate::Error::Store)
//! ([`StoreError::Full`]): the new message is neither sent nor kept, and no
//! older one is dropped.
//!
//! With feature `store-flash`, `FlashStore` keeps the records in a
//! NOR-flash partition through `sequential-storage` (wear levelling, safe
//! against power cuts), and `RamFlash` / `FileFlash` (with `std`) are
//! flashes for host tests and tools; `BlockingFlash` puts a blocking
//! `embedded-storage` flash behind the async traits.
//!
//! One window remains: an inbound QoS 2 message is delivered right after
//! its identifier is durable; a power cut after that and before the
//! handler has done its work loses that work (the broker will not send the
//! message again). An application that needs its effect exactly once keeps
//! it durable in the handler itself.

#[cfg(feature = "store-flash")]
mod adapter;
#[cfg(all(feature = "store-flash", feature = "std"))]
mod file;
#[cfg(feature = "store-flash")]
mod flash;
#[cfg(feature = "store-flash")]
mod ram;

#[cfg(feature = "store-flash")]
pub use adapter::BlockingFlash;
#[cfg(all(feature = "store-flash", feature = "std"))]
pub use file::FileFlash;
#[cfg(feature = "store-flash")]
pub use flash::FlashStore;
#[cfg(feature = "store-flash")]
pub use ram::{FlashStats, PowerCut, RamFlash};

use crate::engine::Engine;
pub use crate::engine::StoreOp;

/// Why a store could not do an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StoreError {
    /// No room for the record: the publish was refused, nothing was sent
    /// nor dropped.
    Full,
    /// The record is larger than the store's buffer.
    TooLarge,
    /// A stored session does not fit this client (`tx` or the QoS 2 slots
    /// are too small, or a record is not a packet the engine stores).
    DoesNotFit,
    /// The storage failed (a flash error), or holds data it cannot read.
    Failed,
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Full => "store full",
            Self::TooLarge => "record larger than the store buffer",
            Self::DoesNotFit => "stored session does not fit the client's buffers",
            Self::Failed => "storage failed",
        })
    }
}

/// Where an async client keeps its session state; see the [module
/// docs](self) for when each operation is called.
#[allow(async_fn_in_trait)] // no Send bound needed: embedded executors
pub trait Store {
    /// Whether this store keeps anything (false only for [`NoStore`]): a
    /// client without a store links none of the persistence code.
    const PERSISTS: bool = true;

    /// Loads the stored session into `engine` (a new one, before its
    /// first connect): the outbound messages in the order they were
    /// recorded, with [`Engine::restore_outbound`], and the inbound QoS 2
    /// identifiers with [`Engine::restore_inbound`]. Loads once: later
    /// calls do nothing.
    async fn load(&mut self, engine: &mut Engine<'_>) -> Result<(), StoreError>;

    /// Records `op` durably before returning.
    async fn record(&mut self, op: StoreOp<'_>) -> Result<(), StoreError>;
}

/// The blocking twin of [`Store`], for the
/// [`blocking::Client`](crate::blocking::Client).
pub trait BlockingStore {
    /// See [`Store::PERSISTS`].
    const PERSISTS: bool = true;

    /// See [`Store::load`].
    fn load(&mut self, engine: &mut Engine<'_>) -> Result<(), StoreError>;

    /// See [`Store::record`].
    fn record(&mut self, op: StoreOp<'_>) -> Result<(), StoreError>;
}

/// No store: the session lives in RAM only (the default of the clients).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoStore;

impl Store for NoStore {
    const PERSISTS: bool = false;

    async fn load(&mut self, _: &mut Engine<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn record(&mut self, _: StoreOp<'_>) -> Result<(), StoreError> {
        Ok(())
    }
}

impl BlockingStore for NoStore {
    const PERSISTS: bool = false;

    fn load(&mut self, _: &mut Engine<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    fn record(&mut self, _: StoreOp<'_>) -> Result<(), StoreError> {
        Ok(())
    }
}

impl<S: Store> Store for &mut S {
    const PERSISTS: bool = S::PERSISTS;

    async fn load(&mut self, engine: &mut Engine<'_>) -> Result<(), StoreError> {
        S::load(self, engine).await
    }

    async fn record(&mut self, op: StoreOp<'_>) -> Result<(), StoreError> {
        S::record(self, op).await
    }
}

impl<S: BlockingStore> BlockingStore for &mut S {
    const PERSISTS: bool = S::PERSISTS;

    fn load(&mut self, engine: &mut Engine<'_>) -> Result<(), StoreError> {
        S::load(self, engine)
    }

    fn record(&mut self, op: StoreOp<'_>) -> Result<(), StoreError> {
        S::record(self, op)
    }
}
