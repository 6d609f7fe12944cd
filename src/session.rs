//! The sans-I/O session: protocol state that does no I/O and reads no
//! clock. Time is an input, so every transition is tested with plain
//! function calls.
//!
//! - [`KeepAlive`]: when to send PINGREQ and when the server counts as gone;
//! - [`Outbox`]: the unfinished outbound QoS 1 and QoS 2 messages, stored
//!   encoded in the front of the client's transmit buffer for resend: a
//!   PUBLISH awaiting PUBACK or PUBREC, or the PUBREL that replaced a QoS 2
//!   PUBLISH once its PUBREC arrived;
//! - [`PacketIds`]: identifiers 1..=65535, wrapping, skipping those in use.

use embassy_time::{Duration, Instant};

use crate::packet::{FixedHeader, PacketId, PacketType};

/// What the keepalive mechanism wants now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeepAliveAction {
    /// Nothing to do until the given instant (`None`: keepalive is off).
    WaitUntil(Option<Instant>),
    /// Send PINGREQ now.
    SendPing,
    /// A PINGREQ went unanswered: the connection is dead.
    Expired,
}

/// Keepalive (3.1.2.10) from the client side.
///
/// A PINGREQ goes out when the keepalive interval has passed since the
/// client last sent a packet `[MQTT-3.1.2-23]` or last heard from the
/// server (so a half-open link is found even while the application keeps
/// publishing QoS 0). If nothing at all arrives within half an interval
/// after the PINGREQ, the server counts as gone: a dead link is reported at
/// most 1.5 × keepalive after the last byte received.
///
/// 24 bytes: while a PINGREQ is outstanding, `last_sent` stays at the time
/// it was sent (later sends do not move it), so the ping time needs no
/// field of its own. The cost: a packet sent between PINGREQ and PINGRESP
/// does not postpone the next PINGREQ, which may go out that much early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct KeepAlive {
    last_sent: Instant,
    last_received: Instant,
    interval_secs: u16,
    ping_outstanding: bool,
}

impl KeepAlive {
    /// Keepalive of `secs` seconds (0: off), starting at `now`.
    pub fn new(secs: u16, now: Instant) -> Self {
        Self { last_sent: now, last_received: now, interval_secs: secs, ping_outstanding: false }
    }

    /// Starts counting afresh at `now` (the connection was accepted).
    pub fn restart(&mut self, now: Instant) {
        *self = Self::new(self.interval_secs, now);
    }

    /// A packet was written at `now`.
    pub fn on_sent(&mut self, now: Instant) {
        if !self.ping_outstanding {
            self.last_sent = now;
        }
    }

    /// A PINGREQ was written at `now`.
    pub fn on_ping_sent(&mut self, now: Instant) {
        self.last_sent = now;
        self.ping_outstanding = true;
    }

    /// Bytes arrived at `now` (any byte, not only a whole packet, so a long
    /// packet arriving slowly counts): the server is alive.
    pub fn on_received(&mut self, now: Instant) {
        self.last_received = now;
        self.ping_outstanding = false;
    }

    /// Whether a PINGREQ is awaiting its answer.
    pub fn ping_outstanding(&self) -> bool {
        self.ping_outstanding
    }

    /// What to do at `now`.
    pub fn poll(&self, now: Instant) -> KeepAliveAction {
        if self.interval_secs == 0 {
            return KeepAliveAction::WaitUntil(None);
        }
        let interval = Duration::from_secs(u64::from(self.interval_secs));
        if self.ping_outstanding {
            let deadline = self.last_sent.checked_add(interval / 2).unwrap_or(Instant::MAX);
            return if now >= deadline {
                KeepAliveAction::Expired
            } else {
                KeepAliveAction::WaitUntil(Some(deadline))
            };
        }
        let due =
            self.last_sent.min(self.last_received).checked_add(interval).unwrap_or(Instant::MAX);
        if now >= due { KeepAliveAction::SendPing } else { KeepAliveAction::WaitUntil(Some(due)) }
    }
}

/// Packet identifier allocator: 1..=65535, wrapping after 65535, never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketIds {
    last: PacketId,
}

impl Default for PacketIds {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketIds {
    /// An allocator whose first identifier is 1.
    pub const fn new() -> Self {
        Self { last: PacketId::MAX }
    }

    /// An allocator whose next identifier follows `last` (a session
    /// loaded from a store carries on after its newest message).
    pub const fn after(last: PacketId) -> Self {
        Self { last }
    }

