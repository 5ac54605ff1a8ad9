//! The audit service and its response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use guardrails_core::{GuardBody, Principal, ProblemType, Rejection, RejectionCategory, RequestId};
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use serde_json::Value;
use tower_layer::Layer;
use tower_service::Service;

use super::body::{AuditBody, Excerpt, ExcerptBody, Pending, SharedExcerpt, lock};
use super::grpc;
use super::{AuditContext, AuditLayer, ClientIp, Level, RouteResolver};
use crate::event::{
    AuditEvent, Category, MAX_PATH_CHARS, MAX_USER_AGENT_CHARS, Outcome, RequestInfo, Source,
    Stage, integers_only, sanitize,
};
use crate::pipeline::{Auditor, Delivery, DeliveryMode};

/// The audit middleware; see the [module documentation](super).
#[derive(Clone)]
pub struct AuditService<S, R = super::RouteFromExtensions> {
    inner: S,
    // Shared: routers clone the service for every request, and one reference
    // count is cheaper than the layer's several.
    layer: Arc<AuditLayer<R>>,
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for AuditService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, R> AuditService<S, R> {
    /// Wraps `inner`.
    pub fn new(inner: S, layer: AuditLayer<R>) -> Self {
        Self {
            inner,
            layer: Arc::new(layer),
        }
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

/// The per-request audit state carried by the response future.
///
/// It holds the event's id, time and category rather than the event itself:
/// the response future stays small (it is moved, and boxed by routers), and
/// the event is built once, when the response is known.
struct Ctx {
    mode: DeliveryMode,
    id: uuid::Uuid,
    time: time::OffsetDateTime,
    category: Category,
    started: Instant,
    /// Holds the auditor too: one reference count per request, not two.
    context: AuditContext,
    excerpt: Option<SharedExcerpt>,
    json: bool,
    content_length: Option<u64>,
    timeout: Option<std::time::Duration>,
}

fn peer_ip(extensions: &http::Extensions) -> Option<std::net::IpAddr> {
    if let Some(ClientIp(ip)) = extensions.get::<ClientIp>() {
        return Some(*ip);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
        return Some(info.0.ip());
    }
    None
}

/// The method's name, without an allocation for the standard methods.
fn method_name(method: &Method) -> std::borrow::Cow<'static, str> {
    let name = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        // An extension method is a token (no controls); bound its length.
        _ => return sanitize(method.as_str(), 32).into(),
    };
    name.into()
}

/// What `sanitize` leaves unchanged: short, visible ASCII, no backslash.
fn is_plain(text: &str) -> bool {
    text.len() <= MAX_PATH_CHARS
        && text
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
}

/// The recorded path: the route template itself when they are equal (no
/// copy), else a sanitized copy.
fn recorded_path(path: &str, route: Option<&Arc<str>>) -> Arc<str> {
    if is_plain(path) {
        return match route {
            Some(route) if **route == *path => Arc::clone(route),
            _ => Arc::from(path),
        };
    }
    Arc::from(sanitize(path, MAX_PATH_CHARS))
}

/// The recorded route: the resolver's string itself (no copy), or a
/// sanitized copy when it holds what a path may not show. A router's
/// templates are plain; a resolver may return anything (a decoded path, a
/// name from the request).
fn recorded_route(route: Arc<str>) -> Arc<str> {
    if is_plain(&route) {
        route
    } else {
        Arc::from(sanitize(&route, MAX_PATH_CHARS))
    }
}

fn method_category(method: &Method) -> Category {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => Category::DataRead,
        _ => Category::DataWrite,
    }
}

