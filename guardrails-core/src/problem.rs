//! RFC 9457 problem details: the one error contract of every guardrail.
//!
//! A [`Problem`] serializes to `application/problem+json` with the members
//! `type`, `title`, `status`, `detail` and `instance`, an optional `errors`
//! array of [`Violation`]s (`{ "pointer", "detail", "code" }`), and any
//! extension members the application adds.
//!
//! Each kind of rejection the guardrails produce has a stable [`ProblemType`]:
//! a `type` URI that clients can match on, a title, and a status code.
//! Applications define their own with [`ProblemType::new`].
//!
//! A server error (5xx) never carries internal detail: its serialized form has
//! only `type`, `title`, `status` and `instance`, whatever was set on it.
//!
//! # Example
//!
//! ```
//! use guardrails_core::{Problem, ProblemType};
//!
//! let problem = Problem::new(ProblemType::PAYLOAD_TOO_LARGE)
//!     .with_detail("the body exceeds 65536 bytes")
//!     .with_instance("urn:request:0193c3a0")
//!     .with_extension("limit", 65536)
//!     .expect("`limit` is a valid extension member name");
//!
//! let json: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap();
//! assert_eq!(json["status"], 413);
//! assert_eq!(json["type"], ProblemType::PAYLOAD_TOO_LARGE.uri());
//! assert_eq!(json["limit"], 65536);
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The media type of a problem details document (RFC 9457 section 3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `type` URI prefix shared by every problem type the guardrails define.
const TYPE_PREFIX: &str = "tag:guardrails.rs,2026:problem/";

/// Member names defined by RFC 9457 (and `errors`, defined by guardrails):
/// extension members may not take them.
const RESERVED_MEMBERS: [&str; 6] = ["type", "title", "status", "detail", "instance", "errors"];

macro_rules! problem_types {
    ($($(#[$doc:meta])* $name:ident = ($slug:literal, $title:literal, $status:ident);)*) => {
        impl ProblemType {
            $(
                $(#[$doc])*
                pub const $name: ProblemType = ProblemType {
                    uri: concat!("tag:guardrails.rs,2026:problem/", $slug),
                    title: $title,
                    status: StatusCode::$status,
                };
            )*

            /// Every problem type defined by the guardrails, for documentation
            /// and exhaustive tests.
            pub const ALL: &'static [ProblemType] = &[$(ProblemType::$name),*];
        }
    };
}

/// A kind of problem: a stable `type` URI, a short human title, and a status.
///
/// The constants are the rejection kinds of the guardrails family; their URIs
/// never change once released, so clients may match on them. They are
/// [tag URIs] (RFC 9457 section 3.1.1 allows identifiers that do not resolve).
///
/// [tag URIs]: https://www.rfc-editor.org/rfc/rfc4151
///
/// ```
/// use guardrails_core::ProblemType;
/// use http::StatusCode;
///
/// const OUT_OF_CREDIT: ProblemType = ProblemType::new(
///     "https://example.com/probs/out-of-credit",
///     "You do not have enough credit",
///     StatusCode::FORBIDDEN,
/// );
/// assert_eq!(OUT_OF_CREDIT.status(), StatusCode::FORBIDDEN);
/// assert_eq!(
///     ProblemType::INVALID_TOKEN.uri(),
///     "tag:guardrails.rs,2026:problem/invalid-token"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProblemType {
    uri: &'static str,
    title: &'static str,
    status: StatusCode,
}

problem_types! {
    /// 401: the request carries no credential and the route is not public.
    AUTHENTICATION_REQUIRED = ("authentication-required", "Authentication required", UNAUTHORIZED);
    /// 401: the credential is invalid, expired, or not signed by a trusted key.
    INVALID_TOKEN = ("invalid-token", "Invalid token", UNAUTHORIZED);
    /// 400: the credential is malformed in a way that makes the request itself
    /// invalid (RFC 6750 `invalid_request`), e.g. two `Authorization` headers.
    INVALID_REQUEST = ("invalid-request", "Invalid request", BAD_REQUEST);
    /// 403: the principal lacks a scope the route requires.
    INSUFFICIENT_SCOPE = ("insufficient-scope", "Insufficient scope", FORBIDDEN);
    /// 403: the principal lacks a role, or fails a route's custom requirement.
    FORBIDDEN = ("forbidden", "Forbidden", FORBIDDEN);
    /// 403: the principal belongs to another tenant than the resource.
    FORBIDDEN_TENANT = ("forbidden-tenant", "Forbidden tenant", FORBIDDEN);
    /// 404: the resource does not exist (or is hidden from this principal).
    NOT_FOUND = ("not-found", "Not found", NOT_FOUND);
    /// 405: the route exists but not for this method.
    METHOD_NOT_ALLOWED = ("method-not-allowed", "Method not allowed", METHOD_NOT_ALLOWED);
    /// 400: the body is not well-formed (JSON syntax, encoding, structure limits).
    MALFORMED_BODY = ("malformed-body", "Malformed request body", BAD_REQUEST);
    /// 400: the query string or path parameters cannot be decoded.
    MALFORMED_REQUEST = ("malformed-request", "Malformed request", BAD_REQUEST);
    /// 408: the body was not received within the read deadline.
    REQUEST_TIMEOUT = ("request-timeout", "Request timeout", REQUEST_TIMEOUT);
    /// 413: the body is larger than the route accepts.
    PAYLOAD_TOO_LARGE = ("payload-too-large", "Payload too large", PAYLOAD_TOO_LARGE);
    /// 415: the body's media type or charset is not accepted.
    UNSUPPORTED_MEDIA_TYPE = ("unsupported-media-type", "Unsupported media type", UNSUPPORTED_MEDIA_TYPE);
    /// 422: the input is well-formed but violates the route's rules; see `errors`.
    VALIDATION_FAILED = ("validation-failed", "Validation failed", UNPROCESSABLE_ENTITY);
    /// 429: the client sent too many requests.
    TOO_MANY_REQUESTS = ("too-many-requests", "Too many requests", TOO_MANY_REQUESTS);
    /// 500: the server failed; nothing about why is disclosed.
    INTERNAL_ERROR = ("internal-error", "Internal server error", INTERNAL_SERVER_ERROR);
    /// 500: the audit record of a completed request could not be written.
    AUDIT_FAILED = ("audit-failed", "Audit record could not be written", INTERNAL_SERVER_ERROR);
    /// 503: auditing is unavailable and the route fails closed; the request
    /// was not processed.
    AUDIT_UNAVAILABLE = ("audit-unavailable", "Audit unavailable", SERVICE_UNAVAILABLE);
    /// 503: the service cannot serve the request right now.
    SERVICE_UNAVAILABLE = ("service-unavailable", "Service unavailable", SERVICE_UNAVAILABLE);
}

impl ProblemType {
    /// A problem type of the application's own.
    ///
    /// `uri` should be an absolute URI the application controls.
    pub const fn new(uri: &'static str, title: &'static str, status: StatusCode) -> Self {
        Self { uri, title, status }
    }

    /// The stable `type` URI.
    pub const fn uri(&self) -> &'static str {
        self.uri
    }

    /// The short, human-readable summary (`title`).
    pub const fn title(&self) -> &'static str {
        self.title
    }

    /// The HTTP status of problems of this type.
    pub const fn status(&self) -> StatusCode {
        self.status
    }

    /// Whether this is one of the types defined by the guardrails family.
    pub fn is_guardrails(&self) -> bool {
        self.uri.starts_with(TYPE_PREFIX)
    }
}

/// One reason an input was rejected: where, a stable machine code, and a
/// human-readable explanation.
///
/// `pointer` is an RFC 6901 JSON pointer into the submitted document (for a
/// body) or a pointer such as `/query/page` for other inputs; the empty string
/// points at the whole document. `code` is stable and meant for machines
/// (`length.min`, `required`, `type_mismatch`, …); `detail` is for people.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Violation {
    /// RFC 6901 JSON pointer to the offending value.
    pub pointer: String,
    /// Human-readable explanation; never contains the offending value when it
    /// could be a secret, and never Rust type names.
    pub detail: Cow<'static, str>,
    /// Stable machine-readable code.
    pub code: Cow<'static, str>,
}

