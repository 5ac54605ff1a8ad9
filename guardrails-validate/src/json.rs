//! The pure core: bytes + media type + limits → a typed, validated value or
//! one [`Problem`].
//!
//! The steps, each with its own status:
//!
//! 1. the media type: `application/json` or `*/*+json`, UTF-8 only
//!    ([`check_json_content_type`]; otherwise 415);
//! 2. the [pre-scan](crate::scan) (BOM, UTF-8, depth, sizes, duplicate keys;
//!    400 `malformed-body`);
//! 3. deserialization, with syntax errors as 400 and type errors as 422 —
//!    the document is well-formed JSON but does not fit the expected shape,
//!    which is what RFC 9110 defines 422 for;
//! 4. unknown members, in strict mode ([`UnknownFields::Deny`](crate::UnknownFields));
//! 5. garde validation with the caller's context (422 `validation-failed`).
//!
//! Every violation has an RFC 6901 pointer built from the names the client
//! sent, a stable [code](crate::codes) and a human detail. A well-formed
//! document gets all its violations at once, in document order (type errors
//! are found by patching each offending value with a placeholder and
//! deserializing again: at most 64 passes, and at most 4 MiB of document
//! through all passes together, so the work stays bounded); at most
//! [`Config::max_violations`] are listed and the `violations_total` extension
//! member counts them all.
//!
//! ```
//! use garde::Validate;
//! use guardrails_validate::{Config, json};
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize, Validate)]
//! #[serde(rename_all = "camelCase")]
//! struct Signup {
//!     #[garde(email)]
//!     email_address: String,
//!     #[garde(range(min = 18))]
//!     age: u8,
//! }
//!
//! let config = Config::default();
//! let ok: Signup = json::from_slice(br#"{"emailAddress":"a@example.com","age":30}"#, &config, &()).unwrap();
//! assert_eq!(ok.age, 30);
//!
//! let problem = json::from_slice::<Signup>(br#"{"emailAddress":"nope","age":12}"#, &config, &()).unwrap_err();
//! assert_eq!(problem.status(), 422);
//! let found: Vec<(&str, &str)> = problem
//!     .violations()
//!     .iter()
//!     .map(|v| (v.pointer.as_str(), &*v.code))
//!     .collect();
//! assert_eq!(found, [("/emailAddress", "email"), ("/age", "range.min")]);
//! ```

use std::borrow::Cow;
use std::collections::HashSet;

use garde::Validate;
use guardrails_core::{Problem, ProblemType, Violation};
use http::HeaderValue;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::codes::{Coded, classify_data, split_garde};
use crate::pointer::{document_order, pointer_at, push_index, push_token};
use crate::scan::{Members, ScanError, ScanErrorKind, prescan_with};
use crate::schema::{Schema, tree_of};
use crate::{Config, UnknownFields};

/// How many times a document with type errors is patched and deserialized
/// again to find further errors…
const MAX_PASSES: usize = 64;

/// …and how many bytes all those passes may go through together, so that a
/// large document full of type errors costs a bounded amount of work (a
/// 1 MiB body gets 4 passes, a 300-byte one all 64).
pub(crate) const PASS_BUDGET_BYTES: usize = 4 * 1024 * 1024;

/// [`check_json_content_type`] of a request's headers, refusing more than
/// one `Content-Type` (see [`single_content_type`]).
pub(crate) fn check_json_headers(headers: &http::HeaderMap) -> Result<(), Problem> {
    check_json_content_type(single_content_type(headers)?)
}

/// The request's `Content-Type`; more than one is a 415 (a proxy and the
/// application could each read another).
pub(crate) fn single_content_type(
    headers: &http::HeaderMap,
) -> Result<Option<&HeaderValue>, Problem> {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Problem::new(ProblemType::UNSUPPORTED_MEDIA_TYPE)
            .with_detail("the request has more than one `Content-Type` header"));
    }
    Ok(first)
}