    /// The next identifier for which `in_use` is false, or `None` when all
    /// 65,535 are in use.
    pub fn allocate(&mut self, mut in_use: impl FnMut(PacketId) -> bool) -> Option<PacketId> {
        let mut id = self.last;
        for _ in 0..u16::MAX {
            id = id.next();
            if !in_use(id) {
                self.last = id;
                return Some(id);
            }
        }
        None
    }
}

/// Unfinished outbound QoS 1 and QoS 2 messages, stored encoded, back to
/// back, in the front `len()` bytes of a buffer (the client's transmit
/// buffer), in the order they were published, so they can be resent after
/// a reconnect `[MQTT-4.4.0-1]`: each stored packet is either the PUBLISH
/// itself (resent with DUP=1 and its packet identifier) or, for a QoS 2
/// message whose PUBREC arrived, the PUBREL that took its place (resent as
/// it is, never the PUBLISH again). The rest of the buffer stays free for
/// encoding other packets.
///
/// PUBACKs usually come in order: removing the oldest packet only moves
/// the start of the stored range forward, so a window of any size costs
/// O(1) per acknowledgment. The bytes freed at the front are reclaimed by
/// [`compact`](Self::compact) when the free part at the back runs short.
///
/// The outbox keeps only offsets; every method takes the buffer, so the
/// buffer can be lent out in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outbox {
    /// Offset of the oldest stored PUBLISH (bytes before it are free).
    head: usize,
    /// End of the stored packets.
    len: usize,
    count: u16,
    /// Offset of the newest stored PUBLISH.
    last_start: usize,
    /// Whether the stored ids may be out of order. While false, they
    /// increase (cyclically, 65535 wraps to 1) from the oldest to the
    /// newest and span less than the whole id space, so an id outside
    /// `oldest..=newest` is not stored: [`contains`](Self::contains)
    /// answers in O(1) for the ids a sequential allocator hands out.
    unordered: bool,
}

/// One stored message: where its packet is, its packet identifier and
/// how far its delivery got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OutboxEntry {
    /// Offset of its first byte in the buffer.
    pub start: usize,
    /// Offset one past its last byte.
    pub end: usize,
    /// Its packet identifier.
    pub packet_id: PacketId,
    /// What the stored packet is.
    pub stage: Stage,
}

/// How far an outbound QoS 1 or QoS 2 message got (section 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage {
    /// A QoS 1 PUBLISH awaiting PUBACK.
    AwaitingPubAck,
    /// A QoS 2 PUBLISH awaiting PUBREC.
    AwaitingPubRec,
    /// A PUBREL (the QoS 2 PUBLISH got its PUBREC) awaiting PUBCOMP.
    AwaitingPubComp,
}

impl Outbox {
    /// Offset of the oldest stored packet (the bytes before it are free).
    pub const fn head(&self) -> usize {
        self.head
    }

    /// End of the stored packets: the buffer is free from here on.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no message is stored.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of stored messages.
    pub const fn count(&self) -> usize {
        self.count as usize
    }

    /// Takes the `len` bytes that follow the stored packets, where the
    /// caller has just encoded a QoS 1 or QoS 2 PUBLISH, into the outbox.
    pub fn push(&mut self, len: usize) {
        // Without the buffer the new id is unknown: give up the order.
        self.unordered |= self.count > 0;
        self.last_start = self.len;
        self.len += len;
        self.count = self.count.saturating_add(1);
    }

    /// Like [`push`](Self::push), reading the new packet's identifier from
    /// `buf` to keep [`contains`](Self::contains) fast while identifiers
    /// arrive in order.
    pub fn push_publish(&mut self, buf: &[u8], len: usize) {
        let stored = buf.get(..self.len + len).unwrap_or_default();
        let new = parse_entry(stored, self.len).map(|e| e.packet_id);
        let ordered = self.count == 0
            || match (self.ends(buf), new) {
                (Some((oldest, newest)), Some(new)) => {
                    id_distance(oldest, new) > id_distance(oldest, newest)
                }
                _ => false,
            };
        let unordered = self.unordered || !ordered;
        self.push(len);
        self.unordered = unordered;
    }

    /// Identifiers of the oldest and the newest stored PUBLISH.
    fn ends(&self, buf: &[u8]) -> Option<(PacketId, PacketId)> {
        let stored = buf.get(..self.len).unwrap_or_default();
        let oldest = parse_entry(stored, self.head)?.packet_id;
        Some((oldest, parse_entry(stored, self.last_start)?.packet_id))
    }

