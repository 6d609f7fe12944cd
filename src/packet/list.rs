//! A list of items in a packet payload (SUBSCRIBE topics, SUBACK return
//! codes, UNSUBSCRIBE filters) that is either the caller's slice, for
//! encoding, or the checked wire bytes, for zero-copy decoding.

use core::fmt;

use super::Malformed;
use super::wire::{Reader, Writer};

pub(crate) mod sealed {
    use super::{Malformed, Reader, Writer};

    /// How one list item is read from and written to the wire.
    pub trait Wire<'a>: Sized {
        fn read(r: &mut Reader<'a>) -> Result<Self, Malformed>;
        fn wire_len(&self) -> Result<usize, Malformed>;
        fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed>;
    }
}

/// An item of a [`List`]: [`SubscribeTopic`](super::SubscribeTopic),
/// [`SubscribeReturnCode`](super::SubscribeReturnCode) or a topic filter
/// `&str`. Sealed.
pub trait ListItem<'a>: sealed::Wire<'a> + Copy {}
impl<'a, T: sealed::Wire<'a> + Copy> ListItem<'a> for T {}

/// Items of a packet payload.
#[derive(Clone, Copy)]
pub enum List<'a, T> {
    /// Items given by the caller, to encode.
    Items(&'a [T]),
    /// Wire bytes, already checked by the decoder; iterate them with
    /// [`List::iter`].
    Encoded(&'a [u8]),
}

impl<'a, T: ListItem<'a>> List<'a, T> {
    /// Reads every remaining item, at least one.
    pub(crate) fn read(r: &mut Reader<'a>, empty: Malformed) -> Result<Self, Malformed> {
        let bytes = r.rest();
        if bytes.is_empty() {
            return Err(empty);
        }
        let mut items = Reader::new(bytes);
        while !items.is_empty() {
            T::read(&mut items)?;
        }
        Ok(Self::Encoded(bytes))
    }

    /// The items, in order.
    pub fn iter(&self) -> Iter<'a, T> {
        match *self {
            Self::Items(items) => Iter(IterInner::Items(items.iter())),
            Self::Encoded(bytes) => Iter(IterInner::Encoded(Reader::new(bytes))),
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            Self::Items(items) => items.len(),
            Self::Encoded(_) => self.iter().count(),
        }
    }

    /// Whether the list has no items (never true for a decoded list).
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Items(items) => items.is_empty(),
            Self::Encoded(bytes) => bytes.is_empty(),
        }
    }

    pub(crate) fn body_len(&self, empty: Malformed) -> Result<usize, Malformed> {
        match self {
            Self::Items([]) | Self::Encoded([]) => Err(empty),
            Self::Items(items) => items.iter().try_fold(0, |len, item| Ok(len + item.wire_len()?)),
            // The variant is public: bytes a caller built by hand are
            // checked like received ones, so no invalid packet is written.
            Self::Encoded(bytes) => Self::read(&mut Reader::new(bytes), empty).map(|_| bytes.len()),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Malformed> {
        match self {
            Self::Items(items) => items.iter().try_for_each(|item| item.write(w)),
            Self::Encoded(bytes) => w.bytes(bytes),
        }
    }
}

/// Iterator over the items of a [`List`].
pub struct Iter<'a, T>(IterInner<'a, T>);

enum IterInner<'a, T> {
    Items(core::slice::Iter<'a, T>),
    Encoded(Reader<'a>),
}

impl<'a, T: ListItem<'a>> Iterator for Iter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.0 {
            IterInner::Items(items) => items.next().copied(),
            IterInner::Encoded(r) if r.is_empty() => None,
            // The bytes were checked when decoded, so this cannot fail; an
            // error would end the iteration rather than panic.
            IterInner::Encoded(r) => T::read(r).ok(),
        }
    }
}

impl<'a, T: ListItem<'a> + PartialEq> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a, T: ListItem<'a> + Eq> Eq for List<'a, T> {}

impl<'a, T: ListItem<'a> + fmt::Debug> fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl<'a, T: ListItem<'a> + defmt::Format> defmt::Format for List<'a, T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "[");
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                defmt::write!(f, ", ");
            }
            defmt::write!(f, "{}", item);
        }
        defmt::write!(f, "]");
    }
}
