//! The request id that guards, handlers and audit share.
//!
//! Whatever assigns request ids (a tower-http `SetRequestId` layer, a proxy
//! header copied by the application, or the audit layer itself) stores a
//! [`RequestId`] in the request extensions, so that problems (`instance`),
//! log lines and audit records of one request carry the same id.
//!
//! ```
//! use guardrails_core::RequestId;
//!
//! let id = RequestId::new("0193c3a0-7c1e-7b2a-9d3e-5f6a7b8c9d0e").unwrap();
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(id.clone());
//! assert_eq!(request.extensions().get::<RequestId>(), Some(&id));
//! assert!(RequestId::new("line\nbreak").is_none());
//! ```

use std::fmt;
use std::sync::Arc;

/// The longest request id accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request id: 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters.
///
/// The restriction keeps an id taken from a client header harmless in logs
/// (no line breaks, no escape sequences) and bounded in size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The id, or `None` if `id` is empty, too long, or has a character that
    /// is not visible ASCII.
    pub fn new(id: &str) -> Option<Self> {
        let ok = !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_LEN
            && id.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(Arc::from(id)))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a shared string: a reference-count increment, no copy.
    ///
    /// For records that outlive the request (an audit event keeps the id
    /// after the request's extensions are gone).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use guardrails_core::RequestId;
    ///
    /// let id = RequestId::new("req-1").unwrap();
    /// let shared: Arc<str> = id.to_shared();
    /// assert_eq!(&*shared, "req-1");
    /// ```
    pub fn to_shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_ascii_within_bounds() {
        assert!(RequestId::new("abc-123_XYZ.~").is_some());
        assert!(RequestId::new(&"a".repeat(MAX_REQUEST_ID_LEN)).is_some());
        for bad in ["", " ", "a b", "a\r\nb", "\u{1b}[31m", "caf\u{e9}"] {
            assert!(RequestId::new(bad).is_none(), "{bad:?}");
        }
        assert!(RequestId::new(&"a".repeat(MAX_REQUEST_ID_LEN + 1)).is_none());
    }
}