impl Violation {
    /// A violation at `pointer`, with a machine `code` and a human `detail`.
    pub fn new(
        pointer: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
            code: code.into(),
        }
    }
}

/// An extension member could not be added to a [`Problem`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The name is one of the members RFC 9457 (or guardrails) defines.
    #[error("`{name}` is a reserved problem member and cannot be an extension")]
    Reserved {
        /// The rejected name.
        name: String,
    },
    /// The name does not follow RFC 9457 section 3.2: an ASCII letter, then at
    /// least two ASCII letters, digits or underscores.
    #[error(
        "`{name}` is not a valid extension member name (ASCII letter, then at least two ASCII letters, digits or `_`)"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
}

/// An RFC 9457 problem details object.
///
/// Build it from a [`ProblemType`], add what the client needs to fix the
/// request, and turn it into a response with [`Problem::into_http_response`].
/// See the [module documentation](self) for the wire format.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    type_uri: Cow<'static, str>,
    title: Cow<'static, str>,
    status: StatusCode,
    detail: Option<Cow<'static, str>>,
    instance: Option<String>,
    errors: Vec<Violation>,
    extensions: BTreeMap<String, Value>,
}

impl Problem {
    /// A problem of the given type, with its title and status.
    pub fn new(kind: ProblemType) -> Self {
        Self {
            type_uri: Cow::Borrowed(kind.uri),
            title: Cow::Borrowed(kind.title),
            status: kind.status,
            detail: None,
            instance: None,
            errors: Vec::new(),
            extensions: BTreeMap::new(),
        }
    }

