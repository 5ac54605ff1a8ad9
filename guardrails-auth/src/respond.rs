//! What a rejected request is answered with.
//!
//! The default, [`ProblemResponder`], answers per RFC 6750 and RFC 9457:
//!
//! | case | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credential | 401 | `Bearer realm="…"` |
//! | malformed request (two `Authorization` headers, token in the query) | 400 | `Bearer realm="…", error="invalid_request", …` |
//! | bad token | 401 | `Bearer realm="…", error="invalid_token", …` |
//! | missing scope | 403 | `Bearer realm="…", error="insufficient_scope", scope="…"` |
//! | missing role, other tenant | 403 | — |
//!
//! with an `application/problem+json` body that names the reason code
//! (`reason`) and never echoes the credential.
//!
//! A gRPC server answers differently (HTTP 200, `grpc-status` 16 or 7):
//! [`GrpcResponder`]. Any closure `Fn(&AuthRejection) -> Response<Bytes>` is a
//! responder too.
//!
//! ```
//! use guardrails_auth::AuthError;
//! use guardrails_auth::respond::{AuthRejection, GrpcResponder, ProblemResponder, RejectionResponder};
//!
//! let rejection = AuthRejection::new(&AuthError::Expired, "api", None);
//! let http = ProblemResponder.respond(&rejection);
//! assert_eq!(http.status(), 401);
//! assert_eq!(
//!     http.headers()["www-authenticate"],
//!     r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
//! );
//!
//! let grpc = GrpcResponder.respond(&rejection);
//! assert_eq!(grpc.status(), 200);
//! assert_eq!(grpc.headers()["grpc-status"], "16");
//! ```

use std::fmt;

use bytes::Bytes;
use guardrails_core::{GuardBody, Problem, Rejection};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response};

use crate::AuthError;

/// A rejection to answer: why, in which realm, and for a missing scope, which.
#[derive(Debug, Clone, Copy)]
pub struct AuthRejection<'a> {
    error: &'a AuthError,
    realm: &'a str,
    scope: Option<&'a str>,
}

impl<'a> AuthRejection<'a> {
    /// A rejection for `error` in `realm`; `scope` is the scope a route
    /// requires (only for [`AuthError::InsufficientScope`]).
    pub fn new(error: &'a AuthError, realm: &'a str, scope: Option<&'a str>) -> Self {
        Self {
            error,
            realm,
            scope,
        }
    }

    /// Why.
    pub fn error(&self) -> &AuthError {
        self.error
    }

    /// The protection realm.
    pub fn realm(&self) -> &str {
        self.realm
    }

    /// The required scope, for an insufficient-scope rejection.
    pub fn scope(&self) -> Option<&str> {
        self.scope
    }

    /// The RFC 6750 `WWW-Authenticate` value, `None` where no challenge
    /// applies (authorization failures other than scope, server errors).
    pub fn challenge(&self) -> Option<HeaderValue> {
        let e = self.error;
        let needs = e.bearer_error().is_some()
            || matches!(e, AuthError::Missing | AuthError::Unauthenticated);
        if !needs {
            return None;
        }
        let mut v = format!("Bearer realm=\"{}\"", self.realm);
        if let Some(code) = e.bearer_error() {
            v.push_str(", error=\"");
            v.push_str(code);
            v.push('"');
            v.push_str(", error_description=\"");
            v.push_str(e.detail());
            v.push('"');
        }
        if let (AuthError::InsufficientScope, Some(scope)) = (e, self.scope) {
            v.push_str(", scope=\"");
            v.push_str(scope);
            v.push('"');
        }
        HeaderValue::from_str(&v).ok()
    }

    /// The RFC 9457 problem for this rejection.
    pub fn problem(&self) -> Problem {
        let problem = Problem::new(self.error.problem_type()).with_detail(self.error.detail());
        let problem = match problem.with_extension("reason", self.error.reason()) {
            Ok(p) => p,
            Err(_) => Problem::new(self.error.problem_type()),
        };
        match (self.error, self.scope) {
            (AuthError::InsufficientScope, Some(scope)) => {
                match problem.clone().with_extension("required_scope", scope) {
                    Ok(p) => p,
                    Err(_) => problem,
                }
            }
            _ => problem,
        }
    }
}

/// Builds the response for a rejection; see the [module documentation](self).
pub trait RejectionResponder: Send + Sync + 'static {
    /// The response for `rejection`.
    fn respond(&self, rejection: &AuthRejection<'_>) -> Response<Bytes>;
}

