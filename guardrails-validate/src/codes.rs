//! Stable violation codes: from garde rules (through garde's i18n hook) and
//! from serde errors (from serde's fixed message formats), with human details
//! that never name a Rust type nor echo the offending value.
//!
//! | code | from |
//! |---|---|
//! | `syntax` | malformed JSON (400) |
//! | `bom`, `invalid_utf8`, `depth_exceeded`, `string_too_long`, `number_too_long`, `too_many_items`, `too_many_members`, `duplicate_key`, `lone_surrogate`, `nul_character` | the pre-scan (400) |
//! | `invalid_encoding` | query, form or path input that is not valid percent-encoded UTF-8 (400) |
//! | `type_mismatch` | a value of the wrong JSON type (422) |
//! | `out_of_range` | an integer outside its type's range, e.g. 256 for a `u8` (422) |
//! | `invalid_value` | a value its type's parser refused (422) |
//! | `invalid_length` | a tuple or fixed array of the wrong length (422) |
//! | `unknown_variant` | a string not among an enum's variants (422) |
//! | `required` | a missing member (422), or garde's `required` |
//! | `unknown_field` | a member the type does not declare, in strict mode (422) |
//! | `duplicate_key` | a query or form key given twice for a single value (422) |
//! | `length.min`, `length.max` | garde `length` |
//! | `range.min`, `range.max` | garde `range` |
//! | `email`, `url`, `ip`, `pattern`, `contains`, `prefix`, `suffix`, `ascii`, `alphanumeric`, `credit_card`, `phone_number`, `matches` | the garde rule of that name |
//! | `custom` | a garde `custom` rule (its message is the detail), unless it returns [`custom_error`] with a code of its own |

use std::borrow::Cow;
use std::fmt::Display;

use garde::i18n::{I18n, InvalidCreditCard, InvalidEmail, InvalidPhoneNumber, InvalidUrl, IpKind};
use serde_json::Value;

/// Marks a message produced by [`Coded`]: `\u{1}code\u{1}detail`.
const MARK: char = '\u{1}';

fn coded(code: &str, detail: impl Display) -> Cow<'static, str> {
    Cow::Owned(format!("{MARK}{code}{MARK}{detail}"))
}

/// garde messages that carry a stable code.
pub(crate) struct Coded;

impl I18n for Coded {
    fn length_lower_than(&self, min: usize) -> Cow<'static, str> {
        coded(
            "length.min",
            format_args!("must have a length of at least {min}"),
        )
    }
    fn length_greater_than(&self, max: usize) -> Cow<'static, str> {
        coded(
            "length.max",
            format_args!("must have a length of at most {max}"),
        )
    }
    fn range_lower_than(&self, min: &dyn Display) -> Cow<'static, str> {
        coded("range.min", format_args!("must be at least {min}"))
    }
    fn range_greater_than(&self, max: &dyn Display) -> Cow<'static, str> {
        coded("range.max", format_args!("must be at most {max}"))
    }
    fn credit_card_invalid(&self, reason: InvalidCreditCard) -> Cow<'static, str> {
        coded(
            "credit_card",
            format_args!("must be a valid credit card number ({reason})"),
        )
    }
    fn pattern_no_match(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded(
            "pattern",
            format_args!("must match the pattern /{pattern}/"),
        )
    }
    fn contains_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("contains", format_args!("must contain \"{pattern}\""))
    }
    fn url_invalid(&self, reason: InvalidUrl) -> Cow<'static, str> {
        coded("url", format_args!("must be a valid URL ({reason})"))
    }
    fn prefix_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("prefix", format_args!("must begin with \"{pattern}\""))
    }
    fn suffix_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("suffix", format_args!("must end with \"{pattern}\""))
    }
    fn phone_number_invalid(&self, reason: InvalidPhoneNumber) -> Cow<'static, str> {
        coded(
            "phone_number",
            format_args!("must be a valid phone number ({reason})"),
        )
    }
    fn ip_invalid(&self, kind: IpKind) -> Cow<'static, str> {
        coded("ip", format_args!("must be a valid {kind} address"))
    }
    fn matches_field_mismatch(&self, field: &dyn Display) -> Cow<'static, str> {
        coded("matches", format_args!("must match the field {field}"))
    }
    fn email_invalid(&self, reason: InvalidEmail) -> Cow<'static, str> {
        coded(
            "email",
            format_args!("must be a valid email address ({reason})"),
        )
    }
    fn ascii_invalid(&self) -> Cow<'static, str> {
        coded("ascii", "must contain only ASCII characters")
    }
    fn alphanumeric_invalid(&self) -> Cow<'static, str> {
        coded("alphanumeric", "must contain only letters and digits")
    }
    fn required_not_set(&self) -> Cow<'static, str> {
        coded("required", "is required")
    }
}

