//! Where the credential comes from.
//!
//! A [`CredentialSource`] finds the credential in the request head. The
//! built-ins:
//!
//! - [`Bearer`] (the default): `Authorization: Bearer <token68>`; the scheme
//!   is case-insensitive, exactly one `Authorization` header is allowed, the
//!   value is capped (8 KiB by default) before any parsing.
//! - [`Cookie`]: a named cookie (opt-in, for browser sessions).
//! - [`HeaderSource`]: a custom header such as `x-api-key`.
//! - [`InsecureQuery`]: a query parameter. Query strings end up in access
//!   logs, browser history and `Referer` headers; the type is named so that
//!   nobody enables it by accident.
//!
//! ```
//! use guardrails_auth::{AuthError, Bearer, CredentialSource};
//!
//! let request = http::Request::get("/")
//!     .header("authorization", "bEaReR abc.def.ghi")
//!     .body(())
//!     .unwrap();
//! let (parts, ()) = request.into_parts();
//! let credential = Bearer::default().extract(&parts).unwrap().unwrap();
//! assert_eq!(credential.value(), "abc.def.ghi");
//!
//! let request = http::Request::get("/")
//!     .header("authorization", "Bearer a")
//!     .header("authorization", "Bearer b")
//!     .body(())
//!     .unwrap();
//! let (parts, ()) = request.into_parts();
//! assert_eq!(Bearer::default().extract(&parts).unwrap_err(), AuthError::MultipleCredentials);
//! ```

use std::fmt;

use http::HeaderName;
use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;

use crate::AuthError;

/// The default cap on a credential's length: 8 KiB.
pub const DEFAULT_MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// A credential found in a request, borrowed from it.
///
/// `Debug` never prints the value.
#[derive(Clone, Copy)]
pub struct Credential<'a> {
    value: &'a str,
    source: &'static str,
}

impl<'a> Credential<'a> {
    /// A credential `value` found by the source named `source` (`bearer`,
    /// `cookie`, `header`, `query`).
    pub fn new(value: &'a str, source: &'static str) -> Self {
        Self { value, source }
    }

    /// The credential itself. Never log it.
    pub fn value(&self) -> &'a str {
        self.value
    }

    /// The kind of source that found it.
    pub fn source(&self) -> &'static str {
        self.source
    }
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("source", &self.source)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

/// Finds the credential in a request head; see the [module documentation](self).
pub trait CredentialSource: fmt::Debug + Send + Sync + 'static {
    /// The credential, `Ok(None)` when the request carries none for this
    /// source.
    ///
    /// # Errors
    ///
    /// When the request carries a credential for this source that is
    /// malformed, too large, or ambiguous.
    fn extract<'a>(&self, parts: &'a Parts) -> Result<Option<Credential<'a>>, AuthError>;

    /// The header this source reads, so the layer can mark it sensitive.
    fn header(&self) -> Option<&HeaderName> {
        None
    }

    /// Whether this source reads the query string (so the layer does not
    /// reject query credentials as unexpected).
    fn reads_query(&self) -> bool {
        false
    }
}

/// RFC 7235 `token68`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_token68(s: &str) -> bool {
    is_token68_bytes(s.as_bytes())
}

/// [`is_token68`] on bytes, in one pass.
fn is_token68_bytes(s: &[u8]) -> bool {
    let body_len = s.len() - s.iter().rev().take_while(|&&b| b == b'=').count();
    // Branch-free per byte and without early exit, so the compiler checks
    // many bytes per instruction: this runs on every request, cache hits
    // included, over the whole token.
    body_len > 0
        && s[..body_len].iter().fold(true, |ok, &b| {
            let lower = b | 0x20;
            ok & ((lower.wrapping_sub(b'a') < 26)
                | (b.wrapping_sub(b'0') < 10)
                | (b == b'-')
                | (b == b'.')
                | (b == b'_')
                | (b == b'~')
                | (b == b'+')
                | (b == b'/'))
        })
}

/// `Authorization: Bearer <token68>` (RFC 6750 section 2.1).
#[derive(Clone, Debug)]
pub struct Bearer {
    max_len: usize,
}

impl Default for Bearer {
    fn default() -> Self {
        Self {
            max_len: DEFAULT_MAX_CREDENTIAL_LEN,
        }
    }
}

impl Bearer {
    /// The default bearer source (8 KiB cap).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the cap on the header value's length, in bytes.
    #[must_use]
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }
}

