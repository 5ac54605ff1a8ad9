//! axum extractors for the verified principal (feature `axum`).
//!
//! [`Authenticated`] hands a handler the [`Principal`] that
//! [`AuthLayer`](crate::AuthLayer) established, and answers 401 (RFC 9457 +
//! `WWW-Authenticate`) when there is none — for example on a public path or
//! behind an [`optional`](crate::AuthLayer::optional) layer. That 401 is the
//! layer's own: its [`realm`](crate::AuthLayer::realm) and
//! [`responder`](crate::AuthLayer::responder). Without an `AuthLayer` in
//! front, it is a problem document with `realm="api"`.
//!
//! ```
//! use guardrails_auth::extract::Authenticated;
//!
//! async fn me(Authenticated(principal): Authenticated) -> String {
//!     principal.subject().to_owned()
//! }
//! # let _: axum::Router = axum::Router::new().route("/me", axum::routing::get(me));
//! ```

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use guardrails_core::{GuardBody, Principal};
use http::request::Parts;

use crate::AuthError;
use crate::layer::Challenge;
use crate::respond::{SharedResponder, rejection_response};

/// The verified principal of the request; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

/// The rejection of [`Authenticated`]: 401 with a challenge, answered like
/// the [`AuthLayer`](crate::AuthLayer) that let the request through.
#[derive(Debug, Clone, Default)]
pub struct NotAuthenticated {
    challenge: Option<Challenge>,
}

impl IntoResponse for NotAuthenticated {
    fn into_response(self) -> Response {
        let error = AuthError::Unauthenticated;
        // Never the inner body: the rejection is a full body.
        let response: http::Response<GuardBody<axum::body::Body>> = match self.challenge {
            Some(challenge) => challenge.reject(&error),
            None => rejection_response(&SharedResponder::default(), &error, "api", None),
        };
        response.map(axum::body::Body::new)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = NotAuthenticated;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Principal>() {
            Some(principal) => Ok(Authenticated(principal.clone())),
            None => Err(NotAuthenticated {
                challenge: parts.extensions.get::<Challenge>().cloned(),
            }),
        }
    }
}
