//! Query strings, forms and path parameters, with the same contract as JSON.
//!
//! Decoding is strict: a `%` not followed by two hex digits, or percent
//! escapes that decode to invalid UTF-8, are a 400 with code
//! `invalid_encoding` — never silently replaced by U+FFFD as
//! `form_urlencoded` would. Then the pairs are deserialized
//! (`serde_urlencoded` semantics: `+` is a space, values parse into numbers
//! and booleans), unknown keys are reported in strict mode, and garde runs;
//! every violation is reported at once.
//!
//! Pointers are `/query/<name>` for a query string, `/<name>` for a form body
//! (the form is the document) and `/path/<name>` for path parameters.
//!
//! ```
//! use garde::Validate;
//! use guardrails_validate::{Config, urlencoded};
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize, Validate)]
//! struct Page {
//!     #[garde(range(min = 1, max = 100))]
//!     per_page: u32,
//!     #[garde(length(max = 20))]
//!     q: Option<String>,
//! }
//!
//! let config = Config::default();
//! let page: Page = urlencoded::from_query("per_page=10&q=caf%C3%A9", &config, &()).unwrap();
//! assert_eq!(page.q.as_deref(), Some("café"));
//!
//! let bad = urlencoded::from_query::<Page>("per_page=10&q=%FF", &config, &()).unwrap_err();
//! assert_eq!((bad.status().as_u16(), &*bad.violations()[0].code), (400, "invalid_encoding"));
//!
//! let invalid = urlencoded::from_query::<Page>("per_page=0", &config, &()).unwrap_err();
//! assert_eq!(invalid.violations()[0].pointer, "/query/per_page");
//! ```

use std::collections::HashMap;

use garde::Validate;
use guardrails_core::{Problem, ProblemType, Violation};
use serde::de::DeserializeOwned;

use crate::codes::{Coded, classify_data};
use crate::json::{bounded, garde_violations};
use crate::pointer::push_token;
use crate::{Config, UnknownFields};

/// How many times an input with type errors is patched and decoded again.
const MAX_PASSES: usize = 64;

/// Which input is decoded: decides the pointer prefix and the problem type.
#[derive(Clone, Copy)]
enum Source {
    Query,
    Form,
    Path,
}

impl Source {
    fn prefix(self) -> &'static str {
        match self {
            Self::Query => "/query",
            Self::Form => "",
            Self::Path => "/path",
        }
    }
}

/// Checks that every `%` starts a two-hex-digit escape and that the decoded
/// bytes are UTF-8.
///
/// # Errors
///
/// The byte offset of the first bad escape, or of the start of the input
/// when the decoded bytes are not UTF-8.
pub fn check_percent_encoding(input: &[u8]) -> Result<(), usize> {
    let mut decoded: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let (Some(hi), Some(lo)) = (
                input.get(i + 1).and_then(|b| hex(*b)),
                input.get(i + 2).and_then(|b| hex(*b)),
            ) else {
                return Err(i);
            };
            let out = decoded.get_or_insert_with(|| input[..i].to_vec());
            // Two hex digits: at most 255.
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(u8::MAX));
            i += 3;
        } else {
            if let Some(out) = decoded.as_mut() {
                out.push(input[i]);
            }
            i += 1;
        }
    }
    let bytes = decoded.as_deref().unwrap_or(input);
    std::str::from_utf8(bytes).map(|_| ()).map_err(|_| 0)
}

/// Deserializes and validates a query string (without the leading `?`).
///
/// # Errors
///
/// 400 `malformed-request` for bad percent-encoding, 422
/// `validation-failed` for type errors, unknown keys (strict mode) and garde
/// violations.
pub fn from_query<T>(query: &str, config: &Config, context: &T::Context) -> Result<T, Problem>
where
    T: DeserializeOwned + Validate,
{
    decode(query.as_bytes(), Source::Query, config, context)
}