/// Checks that `content_type` is `application/json` or `*/*+json` with no
/// `charset` or a UTF-8 one.
///
/// # Errors
///
/// A 415 `unsupported-media-type` problem when the header is missing, not
/// JSON, or names another charset.
pub fn check_json_content_type(content_type: Option<&HeaderValue>) -> Result<(), Problem> {
    let unsupported = |detail: &'static str| {
        Err(Problem::new(ProblemType::UNSUPPORTED_MEDIA_TYPE).with_detail(detail))
    };
    let Some(value) = content_type else {
        return unsupported("the request needs `Content-Type: application/json`");
    };
    let Ok(value) = value.to_str() else {
        return unsupported("the `Content-Type` header is not valid");
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return unsupported("expected `application/json`");
    };
    let json = kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || (subtype.len() > 5
                && subtype
                    .get(subtype.len() - 5..)
                    .is_some_and(|s| s.eq_ignore_ascii_case("+json"))));
    if !json {
        return unsupported("expected `application/json`");
    }
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("charset") {
            let value = value.trim().trim_matches('"');
            if !(value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")) {
                return unsupported("only the UTF-8 charset is accepted");
            }
        }
    }
    Ok(())
}

/// The media type check, then [`from_slice`].
///
/// # Errors
///
/// See [`check_json_content_type`] and [`from_slice`].
pub fn from_request_bytes<T>(
    content_type: Option<&HeaderValue>,
    bytes: &[u8],
    config: &Config,
    context: &T::Context,
) -> Result<T, Problem>
where
    T: DeserializeOwned + Validate + 'static,
{
    check_json_content_type(content_type)?;
    from_slice(bytes, config, context)
}

/// Pre-scans, deserializes and validates a JSON document; see the
/// [module documentation](self).
///
/// # Errors
///
/// A 400 `malformed-body` problem for a document that is not well-formed
/// (or breaks a structural limit), a 422 `validation-failed` problem listing
/// every violation of a well-formed one.
pub fn from_slice<T>(bytes: &[u8], config: &Config, context: &T::Context) -> Result<T, Problem>
where
    T: DeserializeOwned + Validate + 'static,
{
    let strict = config.unknown_fields == UnknownFields::Deny;
    // In strict mode the pre-scan checks every key against the fields serde
    // declares for `T`; only when it cannot vouch for all of them does
    // deserialization go through `serde_ignored`, which finds (and points
    // at) each member serde would drop.
    // The tree also makes the duplicate-key check a bit test per declared
    // field, so it is used in lenient mode too.
    let tree = Some(tree_of::<T>());
    let (text, members) =
        prescan_with(bytes, config, tree.as_deref()).map_err(|e| scan_problem(bytes, e, config))?;
    let mut unknown = Unknown::new(config.max_violations);
    let mut de = serde_json::Deserializer::from_str(text);
    let result = if strict && members != Members::AllKnown {
        serde_ignored::deserialize(&mut de, |path| unknown.push(&path))
    } else {
        T::deserialize(&mut de)
    }
    .and_then(|value| de.end().map(|()| value));
    let value = match result {
        Ok(value) => value,
        Err(e) if e.is_syntax() || e.is_eof() => return Err(syntax_problem(text, &e)),
        Err(_) => return Err(collect_data_errors::<T>(text, config, context)),
    };
    let skipped = unknown.skipped;
    let mut violations = unknown.violations;
    let report = garde::with_i18n(Coded, || value.validate_with(context));
    if let Err(report) = report {
        let doc: Option<Value> = serde_json::from_str(text).ok();
        violations.extend(garde_violations::<T>(&report, &[], doc.as_ref()));
    }
    if violations.is_empty() {
        Ok(value)
    } else {
        Err(validation_problem(text, violations, skipped, config))
    }
}

/// The members serde would drop: at most `limit` pointers (in document
/// order, as serde reads), the rest only counted, so that a body of many
/// unknown members under long keys costs no more than the problem shows.
struct Unknown {
    violations: Vec<Violation>,
    limit: usize,
    skipped: usize,
}

impl Unknown {
    fn new(limit: usize) -> Self {
        Self {
            violations: Vec::new(),
            limit,
            skipped: 0,
        }
    }

    fn push(&mut self, path: &serde_ignored::Path<'_>) {
        if self.violations.len() >= self.limit {
            self.skipped += 1;
            return;
        }
        let mut pointer = String::new();
        ignored_pointer(path, &mut pointer);
        self.violations.push(Violation::new(
            pointer,
            "unknown_field",
            "is not a known field",
        ));
    }
}

fn ignored_pointer(path: &serde_ignored::Path<'_>, out: &mut String) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            ignored_pointer(parent, out);
            push_index(out, *index);
        }
        Path::Map { parent, key } => {
            ignored_pointer(parent, out);
            push_token(out, key);
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => {
            ignored_pointer(parent, out);
        }
    }
}

fn path_to_error_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => push_index(&mut out, *index),
            Segment::Map { key } => push_token(&mut out, key),
            Segment::Enum { variant } => push_token(&mut out, variant),
            Segment::Unknown => {}
        }
    }
    out
}