impl CredentialSource for Bearer {
    fn extract<'a>(&self, parts: &'a Parts) -> Result<Option<Credential<'a>>, AuthError> {
        let mut values = parts.headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(AuthError::MultipleCredentials);
        }
        // Cap before any parsing; "Bearer " is 7 bytes.
        if value.len() > self.max_len.saturating_add(7) {
            return Err(AuthError::TooLarge);
        }
        // One pass over the bytes: the token68 check implies visible ASCII.
        let bytes = value.as_bytes();
        let space = bytes
            .iter()
            .position(|&b| b == b' ')
            .ok_or(AuthError::MalformedCredential)?;
        if !bytes[..space].eq_ignore_ascii_case(b"bearer") {
            return Err(AuthError::MalformedCredential);
        }
        let rest = &bytes[space + 1..];
        let start = rest.iter().take_while(|&&b| b == b' ').count();
        let token = &rest[start..];
        if !is_token68_bytes(token) {
            return Err(AuthError::MalformedCredential);
        }
        let token = std::str::from_utf8(token).map_err(|_| AuthError::MalformedCredential)?;
        Ok(Some(Credential::new(token, "bearer")))
    }

    fn header(&self) -> Option<&HeaderName> {
        Some(&AUTHORIZATION)
    }
}

/// A named cookie carrying the credential (opt-in).
#[derive(Clone, Debug)]
pub struct Cookie {
    name: String,
    max_len: usize,
}

impl Cookie {
    /// Reads the cookie `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_len: DEFAULT_MAX_CREDENTIAL_LEN,
        }
    }

    /// Sets the cap on the cookie value's length, in bytes.
    #[must_use]
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }
}

impl CredentialSource for Cookie {
    fn extract<'a>(&self, parts: &'a Parts) -> Result<Option<Credential<'a>>, AuthError> {
        let mut found = None;
        for header in parts.headers.get_all(COOKIE) {
            let Ok(header) = header.to_str() else {
                continue;
            };
            for pair in header.split(';') {
                let Some((name, value)) = pair.trim_start().split_once('=') else {
                    continue;
                };
                if name != self.name {
                    continue;
                }
                if found.is_some() {
                    return Err(AuthError::MultipleCredentials);
                }
                let value = value.trim_end();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                if value.len() > self.max_len {
                    return Err(AuthError::TooLarge);
                }
                if !is_token68(value) {
                    return Err(AuthError::MalformedCredential);
                }
                found = Some(Credential::new(value, "cookie"));
            }
        }
        Ok(found)
    }

    fn header(&self) -> Option<&HeaderName> {
        Some(&COOKIE)
    }
}

/// A custom header carrying the credential as its whole value (for example
/// `x-api-key`).
#[derive(Clone, Debug)]
pub struct HeaderSource {
    name: HeaderName,
    max_len: usize,
}

impl HeaderSource {
    /// Reads the header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self {
            name,
            max_len: DEFAULT_MAX_CREDENTIAL_LEN,
        }
    }

    /// Sets the cap on the header value's length, in bytes.
    #[must_use]
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }
}

impl CredentialSource for HeaderSource {
    fn extract<'a>(&self, parts: &'a Parts) -> Result<Option<Credential<'a>>, AuthError> {
        let mut values = parts.headers.get_all(&self.name).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(AuthError::MultipleCredentials);
        }
        if value.len() > self.max_len {
            return Err(AuthError::TooLarge);
        }
        let value = value.to_str().map_err(|_| AuthError::MalformedCredential)?;
        if !is_token68(value) {
            return Err(AuthError::MalformedCredential);
        }
        Ok(Some(Credential::new(value, "header")))
    }

    fn header(&self) -> Option<&HeaderName> {
        Some(&self.name)
    }
}

/// A query parameter carrying the credential. Insecure: query strings are
/// logged by proxies and servers, kept in browser history and leaked through
/// `Referer`. Only for clients that cannot send headers (for example
/// `EventSource`), and only with short-lived tokens.
#[derive(Clone, Debug)]
pub struct InsecureQuery {
    param: String,
    max_len: usize,
}

impl InsecureQuery {
    /// Reads the query parameter `param` (RFC 6750 uses `access_token`).
    pub fn new(param: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            max_len: DEFAULT_MAX_CREDENTIAL_LEN,
        }
    }
}