impl<F> RejectionResponder for F
where
    F: Fn(&AuthRejection<'_>) -> Response<Bytes> + Send + Sync + 'static,
{
    fn respond(&self, rejection: &AuthRejection<'_>) -> Response<Bytes> {
        self(rejection)
    }
}

/// RFC 9457 problem + RFC 6750 challenge; the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemResponder;

impl RejectionResponder for ProblemResponder {
    fn respond(&self, rejection: &AuthRejection<'_>) -> Response<Bytes> {
        let mut response: Response<Bytes> = rejection.problem().into_http_response();
        if let Some(challenge) = rejection.challenge() {
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// gRPC answer: HTTP 200, `content-type: application/grpc`, `grpc-status`
/// 16 (`UNAUTHENTICATED`) for authentication failures, 7
/// (`PERMISSION_DENIED`) for authorization failures, 14 (`UNAVAILABLE`) when
/// keys or the store are unavailable, and a fixed `grpc-message`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcResponder;

impl RejectionResponder for GrpcResponder {
    fn respond(&self, rejection: &AuthRejection<'_>) -> Response<Bytes> {
        let e = rejection.error();
        let code = if matches!(e, AuthError::KeysUnavailable | AuthError::StoreUnavailable) {
            "14"
        } else if e.is_authorization() {
            "7"
        } else {
            "16"
        };
        let mut response = Response::new(Bytes::new());
        let h = response.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from_static(code));
        // grpc-message is percent-encoded; the details are plain ASCII.
        let message = e.detail().replace(' ', "%20");
        if let Ok(v) = HeaderValue::from_str(&message) {
            h.insert("grpc-message", v);
        }
        response
    }
}

/// A shared, type-erased responder.
#[derive(Clone)]
pub(crate) struct SharedResponder(pub(crate) std::sync::Arc<dyn RejectionResponder>);

impl fmt::Debug for SharedResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectionResponder")
    }
}

impl Default for SharedResponder {
    fn default() -> Self {
        Self(std::sync::Arc::new(ProblemResponder))
    }
}

/// Builds the final rejection response: the responder's answer, the body as
/// a [`GuardBody`], the [`Rejection`] in the extensions, and the metric.
pub(crate) fn reject<B>(
    responder: &SharedResponder,
    error: &AuthError,
    realm: &str,
    scope: Option<&str>,
) -> Response<GuardBody<B>> {
    let response = rejection_response(responder, error, realm, scope);
    crate::layer::record_denied(error);
    response
}

/// The rejection response of [`reject`], without its metric: for the
/// extractor, whose request the layer already counted as let through.
pub(crate) fn rejection_response<B>(
    responder: &SharedResponder,
    error: &AuthError,
    realm: &str,
    scope: Option<&str>,
) -> Response<GuardBody<B>> {
    let rejection = AuthRejection::new(error, realm, scope);
    let response = responder.0.respond(&rejection);
    let mut response = response.map(GuardBody::full);
    Rejection::new(error.category(), error.reason(), error.problem_type())
        .insert_into(response.extensions_mut());
    response
}

/// Whether `realm` or `scope` may appear in a quoted-string of a challenge:
/// visible ASCII and space, without `"` and `\`.
pub(crate) fn is_quotable(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        let c = |e: AuthError, scope: Option<&str>| {
            AuthRejection::new(&e, "api", scope)
                .challenge()
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            c(AuthError::Missing, None).as_deref(),
            Some(r#"Bearer realm="api""#)
        );
        assert!(
            c(AuthError::BadSignature, None)
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
        assert!(
            c(AuthError::MultipleCredentials, None)
                .unwrap()
                .contains(r#"error="invalid_request""#)
        );
        let s = c(AuthError::InsufficientScope, Some("invoices:read")).unwrap();
        assert!(
            s.contains(r#"error="insufficient_scope""#) && s.contains(r#"scope="invoices:read""#)
        );
        assert_eq!(c(AuthError::CrossTenant, None), None);
        assert_eq!(c(AuthError::MissingRole, None), None);
    }

    #[test]
    fn problem_names_the_reason() {
        let p = AuthRejection::new(&AuthError::Expired, "api", None).problem();
        assert_eq!(p.extensions()["reason"], "token_expired");
        assert_eq!(p.status(), 401);
    }

    #[test]
    fn quotable() {
        assert!(is_quotable("invoices:read invoices:write"));
        assert!(!is_quotable("a\"b"));
        assert!(!is_quotable("a\\b"));
        assert!(!is_quotable(""));
    }
}