impl<S, R, ReqB, ResB> Service<Request<ReqB>> for AuditService<S, R>
where
    S: Service<Request<ExcerptBody<ReqB>>, Response = Response<ResB>> + Clone,
    R: RouteResolver,
{
    type Response = Response<GuardBody<AuditBody<ResB>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ExcerptBody<ReqB>, S::Future, ResB>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        // The inner service is called right here, except for strict
        // requests, which take the ready service along (and leave a clone).
        let route = self
            .layer
            .resolver
            .route(req.method(), req.uri(), req.extensions());
        let path = req.uri().path();
        let (level, mode, category) = self.layer.decide(req.method(), route.as_deref(), path);
        let category = category.unwrap_or_else(|| method_category(req.method()));
        if level == Level::None {
            let req = req.map(|b| ExcerptBody::new(b, None, 0));
            return ResponseFuture::passthrough(self.inner.call(req));
        }
        let started = Instant::now();
        // One wall-clock read for the event's id and time. A request without
        // a request id gets the event's id as its id: no second UUID.
        let (id, time) = AuditEvent::fresh_id_and_time();
        // The record shares the id's string with the `RequestId` extension.
        let request_id: Arc<str> = match req.extensions().get::<RequestId>() {
            Some(id) => id.to_shared(),
            None => {
                let mut buf = uuid::Uuid::encode_buffer();
                let id = id.hyphenated().encode_lower(&mut buf);
                match RequestId::new(id) {
                    Some(rid) => {
                        let shared = rid.to_shared();
                        req.extensions_mut().insert(rid);
                        shared
                    }
                    // Unreachable (a hyphenated UUID is visible ASCII), but
                    // the record keeps its id either way.
                    None => Arc::from(&*id),
                }
            }
        };
        let user_agent = req
            .headers()
            .get(http::header::USER_AGENT)
            .map(|v| sanitize(&String::from_utf8_lossy(v.as_bytes()), MAX_USER_AGENT_CHARS));
        let source = Source {
            ip: self
                .layer
                .proxies
                .client_ip(peer_ip(req.extensions()), req.headers()),
            user_agent,
        };
        let path = self
            .layer
            .record_path
            .then(|| recorded_path(req.uri().path(), route.as_ref()));
        let info = RequestInfo {
            id: Some(request_id),
            method: Some(method_name(req.method())),
            route: route.map(recorded_route),
            path,
            status: None,
            duration_us: None,
        };
        // The request information lives in the context (shared with
        // handlers); the completion record takes it back, see `complete`.
        let context = AuditContext::new(
            self.layer.auditor.clone(),
            (mode, self.layer.delivery_timeout),
            info,
            source,
        );
        req.extensions_mut().insert(context.clone());
        let (excerpt, json, content_length) = if level == Level::Request {
            let json = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(is_json);
            let length = req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            (
                Some(SharedExcerpt::new(
                    std::sync::Mutex::new(Excerpt::default()),
                )),
                json,
                length,
            )
        } else {
            (None, false, None)
        };
        let limit = self.layer.excerpt_limit;
        let req = req.map(|b| ExcerptBody::new(b, excerpt.clone(), limit));
        let ctx = Ctx {
            mode,
            id,
            time,
            category,
            started,
            context,
            excerpt,
            json,
            content_length,
            timeout: self.layer.delivery_timeout,
        };
        if mode == DeliveryMode::Strict {
            let mut attempt = AuditEvent::new("http.request", category).with_stage(Stage::Received);
            let (request, source) = ctx.context.request_and_source();
            attempt = attempt.with_request(request).with_source(source);
            let mut delivery = ctx.context.auditor().deliver(attempt, DeliveryMode::Strict);
            if let Some(limit) = ctx.timeout {
                delivery = delivery.timeout(limit);
            }
            return ResponseFuture {
                state: State::Attempt {
                    delivery,
                    pending: Some((ready_inner(&mut self.inner), req)),
                },
                ctx: Some(ctx),
            };
        }
        ResponseFuture {
            state: State::Inner {
                future: self.inner.call(req),
            },
            ctx: Some(ctx),
        }
    }
}

/// Takes the service that was driven to readiness, leaving a clone in its
/// place (tower's "be careful when cloning inner services").
fn ready_inner<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// Whether the media type is JSON (`application/json` or
/// `application/*+json`), case-insensitively and without an allocation.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype
                    .get(subtype.len() - 5..)
                    .is_some_and(|s| s.eq_ignore_ascii_case("+json")))
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, F, ResB> {
        Attempt { delivery: Delivery, pending: Option<(S, Request<B>)> },
        Inner { #[pin] future: F },
        Completing {
            delivery: Delivery,
            response: Option<Response<ResB>>,
            // A copy of the completion record, for the record that follows
            // it when the response is not sent as it says (boxed: every
            // request's future is as large as its largest state).
            copy: Option<Box<(AuditEvent, Auditor)>>,
        },
        Done,
    }
}