    /// The stored packets, oldest first.
    pub fn entries<'b>(&self, buf: &'b [u8]) -> impl Iterator<Item = OutboxEntry> + 'b {
        let mut start = self.head;
        let stored = buf.get(..self.len).unwrap_or_default();
        core::iter::from_fn(move || {
            let entry = parse_entry(stored, start)?;
            start = entry.end;
            Some(entry)
        })
    }

    /// Whether the message with `id` is stored.
    pub fn contains(&self, buf: &[u8], id: PacketId) -> bool {
        self.find(buf, id).is_some()
    }

    /// The stored message with `id`.
    pub fn find(&self, buf: &[u8], id: PacketId) -> Option<OutboxEntry> {
        if self.count == 0 {
            return None;
        }
        // Acknowledgments mostly come for the oldest: one parse.
        let stored = buf.get(..self.len).unwrap_or_default();
        let oldest = parse_entry(stored, self.head)?;
        if oldest.packet_id == id {
            return Some(oldest);
        }
        if !self.unordered {
            if let Some(newest) = parse_entry(stored, self.last_start) {
                let oldest = oldest.packet_id;
                if id_distance(oldest, id) > id_distance(oldest, newest.packet_id) {
                    return None;
                }
            }
        }
        let mut start = oldest.end;
        core::iter::from_fn(|| {
            let entry = parse_entry(stored, start)?;
            start = entry.end;
            Some(entry)
        })
        .find(|e| e.packet_id == id)
    }

    /// Removes the message with `id` (its PUBACK or PUBCOMP arrived).
    /// Only removing one between the oldest and the newest moves bytes (the
    /// later ones forward). Returns whether it was there.
    pub fn remove(&mut self, buf: &mut [u8], id: PacketId) -> bool {
        match self.find(buf, id) {
            Some(entry) => self.remove_entry(buf, entry),
            None => false,
        }
    }

    /// Removes `entry`, found by [`find`](Self::find) in the same `buf`
    /// with no change since (so it is not looked up twice). Returns whether
    /// it was stored.
    pub fn remove_entry(&mut self, buf: &mut [u8], entry: OutboxEntry) -> bool {
        if entry.end > self.len || entry.start < self.head || self.count == 0 {
            return false;
        }
        self.count = self.count.saturating_sub(1);
        if self.count == 0 {
            *self = Self::default();
        } else if entry.start == self.head {
            // The oldest: no byte moves.
            self.head = entry.end;
        } else if entry.start < self.last_start {
            move_down(buf, entry.end..self.len, entry.start);
            self.len -= entry.end - entry.start;
            self.last_start -= entry.end - entry.start;
        } else {
            // The newest went: nothing to move, find the one before it.
            self.len = entry.start;
            self.last_start = self.entries(buf).last().map_or(self.head, |e| e.start);
        }
        true
    }

    /// Replaces the stored QoS 2 PUBLISH `entry` (its PUBREC arrived) with
    /// its PUBREL, kept in the PUBLISH's place so that the order of the
    /// stored messages stays the order of publication. Returns the range of
    /// the PUBREL in `buf`, to be written; `None` (and nothing changed) if
    /// `entry` is not a stored QoS 2 PUBLISH.
    pub fn release(&mut self, buf: &mut [u8], entry: OutboxEntry) -> Option<(usize, usize)> {
        if entry.stage != Stage::AwaitingPubRec || entry.end > self.len {
            return None;
        }
        let [hi, lo] = entry.packet_id.get().to_be_bytes();
        let pubrel = [0x62, 0x02, hi, lo];
        let shrink = entry.end - entry.start - pubrel.len();
        // Move whichever side holds fewer bytes: the older packets (often
        // a few PUBRELs awaiting PUBCOMP, or none for the oldest) up
        // against the PUBREL, or the newer ones down. Moving the newer
        // ones every time would cost a whole window per PUBREC.
        let at = if entry.start - self.head <= self.len - entry.end {
            move_up(buf, self.head..entry.start, self.head + shrink);
            self.head += shrink;
            if self.last_start == entry.start {
                self.last_start = entry.end - pubrel.len();
            }
            entry.end - pubrel.len()
        } else {
            move_down(buf, entry.end..self.len, entry.start + pubrel.len());
            self.len -= shrink;
            if entry.start < self.last_start {
                self.last_start -= shrink;
            }
            entry.start
        };
        buf.get_mut(at..at + pubrel.len())?.copy_from_slice(&pubrel);
        Some((at, at + pubrel.len()))
    }

    /// Moves the stored packets to the front of `buf`, reclaiming the
    /// bytes that acknowledged packets left there. Returns whether anything
    /// moved (offsets into the buffer taken before are then stale).
    pub fn compact(&mut self, buf: &mut [u8]) -> bool {
        if self.head == 0 || self.len > buf.len() {
            return false;
        }
        move_down(buf, self.head..self.len, 0);
        self.len -= self.head;
        self.last_start -= self.head;
        self.head = 0;
        true
    }

    /// Marks every stored PUBLISH as a redelivery: DUP=1 `[MQTT-3.3.1-1]`
    /// (a stored PUBREL has no DUP flag and stays as it is).
    pub fn set_dup(&self, buf: &mut [u8]) {
        let mut start = self.head;
        while start < self.len {
            let Some(rest) = buf.get(start..self.len) else { break };
            let Ok(header) = FixedHeader::parse(rest) else { break };
            if let (PacketType::Publish, Some(first)) = (header.packet_type, buf.get_mut(start)) {
                *first |= 0x08;
            }
            start += header.packet_len();
        }
    }

    /// Appends `packet`, one stored PUBLISH (QoS 1 or 2, with its
    /// identifier) or PUBREL as a store recorded it, behind the stored
    /// packets, keeping `reserve` bytes free after it. Returns its packet
    /// identifier; `None` (and nothing changed) when it is not exactly one
    /// such packet, or does not fit.
    pub fn push_stored(
        &mut self,
        buf: &mut [u8],
        packet: &[u8],
        reserve: usize,
    ) -> Option<PacketId> {
        let entry = parse_entry(packet, 0).filter(|e| e.end == packet.len())?;
        let at = self.len;
        let end = at.checked_add(packet.len())?;
        if end.checked_add(reserve)? > buf.len() {
            return None;
        }
        buf.get_mut(at..end)?.copy_from_slice(packet);
        self.push_publish(buf, packet.len());
        Some(entry.packet_id)
    }

    /// Forgets every stored message (a clean session discards them
    /// `[MQTT-3.1.2-6]`).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Whether `buf` holds exactly the packets this outbox records: its
    /// first [`len`](Self::len) bytes are [`count`](Self::count) whole
    /// PUBLISH packets with identifiers or PUBREL packets.
    pub fn matches(&self, buf: &[u8]) -> bool {
        if self.len > buf.len() || self.head > self.len {
            return false;
        }
        let (count, end) = self.entries(buf).fold((0, self.head), |(n, _), e| (n + 1, e.end));
        count == self.count
            && end == self.len
            && (self.count == 0
                || self.entries(buf).last().map(|e| e.start) == Some(self.last_start))
    }
}

