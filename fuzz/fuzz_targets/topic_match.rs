//! Arbitrary topic filter and topic name (split at the first 0xff byte,
//! which UTF-8 never contains): validation never panics and agrees with
//! the rules of section 4.7, and matching agrees with the plain reference
//! implementation below.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umqtt::topic::{TopicFilter, TopicName};

fuzz_target!(|data: &[u8]| {
    let (filter, name) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"a/b"[..]),
    };
    let (Ok(filter), Ok(name)) = (std::str::from_utf8(filter), std::str::from_utf8(name)) else {
        return;
    };
    let f = TopicFilter::new(filter);
    let n = TopicName::new(name);
    assert_eq!(f.is_ok(), valid_filter(filter), "filter {filter:?}: {f:?}");
    assert_eq!(n.is_ok(), valid_name(name), "name {name:?}: {n:?}");
    if let (Ok(f), Ok(n)) = (f, n) {
        assert_eq!(
            f.matches(&n),
            matches(filter, name),
            "{filter:?} vs {name:?}"
        );
    }
});

fn valid_common(s: &str) -> bool {
    !s.is_empty() && s.len() <= 65_535 && !s.contains('\0')
}

/// [MQTT-4.7.1-1], [MQTT-4.7.3-1..3].
fn valid_name(s: &str) -> bool {
    valid_common(s) && !s.contains('+') && !s.contains('#')
}

/// [MQTT-4.7.1-2], [MQTT-4.7.1-3]: wildcards are whole levels, '#' last.
fn valid_filter(s: &str) -> bool {
    let levels: Vec<&str> = s.split('/').collect();
    valid_common(s)
        && levels.iter().enumerate().all(|(i, level)| match *level {
            "+" => true,
            "#" => i + 1 == levels.len(),
            other => !other.contains('+') && !other.contains('#'),
        })
}

/// Section 4.7: level by level, '+' one level, '#' the rest (parent
/// included), and no wildcard-led filter matches a '$' name [MQTT-4.7.2-1].
fn matches(filter: &str, name: &str) -> bool {
    fn levels(f: &[&str], n: &[&str]) -> bool {
        match (f, n) {
            (["#"], _) => true,
            ([], []) => true,
            (["+", f @ ..], [_, n @ ..]) => levels(f, n),
            ([a, f @ ..], [b, n @ ..]) => a == b && levels(f, n),
            _ => false,
        }
    }
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    levels(&f, &n)
}