/// Deserializes again through a `Value`, recording each data error, patching
/// the offending value with a placeholder of the expected kind, and going on,
/// so that every error of a well-formed document is reported at once.
fn collect_data_errors<T>(text: &str, config: &Config, context: &T::Context) -> Problem
where
    T: DeserializeOwned + Validate,
{
    let mut doc: Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => return syntax_problem(text, &e),
    };
    let strict = config.unknown_fields == UnknownFields::Deny;
    let mut violations: Vec<Violation> = Vec::new();
    let mut patched: Vec<String> = Vec::new();
    let mut missing: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let passes = (PASS_BUDGET_BYTES / text.len().max(1)).clamp(1, MAX_PASSES);
    for _ in 0..passes {
        let mut unknown = Unknown::new(config.max_violations);
        let result: Result<T, _> = {
            let mut callback = |path: serde_ignored::Path<'_>| {
                if strict {
                    unknown.push(&path);
                }
            };
            let de = serde_ignored::Deserializer::new(&doc, &mut callback);
            serde_path_to_error::deserialize(de)
        };
        match result {
            Ok(value) => {
                violations.extend(unknown.violations);
                if let Err(report) = garde::with_i18n(Coded, || value.validate_with(context)) {
                    violations.extend(garde_violations::<T>(&report, &patched, Some(&doc)));
                }
                break;
            }
            Err(e) => {
                let mut pointer = path_to_error_pointer(e.path());
                let data = classify_data(&e.inner().to_string());
                if let Some(member) = &data.member {
                    push_token(&mut pointer, member);
                }
                let already_missing = missing.contains(&pointer);
                if !already_missing {
                    if !seen.insert(pointer.clone()) {
                        break;
                    }
                    violations.push(Violation::new(pointer.clone(), data.code, data.detail));
                }
                let patch = if data.code == "required" {
                    missing.insert(pointer.clone());
                    Some(Value::Null)
                } else if already_missing && !seen.insert(format!("{pointer}\u{0}")) {
                    None // a placeholder was already tried here
                } else {
                    data.placeholder
                };
                let Some(patch) = patch else {
                    break;
                };
                if !set_pointer(&mut doc, &pointer, patch) {
                    break;
                }
                patched.push(pointer);
            }
        }
    }
    if violations.is_empty() {
        // Should not happen: the fast path failed, so something is wrong.
        violations.push(Violation::new("", "invalid_value", "is not a valid value"));
    }
    validation_problem(text, violations, 0, config)
}

/// Sets the value at `pointer`, creating the last member of an object.
fn set_pointer(doc: &mut Value, pointer: &str, value: Value) -> bool {
    if let Some(slot) = doc.pointer_mut(pointer) {
        *slot = value;
        return true;
    }
    let Some(idx) = pointer.rfind('/') else {
        return false;
    };
    let member = pointer[idx + 1..].replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(&pointer[..idx]) {
        Some(Value::Object(map)) => {
            map.insert(member, value);
            true
        }
        _ => false,
    }
}

/// Maps garde's report to violations with JSON pointers, skipping those
/// under `skip` (values that were patched placeholders).
///
/// `doc` is the submitted document, when known: serde accepts a struct sent
/// as an array of its fields in order, and then a field's pointer is its
/// index.
pub(crate) fn garde_violations<'de, T: serde::Deserialize<'de>>(
    report: &garde::Report,
    skip: &[String],
    doc: Option<&Value>,
) -> Vec<Violation> {
    let mut schema: Option<Schema> = None;
    let mut out = Vec::new();
    for (path, error) in report.iter() {
        let mut pointer = String::new();
        let mut pattern = String::new();
        let mut node = doc;
        let components = serde_json::to_value(path).unwrap_or(Value::Null);
        for component in components.as_array().map(Vec::as_slice).unwrap_or_default() {
            let kind = component.get(0).and_then(Value::as_str).unwrap_or_default();
            let name = component.get(1).and_then(Value::as_str).unwrap_or_default();
            match kind {
                "key" => {
                    let schema = schema.get_or_insert_with(Schema::of::<T>);
                    let json = schema.json_name(&pattern, name);
                    let token = json.unwrap_or(name.strip_prefix("r#").unwrap_or(name));
                    let position = match node {
                        Some(Value::Array(_)) => schema
                            .fields(&pattern)
                            .and_then(|fields| fields.iter().position(|f| *f == token)),
                        _ => None,
                    };
                    match position {
                        Some(index) => {
                            push_index(&mut pointer, index);
                            node = node.and_then(|n| n.get(index));
                        }
                        None => {
                            push_token(&mut pointer, token);
                            node = node.and_then(|n| n.get(token));
                        }
                    }
                    push_token(&mut pattern, token);
                }
                "index" => {
                    pointer.push('/');
                    pointer.push_str(name);
                    pattern.push_str("/*");
                    node = node.and_then(|n| n.get(name.parse::<usize>().unwrap_or(usize::MAX)));
                }
                _ => {}
            }
        }
        if skip.iter().any(|p| {
            pointer == *p
                || (pointer.starts_with(p.as_str()) && pointer[p.len()..].starts_with('/'))
        }) {
            continue;
        }
        let (code, detail) = split_garde(error.message());
        out.push(Violation {
            pointer,
            detail,
            code,
        });
    }
    out
}