    /// Sets `detail`, an explanation specific to this occurrence.
    ///
    /// It is sent to the client for 4xx problems only; write it for the client
    /// and never put a credential, a secret or an internal error in it.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets `instance`, a URI reference identifying this occurrence (for
    /// example a request id as `urn:request:…`).
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Appends one violation to `errors`.
    #[must_use]
    pub fn with_violation(mut self, violation: Violation) -> Self {
        self.errors.push(violation);
        self
    }

    /// Appends violations to `errors`, keeping their order.
    #[must_use]
    pub fn with_violations(mut self, violations: impl IntoIterator<Item = Violation>) -> Self {
        self.errors.extend(violations);
        self
    }

    /// Adds an extension member.
    ///
    /// # Errors
    ///
    /// [`ExtensionError`] when `name` is a reserved member or is not a valid
    /// RFC 9457 extension name.
    pub fn with_extension(
        mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<Self, ExtensionError> {
        let name = name.into();
        if RESERVED_MEMBERS.contains(&name.as_str()) {
            return Err(ExtensionError::Reserved { name });
        }
        if !is_extension_name(&name) {
            return Err(ExtensionError::InvalidName { name });
        }
        self.extensions.insert(name, value.into());
        Ok(self)
    }

    /// The `type` URI.
    pub fn type_uri(&self) -> &str {
        &self.type_uri
    }

    /// The `title`.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `detail`, if any (not sent for 5xx problems).
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The `instance`, if any.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// The violations in `errors`, in order.
    pub fn violations(&self) -> &[Violation] {
        &self.errors
    }

    /// The extension members.
    pub fn extensions(&self) -> &BTreeMap<String, Value> {
        &self.extensions
    }

    /// Whether the type is `t`.
    pub fn is(&self, t: ProblemType) -> bool {
        self.type_uri == t.uri
    }

    /// Whether this problem is a server error, which discloses nothing but its
    /// type, title, status and instance.
    pub fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }

    /// The `application/problem+json` document.
    ///
    /// Characters that make text display other than it reads (bidirectional
    /// controls, Unicode line separators, C1 controls; see
    /// [`text`](crate::text)) are written as `\uHHHH` escapes, so a client's
    /// key echoed in a pointer reaches no log line or terminal raw; the
    /// parsed document is the same. The [`Serialize`] implementation, which
    /// other serializers and `serde_json::to_string` use, writes them as
    /// they are: answer with this method or
    /// [`into_http_response`](Self::into_http_response).
    pub fn to_json(&self) -> Bytes {
        let mut json = Vec::with_capacity(128);
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut json, crate::text::EscapeDisplayControls);
        match self.serialize(&mut serializer) {
            Ok(()) => Bytes::from(json),
            // Serializing strings, numbers and `serde_json::Value`s cannot
            // fail; should it ever, answer with the bare status rather than
            // panic.
            Err(_) => Bytes::from(format!(
                "{{\"type\":\"about:blank\",\"status\":{}}}",
                self.status.as_u16()
            )),
        }
    }

    /// The response: the problem's status, `Content-Type:
    /// application/problem+json`, `Cache-Control: no-store`, and the JSON body.
    ///
    /// `B` is any body type that can be made from [`Bytes`]: `Bytes` itself,
    /// `http_body_util::Full<Bytes>`, `axum::body::Body`, or [`GuardBody`](crate::GuardBody).
    pub fn into_http_response<B: From<Bytes>>(self) -> Response<B> {
        let mut response = Response::new(B::from(self.to_json()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<ProblemType> for Problem {
    fn from(kind: ProblemType) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.title, self.status.as_u16())
    }
}

impl std::error::Error for Problem {}

fn is_extension_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() >= 3
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let public = !self.is_server_error();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", &*self.type_uri)?;
        map.serialize_entry("title", &*self.title)?;
        map.serialize_entry("status", &self.status.as_u16())?;
        if public && let Some(detail) = &self.detail {
            map.serialize_entry("detail", &**detail)?;
        }
        if let Some(instance) = &self.instance {
            map.serialize_entry("instance", instance)?;
        }
        if public {
            if !self.errors.is_empty() {
                map.serialize_entry("errors", &self.errors)?;
            }
            for (name, value) in &self.extensions {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

#[derive(Deserialize)]
struct WireProblem {
    #[serde(rename = "type", default = "about_blank")]
    type_uri: String,
    title: Option<String>,
    status: u16,
    detail: Option<String>,
    instance: Option<String>,
    #[serde(default)]
    errors: Vec<Violation>,
    #[serde(flatten)]
    extensions: BTreeMap<String, Value>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

/// Reads a problem document, for clients and tests. A missing `type` is
/// `about:blank`, as RFC 9457 section 3.1.1 says.
impl<'de> Deserialize<'de> for Problem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireProblem::deserialize(deserializer)?;
        let status = StatusCode::from_u16(wire.status)
            .map_err(|_| D::Error::custom("`status` is not an HTTP status code"))?;
        Ok(Self {
            type_uri: Cow::Owned(wire.type_uri),
            title: Cow::Owned(wire.title.unwrap_or_default()),
            status,
            detail: wire.detail.map(Cow::Owned),
            instance: wire.instance,
            errors: wire.errors,
            extensions: wire.extensions,
        })
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum_core::response::IntoResponse for Problem {
    fn into_response(self) -> axum_core::response::Response {
        Problem::into_http_response::<axum_core::body::Body>(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_uri_is_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for t in ProblemType::ALL {
            assert!(t.is_guardrails(), "{t:?}");
            assert!(t.uri().starts_with(TYPE_PREFIX));
            assert!(seen.insert(t.uri()), "duplicate uri {}", t.uri());
            assert!(t.status().is_client_error() || t.status().is_server_error());
        }
    }

    #[test]
    fn extension_names_follow_rfc_9457() {
        for ok in ["abc", "retry_after", "Limit1"] {
            assert!(is_extension_name(ok), "{ok}");
        }
        for bad in ["", "ab", "1abc", "_abc", "a-b-c", "caf\u{e9}", "a b"] {
            assert!(!is_extension_name(bad), "{bad}");
        }
    }

    #[test]
    fn reserved_members_cannot_be_overwritten() {
        for name in RESERVED_MEMBERS {
            let err = Problem::new(ProblemType::NOT_FOUND)
                .with_extension(name, 1)
                .unwrap_err();
            assert_eq!(
                err,
                ExtensionError::Reserved {
                    name: name.to_owned()
                }
            );
        }
    }

    #[test]
    fn display_shows_title_and_status_only() {
        let p = Problem::new(ProblemType::INVALID_TOKEN).with_detail("token expired");
        assert_eq!(p.to_string(), "Invalid token (401)");
    }
}