/// Deserializes and validates an `application/x-www-form-urlencoded` body.
///
/// # Errors
///
/// 415 when `content_type` is not `application/x-www-form-urlencoded`
/// (a `charset` other than UTF-8 included), 400 `malformed-body` for bad
/// percent-encoding, 422 as for [`from_query`].
pub fn from_form<T>(
    content_type: Option<&http::HeaderValue>,
    body: &[u8],
    config: &Config,
    context: &T::Context,
) -> Result<T, Problem>
where
    T: DeserializeOwned + Validate,
{
    check_form_content_type(content_type)?;
    decode(body, Source::Form, config, context)
}

/// Checks for `application/x-www-form-urlencoded`, UTF-8.
///
/// # Errors
///
/// A 415 problem otherwise.
pub fn check_form_content_type(content_type: Option<&http::HeaderValue>) -> Result<(), Problem> {
    let unsupported = || {
        Problem::new(ProblemType::UNSUPPORTED_MEDIA_TYPE)
            .with_detail("expected `application/x-www-form-urlencoded` (UTF-8)")
    };
    let value = content_type
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsupported)?;
    let mut parts = value.split(';');
    if !parts
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    {
        return Err(unsupported());
    }
    for param in parts {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
        {
            let value = value.trim().trim_matches('"');
            if !(value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")) {
                return Err(unsupported());
            }
        }
    }
    Ok(())
}

/// Deserializes and validates path parameters, framework-neutral: `params`
/// are the `(name, value)` pairs the router captured, already
/// percent-decoded (use [`decode_path_segment`] on raw segments).
///
/// # Errors
///
/// 422 `validation-failed` as for [`from_query`], with `/path/<name>`
/// pointers.
pub fn from_path_params<'a, T, I>(
    params: I,
    config: &Config,
    context: &T::Context,
) -> Result<T, Problem>
where
    T: DeserializeOwned + Validate,
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    decode(
        serializer.finish().as_bytes(),
        Source::Path,
        config,
        context,
    )
}

/// Strictly percent-decodes one raw path segment.
///
/// # Errors
///
/// A 400 `malformed-request` problem with code `invalid_encoding`.
pub fn decode_path_segment(raw: &str) -> Result<String, Problem> {
    check_percent_encoding(raw.as_bytes()).map_err(|_| encoding_problem(Source::Path, ""))?;
    Ok(percent_decode(raw.as_bytes()))
}

fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let Some(byte) = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encoding_problem(source: Source, pointer: &str) -> Problem {
    let kind = match source {
        Source::Form => ProblemType::MALFORMED_BODY,
        Source::Query | Source::Path => ProblemType::MALFORMED_REQUEST,
    };
    Problem::new(kind)
        .with_detail("the input is not valid percent-encoded UTF-8")
        .with_violation(Violation::new(
            format!("{}{pointer}", source.prefix()),
            "invalid_encoding",
            "is not valid percent-encoded UTF-8",
        ))
}

