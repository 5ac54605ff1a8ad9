//! A response body that is either the inner service's body or a guard's own.
//!
//! A middleware that may reject a request answers with
//! `Response<GuardBody<B>>`: [`GuardBody::new`] wraps the inner service's body
//! `B` untouched (no boxing, no copy), [`GuardBody::full`] carries a complete
//! body such as a [`Problem`](crate::Problem) document.
//!
//! ```
//! use bytes::Bytes;
//! use guardrails_core::{GuardBody, Problem, ProblemType};
//! use http_body::Body as _;
//!
//! let passed: GuardBody<String> = GuardBody::new(String::from("hello"));
//! let rejected: http::Response<GuardBody<String>> =
//!     Problem::new(ProblemType::AUTHENTICATION_REQUIRED).into_http_response();
//! assert_eq!(passed.size_hint().exact(), Some(5));
//! assert!(rejected.body().size_hint().exact().unwrap() > 0);
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// Either the inner service's body or a complete body of the guard's own.
    ///
    /// See the [module documentation](self).
    #[derive(Debug)]
    pub struct GuardBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

impl<B> GuardBody<B> {
    /// Wraps the inner service's body.
    pub fn new(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A complete body of the guard's own.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full { data: None },
        }
    }

    /// Whether this is the inner service's body.
    pub fn is_inner(&self) -> bool {
        matches!(self.kind, Kind::Inner { .. })
    }
}

impl<B> From<Bytes> for GuardBody<B> {
    fn from(data: Bytes) -> Self {
        Self::full(data)
    }
}

impl<B> Default for GuardBody<B> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<B> Body for GuardBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d.into())))),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_full_body_is_end_of_stream() {
        let body: GuardBody<String> = GuardBody::full(Bytes::new());
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(!body.is_inner());
        assert!(GuardBody::new(String::new()).is_inner());
    }
}