/// The 422 problem: violations sorted in document order, bounded.
/// The 422 problem of `violations` and `skipped` more that were counted
/// but not kept.
fn validation_problem(
    text: &str,
    mut violations: Vec<Violation>,
    skipped: usize,
    config: &Config,
) -> Problem {
    let total = violations.len() + skipped;
    if violations.len() > 1 {
        let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        let keys = document_order(text.as_bytes(), &pointers);
        let mut keyed: Vec<(usize, usize, Violation)> = keys
            .into_iter()
            .zip(violations)
            .enumerate()
            .map(|(i, (k, v))| (k, i, v))
            .collect();
        keyed.sort_by_key(|(k, i, _)| (*k, *i));
        violations = keyed.into_iter().map(|(_, _, v)| v).collect();
    }
    failed(violations, total, config)
}

/// The 422 `validation-failed` problem of `violations`, in their order, of
/// `total` (more when some were counted but not kept).
pub(crate) fn failed(violations: Vec<Violation>, total: usize, config: &Config) -> Problem {
    bounded(
        Problem::new(ProblemType::VALIDATION_FAILED).with_detail(if total == 1 {
            Cow::Borrowed("the request has 1 invalid value")
        } else {
            Cow::Owned(format!("the request has {total} invalid values"))
        }),
        violations,
        total,
        config,
    )
}

/// The longest pointer a problem shows, in bytes; a longer one (a client's
/// key can be as long as the body) is cut and ends in `…`.
pub(crate) const MAX_POINTER_BYTES: usize = 1024;

/// Adds at most `max_violations` violations, their pointers cut at
/// [`MAX_POINTER_BYTES`], and the `violations_total` extension member (of
/// `total`) when some were left out.
pub(crate) fn bounded(
    problem: Problem,
    mut violations: Vec<Violation>,
    total: usize,
    config: &Config,
) -> Problem {
    violations.truncate(config.max_violations);
    for violation in &mut violations {
        if violation.pointer.len() > MAX_POINTER_BYTES {
            let mut end = MAX_POINTER_BYTES;
            while !violation.pointer.is_char_boundary(end) {
                end -= 1;
            }
            violation.pointer.truncate(end);
            violation.pointer.push('…');
        }
    }
    let problem = problem.with_violations(violations);
    if total > config.max_violations {
        problem
            .clone()
            .with_extension("violations_total", total)
            .unwrap_or(problem)
    } else {
        problem
    }
}

fn malformed(violation: Violation) -> Problem {
    Problem::new(ProblemType::MALFORMED_BODY)
        .with_detail("the request body is not well-formed JSON")
        .with_violation(violation)
}

fn scan_problem(bytes: &[u8], error: ScanError, config: &Config) -> Problem {
    let detail: Cow<'static, str> = match error.kind() {
        ScanErrorKind::Bom => "the body starts with a byte order mark".into(),
        ScanErrorKind::InvalidUtf8 => "the body is not valid UTF-8".into(),
        ScanErrorKind::DepthExceeded => {
            format!("arrays and objects nest deeper than {}", config.max_depth).into()
        }
        ScanErrorKind::StringTooLong => {
            format!("a string is longer than {} bytes", config.max_string_bytes).into()
        }
        ScanErrorKind::NumberTooLong => format!(
            "a number is longer than {} characters",
            config.max_number_len
        )
        .into(),
        ScanErrorKind::TooManyItems => {
            format!("an array has more than {} items", config.max_array_len).into()
        }
        ScanErrorKind::TooManyMembers => format!(
            "an object has more than {} members",
            config.max_object_members
        )
        .into(),
        ScanErrorKind::DuplicateKey => "the key appears more than once in its object".into(),
        ScanErrorKind::LoneSurrogate => "a \\u escape is an unpaired UTF-16 surrogate".into(),
        ScanErrorKind::NulCharacter => "strings may not contain \\u0000".into(),
    };
    // The pointer walk is lenient; on invalid UTF-8 it sees the valid prefix.
    let valid = match error.kind() {
        ScanErrorKind::InvalidUtf8 | ScanErrorKind::Bom => &bytes[..error.offset()],
        _ => bytes,
    };
    let pointer = pointer_at(valid, error.offset());
    malformed(Violation::new(pointer, error.kind().code(), detail))
}

