//! Topic names and topic filters (section 4.7): validation and matching.

use core::fmt;

use crate::packet::Malformed;
use crate::packet::wire::check_no_null;

/// A checked topic name: what a PUBLISH is sent to.
///
/// Not empty `[MQTT-4.7.3-1]`, no `+` or `#` `[MQTT-4.7.1-1]`, no U+0000
/// `[MQTT-4.7.3-2]`, at most 65,535 bytes `[MQTT-4.7.3-3]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TopicName<'a>(&'a str);

impl<'a> TopicName<'a> {
    /// Checks `name`.
    pub fn new(name: &'a str) -> Result<Self, Malformed> {
        check_common(name)?;
        // Without early exit, so vectorized (see `check_no_null`).
        if name.bytes().fold(false, |found, b| found | (b == b'+') | (b == b'#')) {
            return Err(Malformed::WildcardInTopicName);
        }
        Ok(Self(name))
    }

    /// The name as a string.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Display for TopicName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A checked topic filter: what a SUBSCRIBE asks for.
///
/// `#` only as the whole last level `[MQTT-4.7.1-2]`, `+` only as a whole
/// level `[MQTT-4.7.1-3]`, plus the rules of [`TopicName`] other than
/// wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TopicFilter<'a>(&'a str);

impl<'a> TopicFilter<'a> {
    /// Checks `filter`.
    pub fn new(filter: &'a str) -> Result<Self, Malformed> {
        check_common(filter)?;
        // One pass over the bytes ('/', '+' and '#' are ASCII, so this is
        // exact on UTF-8), each byte judged with the one before it, the
        // start counting as a separator. (`str::split('/')` was slower, and
        // keeps a bounds check, a panic path, see scripts/panic-never.)
        let mut prev = b'/';
        for &b in filter.as_bytes() {
            let valid = match (prev, b) {
                (b'#', _) => false,                  // '#' is the last character
                (b'+', b) => b == b'/',              // '+' is a whole level
                (prev, b'+' | b'#') => prev == b'/', // a wildcard starts a level
                _ => true,
            };
            if !valid {
                return Err(Malformed::InvalidTopicFilter);
            }
            prev = b;
        }
        Ok(Self(filter))
    }

    /// The filter as a string.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// Whether a message published to `name` matches this filter
    /// (section 4.7.1 and 4.7.2): `+` matches one level, `#` any number
    /// including none, and a filter starting with a wildcard does not match
    /// a name starting with `$` `[MQTT-4.7.2-1]`.
    pub fn matches(&self, name: &TopicName<'_>) -> bool {
        let name = name.as_str();
        if name.starts_with('$') && (self.0.starts_with('+') || self.0.starts_with('#')) {
            return false;
        }
        // As bytes, like in `new`.
        let mut filter_levels = self.0.as_bytes().split(|&b| b == b'/');
        let mut name_levels = name.as_bytes().split(|&b| b == b'/');
        loop {
            match (filter_levels.next(), name_levels.next()) {
                (Some(b"#"), _) => return true,
                (Some(b"+"), Some(_)) => {}
                (Some(f), Some(n)) if f == n => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl fmt::Display for TopicFilter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn check_common(s: &str) -> Result<(), Malformed> {
    if s.is_empty() {
        return Err(Malformed::EmptyTopic);
    }
    if s.len() > usize::from(u16::MAX) {
        return Err(Malformed::StringTooLong);
    }
    check_no_null(s)
}
