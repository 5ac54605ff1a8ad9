//! Rewriting the framework's plain-text 4xx responses into problems.
//!
//! Routers and extractors answer some requests themselves: 404 for an
//! unknown path, 405 for a wrong method (with `Allow`), 400/413/415/422 from
//! axum's own extractors, each with a plain-text or empty body. Wrapped in
//! [`ProblemJsonLayer`], every 4xx response whose body is not already JSON
//! becomes an RFC 9457 problem of the matching [`ProblemType`]; its headers
//! (`Allow`, `WWW-Authenticate`, `Retry-After`…) are kept, its body is
//! dropped — it may name Rust types or echo input —, and a
//! [`Rejection`] is inserted unless the response already carries one.
//! Responses that are 2xx/3xx/5xx, or already `application/json` or
//! `application/problem+json`, pass through untouched.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use guardrails_validate::ProblemJsonLayer;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(ProblemJsonLayer::new())
//!     .service_fn(|_: Request<()>| async {
//!         let mut response = Response::new(String::from("Not Found"));
//!         *response.status_mut() = StatusCode::NOT_FOUND;
//!         Ok::<_, Infallible>(response)
//!     });
//! let response = service.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(response.status(), 404);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use guardrails_core::{
    GuardBody, PROBLEM_JSON, Problem, ProblemType, Rejection, RejectionCategory,
};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// Rewrites plain-text 4xx responses into problems; see the
/// [module documentation](self).
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct ProblemJsonLayer {
    _private: (),
}

impl ProblemJsonLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for ProblemJsonLayer {
    type Service = ProblemJson<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProblemJson { inner }
    }
}

/// The service of [`ProblemJsonLayer`].
#[derive(Clone, Debug)]
pub struct ProblemJson<S> {
    inner: S,
}

impl<S> ProblemJson<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// A layer producing this service.
    pub fn layer() -> ProblemJsonLayer {
        ProblemJsonLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, ResBody> Service<Req> for ProblemJson<S>
where
    S: Service<Req, Response = Response<ResBody>>,
{
    type Response = Response<GuardBody<ResBody>>;
    type Error = S::Error;
    type Future = RewriteFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        RewriteFuture {
            future: self.inner.call(request),
        }
    }
}

pin_project! {
    /// Response future of [`ProblemJson`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RewriteFuture<F> {
        #[pin]
        future: F,
    }
}

impl<F> fmt::Debug for RewriteFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RewriteFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for RewriteFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<GuardBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().future.poll(cx))?;
        Poll::Ready(Ok(rewrite(response)))
    }
}

/// Whether `response` is a 4xx whose body is not JSON.
pub fn needs_rewrite<B>(response: &Response<B>) -> bool {
    if !response.status().is_client_error() {
        return false;
    }
    let Some(content_type) = response.headers().get(CONTENT_TYPE) else {
        return true;
    };
    let essence = content_type
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    !(essence == "application/json" || essence.ends_with("+json"))
}

/// The problem type, rejection category and reason for a 4xx status.
fn classify(status: StatusCode) -> (ProblemType, RejectionCategory, &'static str) {
    use RejectionCategory::{Authentication, Authorization, Other, Validation};
    match status {
        StatusCode::BAD_REQUEST => (ProblemType::MALFORMED_REQUEST, Validation, "bad_request"),
        StatusCode::UNAUTHORIZED => (
            ProblemType::AUTHENTICATION_REQUIRED,
            Authentication,
            "unauthorized",
        ),
        StatusCode::FORBIDDEN => (ProblemType::FORBIDDEN, Authorization, "forbidden"),
        StatusCode::NOT_FOUND => (ProblemType::NOT_FOUND, Other, "not_found"),
        StatusCode::METHOD_NOT_ALLOWED => {
            (ProblemType::METHOD_NOT_ALLOWED, Other, "method_not_allowed")
        }
        StatusCode::REQUEST_TIMEOUT => {
            (ProblemType::REQUEST_TIMEOUT, Validation, "request_timeout")
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            ProblemType::PAYLOAD_TOO_LARGE,
            Validation,
            "payload_too_large",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ProblemType::UNSUPPORTED_MEDIA_TYPE,
            Validation,
            "unsupported_media_type",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => (
            ProblemType::VALIDATION_FAILED,
            Validation,
            "validation_failed",
        ),
        StatusCode::TOO_MANY_REQUESTS => {
            (ProblemType::TOO_MANY_REQUESTS, Other, "too_many_requests")
        }
        other => (
            ProblemType::new(
                "about:blank",
                other.canonical_reason().unwrap_or("Client error"),
                other,
            ),
            if matches!(other.as_u16(), 411 | 414 | 431) {
                Validation
            } else {
                Other
            },
            "client_error",
        ),
    }
}

fn detail(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "the request could not be understood",
        StatusCode::NOT_FOUND => "no resource at this path",
        StatusCode::METHOD_NOT_ALLOWED => "the resource does not accept this method; see `Allow`",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "the request body's media type is not accepted",
        StatusCode::UNPROCESSABLE_ENTITY => "the request body does not fit the expected shape",
        _ => "the request was rejected",
    }
}

/// Rewrites `response` if it [needs it](needs_rewrite); wraps it otherwise.
pub fn rewrite<B>(response: Response<B>) -> Response<GuardBody<B>> {
    if !needs_rewrite(&response) {
        return response.map(GuardBody::new);
    }
    let (mut parts, _body) = response.into_parts();
    let (kind, category, reason) = classify(parts.status);
    let problem = Problem::new(kind).with_detail(detail(parts.status));
    let rewritten = problem.into_http_response::<GuardBody<B>>();
    parts.headers.remove(CONTENT_LENGTH);
    for (name, value) in rewritten.headers() {
        parts.headers.insert(name, value.clone());
    }
    if parts.extensions.get::<Rejection>().is_none() {
        Rejection::new(category, reason, kind).insert_into(&mut parts.extensions);
    }
    debug_assert_eq!(rewritten.headers()[CONTENT_TYPE], PROBLEM_JSON);
    Response::from_parts(parts, rewritten.into_body())
}
