//! RFC 8785 JSON Canonicalization Scheme (JCS) for integer-only JSON.
//!
//! Audit records hold only strings, integers, booleans, null, arrays and
//! objects, so canonicalization is: no whitespace; object members sorted by
//! the UTF-16 code units of their names; strings escaped as ECMAScript's
//! `JSON.stringify` does (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other
//! controls as lower-case `\u00xx`, everything else literal); integers in
//! decimal. Numbers that are not integers within ±(2⁵³−1) are refused
//! ([`NotCanonical`]) rather than approximated, since the ECMAScript number
//! formatting they would need is not part of this format.
//!
//! The test suite checks this implementation against an independent one
//! (PyPI `rfc8785`).
//!
//! ```
//! use serde_json::json;
//!
//! let value = json!({"b": [1, "\u{e9}\n"], "a": null, "\u{20ac}": true, "\u{1f600}": false});
//! let bytes = guardrails_audit::jcs::to_vec(&value).unwrap();
//! // U+20AC (0x20AC) sorts before U+1F600 (UTF-16 0xD83D 0xDE00)
//! assert_eq!(
//!     String::from_utf8(bytes).unwrap(),
//!     "{\"a\":null,\"b\":[1,\"\u{e9}\\n\"],\"\u{20ac}\":true,\"\u{1f600}\":false}"
//! );
//! ```

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::event::MAX_SAFE_INTEGER;

/// A value that has no canonical form in this format: a non-integer number
/// or an integer outside ±(2⁵³−1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a number is not an integer within ±(2^53-1), which audit records never contain")]
pub struct NotCanonical;

/// The canonical bytes of `value`.
///
/// # Errors
///
/// [`NotCanonical`] if `value` contains a number that is not an integer
/// within ±(2⁵³−1).
pub fn to_vec(value: &Value) -> Result<Vec<u8>, NotCanonical> {
    let mut out = Vec::with_capacity(512);
    write_value(&mut out, value)?;
    Ok(out)
}

/// Appends the canonical form of `value` to `out`.
///
/// # Errors
///
/// [`NotCanonical`], as [`to_vec`].
pub fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), NotCanonical> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            let i = if let Some(i) = n.as_i64() {
                i
            } else {
                return Err(NotCanonical);
            };
            if !(-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i) {
                return Err(NotCanonical);
            }
            // `-0` cannot be an i64; integers print the same in ECMAScript.
            if i < 0 {
                out.push(b'-');
            }
            write_u64(out, i.unsigned_abs());
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(out, map, |_, _| Ok(false))?,
    }
    Ok(())
}

/// Writes `map` canonically; `hook(out, key)` may write a member itself
/// (returning `true`) instead of the default.
pub(crate) fn write_map(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    mut hook: impl FnMut(&mut Vec<u8>, &str) -> Result<bool, NotCanonical>,
) -> Result<(), NotCanonical> {
    let mut member = |out: &mut Vec<u8>, i: usize, key: &String, value: &Value| {
        if i > 0 {
            out.push(b',');
        }
        if hook(out, key)? {
            return Ok(());
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value)
    };
    out.push(b'{');
    // The map usually iterates in canonical order already (a `BTreeMap`
    // orders by code points, which equals UTF-16 order for every key below
    // U+E000): then no sorted copy is needed.
    let mut keys = map.keys();
    let sorted = match keys.next() {
        None => true,
        Some(first) => {
            let mut prev = first;
            keys.all(|key| {
                let ordered = cmp_utf16(prev, key) == Ordering::Less;
                prev = key;
                ordered
            })
        }
    };
    if sorted {
        for (i, (key, value)) in map.iter().enumerate() {
            member(out, i, key, value)?;
        }
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by(|a, b| cmp_utf16(a.0, b.0));
        for (i, (key, value)) in members.into_iter().enumerate() {
            member(out, i, key, value)?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// Appends the decimal digits of `v`.
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Orders strings by their UTF-16 code units, as RFC 8785 requires.
pub fn cmp_utf16(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Appends `s` as a JSON string escaped the ECMAScript way.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip eight bytes at a time while none needs escaping (most text).
        if let Some(chunk) = bytes.get(i..i + 8)
            && let Ok(chunk) = <[u8; 8]>::try_from(chunk)
            && !needs_escape(u64::from_le_bytes(chunk))
        {
            i += 8;
            continue;
        }
        let b = bytes[i];
        i += 1;
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i - 1]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the eight bytes of `w` is a control character, `"` or
/// a backslash (exact for "any": the classic has-zero-byte / has-less-than tests).
#[inline]
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (below_space | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\'))))
        != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_like_ecmascript() {
        let mut out = Vec::new();
        write_str(&mut out, "\"\\/\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}\u{1b}é€😀");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\u{7f}\\u001bé€😀\""
        );
    }

    #[test]
    fn fast_escape_path_agrees_with_serde_json_for_every_position() {
        // Every byte class at every offset of a 8-byte chunk, in long text.
        for special in [
            "\"",
            "\\",
            "\n",
            "\u{1}",
            "\u{1f}",
            " ",
            "\u{7f}",
            "\u{e9}",
            "\u{1f600}",
        ] {
            for at in 0..20 {
                let s = format!("{}{special}{}", "a".repeat(at), "b".repeat(19 - at.min(19)));
                let mut out = Vec::new();
                write_str(&mut out, &s);
                // serde_json escapes exactly as ECMAScript does.
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn unsorted_maps_are_sorted() {
        let mut map = Map::new();
        map.insert("b".into(), json!(1));
        map.insert("a".into(), json!(-2));
        let mut out = Vec::new();
        write_map(&mut out, &map, |_, _| Ok(false)).unwrap();
        assert_eq!(out, br#"{"a":-2,"b":1}"#);
    }

    #[test]
    fn sorts_by_utf16_code_units() {
        // U+FB33 (one unit 0xFB33) sorts after U+1D11E (surrogates 0xD834…) in
        // UTF-16 although it sorts before it in UTF-8 / code points.
        let v = json!({"\u{fb33}": 1, "\u{1d11e}": 2, "a": 3, "B": 4});
        assert_eq!(
            String::from_utf8(to_vec(&v).unwrap()).unwrap(),
            "{\"B\":4,\"a\":3,\"\u{1d11e}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn refuses_floats_and_unsafe_integers() {
        assert_eq!(to_vec(&json!(1.5)), Err(NotCanonical));
        assert_eq!(to_vec(&json!(u64::MAX)), Err(NotCanonical));
        assert_eq!(to_vec(&json!(MAX_SAFE_INTEGER + 1)), Err(NotCanonical));
        assert_eq!(
            to_vec(&json!(-MAX_SAFE_INTEGER)).unwrap(),
            b"-9007199254740991"
        );
    }
}