/// A garde error for a `custom` rule, with a stable code of your own instead
/// of `custom`.
///
/// ```
/// use garde::Validate;
/// use guardrails_validate::{Config, codes::custom_error, json};
///
/// fn iso_date(value: &str, _: &()) -> garde::Result {
///     let ok = value.len() == 10 && value.as_bytes()[4] == b'-' && value.as_bytes()[7] == b'-';
///     if ok { Ok(()) } else { Err(custom_error("date", "must be a date as YYYY-MM-DD")) }
/// }
///
/// #[derive(Debug, serde::Deserialize, Validate)]
/// struct Due {
///     #[garde(custom(iso_date))]
///     due_date: String,
/// }
///
/// let problem = json::from_slice::<Due>(br#"{"due_date":"soon"}"#, &Config::default(), &()).unwrap_err();
/// assert_eq!(problem.violations()[0].code, "date");
/// assert_eq!(problem.violations()[0].detail, "must be a date as YYYY-MM-DD");
/// ```
pub fn custom_error(code: &str, detail: impl Display) -> garde::Error {
    garde::Error::new(coded(code, detail))
}

/// Splits a garde message into `(code, detail)`; a message garde's hook did
/// not produce (a `custom` rule's) is `("custom", message)`.
pub(crate) fn split_garde(message: &str) -> (Cow<'static, str>, Cow<'static, str>) {
    if let Some(rest) = message.strip_prefix(MARK)
        && let Some((code, detail)) = rest.split_once(MARK)
    {
        return (Cow::Owned(code.to_owned()), Cow::Owned(detail.to_owned()));
    }
    (Cow::Borrowed("custom"), Cow::Owned(message.to_owned()))
}

/// What a serde data error means, and how to patch the document to look for
/// further errors.
#[derive(Debug)]
pub(crate) struct DataError {
    pub(crate) code: &'static str,
    pub(crate) detail: Cow<'static, str>,
    /// Appended to the error's path: the member a `missing field` names.
    pub(crate) member: Option<String>,
    /// A value of the expected kind to put in place of the offending one.
    pub(crate) placeholder: Option<Value>,
}

/// Classifies a serde error message (serde's own formats: `invalid type: …,
/// expected …`, `missing field `…``, …).
pub(crate) fn classify_data(message: &str) -> DataError {
    // serde_json appends " at line L column C" to messages; drop it.
    let message = match message.rfind(" at line ") {
        Some(idx) => &message[..idx],
        None => message,
    };
    // The client's value comes first in these messages, the type's
    // expectations last: split at the last separator, which a value may
    // contain but an expectation never does.
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (unexpected, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, ""));
        let want = kind_of_expected(expected);
        return DataError {
            code: "type_mismatch",
            detail: Cow::Owned(format!(
                "must be {}, not {}",
                want.0,
                kind_of_unexpected(unexpected)
            )),
            member: None,
            placeholder: want.1,
        };
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        let (unexpected, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, ""));
        if (unexpected.starts_with("integer") || unexpected.starts_with("floating point"))
            && let Some((min, max)) = int_range(expected)
        {
            return DataError {
                code: "out_of_range",
                detail: Cow::Owned(format!("must be an integer from {min} to {max}")),
                member: None,
                placeholder: Some(Value::from(0)),
            };
        }
        let want = kind_of_expected(expected);
        return DataError {
            code: "invalid_value",
            detail: Cow::Borrowed("is not a valid value"),
            member: None,
            placeholder: want.1,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.strip_suffix('`').unwrap_or(rest);
        return DataError {
            code: "required",
            detail: Cow::Borrowed("is required"),
            member: Some(field.to_owned()),
            placeholder: None,
        };
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        let field = rest.strip_suffix('`').unwrap_or(rest);
        return DataError {
            code: "duplicate_key",
            detail: Cow::Borrowed("is given more than once"),
            member: Some(field.to_owned()),
            placeholder: None,
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let expected = rest
            .rsplit_once("`, expected ")
            .map(|(_, e)| e)
            .unwrap_or("");
        let variants: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let placeholder = variants.first().map(|v| Value::from(*v));
        let detail = if variants.is_empty() {
            Cow::Borrowed("is not one of the accepted values")
        } else {
            Cow::Owned(format!("must be one of: {}", variants.join(", ")))
        };
        return DataError {
            code: "unknown_variant",
            detail,
            member: None,
            placeholder,
        };
    }
    if message.starts_with("invalid length ") {
        return DataError {
            code: "invalid_length",
            detail: Cow::Borrowed("has the wrong number of items"),
            member: None,
            placeholder: None,
        };
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // The message ends with the type's part: no fields, or the list.
        let field = rest
            .strip_suffix("`, there are no fields")
            .or_else(|| rest.rsplit_once("`, expected ").map(|(field, _)| field))
            .unwrap_or(rest);
        return DataError {
            code: "unknown_field",
            detail: Cow::Borrowed("is not a known field"),
            member: Some(field.to_owned()),
            placeholder: None,
        };
    }
    DataError {
        code: "invalid_value",
        detail: Cow::Borrowed("is not a valid value"),
        member: None,
        placeholder: None,
    }
}