fn decode<T>(
    input: &[u8],
    source: Source,
    config: &Config,
    context: &T::Context,
) -> Result<T, Problem>
where
    T: DeserializeOwned + Validate,
{
    if input.len() > config.max_body_bytes {
        return Err(crate::body::too_large(config.max_body_bytes));
    }
    // Find the first bad pair, to point at it.
    for pair in input.split(|b| *b == b'&') {
        if check_percent_encoding(pair).is_err() {
            let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
            let mut pointer = String::new();
            if check_percent_encoding(name).is_ok() {
                push_token(&mut pointer, &percent_decode(&replace_plus(name)));
            }
            return Err(encoding_problem(source, &pointer));
        }
    }
    let strict = config.unknown_fields == UnknownFields::Deny;
    let prefix = source.prefix();
    let mut violations: Vec<Violation> = Vec::new();
    // Type errors are collected like for JSON: the offending pair gets a
    // placeholder value and the input is decoded again, so that every
    // error is reported at once. `patched` counts the attempts per name.
    let mut patched: HashMap<String, usize> = HashMap::new();
    let mut pairs: Option<Vec<(String, String)>> = None;
    let mut value = None;
    let passes = (crate::json::PASS_BUDGET_BYTES / input.len().max(1)).clamp(1, MAX_PASSES);
    for _ in 0..passes {
        let encoded;
        let bytes = match &pairs {
            None => input,
            Some(pairs) => {
                let mut serializer = form_urlencoded::Serializer::new(String::new());
                serializer.extend_pairs(pairs.iter());
                encoded = serializer.finish();
                encoded.as_bytes()
            }
        };
        let mut unknown: Vec<Violation> = Vec::new();
        let result: Result<T, _> = {
            let mut callback = |path: serde_ignored::Path<'_>| {
                if strict && let serde_ignored::Path::Map { key, .. } = path {
                    let mut pointer = prefix.to_owned();
                    push_token(&mut pointer, &key);
                    unknown.push(Violation::new(
                        pointer,
                        "unknown_field",
                        "is not a known field",
                    ));
                }
            };
            let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
            serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut callback))
        };
        match result {
            Ok(v) => {
                violations.extend(unknown);
                value = Some(v);
                break;
            }
            Err(e) => {
                let mut name = String::new();
                for segment in e.path().iter() {
                    if let serde_path_to_error::Segment::Map { key } = segment {
                        name.clone_from(key);
                    }
                }
                let data = classify_data(&e.inner().to_string());
                if let Some(member) = &data.member {
                    name.clone_from(member);
                }
                let attempts = patched.entry(name.clone()).or_insert(0);
                if *attempts == 0 {
                    let mut pointer = prefix.to_owned();
                    push_token(&mut pointer, &name);
                    violations.push(Violation::new(pointer, data.code, data.detail));
                }
                if data.code == "duplicate_key" {
                    // Keep the first, to find the other errors.
                    let pairs = pairs.get_or_insert_with(|| {
                        form_urlencoded::parse(input).into_owned().collect()
                    });
                    let mut seen = false;
                    pairs.retain(|(k, _)| *k != name || !std::mem::replace(&mut seen, true));
                    *attempts += 1;
                    continue;
                }
                // Candidates: an accepted variant, then values that most
                // scalar types parse.
                let variant = data
                    .placeholder
                    .as_ref()
                    .and_then(|p| p.as_str())
                    .filter(|_| data.code == "unknown_variant")
                    .map(str::to_owned);
                let candidates: Vec<String> = variant
                    .into_iter()
                    .chain(["0", "false", "a"].map(str::to_owned))
                    .collect();
                let Some(candidate) = candidates.get(*attempts).cloned() else {
                    break;
                };
                *attempts += 1;
                let pairs = pairs
                    .get_or_insert_with(|| form_urlencoded::parse(input).into_owned().collect());
                match pairs.iter_mut().find(|(k, _)| *k == name) {
                    Some(pair) => pair.1 = candidate,
                    None => pairs.push((name, candidate)),
                }
            }
        }
    }
    let Some(value) = value else {
        let total = violations.len();
        return Err(bounded(
            Problem::new(ProblemType::VALIDATION_FAILED).with_detail(format!(
                "the request has {total} invalid value{}",
                if total == 1 { "" } else { "s" }
            )),
            violations,
            total,
            config,
        ));
    };
    if let Err(report) = garde::with_i18n(Coded, || value.validate_with(context)) {
        for mut v in garde_violations::<T>(&report, &[], None) {
            let first = v
                .pointer
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            if patched.contains_key(&first.replace("~1", "/").replace("~0", "~")) {
                continue; // a placeholder, not the client's value
            }
            v.pointer = format!("{prefix}{}", v.pointer);
            violations.push(v);
        }
    }
    if !patched.is_empty() && violations.is_empty() {
        violations.push(Violation::new(
            prefix,
            "invalid_value",
            "is not a valid value",
        ));
    }
    if violations.is_empty() {
        return Ok(value);
    }
    // Document order: the position of each name's first pair, by its
    // pointer token (one map, so many violations sort in O(n log n)).
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (i, (name, _)) in form_urlencoded::parse(input).enumerate() {
        positions
            .entry(name.replace('~', "~0").replace('/', "~1"))
            .or_insert(i);
    }
    violations.sort_by_cached_key(|v| {
        let rest = v.pointer.get(prefix.len()..).unwrap_or_default();
        let first = rest
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        positions.get(first).copied().unwrap_or(usize::MAX)
    });
    let total = violations.len();
    Err(bounded(
        Problem::new(ProblemType::VALIDATION_FAILED).with_detail(format!(
            "the request has {total} invalid value{}",
            if total == 1 { "" } else { "s" }
        )),
        violations,
        total,
        config,
    ))
}