impl CredentialSource for InsecureQuery {
    fn extract<'a>(&self, parts: &'a Parts) -> Result<Option<Credential<'a>>, AuthError> {
        let Some(query) = parts.uri.query() else {
            return Ok(None);
        };
        let mut found = None;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name != self.param {
                continue;
            }
            if found.is_some() {
                return Err(AuthError::MultipleCredentials);
            }
            if value.len() > self.max_len {
                return Err(AuthError::TooLarge);
            }
            // Percent-encoded values are refused rather than decoded: a
            // base64url token or an API key never needs encoding.
            if !is_token68(value) || value.contains('+') {
                return Err(AuthError::MalformedCredential);
            }
            found = Some(Credential::new(value, "query"));
        }
        Ok(found)
    }

    fn reads_query(&self) -> bool {
        true
    }
}

/// Whether the query string carries an `access_token` parameter (RFC 6750
/// section 2.3), which the layer rejects unless a query source is configured.
pub(crate) fn query_has_access_token(parts: &Parts) -> bool {
    parts.uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split_once('=').map_or(pair, |(n, _)| n) == "access_token")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(build: impl FnOnce(http::request::Builder) -> http::request::Builder) -> Parts {
        build(http::Request::get("/x"))
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    #[allow(clippy::type_complexity, reason = "table rows")]
    fn bearer_table() {
        let rows: &[(&[&str], Result<Option<&str>, AuthError>)] = &[
            (&[], Ok(None)),
            (&["Bearer abc"], Ok(Some("abc"))),
            (&["bearer abc"], Ok(Some("abc"))),
            (&["BEARER abc"], Ok(Some("abc"))),
            (&["Bearer  a.b-c_d~e+f/g=="], Ok(Some("a.b-c_d~e+f/g=="))),
            (&["Bearer"], Err(AuthError::MalformedCredential)),
            (&["Bearer "], Err(AuthError::MalformedCredential)),
            (&["Bearer a b"], Err(AuthError::MalformedCredential)),
            (&["Bearer a,b"], Err(AuthError::MalformedCredential)),
            (&["Bearer =abc"], Err(AuthError::MalformedCredential)),
            (&["Basic dXNlcjpwYXNz"], Err(AuthError::MalformedCredential)),
            (
                &["Bearer a", "Bearer a"],
                Err(AuthError::MultipleCredentials),
            ),
        ];
        for (values, expected) in rows {
            let p = parts(|mut b| {
                for v in *values {
                    b = b.header("authorization", *v);
                }
                b
            });
            let got = Bearer::default().extract(&p).map(|c| c.map(|c| c.value()));
            assert_eq!(&got, expected, "{values:?}");
        }
        let long = format!("Bearer {}", "a".repeat(DEFAULT_MAX_CREDENTIAL_LEN + 1));
        let p = parts(|b| b.header("authorization", long.as_str()));
        assert_eq!(
            Bearer::default().extract(&p).unwrap_err(),
            AuthError::TooLarge
        );
    }

    #[test]
    fn token68_accepts_exactly_its_alphabet() {
        for b in 0..=255u8 {
            let reference =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(
                is_token68_bytes(&[b'a', b, b'a']),
                reference,
                "byte {b:#04x}"
            );
        }
        assert!(is_token68_bytes(b"abc=="));
        assert!(!is_token68_bytes(b"=="));
        assert!(!is_token68_bytes(b"a=b"));
    }

    #[test]
    fn cookie_and_header_and_query() {
        let p = parts(|b| b.header("cookie", "a=1; session=tok.en; b=2"));
        assert_eq!(
            Cookie::new("session").extract(&p).unwrap().unwrap().value(),
            "tok.en"
        );
        let p = parts(|b| {
            b.header("cookie", "session=a")
                .header("cookie", "session=b")
        });
        assert_eq!(
            Cookie::new("session").extract(&p).unwrap_err(),
            AuthError::MultipleCredentials
        );
        let p = parts(|b| b.header("x-api-key", "sk_abc"));
        let src = HeaderSource::new(HeaderName::from_static("x-api-key"));
        assert_eq!(src.extract(&p).unwrap().unwrap().value(), "sk_abc");
        let p = http::Request::get("/x?a=1&access_token=t.o.k")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert!(query_has_access_token(&p));
        assert_eq!(
            InsecureQuery::new("access_token")
                .extract(&p)
                .unwrap()
                .unwrap()
                .value(),
            "t.o.k"
        );
    }

    #[test]
    fn debug_redacts() {
        let c = Credential::new("secret-token", "bearer");
        assert!(!format!("{c:?}").contains("secret-token"));
    }
}