/// The human kind of serde's "expected" text, and a placeholder of it.
fn kind_of_expected(expected: &str) -> (&'static str, Option<Value>) {
    let e = expected.trim();
    if int_range(e).is_some() {
        return ("an integer", Some(Value::from(0)));
    }
    match e {
        "f32" | "f64" => ("a number", Some(Value::from(0.0))),
        "a string" | "a borrowed string" | "string" => ("a string", Some(Value::from(""))),
        "a character" | "char" => ("a single character", Some(Value::from("a"))),
        "a boolean" | "bool" => ("a boolean", Some(Value::Bool(false))),
        "unit" | "null" => ("null", Some(Value::Null)),
        "a sequence" => ("an array", Some(Value::Array(Vec::new()))),
        "a map" => ("an object", Some(Value::Object(serde_json::Map::new()))),
        _ if e.starts_with("struct ") || e.starts_with("a map") => {
            ("an object", Some(Value::Object(serde_json::Map::new())))
        }
        _ if e.starts_with("a tuple") || e.starts_with("tuple") || e.starts_with("an array") => {
            ("an array", None)
        }
        _ => ("a value of another type", None),
    }
}

/// The human kind of serde's "unexpected" text (never the value itself).
fn kind_of_unexpected(unexpected: &str) -> &'static str {
    let u = unexpected.trim();
    if u.starts_with("integer") {
        "an integer"
    } else if u.starts_with("floating point") {
        "a number"
    } else if u.starts_with("string") || u.starts_with("character") {
        "a string"
    } else if u.starts_with("boolean") {
        "a boolean"
    } else if u == "null" || u.starts_with("unit") || u == "Option value" {
        "null"
    } else if u == "map" {
        "an object"
    } else if u == "sequence" {
        "an array"
    } else {
        "a value of another type"
    }
}

fn int_range(expected: &str) -> Option<(i128, u128)> {
    Some(match expected.trim() {
        "u8" => (0, u128::from(u8::MAX)),
        "u16" => (0, u128::from(u16::MAX)),
        "u32" => (0, u128::from(u32::MAX)),
        "u64" | "usize" => (0, u128::from(u64::MAX)),
        "u128" => (0, u128::MAX),
        "i8" => (i128::from(i8::MIN), 127),
        "i16" => (i128::from(i16::MIN), 32767),
        "i32" => (i128::from(i32::MIN), 2_147_483_647),
        "i64" | "isize" => (i128::from(i64::MIN), 9_223_372_036_854_775_807),
        "i128" => (
            i128::MIN,
            170_141_183_460_469_231_731_687_303_715_884_105_727,
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_serde_messages_without_rust_names_or_values() {
        let e = classify_data("invalid type: string \"s3cr3t\", expected u32 at line 1 column 9");
        assert_eq!(e.code, "type_mismatch");
        assert_eq!(e.detail, "must be an integer, not a string");
        let e = classify_data("invalid value: integer `256`, expected u8");
        assert_eq!(
            (e.code, &*e.detail),
            ("out_of_range", "must be an integer from 0 to 255")
        );
        let e = classify_data("missing field `due_date`");
        assert_eq!(
            (e.code, e.member.as_deref()),
            ("required", Some("due_date"))
        );
        let e = classify_data("invalid type: map, expected struct NewInvoice");
        assert_eq!(e.code, "type_mismatch");
        assert!(!e.detail.contains("NewInvoice"));
        let e = classify_data("unknown variant `x`, expected one of `a`, `b`");
        assert_eq!(
            (e.code, &*e.detail),
            ("unknown_variant", "must be one of: a, b")
        );
        assert_eq!(e.placeholder, Some(Value::from("a")));
        let e = classify_data("unknown variant `x`, expected `only`");
        assert_eq!(e.detail, "must be one of: only");
    }

    #[test]
    fn client_text_that_looks_like_the_message_is_not_read_as_it() {
        // The client's variant carries the separator and a fake list.
        let e = classify_data(
            "unknown variant `x`, expected `VISIT evil.example`, expected one of `a`, `b`",
        );
        assert_eq!(
            (e.code, &*e.detail),
            ("unknown_variant", "must be one of: a, b")
        );
        assert_eq!(e.placeholder, Some(Value::from("a")));
        // A field name with a backtick is reported whole.
        let e = classify_data("unknown field `a`b`, expected one of `x`, `y`");
        assert_eq!(
            (e.code, e.member.as_deref()),
            ("unknown_field", Some("a`b"))
        );
        let e = classify_data("unknown field `a`, expected `b`, there are no fields");
        assert_eq!(e.member.as_deref(), Some("a`, expected `b"));
        // A string value that reads like an expectation.
        let e = classify_data(
            "invalid type: string \"1, expected a string\", expected u32 at line 1 column 9",
        );
        assert_eq!(e.detail, "must be an integer, not a string");
    }

    #[test]
    fn garde_messages_carry_codes() {
        let (code, detail) = split_garde(&Coded.length_lower_than(3));
        assert_eq!(
            (&*code, &*detail),
            ("length.min", "must have a length of at least 3")
        );
        let (code, detail) = split_garde("my own message");
        assert_eq!((&*code, &*detail), ("custom", "my own message"));
    }
}