fn replace_plus(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, Validate)]
    #[allow(dead_code)]
    struct Search {
        #[garde(range(max = 10))]
        a: u32,
        #[garde(skip)]
        b: bool,
        #[garde(length(min = 2))]
        c: String,
        #[garde(skip)]
        d: Kind,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Open,
        Closed,
    }

    fn found(query: &str) -> Vec<(String, String)> {
        let problem = from_query::<Search>(query, &Config::default(), &()).unwrap_err();
        assert_eq!(problem.status(), 422);
        problem
            .violations()
            .iter()
            .map(|v| (v.pointer.clone(), v.code.to_string()))
            .collect()
    }

    #[test]
    fn every_violation_of_a_query_at_once() {
        let v = |p: &str, c: &str| (p.to_owned(), c.to_owned());
        assert_eq!(
            found("c=z&a=x&e=1&b=maybe&d=ajar"),
            [
                v("/query/c", "length.min"),
                v("/query/a", "invalid_value"),
                v("/query/e", "unknown_field"),
                v("/query/b", "invalid_value"),
                v("/query/d", "unknown_variant"),
            ]
        );
        assert_eq!(
            found("a=11&d=open"),
            [
                v("/query/a", "range.max"),
                v("/query/b", "required"),
                v("/query/c", "required"),
            ]
        );
        let ok = from_query::<Search>("a=1&b=true&c=zz&d=closed", &Config::default(), &()).unwrap();
        assert_eq!(ok.a, 1);
    }

    #[test]
    fn a_repeated_key_is_named() {
        let v = |p: &str, c: &str| (p.to_owned(), c.to_owned());
        assert_eq!(
            found("a=1&a=2&b=true&c=zz&d=open"),
            [v("/query/a", "duplicate_key")]
        );
        // The other errors are found as well.
        assert_eq!(
            found("a=1&b=true&c=z&d=open&d=closed&d=open"),
            [v("/query/c", "length.min"), v("/query/d", "duplicate_key")]
        );
    }

    #[test]
    fn many_unknown_keys_sort_in_document_order() {
        // 5 000 unknown names in descending order, after one that needs
        // escaping in a pointer; a repeated name sorts at its first pair.
        let mut query = String::from("x%2Fy~z=1&a=1&b=true&c=zz&d=open");
        for i in (0..5000).rev() {
            query.push_str(&format!("&k{i:04}="));
        }
        query.push_str("&k4999=again");
        let problem = from_query::<Search>(&query, &Config::default(), &()).unwrap_err();
        let pointers: Vec<&str> = problem
            .violations()
            .iter()
            .map(|v| v.pointer.as_str())
            .collect();
        assert_eq!(pointers[0], "/query/x~1y~0z");
        // The repeated name's two pairs, then the others in their order.
        let expected: Vec<String> = std::iter::once(4999)
            .chain((0..5000).rev())
            .take(pointers.len() - 1)
            .map(|i| format!("/query/k{i:04}"))
            .collect();
        assert_eq!(pointers[1..], expected);
        assert!(pointers.len() > 10, "{}", pointers.len());
    }

    #[test]
    fn percent_encoding_is_strict() {
        assert!(check_percent_encoding(b"a=b%20c&d=%C3%A9").is_ok());
        assert_eq!(check_percent_encoding(b"a=%zz"), Err(2));
        assert_eq!(check_percent_encoding(b"a=%2"), Err(2));
        assert_eq!(check_percent_encoding(b"a=%FF"), Err(0));
        assert_eq!(check_percent_encoding(b"a=%ED%A0%80"), Err(0)); // a surrogate
        assert_eq!(decode_path_segment("caf%C3%A9").unwrap(), "café");
        assert_eq!(decode_path_segment("%").unwrap_err().status(), 400);
    }
}
