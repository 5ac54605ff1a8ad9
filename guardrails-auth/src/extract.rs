//! axum extractors for the verified principal (feature `axum`).
//!
//! [`Authenticated`] hands a handler the [`Principal`] that
//! [`AuthLayer`](crate::AuthLayer) established, and answers 401 (RFC 9457 +
//! `WWW-Authenticate`) when there is none — for example behind an
//! [`optional`](crate::AuthLayer::optional) layer.
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
use guardrails_core::Principal;
use http::request::Parts;

use crate::AuthError;
use crate::respond::{AuthRejection, ProblemResponder, RejectionResponder};

/// The verified principal of the request; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

/// The rejection of [`Authenticated`]: 401 with a challenge.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotAuthenticated;

impl IntoResponse for NotAuthenticated {
    fn into_response(self) -> Response {
        let error = AuthError::Unauthenticated;
        let mut response = ProblemResponder
            .respond(&AuthRejection::new(&error, "api", None))
            .map(axum::body::Body::from);
        guardrails_core::Rejection::new(error.category(), error.reason(), error.problem_type())
            .insert_into(response.extensions_mut());
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = NotAuthenticated;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Authenticated)
            .ok_or(NotAuthenticated)
    }
}