pin_project! {
    /// The response future of [`AuditService`].
    ///
    /// Dropped before the response is sent (the client went away, an
    /// outer timeout gave up, the handler panicked), it queues the request's
    /// event with outcome `unknown`, reason `cancelled`, no status, and the
    /// detail `handler`: `not_run` (a strict request still waiting for its
    /// attempt record), `started` (it may have run in part or whole) or
    /// `finished` (on a blocking or strict route, its response was waiting
    /// for the completion record; `response_status` is the status it had).
    /// A completion record already queued is still written: a `finished`
    /// cancellation follows it. No response waits for these records: on a
    /// best-effort route a full queue drops and counts them, as any
    /// best-effort event; on a blocking or strict route they, and an attempt
    /// or completion record still waiting for queue space, are queued as
    /// soon as there is space, by a task of the runtime, so that a request
    /// whose handler may have run is not left out of the trail (at most as
    /// many wait as the queue holds; beyond that they are dropped and
    /// counted).
    ///
    /// A completion record that fails (or is not durable in time) turns the
    /// response into a 500 `audit-failed` problem, and a record of that
    /// answer follows, as above: status 500, outcome `failure`, reason
    /// `audit_write_failed`, `handler` `finished`, `response_status` the
    /// status the handler answered (a completion record that timed out is
    /// still written too, before it, with the handler's status).
    pub struct ResponseFuture<S, B, F, ResB> {
        #[pin]
        state: State<S, B, F, ResB>,
        ctx: Option<Ctx>,
    }

    impl<S, B, F, ResB> PinnedDrop for ResponseFuture<S, B, F, ResB> {
        fn drop(this: Pin<&mut Self>) {
            // `ctx` is taken as soon as the response (or the service's
            // error) is known: only an unfinished request has it.
            let this = this.project();
            let mut state = this.state.project();
            // A record still waiting for queue space is not dropped with its
            // request: it waits on (bounded, see `Delivery::detach`).
            if let StateProj::Attempt { delivery, .. } | StateProj::Completing { delivery, .. } =
                &mut state
            {
                delivery.detach();
            }
            if this.ctx.is_none() {
                if let StateProj::Completing { copy, .. } = state
                    && let Some((event, auditor)) = copy.take().map(|copy| *copy)
                {
                    // Only blocking and strict responses complete here.
                    auditor.record_detached(follow_up(event, None, "cancelled"));
                }
                return;
            }
            if let Some(ctx) = this.ctx.take() {
                let handler = match state {
                    StateProj::Attempt { .. } => "not_run",
                    // (`Completing` holds no `ctx`: see above.)
                    StateProj::Inner { .. } | StateProj::Completing { .. } | StateProj::Done => {
                        "started"
                    }
                };
                let mode = ctx.mode;
                let (mut event, auditor) = complete::<ResB>(ctx, None);
                event.outcome = Outcome::Unknown;
                event.reason = Some("cancelled".into());
                event.details.insert("handler".into(), handler.into());
                record_unwaited(&auditor, mode, event);
            }
        }
    }
}

impl<S, B, F, ResB> fmt::Debug for ResponseFuture<S, B, F, ResB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Attempt { .. } => "attempt",
            State::Inner { .. } => "inner",
            State::Completing { .. } => "completing",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B, F, ResB> ResponseFuture<S, B, F, ResB> {
    fn passthrough(future: F) -> Self {
        Self {
            state: State::Inner { future },
            ctx: None,
        }
    }
}

fn audit_problem<B: From<bytes::Bytes>>(
    mode: DeliveryMode,
    error: crate::DeliveryError,
) -> Response<B> {
    let (reason, kind) = if mode == DeliveryMode::Strict {
        ("audit_unavailable", ProblemType::AUDIT_UNAVAILABLE)
    } else {
        ("audit_write_failed", ProblemType::AUDIT_FAILED)
    };
    let mut response = error.to_problem(mode).into_http_response::<B>();
    Rejection::new(RejectionCategory::Audit, reason, kind).insert_into(response.extensions_mut());
    response
}