/// The stored PUBLISH or PUBREL starting at `start` of `stored`, if whole.
fn parse_entry(stored: &[u8], start: usize) -> Option<OutboxEntry> {
    let header = FixedHeader::parse(stored.get(start..)?).ok()?;
    let end = start + header.packet_len();
    let body = stored.get(start + header.header_len..end)?;
    let (id, stage) = match header.packet_type {
        PacketType::PubRel => (body.first_chunk::<2>()?, Stage::AwaitingPubComp),
        PacketType::Publish => {
            let (&[topic_hi, topic_lo], after_len) = body.split_first_chunk::<2>()?;
            let topic_len = usize::from(u16::from_be_bytes([topic_hi, topic_lo]));
            let stage = match header.flags & 0b0110 {
                0b0010 => Stage::AwaitingPubAck,
                0b0100 => Stage::AwaitingPubRec,
                _ => return None,
            };
            (after_len.get(topic_len..)?.first_chunk::<2>()?, stage)
        }
        _ => return None,
    };
    let packet_id = PacketId::new(u16::from_be_bytes(*id))?;
    Some(OutboxEntry { start, end, packet_id, stage })
}

/// `buf.copy_within(from, to)` for `to <= from.start`, as copies of
/// chunks that do not overlap: `memcpy`, which every firmware links,
/// rather than `memmove` (1.3 KB of compiler-builtins on Cortex-M0, needed
/// by nothing else in the client without TLS). One `memcpy` per
/// `from.start - to` bytes. Copies nothing out of range.
#[inline(never)] // three callers: one copy
pub(crate) fn move_down(buf: &mut [u8], from: core::ops::Range<usize>, to: usize) {
    if from.end > buf.len() {
        return;
    }
    let gap = from.start.saturating_sub(to);
    let mut src = from.start;
    while gap > 0 && src < from.end {
        let n = gap.min(from.end - src);
        let Some((head, tail)) = buf.split_at_mut_checked(src) else { return };
        let (Some(dst), Some(chunk)) = (head.get_mut(src - gap..src - gap + n), tail.get(..n))
        else {
            return;
        };
        dst.copy_from_slice(chunk);
        src += n;
    }
}

/// `buf.copy_within(from, to)` for `to >= from.start`, as copies of chunks
/// that do not overlap, last chunk first (`memcpy`, not `memmove`, as
/// [`move_down`]). Copies nothing out of range.
pub(crate) fn move_up(buf: &mut [u8], from: core::ops::Range<usize>, to: usize) {
    let gap = to.saturating_sub(from.start);
    let len = from.end.saturating_sub(from.start);
    if gap == 0 || len == 0 || to.saturating_add(len) > buf.len() {
        return;
    }
    let mut end = from.end;
    while end > from.start {
        let n = gap.min(end - from.start);
        let src = end - n;
        // The destination `src + gap..end + gap` starts at or after `end`.
        let Some((head, tail)) = buf.split_at_mut_checked(end) else { return };
        let (Some(chunk), Some(dst)) =
            (head.get(src..end), tail.get_mut(src + gap - end..src + gap - end + n))
        else {
            return;
        };
        dst.copy_from_slice(chunk);
        end = src;
    }
}

/// Steps from `from` to `to` in the id sequence 1, 2, ..., 65535, 1, ...
fn id_distance(from: PacketId, to: PacketId) -> u32 {
    (u32::from(to.get()) + 65535 - u32::from(from.get())) % 65535
}

#[cfg(test)]
mod tests {
    //! Every session transition as a plain function call; time is an input.

    use super::*;
    use crate::packet::{self, Packet, Publish, QoS};

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    // ---- PacketIds ----

