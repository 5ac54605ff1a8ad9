//! Characters that untrusted text must not carry raw into a log line, a
//! terminal or a response.
//!
//! JSON escapes the C0 controls, but leaves literal DEL, the C1 controls
//! (U+0080..U+009F, among them U+009B, a control sequence introducer to many
//! terminals), the Unicode line and paragraph separators (U+2028, U+2029) and
//! the bidirectional controls (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F,
//! U+061C). Echoed raw, they make text display other than it reads: a client
//! key holding U+202E shows its characters reversed, and everything after it.
//! [`is_display_control`] names that set; the guardrails escape it wherever
//! they write client text (the audit trail's `\u{HHHH}`, problem documents'
//! `\uHHHH`).
//!
//! ```
//! use guardrails_core::text::{has_display_control, is_display_control};
//!
//! assert!(is_display_control('\u{202e}'));
//! assert!(!is_display_control('\u{200d}')); // zero-width joiner: emoji need it
//! assert!(has_display_control("admin\u{202e}txt.exe"));
//! assert!(!has_display_control("Grüße, 世界"));
//! ```

/// Whether `c` is DEL, a C1 control, a Unicode line or paragraph separator,
/// or a bidirectional control (see the [module documentation](self)).
pub fn is_display_control(c: char) -> bool {
    matches!(
        c,
        '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `s` holds a character [`is_display_control`] names.
///
/// Text of ASCII letters, digits, punctuation and C0 controls, the common
/// case, costs one comparison per byte; only other text is decoded.
#[inline]
pub fn has_display_control(s: &str) -> bool {
    if below_del(s) {
        return false;
    }
    s.chars().any(is_display_control)
}

/// Whether every byte of `s` is below DEL (0x7F): then it holds none of the
/// set, whose characters are DEL or encoded with bytes above it. A maximum
/// without early exit, which the compiler turns into vector instructions.
#[inline]
fn below_del(s: &str) -> bool {
    s.bytes().max().unwrap_or(0) < 0x7f
}

/// A `serde_json` formatter that writes the characters [`is_display_control`]
/// names as JSON `\uHHHH` escapes: the same document to any JSON parser,
/// without the raw characters in its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EscapeDisplayControls;

impl serde_json::ser::Formatter for EscapeDisplayControls {
    #[inline]
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if below_del(fragment) {
            return writer.write_all(fragment.as_bytes());
        }
        write_escaped(writer, fragment)
    }
}

/// `fragment` with the characters [`is_display_control`] names as `\uHHHH`.
#[cold]
#[inline(never)]
fn write_escaped<W: ?Sized + std::io::Write>(
    writer: &mut W,
    fragment: &str,
) -> std::io::Result<()> {
    let mut start = 0;
    for (at, c) in fragment.char_indices() {
        if is_display_control(c) {
            writer.write_all(&fragment.as_bytes()[start..at])?;
            // Every such character is in the Basic Multilingual Plane: one
            // `\uHHHH`.
            write!(writer, "\\u{:04x}", u32::from(c))?;
            start = at + c.len_utf8();
        }
    }
    writer.write_all(&fragment.as_bytes()[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_exactly_the_set() {
        for c in [
            '\u{7f}', '\u{80}', '\u{9b}', '\u{9f}', '\u{61c}', '\u{200e}', '\u{200f}',
        ] {
            assert!(is_display_control(c), "{:?}", c);
        }
        for c in ('\u{2028}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            assert!(is_display_control(c), "{:?}", c);
        }
        for c in [
            'a', '~', '\u{a0}', 'é', '\u{200d}', '\u{2027}', '\u{202f}', '\u{2065}', '\u{206a}',
        ] {
            assert!(!is_display_control(c), "{:?}", c);
        }
    }

    #[test]
    fn json_escapes_them_and_means_the_same() {
        let text = "a\u{202e}b\u{2028}c\u{9b}d\u{7f}\u{200d}é\n\"";
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, EscapeDisplayControls);
        serde::Serialize::serialize(text, &mut ser).unwrap();
        let json = String::from_utf8(out).unwrap();
        assert_eq!(json, "\"a\\u202eb\\u2028c\\u009bd\\u007f\u{200d}é\\n\\\"\"");
        assert!(!has_display_control(&json));
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), text);
    }
}