/// The record that follows a completion record when the response was not
/// sent as that record says: a fresh id and time, the same request, the
/// handler's status moved to `details.response_status`, and `status` what
/// the client was answered (`None`: nothing). What the completion record
/// said of the handler's response (a guard's rejection, a gRPC status) and
/// the request body's excerpt stay there, not repeated.
pub(super) fn follow_up(
    mut event: AuditEvent,
    status: Option<u16>,
    reason: &'static str,
) -> AuditEvent {
    let (id, time) = AuditEvent::fresh_id_and_time();
    event.id = id;
    event.time = time;
    for key in ["rejection", "problem_type", "grpc_status", "request_body"] {
        event.details.remove(key);
    }
    if let Some(request) = event.request.as_mut() {
        if let Some(answered) = request.status {
            event
                .details
                .insert("response_status".into(), Value::from(answered));
        }
        request.status = status;
    }
    event.outcome = if status.is_some() {
        Outcome::Failure
    } else {
        Outcome::Unknown
    };
    event.reason = Some(reason.into());
    event.details.insert("handler".into(), "finished".into());
    event
}

/// Records an event no request waits for: on a best-effort route dropped
/// (and counted) when the queue is full, on a blocking or strict route
/// queued as soon as there is space (see [`Auditor::record_detached`]).
pub(super) fn record_unwaited(auditor: &Auditor, mode: DeliveryMode, event: AuditEvent) {
    if mode == DeliveryMode::BestEffort {
        let _ = auditor.record(event);
    } else {
        auditor.record_detached(event);
    }
}

/// The inner service's response body, as the layer answers it.
fn wrap<B>(body: B) -> GuardBody<AuditBody<B>> {
    GuardBody::new(AuditBody::new(body))
}

/// The request's event with its completion fields, and the auditor to
/// record it with.
fn complete<ResB>(
    ctx: Ctx,
    response: Option<(&Response<ResB>, grpc::Head)>,
) -> (AuditEvent, Auditor) {
    let mut event = AuditEvent::new_at(ctx.id, ctx.time, "http.request", ctx.category);
    let duration = u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let (request, source, captured, auditor) = ctx.context.into_parts();
    event.request = Some(request);
    event.source = source;
    match response.and_then(|(r, _)| r.extensions().get::<Principal>()) {
        Some(p) => event = event.with_principal(p),
        None => {
            if let Some(p) = &captured {
                event = event.with_principal(p);
            }
        }
    }
    if let Some(request) = event.request.as_mut() {
        request.duration_us = Some(duration);
        request.status = response.map(|(r, _)| r.status().as_u16());
    }
    match response {
        None => {
            event.outcome = Outcome::Failure;
            event.reason = Some("service_error".into());
        }
        Some((response, head)) => {
            let status = response.status();
            let rejection = response.extensions().get::<Rejection>().copied();
            let grpc = match head {
                grpc::Head::Status(code) => Some(code),
                grpc::Head::Plain | grpc::Head::AwaitsTrailers => None,
            };
            let (category, outcome) = match rejection.map(|r| r.category()) {
                Some(RejectionCategory::Authentication) => {
                    (Some(Category::Authn), Outcome::Failure)
                }
                Some(RejectionCategory::Authorization) => (Some(Category::Authz), Outcome::Denied),
                Some(_) => (None, Outcome::Failure),
                // A gRPC error answered before any message (HTTP 200): its
                // code is in the headers.
                None if let Some(code) = grpc.filter(|code| *code != 0) => grpc::judge(code),
                None if status == http::StatusCode::UNAUTHORIZED => {
                    (Some(Category::Authn), Outcome::Failure)
                }
                None if status == http::StatusCode::FORBIDDEN => {
                    (Some(Category::Authz), Outcome::Denied)
                }
                None if status.is_client_error() || status.is_server_error() => {
                    (None, Outcome::Failure)
                }
                None => (None, Outcome::Success),
            };
            if let Some(category) = category {
                event.category = category;
            }
            event.outcome = outcome;
            if let Some(code) = grpc {
                event
                    .details
                    .insert("grpc_status".into(), Value::from(code));
                if rejection.is_none() && code != 0 {
                    event.reason = Some(grpc::reason(code).into());
                }
            }
            if let Some(r) = rejection {
                event.reason = Some(r.reason().into());
                event
                    .details
                    .insert("rejection".into(), Value::from(r.category().as_str()));
                event
                    .details
                    .insert("problem_type".into(), Value::from(r.problem_type().uri()));
            }
        }
    }
    if let Some(excerpt) = ctx.excerpt {
        let e = lock(&excerpt);
        let whole = (e.bytes.len() as u64) == e.total
            && (e.complete || ctx.content_length == Some(e.total));
        let body = if e.total == 0 {
            Value::Null
        } else if !ctx.json {
            serde_json::json!({"omitted": "not_json", "bytes": e.total})
        } else if !whole {
            serde_json::json!({"omitted": "too_large", "bytes": e.total})
        } else {
            match serde_json::from_slice::<Value>(&e.bytes) {
                // Redacted, and its DEL and C1 characters escaped, by the
                // auditor with every other detail.
                Ok(value) => integers_only(value),
                Err(_) => serde_json::json!({"omitted": "invalid_json", "bytes": e.total}),
            }
        };
        event.details.insert("request_body".into(), body);
    }
    (event, auditor)
}