fn syntax_problem(text: &str, error: &serde_json::Error) -> Problem {
    let message = error.to_string();
    let message = match message.rfind(" at line ") {
        Some(idx) => &message[..idx],
        None => message.as_str(),
    };
    let offset = offset_of(text, error.line(), error.column());
    let pointer = pointer_at(text.as_bytes(), offset);
    malformed(Violation::new(
        pointer,
        "syntax",
        format!(
            "{message} (line {}, column {})",
            error.line(),
            error.column()
        ),
    ))
}

fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(idx) => start += idx + 1,
            None => break,
        }
    }
    (start + column.saturating_sub(1)).min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        let ok =
            |v: &str| check_json_content_type(Some(&HeaderValue::from_str(v).unwrap())).is_ok();
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=UTF-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(ok("application/json; charset=\"utf-8\""));
        assert!(!ok("application/json; charset=latin1"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/jsonx"));
        assert!(!ok("application/+json"));
        assert!(!ok("json"));
        assert_eq!(
            check_json_content_type(None).unwrap_err().status(),
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(check_json_headers(&headers).is_ok());
        headers.append(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        assert_eq!(
            check_json_headers(&headers).unwrap_err().status(),
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn offsets_from_lines_and_columns() {
        assert_eq!(offset_of("ab\ncd", 2, 2), 4);
        assert_eq!(offset_of("ab", 1, 0), 0);
        assert_eq!(offset_of("ab", 9, 9), 2);
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use crate::scan::prescan_with;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Validate)]
    #[allow(dead_code)]
    struct Inv {
        #[garde(skip)]
        customer_email: String,
        #[garde(dive)]
        lines: Vec<Line>,
        #[serde(default)]
        #[garde(skip)]
        memo: Option<String>,
    }

    #[derive(Debug, Deserialize, Validate)]
    #[allow(dead_code)]
    struct Line {
        #[garde(skip)]
        description: String,
        #[garde(skip)]
        quantity: u32,
    }

    fn picky<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        assert!(!s.is_empty(), "a Deserialize impl that panics on odd input");
        Ok(s)
    }

    #[derive(Debug, Deserialize, Validate)]
    struct Picky {
        #[serde(deserialize_with = "picky")]
        #[garde(length(max = 3))]
        name: String,
    }

    #[test]
    fn a_panicking_deserialize_impl_does_not_break_the_probe() {
        let config = Config::default();
        let ok: Picky = from_slice(br#"{"name":"ab"}"#, &config, &()).unwrap();
        assert_eq!(ok.name, "ab");
        let problem = from_slice::<Picky>(br#"{"name":"abcd","x":1}"#, &config, &()).unwrap_err();
        let found: Vec<_> = problem
            .violations()
            .iter()
            .map(|v| (v.pointer.as_str(), &*v.code))
            .collect();
        assert_eq!(found, [("/name", "length.max"), ("/x", "unknown_field")]);
    }

    #[test]
    fn the_pre_scan_vouches_for_declared_members() {
        let tree = tree_of::<Inv>();
        let config = Config::default();
        let check = |doc: &str| {
            prescan_with(doc.as_bytes(), &config, Some(&tree))
                .unwrap()
                .1
        };
        let ok = r#"{"customer_email":"a","lines":[{"description":"x","quantity":1}],"memo":null}"#;
        assert_eq!(check(ok), Members::AllKnown);
        let nested = r#"{"customer_email":"a","lines":[{"description":"x","extra":1}]}"#;
        assert_eq!(check(nested), Members::Unknown);
        let top = r#"{"customer_email":"a","lines":[],"extra":{}}"#;
        assert_eq!(check(top), Members::Unknown);
        let odd = r#"{"customer_email":{"a":1},"lines":[]}"#;
        assert_eq!(check(odd), Members::Uncertain);
    }
}
