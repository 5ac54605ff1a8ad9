//! The request body seen by the inner service: the original body, copying the
//! first bytes for the audit excerpt when the level asks for it; and the
//! response body, which records the event of a gRPC call when its status
//! comes in the trailers.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::event::AuditEvent;
use crate::pipeline::{Auditor, Delivery, DeliveryMode};

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
    /// The route's mode: on a blocking or strict route the trailers wait
    /// until the record is durable.
    pub(crate) mode: DeliveryMode,
    /// How long they wait at most (the layer's delivery timeout).
    pub(crate) timeout: Option<Duration>,
}

impl Pending {
    /// The event with the status of `trailers`, or, without one, as ended
    /// by `ended` (`grpc_no_status`, `body_error`, `cancelled`).
    fn complete(
        self,
        trailers: Option<&HeaderMap>,
        ended: &'static str,
    ) -> (AuditEvent, Auditor, DeliveryMode, Option<Duration>) {
        let Self {
            mut event,
            auditor,
            started,
            mode,
            timeout,
        } = self;
        super::grpc::apply_trailers(&mut event, trailers.and_then(super::grpc::code), ended);
        if let Some(request) = event.request.as_mut() {
            request.duration_us =
                Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
        (event, auditor, mode, timeout)
    }

    /// Records the event as [`Pending::complete`] makes it, without waiting.
    fn finish(self, trailers: Option<&HeaderMap>, ended: &'static str) {
        let (event, auditor, mode, _) = self.complete(trailers, ended);
        super::service::record_unwaited(&auditor, mode, event);
    }
}

/// The end of a blocking or strict gRPC call, held until its record is
/// durable.
struct Held {
    delivery: Delivery,
    /// The inner body's trailers (`None`: it ended without them).
    trailers: Option<HeaderMap>,
    /// A copy of the record, for the one that follows it when the call does
    /// not end as it says.
    copy: (AuditEvent, Auditor),
}

/// What a gRPC call's response body still has to do with its trailers.
/// Boxed, and only for gRPC calls that carry their status there: every
/// other response body stays one pointer larger than its inner body.
enum Trailers {
    /// The event waits for them.
    Awaiting(Pending),
    /// They (or the end) wait for the event's durable record.
    Held(Held),
    /// The held end was answered.
    Ended,
}

/// The trailers of a call whose record could not be written: `INTERNAL`,
/// as gRPC says what HTTP says with a 500.
fn audit_failed_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("13"));
    trailers.insert(
        "grpc-message",
        HeaderValue::from_static("the call's audit record could not be written"),
    );
    trailers
}

/// The record that follows a gRPC call's record when the call did not end
/// as it says: `INTERNAL` (`details.grpc_status` 13, the HTTP status still
/// 200), the handler's code kept as `details.response_grpc_status`; or, not
/// answered, no status and outcome `unknown`.
fn grpc_follow_up(event: AuditEvent, reason: &'static str, answered: Option<u32>) -> AuditEvent {
    let handler = event.details.get("grpc_status").cloned();
    let status = answered.and(event.request.as_ref().and_then(|r| r.status));
    let mut event = super::service::follow_up(event, status, reason);
    if let Some(handler) = handler {
        event.details.insert("response_grpc_status".into(), handler);
    }
    if let Some(code) = answered {
        // The HTTP status did not change: the code did.
        event.details.remove("response_status");
        event
            .details
            .insert("grpc_status".into(), Value::from(code));
    }
    event
}

pin_project! {
    /// The response body of [`AuditService`](super::AuditService): the
    /// inner service's, unchanged.
    ///
    /// For a gRPC call whose status comes in the trailers (after messages),
    /// it holds the request's event until then, and records it with that
    /// status; when the body ends without one, fails or is dropped first,
    /// with outcome `unknown` and reason `grpc_no_status`, `body_error` or
    /// `cancelled`.
    ///
    /// On a blocking or strict route the trailers themselves wait until that
    /// record is durable, as an HTTP response waits before its head: a gRPC
    /// client learns the call's outcome only from them. The messages before
    /// them do not wait (on a strict route the attempt record is durable
    /// before the handler runs; on a blocking one nothing is durable until
    /// the trailers). When the record fails or times out, the call ends with
    /// `INTERNAL` instead of the handler's trailers, and a record saying so
    /// follows (reason `audit_write_failed`, `details.response_grpc_status`
    /// the handler's code). A body failing with an error is recorded without
    /// waiting: the client sees the stream fail whatever the record says.
    pub struct AuditBody<B> {
        #[pin]
        inner: B,
        trailers: Option<Box<Trailers>>,
    }

    impl<B> PinnedDrop for AuditBody<B> {
        fn drop(this: Pin<&mut Self>) {
            match this.project().trailers.take().map(|t| *t) {
                // Not polled to the end (`is_end_stream` says no while an
                // event waits, so a server polls on): the client went away.
                Some(Trailers::Awaiting(pending)) => pending.finish(None, "cancelled"),
                // Gone while its record was being written: the record is
                // queued (or waits on for space), and this one says the
                // call did not end as it says.
                Some(Trailers::Held(mut held)) => {
                    held.delivery.detach();
                    let (event, auditor) = held.copy;
                    auditor.record_detached(grpc_follow_up(event, "cancelled", None));
                }
                Some(Trailers::Ended) | None => {}
            }
        }
    }
}