impl<S, B, F, ResB, E> Future for ResponseFuture<S, B, F, ResB>
where
    S: Service<Request<B>, Future = F, Response = Response<ResB>, Error = E>,
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<GuardBody<AuditBody<ResB>>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Attempt { delivery, pending } => {
                    match Pin::new(&mut *delivery).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(_)) => {
                            let Some((mut inner, req)) = pending.take() else {
                                this.state.set(State::Done);
                                return Poll::Pending;
                            };
                            let future = inner.call(req);
                            this.state.set(State::Inner { future });
                        }
                        Poll::Ready(Err(error)) => {
                            // Fail closed: the inner service never sees the request.
                            pending.take();
                            // (Timed out waiting for queue space: it waits on.)
                            delivery.detach();
                            this.state.set(State::Done);
                            if let Some(ctx) = this.ctx.take() {
                                let (mut event, auditor) = complete::<ResB>(ctx, None);
                                event.outcome = Outcome::Failure;
                                event.reason = Some("audit_unavailable".into());
                                if let Some(r) = event.request.as_mut() {
                                    r.status = Some(503);
                                }
                                auditor.record_detached(event);
                            }
                            return Poll::Ready(Ok(audit_problem(DeliveryMode::Strict, error)));
                        }
                    }
                }
                StateProj::Inner { future } => {
                    let result = match future.poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => result,
                    };
                    let Some(ctx) = this.ctx.take() else {
                        this.state.set(State::Done);
                        return Poll::Ready(result.map(|r| r.map(wrap)));
                    };
                    match result {
                        Err(error) => {
                            let mode = ctx.mode;
                            let (event, auditor) = complete::<ResB>(ctx, None);
                            record_unwaited(&auditor, mode, event);
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error));
                        }
                        Ok(response) => {
                            let (mode, timeout, started) = (ctx.mode, ctx.timeout, ctx.started);
                            let head = grpc::head(&response);
                            let (event, auditor) = complete(ctx, Some((&response, head)));
                            // A gRPC call's status may still be to come,
                            // in the trailers: its event waits for them (and
                            // on a blocking or strict route, they wait for
                            // its record).
                            if head == grpc::Head::AwaitsTrailers {
                                this.state.set(State::Done);
                                let pending = Pending {
                                    event,
                                    auditor,
                                    started,
                                    mode,
                                    timeout,
                                };
                                return Poll::Ready(Ok(response.map(|body| {
                                    GuardBody::new(AuditBody::awaiting_trailers(body, pending))
                                })));
                            }
                            if mode == DeliveryMode::BestEffort {
                                this.state.set(State::Done);
                                let _ = auditor.record(event);
                                return Poll::Ready(Ok(response.map(wrap)));
                            }
                            let copy = Box::new((event.clone(), auditor.clone()));
                            let mut delivery = auditor.deliver(event, DeliveryMode::Blocking);
                            if let Some(limit) = timeout {
                                delivery = delivery.timeout(limit);
                            }
                            this.state.set(State::Completing {
                                delivery,
                                response: Some(response),
                                copy: Some(copy),
                            });
                        }
                    }
                }
                StateProj::Completing {
                    delivery,
                    response,
                    copy,
                } => {
                    let result = match Pin::new(&mut *delivery).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => result,
                    };
                    let response = response.take();
                    if result.is_err() {
                        // (Timed out waiting for queue space: it waits on,
                        // and the record of the 500 after it.)
                        delivery.detach();
                        // The client is answered 500: so says the trail.
                        if let Some((event, auditor)) = copy.take().map(|copy| *copy) {
                            auditor.record_detached(follow_up(
                                event,
                                Some(500),
                                "audit_write_failed",
                            ));
                        }
                    }
                    this.state.set(State::Done);
                    return match (result, response) {
                        (Ok(_), Some(response)) => Poll::Ready(Ok(response.map(wrap))),
                        (Err(error), _) => {
                            Poll::Ready(Ok(audit_problem(DeliveryMode::Blocking, error)))
                        }
                        (Ok(_), None) => Poll::Ready(Ok(audit_problem(
                            DeliveryMode::Blocking,
                            crate::DeliveryError::Closed,
                        ))),
                    };
                }
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

