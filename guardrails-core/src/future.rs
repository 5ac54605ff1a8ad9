//! The response future of a guard: the inner service's, or a ready rejection.
//!
//! Middleware that decides before calling the inner service (authentication,
//! authorization, a fail-closed audit check) returns [`ResponseFuture`]: a
//! named, unboxed future that either drives the inner service's future and
//! wraps its body in [`GuardBody`], or yields a response prepared up front.
//!
//! ```
//! use std::convert::Infallible;
//! use guardrails_core::{GuardBody, Problem, ProblemType, ResponseFuture};
//!
//! # async fn demo() {
//! let inner = async { Ok::<_, Infallible>(http::Response::new(String::from("ok"))) };
//! let passed = ResponseFuture::inner(inner).await.unwrap();
//! assert_eq!(passed.status(), 200);
//!
//! let rejected: ResponseFuture<std::future::Ready<Result<http::Response<String>, Infallible>>, String> =
//!     ResponseFuture::rejected(Problem::new(ProblemType::FORBIDDEN));
//! assert_eq!(rejected.await.unwrap().status(), 403);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use crate::{GuardBody, Problem};

pin_project! {
    /// Response future of guard middleware; see the [module documentation](self).
    #[derive(Debug)]
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Ready { response: Option<Response<GuardBody<B>>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    /// Drives the inner service's future.
    pub fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    /// Yields `response` without calling the inner service.
    pub fn ready(response: Response<GuardBody<B>>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    /// Yields `problem` as the response without calling the inner service.
    pub fn rejected(problem: Problem) -> Self {
        Self::ready(problem.into_http_response())
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<GuardBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(GuardBody::new))),
            KindProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled after completion: stay pending rather than panic;
                // futures must not be polled again once ready.
                None => Poll::Pending,
            },
        }
    }
}
