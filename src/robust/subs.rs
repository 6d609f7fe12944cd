//! The remembered subscriptions, back to back in caller bytes: for each,
//! one byte of flags and QoS, two of length (little endian), the filter.

use crate::QoS;

/// Flag: the broker acknowledged this subscription on the current session.
const ACKED: u8 = 0x80;
const ENTRY_HEAD: usize = 3;

/// One remembered subscription.
pub(crate) struct Entry<'a> {
    pub(crate) filter: &'a str,
    pub(crate) qos: QoS,
    pub(crate) acked: bool,
    /// Offset of the next entry.
    pub(crate) next: usize,
}

/// The entry at `at` in `list[..len]`, if any.
pub(crate) fn entry(list: &[u8], at: usize) -> Option<Entry<'_>> {
    let head = list.get(at..at + ENTRY_HEAD)?;
    let n = usize::from(u16::from_le_bytes([head[1], head[2]]));
    let bytes = list.get(at + ENTRY_HEAD..at + ENTRY_HEAD + n)?;
    let qos = match head[0] & 0b11 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    Some(Entry {
        filter: core::str::from_utf8(bytes).ok()?,
        qos,
        acked: head[0] & ACKED != 0,
        next: at + ENTRY_HEAD + n,
    })
}

/// The offset of the entry for `filter` in `list[..len]`.
fn find(list: &[u8], len: usize, filter: &str) -> Option<usize> {
    let list = list.get(..len)?;
    let mut at = 0;
    while let Some(e) = entry(list, at) {
        if e.filter == filter {
            return Some(at);
        }
        at = e.next;
    }
    None
}

/// Remembers `filter` at `qos`, not yet acknowledged (replacing an entry
/// for the same filter); `false` when it does not fit.
pub(crate) fn insert(list: &mut [u8], len: &mut usize, filter: &str, qos: QoS) -> bool {
    remove(list, len, filter);
    let n = filter.len();
    let Ok(n16) = u16::try_from(n) else { return false };
    let Some(slot) = list.get_mut(*len..*len + ENTRY_HEAD + n) else { return false };
    let [lo, hi] = n16.to_le_bytes();
    let (head, rest) = slot.split_at_mut(ENTRY_HEAD.min(slot.len()));
    for (d, s) in head.iter_mut().zip([qos as u8, lo, hi]) {
        *d = s;
    }
    for (d, s) in rest.iter_mut().zip(filter.as_bytes()) {
        *d = *s;
    }
    *len += ENTRY_HEAD + n;
    true
}

/// Forgets `filter`.
pub(crate) fn remove(list: &mut [u8], len: &mut usize, filter: &str) {
    let Some(at) = find(list, *len, filter) else { return };
    let end = at + ENTRY_HEAD + filter.len();
    shift_down(list, end, at, *len);
    *len -= end - at;
}

/// Moves `list[from..len]` down to `to` (`to < from`), without a panic
/// path.
fn shift_down(list: &mut [u8], from: usize, to: usize, len: usize) {
    for i in 0..len.saturating_sub(from) {
        if let Some(b) = list.get(from + i).copied() {
            if let Some(d) = list.get_mut(to + i) {
                *d = b;
            }
        }
    }
}

/// Marks the entry at `at` acknowledged.
pub(crate) fn mark_acked(list: &mut [u8], at: usize) {
    mark(list, at, true);
}

/// Forgets the entry at `at` (a refused subscription).
pub(crate) fn remove_at(list: &mut [u8], len: &mut usize, at: usize) {
    let Some(next) = entry(list.get(..*len).unwrap_or_default(), at).map(|e| e.next) else {
        return;
    };
    shift_down(list, next, at, *len);
    *len -= next - at;
}

/// Marks every entry not acknowledged (a new session).
pub(crate) fn clear_acked(list: &mut [u8], len: usize) {
    let mut at = 0;
    while let Some(next) = entry(list.get(..len).unwrap_or_default(), at).map(|e| e.next) {
        mark(list, at, false);
        at = next;
    }
}

fn mark(list: &mut [u8], at: usize, acked: bool) {
    if let Some(flags) = list.get_mut(at) {
        *flags = if acked { *flags | ACKED } else { *flags & !ACKED };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(list: &[u8], len: usize) -> std::vec::Vec<(&str, bool)> {
        let mut out = std::vec::Vec::new();
        let mut at = 0;
        while let Some(e) = entry(&list[..len], at) {
            out.push((e.filter, e.acked));
            at = e.next;
        }
        out
    }

    #[test]
    fn entries_insert_replace_remove_and_acknowledge_in_place() {
        let (mut list, mut len) = ([0u8; 32], 0);
        assert!(insert(&mut list, &mut len, "a/#", QoS::AtLeastOnce));
        assert!(insert(&mut list, &mut len, "b", QoS::AtMostOnce));
        assert!(insert(&mut list, &mut len, "c/+", QoS::ExactlyOnce));
        assert_eq!(len, 3 * 3 + 3 + 1 + 3);
        mark_acked(&mut list, 0);
        assert_eq!(filters(&list, len), [("a/#", true), ("b", false), ("c/+", false)]);
        // The same filter again replaces its entry (at the end, unacknowledged).
        assert!(insert(&mut list, &mut len, "a/#", QoS::AtMostOnce));
        assert_eq!(filters(&list, len), [("b", false), ("c/+", false), ("a/#", false)]);
        assert_eq!(entry(&list[..len], 10).map(|e| e.qos), Some(QoS::AtMostOnce));
        remove(&mut list, &mut len, "c/+");
        assert_eq!(filters(&list, len), [("b", false), ("a/#", false)]);
        remove_at(&mut list, &mut len, 0);
        assert_eq!(filters(&list, len), [("a/#", false)]);
        mark_acked(&mut list, 0);
        clear_acked(&mut list, len);
        assert_eq!(filters(&list, len), [("a/#", false)]);
        // Full: 32 bytes hold 6 + 26.
        assert!(!insert(&mut list, &mut len, &"x".repeat(24), QoS::AtMostOnce));
        assert!(insert(&mut list, &mut len, &"x".repeat(23), QoS::AtMostOnce));
        assert_eq!(len, 32);
        remove(&mut list, &mut len, "absent");
        assert_eq!(len, 32);
    }
}