/// Records the principal established by an inner layer into the request's
/// [`AuditContext`], so the request's audit event names the actor.
///
/// Place it inside authentication (for axum, as a `route_layer` added after
/// the authorization requirements so that it runs before them). Its future is
/// the inner service's: zero cost.
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct CapturePrincipalLayer;

impl<S> Layer<S> for CapturePrincipalLayer {
    type Service = CapturePrincipal<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CapturePrincipal { inner }
    }
}

/// The service of [`CapturePrincipalLayer`].
#[derive(Clone, Debug)]
pub struct CapturePrincipal<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for CapturePrincipal<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let (Some(ctx), Some(principal)) = (
            req.extensions().get::<AuditContext>(),
            req.extensions().get::<Principal>(),
        ) {
            ctx.set_principal(principal);
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for (content_type, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            (" application/problem+json ", true),
            ("application/vnd.api+JSON;v=1", true),
            ("application/+json", false),
            ("application/jsonx", false),
            ("text/json", false),
            ("application/x-www-form-urlencoded", false),
            ("json", false),
            ("", false),
        ] {
            assert_eq!(is_json(content_type), json, "{content_type:?}");
        }
    }

    #[test]
    fn path_equal_to_the_template_is_the_template_itself() {
        let route: Arc<str> = Arc::from("/healthz");
        let path = recorded_path("/healthz", Some(&route));
        assert!(Arc::ptr_eq(&path, &route), "no copy");
        let other = recorded_path("/v1/tenants/acme", Some(&route));
        assert_eq!(&*other, "/v1/tenants/acme");
        // Control characters are escaped, never shared or copied raw.
        let dirty: Arc<str> = Arc::from("/a\u{1b}b");
        let escaped = recorded_path("/a\u{1b}b", Some(&dirty));
        assert_eq!(&*escaped, "/a\\x1Bb");
        assert!(!Arc::ptr_eq(&escaped, &dirty));
        // So is the text of an escape, which could pass for one.
        assert_eq!(&*recorded_path("/a\\x1Bb", None), "/a\\x5Cx1Bb");
        assert_eq!(
            recorded_path(&"a".repeat(2000), None).chars().count(),
            MAX_PATH_CHARS + 1
        );
    }

    #[tokio::test]
    async fn a_generated_request_id_is_the_event_id() {
        use tower::ServiceExt;
        let sink = crate::sink::MemorySink::new();
        let (auditor, guard) = crate::AuditPipeline::builder().spawn(sink.clone()).unwrap();
        let service = AuditLayer::new(auditor).layer(tower::service_fn(
            |req: Request<ExcerptBody<String>>| async move {
                let id = req.extensions().get::<RequestId>().cloned();
                Ok::<_, std::convert::Infallible>(Response::new(
                    id.map(|id| id.to_string()).unwrap_or_default(),
                ))
            },
        ));
        let response = service
            .oneshot(Request::get("/x").body(String::new()).unwrap())
            .await
            .unwrap();
        let seen = response.into_body();
        guard.shutdown(std::time::Duration::from_secs(5)).await;
        let events = sink.events();
        let event = &events[0];
        let recorded = event.request().and_then(|r| r.id.clone()).unwrap();
        assert_eq!(&*recorded, event.id().to_string());
        assert_eq!(
            http_body_util::BodyExt::collect(seen)
                .await
                .unwrap()
                .to_bytes(),
            recorded.as_bytes(),
            "the handler saw the same id"
        );
    }
}