    #[test]
    fn mqtt_2_3_1_1_packet_ids_start_at_1_and_are_never_zero() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate(|_| false), Some(id(1)));
        for _ in 0..2 * usize::from(u16::MAX) {
            let next = ids.allocate(|_| false).unwrap();
            assert_ne!(next.get(), 0);
        }
    }

    #[test]
    fn mqtt_2_3_1_1_packet_ids_wrap_from_65535_to_1() {
        let mut ids = PacketIds::new();
        for expected in 1..=u16::MAX {
            assert_eq!(ids.allocate(|_| false), Some(id(expected)));
        }
        assert_eq!(ids.allocate(|_| false), Some(id(1)));
        assert_eq!(ids.allocate(|_| false), Some(id(2)));
    }

    #[test]
    fn mqtt_2_3_1_2_packet_ids_skip_ids_in_use() {
        let mut ids = PacketIds::new();
        let in_use = [id(1), id(2), id(4)];
        assert_eq!(ids.allocate(|i| in_use.contains(&i)), Some(id(3)));
        assert_eq!(ids.allocate(|i| in_use.contains(&i)), Some(id(5)));
    }

    #[test]
    fn mqtt_2_3_1_2_packet_ids_skip_ids_in_use_across_the_wrap() {
        let mut ids = PacketIds::new();
        for _ in 1..u16::MAX {
            ids.allocate(|_| false).unwrap();
        }
        // Next would be 65535, then 1, 2: those three are still in flight.
        let in_use = [id(65535), id(1), id(2)];
        assert_eq!(ids.allocate(|i| in_use.contains(&i)), Some(id(3)));
    }

    #[test]
    fn packet_ids_none_when_all_in_use() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate(|_| true), None);
        // The failed attempt did not move the allocator.
        assert_eq!(ids.allocate(|_| false), Some(id(1)));
    }

    #[test]
    fn packet_ids_the_only_free_id_is_found() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate(|i| i != id(40_000)), Some(id(40_000)));
    }

    // ---- KeepAlive ----

    #[test]
    fn mqtt_3_1_2_23_ping_due_one_interval_after_last_send() {
        let mut ka = KeepAlive::new(10, at(0));
        ka.on_received(at(9_000));
        ka.on_sent(at(5_000));
        assert_eq!(ka.poll(at(14_999)), KeepAliveAction::WaitUntil(Some(at(15_000))));
        assert_eq!(ka.poll(at(15_000)), KeepAliveAction::SendPing);
    }

    #[test]
    fn ping_due_one_interval_after_last_receive_even_while_sending() {
        // QoS 0 publishes every second, nothing heard since t=0: a
        // half-open link must still be probed.
        let mut ka = KeepAlive::new(10, at(0));
        for s in 1..10 {
            ka.on_sent(at(s * 1_000));
        }
        assert_eq!(ka.poll(at(9_999)), KeepAliveAction::WaitUntil(Some(at(10_000))));
        assert_eq!(ka.poll(at(10_000)), KeepAliveAction::SendPing);
    }

    #[test]
    fn no_ping_while_both_directions_are_recent() {
        let mut ka = KeepAlive::new(10, at(0));
        ka.on_sent(at(8_000));
        ka.on_received(at(9_000));
        assert_eq!(ka.poll(at(17_999)), KeepAliveAction::WaitUntil(Some(at(18_000))));
    }

    #[test]
    fn keepalive_expired_exactly_half_an_interval_after_the_ping() {
        let mut ka = KeepAlive::new(10, at(0));
        assert_eq!(ka.poll(at(10_000)), KeepAliveAction::SendPing);
        ka.on_ping_sent(at(10_000));
        assert!(ka.ping_outstanding());
        assert_eq!(ka.poll(at(10_000)), KeepAliveAction::WaitUntil(Some(at(15_000))));
        assert_eq!(ka.poll(at(14_999)), KeepAliveAction::WaitUntil(Some(at(15_000))));
        assert_eq!(ka.poll(at(15_000)), KeepAliveAction::Expired);
        assert_eq!(ka.poll(at(99_000)), KeepAliveAction::Expired);
    }

    #[test]
    fn keepalive_dead_link_found_within_1_5_intervals_of_last_receive() {
        let ka_secs = 60;
        let mut ka = KeepAlive::new(ka_secs, at(0));
        let mut now = at(0);
        // Step through time the way a client would: act when told to.
        loop {
            match ka.poll(now) {
                KeepAliveAction::WaitUntil(Some(t)) => now = t,
                KeepAliveAction::WaitUntil(None) => panic!("keepalive is on"),
                KeepAliveAction::SendPing => ka.on_ping_sent(now),
                KeepAliveAction::Expired => break,
            }
        }
        assert_eq!(now, at(90_000));
    }

    #[test]
    fn keepalive_zero_is_off() {
        let mut ka = KeepAlive::new(0, at(0));
        assert_eq!(ka.poll(at(0)), KeepAliveAction::WaitUntil(None));
        assert_eq!(ka.poll(at(u64::from(u32::MAX))), KeepAliveAction::WaitUntil(None));
        ka.on_ping_sent(at(1));
        assert_eq!(ka.poll(at(1_000_000)), KeepAliveAction::WaitUntil(None));
    }

    #[test]
    fn on_received_clears_the_outstanding_ping() {
        let mut ka = KeepAlive::new(10, at(0));
        ka.on_ping_sent(at(10_000));
        ka.on_received(at(12_000));
        assert!(!ka.ping_outstanding());
        // The next ping is due an interval after the ping was sent (the
        // later of the two events is the receive, the earlier the send).
        assert_eq!(ka.poll(at(14_999)), KeepAliveAction::WaitUntil(Some(at(20_000))));
        assert_eq!(ka.poll(at(20_000)), KeepAliveAction::SendPing);
    }

    #[test]
    fn on_sent_does_not_clear_the_outstanding_ping() {
        let mut ka = KeepAlive::new(10, at(0));
        ka.on_ping_sent(at(10_000));
        ka.on_sent(at(11_000)); // a QoS 0 publish is no answer from the server
        assert!(ka.ping_outstanding());
        assert_eq!(ka.poll(at(15_000)), KeepAliveAction::Expired);
    }

    #[test]
    fn mqtt_3_1_2_23_next_ping_counts_from_the_ping_when_sends_crossed_it() {
        let mut ka = KeepAlive::new(10, at(0));
        ka.on_ping_sent(at(10_000));
        ka.on_sent(at(11_000));
        ka.on_received(at(12_000)); // PINGRESP
        // Early (from the PINGREQ, not from the later send), never late.
        assert_eq!(ka.poll(at(19_999)), KeepAliveAction::WaitUntil(Some(at(20_000))));
        assert_eq!(ka.poll(at(20_000)), KeepAliveAction::SendPing);
    }

    // ---- Outbox ----

    /// Encodes a QoS 1 PUBLISH with `id` after the outbox's bytes and
    /// pushes it, as the client does.
    fn push(outbox: &mut Outbox, buf: &mut [u8], n: u16, topic: &str) {
        let publish = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic,
            packet_id: Some(id(n)),
            payload: b"payload",
        };
        let len = packet::encode(&Packet::Publish(publish), &mut buf[outbox.len()..]).unwrap();
        outbox.push(len);
    }

    /// The (id, topic, dup) of every stored packet, decoded from `buf`.
    fn stored(outbox: &Outbox, buf: &[u8]) -> std::vec::Vec<(u16, std::string::String, bool)> {
        outbox
            .entries(buf)
            .map(|e| match packet::decode(&buf[e.start..e.end]).unwrap().packet {
                Packet::Publish(p) => {
                    assert_eq!(p.packet_id, Some(e.packet_id));
                    (e.packet_id.get(), p.topic.into(), p.dup)
                }
                other => panic!("not a PUBLISH: {other:?}"),
            })
            .collect()
    }

    fn three(buf: &mut [u8]) -> Outbox {
        let mut outbox = Outbox::default();
        push(&mut outbox, buf, 1, "a");
        push(&mut outbox, buf, 2, "bb/longer");
        push(&mut outbox, buf, 3, "c");
        outbox
    }

    #[test]
    fn outbox_removing_the_oldest_moves_no_byte_until_compacted() {
        let mut buf = [0u8; 256];
        let mut outbox = three(&mut buf);
        let (len, before) = (outbox.len(), buf);
        assert!(outbox.remove(&mut buf, id(1)));
        assert_eq!(buf, before, "no byte moved");
        assert_eq!(outbox.len(), len);
        assert!(outbox.matches(&buf));
        let kept = stored(&outbox, &buf);
        assert!(outbox.compact(&mut buf));
        assert!(!outbox.compact(&mut buf), "nothing left to reclaim");
        assert_eq!(stored(&outbox, &buf), kept);
        assert_eq!(outbox.entries(&buf).next().map(|e| e.start), Some(0));
        assert!(outbox.matches(&buf));
        assert!(outbox.contains(&buf, id(3)) && !outbox.contains(&buf, id(1)));
    }

    /// Pushes, removals in any order and compactions against a plain
    /// list: the outbox always holds exactly the ids not yet removed, in
    /// push order, whole and decodable.
    #[test]
    fn outbox_matches_a_model_under_random_pushes_removals_and_compactions() {
        let mut seed = 0x2545_f491_u32;
        let mut rand = move |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % n
        };
        let mut buf = [0u8; 2048];
        let mut outbox = Outbox::default();
        let mut model: std::vec::Vec<u16> = std::vec::Vec::new();
        let mut next = 1u16;
        for _ in 0..5_000 {
            match rand(10) {
                0..=3 if outbox.len() + 64 < buf.len() => {
                    let topic = ["t", "topic/x", "a/b/c/d"][rand(3) as usize];
                    push(&mut outbox, &mut buf, next, topic);
                    model.push(next);
                    next = if next == u16::MAX { 1 } else { next + 1 };
                }
                0..=6 if !model.is_empty() => {
                    // Mostly the oldest, as brokers ack in order.
                    let i = if rand(4) == 0 { rand(model.len() as u32) as usize } else { 0 };
                    assert!(outbox.remove(&mut buf, id(model.remove(i))));
                }
                7 => {
                    outbox.compact(&mut buf);
                }
                _ => {
                    let probe = id(rand(u32::from(u16::MAX)) as u16 + 1);
                    assert_eq!(outbox.contains(&buf, probe), model.contains(&probe.get()));
                }
            }
            let ids: std::vec::Vec<u16> = stored(&outbox, &buf).iter().map(|s| s.0).collect();
            assert_eq!(ids, model);
            assert_eq!(outbox.count(), model.len());
            assert!(outbox.matches(&buf));
        }
    }

    #[test]
    fn outbox_push_and_entries_in_order() {
        let mut buf = [0u8; 256];
        let outbox = three(&mut buf);
        assert_eq!(outbox.count(), 3);
        assert!(!outbox.is_empty());
        assert_eq!(
            stored(&outbox, &buf),
            [(1, "a".into(), false), (2, "bb/longer".into(), false), (3, "c".into(), false)]
        );
        let entries: std::vec::Vec<_> = outbox.entries(&buf).collect();
        assert_eq!(entries[0].start, 0);
        assert_eq!(entries[0].end, entries[1].start);
        assert_eq!(entries[1].end, entries[2].start);
        assert_eq!(entries[2].end, outbox.len());
    }

    #[test]
    fn outbox_contains_only_stored_ids() {
        let mut buf = [0u8; 256];
        let outbox = three(&mut buf);
        for n in 1..=3 {
            assert!(outbox.contains(&buf, id(n)));
        }
        assert!(!outbox.contains(&buf, id(4)));
        assert!(!Outbox::default().contains(&buf, id(1)));
    }

    #[test]
    fn mqtt_2_3_1_3_outbox_remove_middle_keeps_the_others_intact() {
        let mut buf = [0u8; 256];
        let mut outbox = three(&mut buf);
        let len_before = outbox.len();
        let middle = outbox.entries(&buf).nth(1).unwrap();
        assert!(outbox.remove(&mut buf, id(2)));
        assert_eq!(outbox.len(), len_before - (middle.end - middle.start));
        assert_eq!(outbox.count(), 2);
        assert_eq!(stored(&outbox, &buf), [(1, "a".into(), false), (3, "c".into(), false)]);
        assert!(!outbox.contains(&buf, id(2)));
    }

    #[test]
    fn outbox_remove_first() {
        let mut buf = [0u8; 256];
        let mut outbox = three(&mut buf);
        assert!(outbox.remove(&mut buf, id(1)));
        assert_eq!(stored(&outbox, &buf), [(2, "bb/longer".into(), false), (3, "c".into(), false)]);
    }

    #[test]
    fn outbox_remove_last() {
        let mut buf = [0u8; 256];
        let mut outbox = three(&mut buf);
        assert!(outbox.remove(&mut buf, id(3)));
        assert_eq!(stored(&outbox, &buf), [(1, "a".into(), false), (2, "bb/longer".into(), false)]);
        // Room freed at the end is reused by the next push.
        push(&mut outbox, &mut buf, 4, "d");
        assert_eq!(outbox.entries(&buf).last().unwrap().packet_id, id(4));
    }

    #[test]
    fn outbox_remove_unknown_id_changes_nothing() {
        let mut buf = [0u8; 256];
        let mut outbox = three(&mut buf);
        let before = (outbox, buf);
        assert!(!outbox.remove(&mut buf, id(9)));
        assert_eq!((outbox, buf), before);
    }

    #[test]
    fn outbox_remove_all_leaves_it_empty() {
        let mut buf = [0u8; 256];
        let mut outbox = three(&mut buf);
        for n in [2, 3, 1] {
            assert!(outbox.remove(&mut buf, id(n)));
        }
        assert!(outbox.is_empty());
        assert_eq!(outbox.len(), 0);
        assert_eq!(outbox.entries(&buf).count(), 0);
    }

    #[test]
    fn mqtt_3_3_1_1_set_dup_marks_every_stored_publish_and_nothing_else() {
        let mut buf = [0u8; 256];
        let outbox = three(&mut buf);
        let mut expected = buf;
        for e in outbox.entries(&buf) {
            expected[e.start] |= 0x08;
        }
        outbox.set_dup(&mut buf);
        // Only the first byte of each stored packet changed, and the bytes
        // after the outbox (free space) are untouched.
        assert_eq!(buf, expected);
        assert!(stored(&outbox, &buf).iter().all(|(_, _, dup)| *dup));
        // Idempotent.
        outbox.set_dup(&mut buf);
        assert_eq!(buf, expected);
    }

    #[test]
    fn mqtt_4_4_0_1_resend_keeps_original_packet_ids_after_set_dup() {
        let mut buf = [0u8; 256];
        let outbox = three(&mut buf);
        outbox.set_dup(&mut buf);
        let ids: std::vec::Vec<u16> = stored(&outbox, &buf).iter().map(|(i, _, _)| *i).collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn mqtt_3_1_2_6_clear_forgets_everything() {
        let mut buf = [0u8; 256];
        let mut outbox = three(&mut buf);
        outbox.clear();
        assert!(outbox.is_empty());
        assert_eq!(outbox.len(), 0);
        assert_eq!(outbox.count(), 0);
        assert!(!outbox.contains(&buf, id(1)));
    }

    #[test]
    fn outbox_matches_only_the_buffer_it_was_filled_in() {
        let mut buf = [0u8; 128];
        let outbox = three(&mut buf);
        assert!(outbox.matches(&buf));
        assert!(Outbox::default().matches(&[]));
        assert!(!outbox.matches(&buf[..outbox.len() - 1]), "shorter buffer");
        assert!(!outbox.matches(&[0u8; 128]), "other contents");
        let mut other = buf;
        other[0] = 0x20; // a CONNACK, not a PUBLISH
        assert!(!outbox.matches(&other));
    }

    #[test]
    fn outbox_handles_a_publish_with_a_two_byte_remaining_length() {
        let mut buf = [0u8; 1024];
        let mut outbox = Outbox::default();
        let topic = "t".repeat(200); // remaining length > 127
        push(&mut outbox, &mut buf, 7, &topic);
        push(&mut outbox, &mut buf, 8, "x");
        assert_eq!(stored(&outbox, &buf).iter().map(|s| s.0).collect::<std::vec::Vec<_>>(), [7, 8]);
        assert!(outbox.remove(&mut buf, id(7)));
        assert_eq!(stored(&outbox, &buf), [(8, "x".into(), false)]);
    }

    #[test]
    fn move_down_equals_copy_within_for_every_overlap() {
        let original: std::vec::Vec<u8> = (0..40).collect();
        for start in 0..=40 {
            for end in start..=40 {
                for to in 0..=start {
                    let mut expected = original.clone();
                    expected.copy_within(start..end, to);
                    let mut moved = original.clone();
                    move_down(&mut moved, start..end, to);
                    assert_eq!(moved, expected, "{start}..{end} to {to}");
                }
            }
        }
    }

    #[test]
    fn move_up_equals_copy_within_for_every_overlap() {
        let original: std::vec::Vec<u8> = (0..40).collect();
        for start in 0..=40 {
            for end in start..=40 {
                for to in start..=40 - (end - start) {
                    let mut expected = original.clone();
                    expected.copy_within(start..end, to);
                    let mut moved = original.clone();
                    move_up(&mut moved, start..end, to);
                    assert_eq!(moved, expected, "{start}..{end} to {to}");
                }
            }
        }
        let mut buf = [1u8, 2, 3, 4];
        move_up(&mut buf, 1..3, 3); // past the end: nothing
        assert_eq!(buf, [1, 2, 3, 4]);
    }

    /// QoS 2 PUBLISHes released in every order, interleaved with
    /// completions: the outbox always holds, in publication order, a
    /// PUBLISH for each message without PUBREC and a PUBREL for each with.
    #[test]
    fn mqtt_4_4_0_1_release_keeps_publication_order_whichever_side_moves() {
        for order in [[1u16, 2, 3, 4, 5], [3, 1, 5, 2, 4], [5, 4, 3, 2, 1], [2, 4, 1, 3, 5]] {
            let mut buf = [0u8; 512];
            let mut outbox = Outbox::default();
            for n in 1..=5u16 {
                let publish = Publish {
                    dup: false,
                    qos: QoS::ExactlyOnce,
                    retain: false,
                    topic: ["a", "bbbbbbbbbbbb", "c"][usize::from(n) % 3],
                    packet_id: Some(id(n)),
                    payload: b"payload",
                };
                let len =
                    packet::encode(&Packet::Publish(publish), &mut buf[outbox.len()..]).unwrap();
                outbox.push_publish(&buf, len);
            }
            let mut released = std::vec::Vec::new();
            for n in order {
                let entry = outbox.find(&buf, id(n)).unwrap();
                let (start, end) = outbox.release(&mut buf, entry).unwrap();
                assert_eq!(buf[start..end], [0x62, 0x02, 0, n as u8]);
                released.push(n);
                let stages: std::vec::Vec<(u16, Stage)> =
                    outbox.entries(&buf).map(|e| (e.packet_id.get(), e.stage)).collect();
                let expected: std::vec::Vec<(u16, Stage)> = (1..=5)
                    .map(|k| {
                        let stage = if released.contains(&k) {
                            Stage::AwaitingPubComp
                        } else {
                            Stage::AwaitingPubRec
                        };
                        (k, stage)
                    })
                    .collect();
                assert_eq!(stages, expected, "order {order:?}");
                assert!(outbox.matches(&buf));
            }
            for n in 1..=5 {
                assert!(outbox.remove(&mut buf, id(n)));
            }
            assert!(outbox.is_empty());
        }
    }

    #[test]
    fn move_down_out_of_range_copies_nothing_and_never_panics() {
        let mut buf = [1u8, 2, 3, 4];
        move_down(&mut buf, 2..9, 0);
        move_down(&mut buf, 9..12, 1);
        let (start, end) = (3, 2);
        move_down(&mut buf, start..end, 0); // reversed
        move_down(&mut buf, 1..3, 2); // `to` after the start: not a move down
        assert_eq!(buf, [1, 2, 3, 4]);
    }
}
