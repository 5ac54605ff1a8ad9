//! The request body seen by the inner service: the original body, copying the
//! first bytes for the audit excerpt when the level asks for it; and the
//! response body, which records the event of a gRPC call when its status
//! comes in the trailers.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::event::AuditEvent;
use crate::pipeline::Auditor;

#[derive(Debug, Default)]
pub(crate) struct Excerpt {
    pub(crate) bytes: Vec<u8>,
    pub(crate) total: u64,
    pub(crate) complete: bool,
}

pub(crate) type SharedExcerpt = Arc<Mutex<Excerpt>>;

pub(crate) fn lock(excerpt: &SharedExcerpt) -> std::sync::MutexGuard<'_, Excerpt> {
    excerpt.lock().unwrap_or_else(PoisonError::into_inner)
}

pin_project! {
    /// The request body passed to the inner service: unchanged, and at level
    /// `Request` copying up to the excerpt limit as the handler reads it.
    ///
    /// See the [module documentation](crate::layer).
    #[derive(Debug)]
    pub struct ExcerptBody<B> {
        #[pin]
        inner: B,
        excerpt: Option<SharedExcerpt>,
        limit: usize,
    }
}

impl<B> ExcerptBody<B> {
    pub(crate) fn new(inner: B, excerpt: Option<SharedExcerpt>, limit: usize) -> Self {
        Self {
            inner,
            excerpt,
            limit,
        }
    }

    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

/// A body made from bytes, copying nothing: what a layer inside the audit
/// layer that reads the body and hands on its bytes builds (a validating
/// layer, such as guardrails-validate's `ValidateJsonLayer`, on a server
/// whose body type is not axum's).
impl<B: From<bytes::Bytes>> From<bytes::Bytes> for ExcerptBody<B> {
    fn from(bytes: bytes::Bytes) -> Self {
        Self::new(B::from(bytes), None, 0)
    }
}

impl<B: Body> Body for ExcerptBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Some(excerpt) = this.excerpt.as_ref() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        let mut e = lock(excerpt);
                        e.total += data.remaining() as u64;
                        let room = this.limit.saturating_sub(e.bytes.len());
                        if room > 0 {
                            let chunk = data.chunk();
                            // A `Buf` may be split; copy what its first chunk has.
                            let take = room.min(chunk.len());
                            e.bytes.extend_from_slice(&chunk[..take]);
                        }
                    }
                }
                Poll::Ready(None) => lock(excerpt).complete = true,
                _ => {}
            }
        }
        polled
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An event held until the response's trailers, and what records it.
pub(crate) struct Pending {
    pub(crate) event: AuditEvent,
    pub(crate) auditor: Auditor,
    /// When the request came: the call's duration runs to its end.
    pub(crate) started: std::time::Instant,
}

impl Pending {
    /// Records the event with the status of `trailers`, or, without one,
    /// as ended by `ended` (`grpc_no_status`, `body_error`, `cancelled`).
    fn finish(self: Box<Self>, trailers: Option<&http::HeaderMap>, ended: &'static str) {
        let Self {
            mut event,
            auditor,
            started,
        } = *self;
        super::grpc::apply_trailers(&mut event, trailers.and_then(super::grpc::code), ended);
        if let Some(request) = event.request.as_mut() {
            request.duration_us =
                Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
        let _ = auditor.record(event);
    }
}

pin_project! {
    /// The response body of [`AuditService`](super::AuditService): the
    /// inner service's, unchanged.
    ///
    /// For a gRPC call on a best-effort route whose status comes in the
    /// trailers (after messages), it holds the request's event until then,
    /// and records it with that status; when the body ends without one,
    /// fails or is dropped first, with outcome `unknown` and reason
    /// `grpc_no_status`, `body_error` or `cancelled`.
    pub struct AuditBody<B> {
        #[pin]
        inner: B,
        pending: Option<Box<Pending>>,
    }

    impl<B> PinnedDrop for AuditBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // Not polled to the end (`is_end_stream` says no while an event
            // waits, so a server polls on): the client went away.
            if let Some(pending) = this.project().pending.take() {
                pending.finish(None, "cancelled");
            }
        }
    }
}

impl<B> AuditBody<B> {
    /// The inner body, with nothing to record.
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    /// The inner body, recording `pending` when its trailers pass.
    pub(crate) fn awaiting_trailers(inner: B, pending: Pending) -> Self {
        Self {
            inner,
            pending: Some(Box::new(pending)),
        }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for AuditBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditBody")
            .field("inner", &self.inner)
            .field("awaiting_trailers", &self.pending.is_some())
            .finish()
    }
}

/// A body made from bytes (a problem document the layer answers itself).
impl<B: From<bytes::Bytes>> From<bytes::Bytes> for AuditBody<B> {
    fn from(bytes: bytes::Bytes) -> Self {
        Self::new(B::from(bytes))
    }
}

impl<B: Body> Body for AuditBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if this.pending.is_some() {
            let ended = match &polled {
                Poll::Ready(Some(Ok(frame))) => frame
                    .trailers_ref()
                    .map(|trailers| (Some(trailers), "grpc_no_status")),
                Poll::Ready(Some(Err(_))) => Some((None, "body_error")),
                Poll::Ready(None) => Some((None, "grpc_no_status")),
                Poll::Pending => None,
            };
            if let Some((trailers, ended)) = ended
                && let Some(pending) = this.pending.take()
            {
                pending.finish(trailers, ended);
            }
        }
        polled
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        // While an event waits, the server must poll to the end, where the
        // trailers (or their absence) are seen.
        self.pending.is_none() && self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    use super::ExcerptBody;

    #[tokio::test]
    async fn a_body_rebuilt_from_bytes_yields_them_and_copies_nothing() {
        let body = ExcerptBody::<Full<Bytes>>::from(Bytes::from_static(b"{\"a\":1}"));
        assert!(body.excerpt.is_none());
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"a\":1}");
    }
}