impl<B> AuditBody<B> {
    /// The inner body, with nothing to record.
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            trailers: None,
        }
    }

    /// The inner body, recording `pending` when its trailers pass.
    pub(crate) fn awaiting_trailers(inner: B, pending: Pending) -> Self {
        Self {
            inner,
            trailers: Some(Box::new(Trailers::Awaiting(pending))),
        }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for AuditBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trailers = match self.trailers.as_deref() {
            None => "passed",
            Some(Trailers::Awaiting(_)) => "awaited",
            Some(Trailers::Held(_)) => "held",
            Some(Trailers::Ended) => "answered",
        };
        f.debug_struct("AuditBody")
            .field("inner", &self.inner)
            .field("trailers", &trailers)
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
        match this.trailers.as_deref() {
            None => return this.inner.poll_frame(cx),
            Some(Trailers::Awaiting(_)) => {}
            Some(Trailers::Held(_)) => return poll_held(this.trailers, cx),
            Some(Trailers::Ended) => return Poll::Ready(None),
        }
        let polled = this.inner.poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|trailers| (Some(trailers), "grpc_no_status")),
            Poll::Ready(Some(Err(_))) => Some((None, "body_error")),
            Poll::Ready(None) => Some((None, "grpc_no_status")),
            Poll::Pending => None,
        };
        let Some((trailers, ended)) = ended else {
            return polled;
        };
        let Some(state) = this.trailers.as_deref_mut() else {
            return polled;
        };
        let Trailers::Awaiting(pending) = std::mem::replace(state, Trailers::Ended) else {
            return polled;
        };
        let waits = pending.mode != DeliveryMode::BestEffort
            && !matches!(polled, Poll::Ready(Some(Err(_))));
        if !waits {
            pending.finish(trailers, ended);
            *this.trailers = None;
            return polled;
        }
        let (event, auditor, _, timeout) = pending.complete(trailers, ended);
        let copy = (event.clone(), auditor.clone());
        let mut delivery = auditor.deliver(event, DeliveryMode::Blocking);
        if let Some(limit) = timeout {
            delivery = delivery.timeout(limit);
        }
        let trailers = match polled {
            Poll::Ready(Some(Ok(frame))) => frame.into_trailers().ok(),
            _ => None,
        };
        *state = Trailers::Held(Held {
            delivery,
            trailers,
            copy,
        });
        poll_held(this.trailers, cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        // While an event waits, the server must poll to the end, where the
        // trailers (or their absence) are seen, and held.
        match self.trailers.as_deref() {
            None => self.inner.is_end_stream(),
            Some(Trailers::Ended) => true,
            Some(Trailers::Awaiting(_) | Trailers::Held(_)) => false,
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Answers the held end of a call once its record is durable, or
/// `INTERNAL` when it could not be written.
fn poll_held<D, E>(
    trailers: &mut Option<Box<Trailers>>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<D>, E>>> {
    let Some(state) = trailers.as_deref_mut() else {
        return Poll::Ready(None);
    };
    let Trailers::Held(held) = state else {
        return Poll::Ready(None);
    };
    let result = std::task::ready!(Pin::new(&mut held.delivery).poll(cx));
    let Trailers::Held(mut held) = std::mem::replace(state, Trailers::Ended) else {
        return Poll::Ready(None);
    };
    let answer = match result {
        Ok(_) => held.trailers,
        Err(_) => {
            // (Timed out waiting for queue space: it waits on, and the
            // record of the answer after it.)
            held.delivery.detach();
            let (event, auditor) = held.copy;
            auditor.record_detached(grpc_follow_up(event, "audit_write_failed", Some(13)));
            Some(audit_failed_trailers())
        }
    };
    Poll::Ready(answer.map(|t| Ok(Frame::trailers(t))))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    use super::{AuditBody, ExcerptBody};

    /// Servers and body wrappers (`BoxBody`) ask for `Send + Sync`.
    #[test]
    fn bodies_are_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<AuditBody<Full<Bytes>>>();
        both::<ExcerptBody<Full<Bytes>>>();
    }

    #[tokio::test]
    async fn a_body_rebuilt_from_bytes_yields_them_and_copies_nothing() {
        let body = ExcerptBody::<Full<Bytes>>::from(Bytes::from_static(b"{\"a\":1}"));
        assert!(body.excerpt.is_none());
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"a\":1}");
    }
}
