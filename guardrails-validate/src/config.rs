//! Limits and policies for reading and validating input.
//!
//! A [`Config`] is built once (at start-up) and shared by reference: the
//! tower layer holds one, the axum extractors read one from the request
//! extensions (falling back to [`Config::default`]), and the pure functions
//! take one as an argument.
//!
//! ```
//! use std::time::Duration;
//! use guardrails_validate::{Config, UnknownFields};
//!
//! let config = Config::default()
//!     .max_body_bytes(64 * 1024)
//!     .max_depth(16)
//!     .read_timeout(Some(Duration::from_secs(5)))
//!     .unknown_fields(UnknownFields::Deny);
//! assert_eq!(config.get_max_body_bytes(), 65536);
//! ```

use std::time::Duration;

/// What to do with object members the target type does not declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownFields {
    /// Report each as an `unknown_field` violation (422). The default: deny
    /// by default.
    ///
    /// Members serde reads into a buffer before it knows their type cannot
    /// be checked, because serde drops the extra ones itself: those of a
    /// struct with `#[serde(flatten)]`, of an internally tagged
    /// (`#[serde(tag = "…")]`) or untagged enum. Keep such shapes out of
    /// input types that must refuse unknown members (adjacently tagged and
    /// externally tagged enums, nested structs, maps and sequences are
    /// checked).
    #[default]
    Deny,
    /// Ignore them silently, as serde does.
    Ignore,
}

/// Limits and policies for one kind of input; see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_depth: usize,
    pub(crate) max_string_bytes: usize,
    pub(crate) max_array_len: usize,
    pub(crate) max_object_members: usize,
    pub(crate) max_number_len: usize,
    pub(crate) max_violations: usize,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) unknown_fields: UnknownFields,
    pub(crate) allow_nul: bool,
}

impl Default for Config {
    /// 1 MiB bodies, nesting depth 32, 64 KiB strings, 10 000 array items,
    /// 1 000 object members, 100-character numbers, 100 reported violations,
    /// a 30 s read deadline, unknown fields denied, `\u0000` rejected.
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_depth: 32,
            max_string_bytes: 64 * 1024,
            max_array_len: 10_000,
            max_object_members: 1_000,
            max_number_len: 100,
            max_violations: 100,
            read_timeout: Some(Duration::from_secs(30)),
            unknown_fields: UnknownFields::Deny,
            allow_nul: false,
        }
    }
}

impl Config {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Largest accepted body, in bytes (413 beyond). Checked against
    /// `Content-Length` before reading and while streaming.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Deepest accepted nesting of arrays and objects (400 beyond).
    #[must_use]
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Longest accepted string (keys included), in bytes as sent (400 beyond).
    #[must_use]
    pub fn max_string_bytes(mut self, bytes: usize) -> Self {
        self.max_string_bytes = bytes;
        self
    }

    /// Most items accepted in one array (400 beyond).
    #[must_use]
    pub fn max_array_len(mut self, len: usize) -> Self {
        self.max_array_len = len;
        self
    }

    /// Most members accepted in one object (400 beyond).
    #[must_use]
    pub fn max_object_members(mut self, members: usize) -> Self {
        self.max_object_members = members;
        self
    }

    /// Longest accepted number literal, in characters (400 beyond).
    #[must_use]
    pub fn max_number_len(mut self, len: usize) -> Self {
        self.max_number_len = len;
        self
    }

    /// Most violations listed in one response; the total is always reported
    /// in the `violations_total` extension member. At least 1.
    #[must_use]
    pub fn max_violations(mut self, max: usize) -> Self {
        self.max_violations = max.max(1);
        self
    }

    /// Deadline for receiving the whole body (408 past it); `None` disables
    /// it. The deadline needs a Tokio runtime with its time driver; outside a
    /// runtime no deadline is enforced.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Policy for object members the target type does not declare.
    #[must_use]
    pub fn unknown_fields(mut self, policy: UnknownFields) -> Self {
        self.unknown_fields = policy;
        self
    }

    /// Accepts the escaped NUL character `\u0000` in strings. Off by default:
    /// NUL truncates C strings and is rejected by PostgreSQL `text`.
    #[must_use]
    pub fn insecure_allow_nul(mut self, allow: bool) -> Self {
        self.allow_nul = allow;
        self
    }

    /// The body size limit.
    pub fn get_max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The nesting depth limit.
    pub fn get_max_depth(&self) -> usize {
        self.max_depth
    }

    /// The read deadline.
    pub fn get_read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The unknown-field policy.
    pub fn get_unknown_fields(&self) -> UnknownFields {
        self.unknown_fields
    }

    /// The number of violations listed in one response.
    pub fn get_max_violations(&self) -> usize {
        self.max_violations
    }
}
