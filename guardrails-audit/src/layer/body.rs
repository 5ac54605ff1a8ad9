//! The request body seen by the inner service: the original body, copying the
//! first bytes for the audit excerpt when the level asks for it.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

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
