//! `AuditLayer`: one audit event per request.
//!
//! The layer records, for every request, an `http.request` event with the
//! method, the route template (`/v1/tenants/{tenant}/invoices/{id}`, not only
//! the raw path), the sanitized path (never the query), the status, the
//! duration in microseconds, the request id, the client address and user
//! agent, the actor, and — when an inner guard rejected the request — the
//! [`Rejection`](guardrails_core::Rejection) it put into the response
//! extensions: authentication failures are recorded with category `authn` and
//! outcome `failure`, authorization failures with `authz` / `denied`,
//! validation failures with outcome `failure` and the validator's reason code.
//!
//! gRPC (tonic, or any server answering `content-type: application/grpc`):
//! a call answers HTTP 200 whatever its outcome, and says it in
//! `grpc-status`. The event records it as `details.grpc_status`; a code
//! other than 0 with reason `grpc_<code name>` (`grpc_not_found`…) and
//! outcome `failure`, `UNAUTHENTICATED` as category `authn`,
//! `PERMISSION_DENIED` as `authz` / `denied`. An error answered before any
//! message carries it in the headers. A streamed answer (HTTP 200,
//! `application/grpc` or `application/grpc+…`, no guard's rejection)
//! carries it in the trailers: the event waits in the response body
//! ([`AuditBody`]) until they pass, and its duration runs to them; a stream
//! that ends without them, or is dropped first, is recorded with outcome
//! `unknown` (`grpc_no_status`, `cancelled`). On a blocking or strict route
//! the head and the messages go at once and the trailers wait until the
//! record is durable: a gRPC client learns the outcome only from them (on a
//! blocking route the messages are thus sent before anything is durable; a
//! strict route's attempt record is durable before the handler runs). When
//! the record fails, the call ends `INTERNAL` instead (as an HTTP response
//! becomes a 500), and a record saying so follows.
//! gRPC-web carries its status inside the body, and any answer other than
//! 200 has failed whatever its trailers say: both are judged by their head,
//! and on a blocking or strict route the head waits. The status message
//! (the handler's text) is never recorded.
//!
//! A request whose response never comes (the client went away, an outer
//! timeout gave up, the server dropped the connection) is recorded too, when
//! its response future is dropped: outcome `unknown`, reason `cancelled`, no
//! status, queued without the request waiting (on a blocking or strict
//! route, a full queue does not drop it: it waits for space in a task,
//! see [`ResponseFuture`]). On a blocking
//! or strict route, a response that waited for its completion record and
//! was not sent as that record says (the request was cancelled, or the
//! record failed and the client got a 500) gets a record that says so after
//! it (see [`ResponseFuture`]).
//!
//! The status and outcome of any other response are its head's: a body that
//! fails or is abandoned after the head is not seen (except a gRPC call's
//! trailers, above), and the duration runs to the head.
//!
//! Place it **outermost**, so it sees every rejection of the guards inside.
//!
//! Headers other than the user agent, and the query string, are never
//! recorded. The raw path is: when an application carries secrets in path
//! segments (`/reset/{token}`, magic links), turn it off with
//! [`AuditLayer::record_path`] (`false`), and the route template alone is
//! recorded.
//!
//! # Policy
//!
//! Like Kubernetes audit policies, [`RoutePolicy`] rules (first match wins)
//! choose per method and route a [`Level`] — `None` (not audited),
//! `Metadata` (the default) or `Request` (plus a redacted excerpt of a JSON
//! request body) — and a [`DeliveryMode`] (see
//! [`crate::pipeline`] for what each guarantees). In `Strict` mode the layer
//! writes a durable attempt record before the inner service runs, and answers
//! 503 `audit-unavailable` without running it when that fails. Outermost, the
//! layer runs before authentication: the attempt record names no actor (the
//! completion record, and the handler's domain events, do), and a request
//! that authentication will refuse gets one too, so give strict rules a
//! route, not a method alone. A rule may
//! also set the records' [`Category`] where the method does not say it
//! (every gRPC call is a `POST`; see [`RoutePolicy::category`]).
//!
//! # Route templates
//!
//! A [`RouteResolver`] finds the template. The default,
//! [`RouteFromExtensions`], reads a [`MatchedRoute`] extension that any router
//! can insert, and with the `axum` feature axum's `MatchedPath`.
//!
//! # Client address
//!
//! The address is the socket peer: axum's `ConnectInfo<SocketAddr>` (feature
//! `axum`) or a [`ClientIp`] extension inserted by the server. A forwarded
//! header (`X-Forwarded-For` by default) is used **only** when the peer is in
//! the [`TrustedProxies`] list, and then the right-most address that is not
//! itself a trusted proxy is taken: a client cannot choose its own address.
//! Nodes may carry a port and brackets (`203.0.113.9:51234`,
//! `[2001:db8::7]:443`) or quotes; with [`TrustedProxies::header`] set to
//! `Forwarded`, the RFC 7239 `for=` parameter of each element is read. A
//! node that is not an address (`unknown`, an obfuscated `_name`) stops
//! the search at the last trusted proxy.
//!
//! # Domain events
//!
//! The layer inserts an [`AuditContext`] into the request extensions; a
//! handler records domain events with it (or with the [`RequestAudit`]
//! extractor under the `axum` feature), inheriting the request id, source,
//! actor and the route's delivery mode.
//!
//! ```
//! use guardrails_audit::{AuditLayer, AuditPipeline, DeliveryMode, Level, RoutePolicy};
//! use guardrails_audit::layer::ExcerptBody;
//! use guardrails_audit::sink::MemorySink;
//! use http::{Method, Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let sink = MemorySink::new();
//! let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
//! let layer = AuditLayer::new(auditor)
//!     .policy(RoutePolicy::new().route("/healthz").level(Level::None))
//!     .policy(RoutePolicy::new().method(Method::DELETE).route("/things/{id}").mode(DeliveryMode::Strict));
//!
//! let service = ServiceBuilder::new().layer(layer).service_fn(|_req: Request<ExcerptBody<String>>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(String::from("done")))
//! });
//! let response = service.oneshot(Request::delete("/things/1").body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 200);
//! guard.shutdown(std::time::Duration::from_secs(5)).await;
//! // A strict request leaves an attempt record and a completion record.
//! let events = sink.events();
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].stage(), guardrails_audit::Stage::Received);
//! # }
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use guardrails_core::Principal;
use http::{HeaderName, Method};
use tower_layer::Layer;

use crate::event::{AuditEvent, Category, RequestInfo, Source};
use crate::pipeline::{Auditor, Delivery, DeliveryMode};

mod body;
mod grpc;
mod service;

pub use body::{AuditBody, ExcerptBody};
pub use service::{AuditService, CapturePrincipal, CapturePrincipalLayer, ResponseFuture};

#[cfg(feature = "axum")]
mod axum_glue;
#[cfg(feature = "axum")]
pub use axum_glue::RequestAudit;

/// How much of a request is recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Level {
    /// Not audited at all.
    None,
    /// Metadata: who, what, when, where, outcome.
    #[default]
    Metadata,
    /// Metadata and a redacted excerpt of a JSON request body.
    Request,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum RouteMatch {
    Exact(String),
    Prefix(String),
}

/// A policy rule: which requests it applies to, and the level and delivery
/// mode it sets. Rules are tried in order; the first match wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct RoutePolicy {
    methods: Vec<Method>,
    route: Option<RouteMatch>,
    level: Option<Level>,
    mode: Option<DeliveryMode>,
    category: Option<Category>,
}

impl RoutePolicy {
    /// A rule matching every request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only requests with this method (may be repeated).
    pub fn method(mut self, method: Method) -> Self {
        self.methods.push(method);
        self
    }

    /// Only this route template. A request whose template is not known (the
    /// layer wraps the whole router, or the router names none) matches when
    /// its path is an instance of the template: `/things/{id}` matches
    /// `/things/42`. A rule for `GET` also covers `HEAD`, which routers
    /// answer with the GET handler.
    pub fn route(mut self, template: impl Into<String>) -> Self {
        self.route = Some(RouteMatch::Exact(template.into()));
        self
    }

    /// Only route templates starting with `prefix` (without a template:
    /// paths starting with an instance of it).
    pub fn route_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.route = Some(RouteMatch::Prefix(prefix.into()));
        self
    }

    /// The level of matching requests.
    pub fn level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    /// The delivery mode of matching requests.
    pub fn mode(mut self, mode: DeliveryMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The category of matching requests' records, instead of the one
    /// their method implies (`data_read` for `GET`, `HEAD` and `OPTIONS`,
    /// `data_write` otherwise): every gRPC call is a `POST`, so a call that
    /// only reads says so here; an administrative route says `admin`.
    /// A rejection by a guard still records `authn` or `authz`.
    pub fn category(mut self, category: Category) -> Self {
        self.category = Some(category);
        self
    }

    /// Whether the rule applies to a request with this method and route
    /// template (`None`: none was found) or path.
    fn matches(&self, method: &Method, route: Option<&str>, path: &str) -> bool {
        let method_matches = self.methods.is_empty()
            || self.methods.contains(method)
            // Routers answer HEAD with the GET handler: a GET rule covers it.
            || (method == Method::HEAD && self.methods.contains(&Method::GET));
        method_matches
            && match (&self.route, route) {
                (None, _) => true,
                (Some(RouteMatch::Exact(r)), Some(route)) => r == route,
                (Some(RouteMatch::Prefix(p)), Some(route)) => route.starts_with(p.as_str()),
                // Without a template (a layer outside the router, a route
                // the router does not name) the rule's template is matched
                // against the path, so that a strict route stays strict.
                (Some(RouteMatch::Exact(r)), None) => template_matches(r, path, false),
                (Some(RouteMatch::Prefix(p)), None) => template_matches(p, path, true),
            }
    }
}

/// Whether `path` is an instance of `template` (or, with `prefix`, starts
/// with one), with axum's template syntax: a `{param}` segment stands for
/// any one non-empty segment, `{*rest}` for whatever follows; everything
/// else is literal (axum's router, matchit, has no parameters inside a
/// segment).
fn template_matches(template: &str, path: &str, prefix: bool) -> bool {
    let mut path_segments = path.split('/');
    let mut template_segments = template.split('/').peekable();
    while let Some(pattern) = template_segments.next() {
        if pattern.starts_with("{*") {
            // Like matchit, a catch-all matches something, not nothing.
            return path_segments.next().is_some_and(|s| !s.is_empty());
        }
        let last = template_segments.peek().is_none();
        let Some(segment) = path_segments.next() else {
            return false;
        };
        let matched = if pattern.starts_with('{') && pattern.ends_with('}') {
            !segment.is_empty()
        } else if prefix && last {
            segment.starts_with(pattern)
        } else {
            segment == pattern
        };
        if !matched {
            return false;
        }
    }
    prefix || path_segments.next().is_none()
}

/// The route template of a request, inserted by a router into the request
/// extensions for [`RouteFromExtensions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedRoute(pub Arc<str>);

/// Finds the route template of a request.
///
/// The template is returned as a shared `Arc<str>`: a resolver that keeps
/// one per route (as [`MatchedRoute`] and the default resolver do) costs no
/// allocation per request. Closures returning `Option<Arc<str>>`,
/// `Option<String>` or `Option<&'static str>` are resolvers too.
///
/// ```
/// use std::sync::Arc;
/// use guardrails_audit::{AuditLayer, AuditPipeline};
/// use guardrails_audit::sink::MemorySink;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (auditor, _guard) = AuditPipeline::builder().spawn(MemorySink::new()).unwrap();
/// let invoices: Arc<str> = Arc::from("/invoices/{id}");
/// let layer = AuditLayer::new(auditor).route_resolver(
///     move |_: &http::Method, uri: &http::Uri, _: &http::Extensions| {
///         uri.path().starts_with("/invoices/").then(|| Arc::clone(&invoices))
///     },
/// );
/// # let _ = layer;
/// # }
/// ```
pub trait RouteResolver: Clone + Send + Sync + 'static {
    /// The template, if the router matched one.
    fn route(
        &self,
        method: &Method,
        uri: &http::Uri,
        extensions: &http::Extensions,
    ) -> Option<Arc<str>>;
}

/// The default [`RouteResolver`]: a [`MatchedRoute`] extension, or axum's
/// `MatchedPath` with the `axum` feature.
///
/// axum's template is copied once per route and thread into a small cache
/// of shared strings (bounded; beyond it a template is copied per request),
/// so requests do not allocate for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouteFromExtensions;

impl RouteResolver for RouteFromExtensions {
    #[inline]
    fn route(
        &self,
        _method: &Method,
        _uri: &http::Uri,
        extensions: &http::Extensions,
    ) -> Option<Arc<str>> {
        if let Some(route) = extensions.get::<MatchedRoute>() {
            return Some(Arc::clone(&route.0));
        }
        #[cfg(feature = "axum")]
        if let Some(path) = extensions.get::<axum::extract::MatchedPath>() {
            return Some(shared_template(path.as_str()));
        }
        None
    }
}

/// How many route templates each thread keeps shared copies of.
#[cfg(feature = "axum")]
const MAX_CACHED_TEMPLATES: usize = 64;

#[cfg(feature = "axum")]
thread_local! {
    static TEMPLATES: std::cell::RefCell<Vec<Arc<str>>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// The shared copy of `template` from this thread's cache (a router has a
/// bounded set of templates), added on first sight.
#[cfg(feature = "axum")]
fn shared_template(template: &str) -> Arc<str> {
    TEMPLATES.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return Arc::from(template);
        };
        if let Some(found) = cache.iter().find(|t| ***t == *template) {
            return Arc::clone(found);
        }
        let shared: Arc<str> = Arc::from(template);
        if cache.len() < MAX_CACHED_TEMPLATES {
            cache.push(Arc::clone(&shared));
        }
        shared
    })
}

impl<F, T> RouteResolver for F
where
    F: Fn(&Method, &http::Uri, &http::Extensions) -> Option<T> + Clone + Send + Sync + 'static,
    T: Into<Arc<str>>,
{
    fn route(
        &self,
        method: &Method,
        uri: &http::Uri,
        extensions: &http::Extensions,
    ) -> Option<Arc<str>> {
        self(method, uri, extensions).map(Into::into)
    }
}

/// The socket peer's address, for servers that are not axum: insert it into
/// the request extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Proxies whose forwarded header is believed; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
    header: HeaderName,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self {
            nets: Vec::new(),
            header: HeaderName::from_static("x-forwarded-for"),
        }
    }
}

/// A trusted-proxy entry is not an address or CIDR block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR block: {0:?}")]
pub struct InvalidProxy(String);

impl TrustedProxies {
    /// No trusted proxy: the socket peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts the given addresses or CIDR blocks (`10.0.0.0/8`, `::1`).
    ///
    /// # Errors
    ///
    /// [`InvalidProxy`] naming the first entry that does not parse.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidProxy> {
        let mut nets = Vec::new();
        for entry in entries {
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (entry, None),
            };
            let addr: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| InvalidProxy(entry.to_owned()))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| InvalidProxy(entry.to_owned()))?,
                None => max,
            };
            // An IPv4-mapped IPv6 net is the IPv4 net it maps, as the
            // addresses it is compared with are; one wider than the mapped
            // range is not a net of either family.
            let (addr, bits) = match addr {
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) if bits >= 96 => (IpAddr::V4(v4), bits - 96),
                    Some(_) => return Err(InvalidProxy(entry.to_owned())),
                    None => (addr, bits),
                },
                IpAddr::V4(_) => (addr, bits),
            };
            nets.push((addr, bits));
        }
        Ok(Self {
            nets,
            header: HeaderName::from_static("x-forwarded-for"),
        })
    }

    /// Reads the client from `header` instead of `X-Forwarded-For`.
    #[must_use]
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        // The nets are canonical since `new`.
        self.nets.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }

    /// The client address of a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &http::HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(canonical)?;
        if !self.contains(peer) {
            return Some(peer);
        }
        // Nearest hop first, without collecting the list. The bytes are
        // split, not the text: a client may put anything into the part of
        // the header it sends, and a proxy appends the address it saw to
        // that same line, so one bad byte on the left must not hide the
        // good hops on its right.
        let hops = headers
            .get_all(&self.header)
            .iter()
            .rev()
            .flat_map(|value| value.as_bytes().rsplit(|b| *b == b','));
        let forwarded = self.header == http::header::FORWARDED;
        let mut last_trusted = peer;
        for hop in hops {
            let node = std::str::from_utf8(hop).ok();
            let node = if forwarded {
                node.and_then(forwarded_for)
            } else {
                node
            };
            let Some(ip) = node.and_then(node_ip) else {
                // Not an address (`unknown`, an obfuscated name, garbage):
                // the client is behind the last trusted proxy walked.
                return Some(last_trusted);
            };
            let ip = canonical(ip);
            if !self.contains(ip) {
                return Some(ip);
            }
            last_trusted = ip;
        }
        Some(last_trusted)
    }
}

/// The `for=` node of one element of an RFC 7239 `Forwarded` header.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then_some(value)
    })
}

/// The address of a forwarded node: `203.0.113.9`, `203.0.113.9:51234`,
/// `2001:db8::7`, `[2001:db8::7]` or `[2001:db8::7]:443`, quoted or not.
/// `unknown`, obfuscated identifiers and anything else: `None`.
fn node_ip(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let node = node
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(node);
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = node.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    node.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .and_then(|n| n.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Configuration of the audit middleware; see the [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct AuditLayer<R = RouteFromExtensions> {
    pub(crate) auditor: Auditor,
    pub(crate) policies: Arc<[RoutePolicy]>,
    /// Whether any rule sets a category: when none does, the rules are
    /// tried only until a level and a mode are found.
    pub(crate) sets_category: bool,
    pub(crate) default_level: Level,
    pub(crate) default_mode: DeliveryMode,
    pub(crate) resolver: R,
    pub(crate) proxies: Arc<TrustedProxies>,
    pub(crate) excerpt_limit: usize,
    pub(crate) record_path: bool,
    pub(crate) delivery_timeout: Option<std::time::Duration>,
}

impl<R: fmt::Debug> fmt::Debug for AuditLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLayer")
            .field("policies", &self.policies)
            .field("default_level", &self.default_level)
            .field("default_mode", &self.default_mode)
            .field("resolver", &self.resolver)
            .field("proxies", &self.proxies)
            .field("excerpt_limit", &self.excerpt_limit)
            .field("record_path", &self.record_path)
            .field("delivery_timeout", &self.delivery_timeout)
            .finish_non_exhaustive()
    }
}

impl AuditLayer {
    /// Audits every request at level `Metadata`, best effort, through
    /// `auditor`.
    pub fn new(auditor: Auditor) -> Self {
        Self {
            auditor,
            policies: Arc::from(Vec::new()),
            sets_category: false,
            default_level: Level::Metadata,
            default_mode: DeliveryMode::BestEffort,
            resolver: RouteFromExtensions,
            proxies: Arc::new(TrustedProxies::none()),
            excerpt_limit: 4096,
            record_path: true,
            delivery_timeout: None,
        }
    }
}

impl<R> AuditLayer<R> {
    /// Adds a policy rule (first match wins).
    pub fn policy(mut self, policy: RoutePolicy) -> Self {
        let mut policies = self.policies.to_vec();
        self.sets_category |= policy.category.is_some();
        policies.push(policy);
        self.policies = Arc::from(policies);
        self
    }

    /// The level when no rule sets one.
    pub fn default_level(mut self, level: Level) -> Self {
        self.default_level = level;
        self
    }

    /// The delivery mode when no rule sets one.
    pub fn default_mode(mut self, mode: DeliveryMode) -> Self {
        self.default_mode = mode;
        self
    }

    /// The proxies whose forwarded header is believed.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = Arc::new(proxies);
        self
    }

    /// Whether `request.path` records the raw path (default `true`). Turn it
    /// off when path segments can carry secrets (reset tokens, magic links):
    /// `request.path` is then `null` and `request.route` identifies the
    /// request.
    pub fn record_path(mut self, record: bool) -> Self {
        self.record_path = record;
        self
    }

    /// The largest request body excerpt at level `Request` (default 4096
    /// bytes); larger bodies are recorded by size only.
    pub fn excerpt_limit(mut self, bytes: usize) -> Self {
        self.excerpt_limit = bytes;
        self
    }

    /// How long `Blocking` and `Strict` requests wait for their record to be
    /// durable before they are answered 500 `audit-failed` (blocking) or 503
    /// `audit-unavailable` (strict, handler not run); also how long a
    /// domain event of [`AuditContext::record`] waits. Default: no limit.
    /// Needs a Tokio runtime with timers enabled.
    pub fn delivery_timeout(mut self, limit: std::time::Duration) -> Self {
        self.delivery_timeout = Some(limit);
        self
    }

    /// Uses another route resolver.
    pub fn route_resolver<R2: RouteResolver>(self, resolver: R2) -> AuditLayer<R2> {
        AuditLayer {
            auditor: self.auditor,
            policies: self.policies,
            sets_category: self.sets_category,
            default_level: self.default_level,
            default_mode: self.default_mode,
            resolver,
            proxies: self.proxies,
            excerpt_limit: self.excerpt_limit,
            record_path: self.record_path,
            delivery_timeout: self.delivery_timeout,
        }
    }

    /// The level and mode of a request with this method, route template
    /// (`None` when none was found) and path, and the category a rule
    /// sets for it.
    pub(crate) fn decide(
        &self,
        method: &Method,
        route: Option<&str>,
        path: &str,
    ) -> (Level, DeliveryMode, Option<Category>) {
        let mut level = None;
        let mut mode = None;
        let mut category = None;
        for policy in self.policies.iter() {
            if policy.matches(method, route, path) {
                level = level.or(policy.level);
                mode = mode.or(policy.mode);
                category = category.or(policy.category);
                if level.is_some() && mode.is_some() && (category.is_some() || !self.sets_category)
                {
                    break;
                }
            }
        }
        (
            level.unwrap_or(self.default_level),
            mode.unwrap_or(self.default_mode),
            category,
        )
    }
}

impl<S, R: Clone> Layer<S> for AuditLayer<R> {
    type Service = AuditService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService::new(inner, self.clone())
    }
}

/// The audit state of one request, in its extensions; see the
/// [module docs](self).
#[derive(Clone)]
pub struct AuditContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    auditor: Auditor,
    mode: DeliveryMode,
    /// The layer's `delivery_timeout`, for domain events too.
    timeout: Option<std::time::Duration>,
    request: RequestInfo,
    source: Source,
    principal: Mutex<Option<Principal>>,
}

impl fmt::Debug for AuditContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditContext")
            .field("mode", &self.inner.mode)
            .field("request", &self.inner.request)
            .finish_non_exhaustive()
    }
}

impl AuditContext {
    pub(crate) fn new(
        auditor: Auditor,
        (mode, timeout): (DeliveryMode, Option<std::time::Duration>),
        request: RequestInfo,
        source: Source,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                auditor,
                mode,
                timeout,
                request,
                source,
                principal: Mutex::new(None),
            }),
        }
    }

    /// The auditor.
    pub fn auditor(&self) -> &Auditor {
        &self.inner.auditor
    }

    /// The route's delivery mode.
    pub fn mode(&self) -> DeliveryMode {
        self.inner.mode
    }

    /// Records the verified principal of the request, so that the request's
    /// own event names the actor even though the principal was established
    /// by a layer inside the audit layer.
    pub fn set_principal(&self, principal: &Principal) {
        let mut slot = self
            .inner
            .principal
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(principal.clone());
    }

    /// Copies of the request information and source (strict attempt
    /// records).
    pub(crate) fn request_and_source(&self) -> (RequestInfo, Source) {
        (self.inner.request.clone(), self.inner.source.clone())
    }

    /// The request information, source, captured principal and auditor,
    /// moved out when no handler still holds the context (the usual case),
    /// copied otherwise.
    pub(crate) fn into_parts(self) -> (RequestInfo, Source, Option<Principal>, Auditor) {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => (
                inner.request,
                inner.source,
                inner
                    .principal
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner),
                inner.auditor,
            ),
            Err(shared) => (
                shared.request.clone(),
                shared.source.clone(),
                shared
                    .principal
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
                shared.auditor.clone(),
            ),
        }
    }

    pub(crate) fn principal(&self) -> Option<Principal> {
        self.inner
            .principal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A domain event pre-filled with this request's id, method, route,
    /// source and actor (the principal, if known).
    pub fn event(&self, action: &'static str, category: Category) -> AuditEvent {
        let mut request = self.inner.request.clone();
        request.status = None;
        request.duration_us = None;
        let event = AuditEvent::new(action, category)
            .with_request(request)
            .with_source(self.inner.source.clone());
        match self.principal() {
            Some(p) => event.with_principal(&p),
            None => event,
        }
    }

    /// Records a domain event in the route's delivery mode (strict routes
    /// record domain events as blocking: durable before the handler answers),
    /// within the layer's [`delivery_timeout`](AuditLayer::delivery_timeout):
    /// a stuck sink fails the event instead of holding the handler.
    pub fn record(&self, event: AuditEvent) -> Delivery {
        let mode = match self.inner.mode {
            DeliveryMode::Strict => DeliveryMode::Blocking,
            other => other,
        };
        let delivery = self.inner.auditor.deliver(event, mode);
        match self.inner.timeout {
            Some(limit) => delivery.timeout(limit),
            None => delivery,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_nodes_with_ports_brackets_and_quotes() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let client = |header: &str, value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                HeaderName::from_bytes(header.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            let proxies = proxies
                .clone()
                .header(HeaderName::from_bytes(header.as_bytes()).unwrap());
            proxies.client_ip(Some(peer), &headers)
        };
        let v4: IpAddr = "203.0.113.9".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        for value in [
            "203.0.113.9:51234",
            "\"203.0.113.9\"",
            " 203.0.113.9 , 10.1.2.3:80",
        ] {
            assert_eq!(client("x-forwarded-for", value), Some(v4), "{value}");
        }
        for value in ["[2001:db8::7]:443", "[2001:db8::7]", "2001:db8::7"] {
            assert_eq!(client("x-forwarded-for", value), Some(v6), "{value}");
        }
        for value in [
            "for=203.0.113.9;proto=https",
            "For=\"203.0.113.9:4711\", for=10.1.2.3",
            "for=192.0.2.60;proto=http;by=203.0.113.43, proto=https;for=203.0.113.9",
        ] {
            assert_eq!(client("forwarded", value), Some(v4), "{value}");
        }
        assert_eq!(
            client("forwarded", "for=\"[2001:db8::7]:443\";proto=https"),
            Some(v6)
        );
        // Not an address: stop at the last trusted proxy (here the peer),
        // as with any garbage hop.
        for value in [
            "for=unknown",
            "for=_hidden",
            "proto=https",
            "[::1",
            "1.2.3.4:x",
        ] {
            let header = if value.contains('=') {
                "forwarded"
            } else {
                "x-forwarded-for"
            };
            assert_eq!(client(header, value), Some(peer), "{value}");
        }
    }

    #[test]
    fn forwarded_header_only_through_trusted_proxies() {
        let proxies = TrustedProxies::new(["10.0.0.0/8", "::1"]).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.1.2.3".parse().unwrap());
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        // From a trusted proxy: the right-most untrusted hop.
        assert_eq!(
            proxies.client_ip(Some(peer), &headers),
            "203.0.113.9".parse().ok()
        );
        // From anyone else: the header is ignored.
        assert_eq!(proxies.client_ip(Some(stranger), &headers), Some(stranger));
        // Garbage hop: stop at the proxy.
        headers.insert(
            "x-forwarded-for",
            "evil\u{7f}"
                .parse()
                .unwrap_or(http::HeaderValue::from_static("not-an-ip")),
        );
        assert_eq!(proxies.client_ip(Some(peer), &headers), Some(peer));
        // Several header lines form one list, the last line's last hop
        // nearest: walk back over every trusted hop.
        let mut lines = http::HeaderMap::new();
        for line in [
            "192.0.2.1, 10.8.8.8",
            "198.51.100.1, 203.0.113.7 , 10.9.9.9",
            "10.1.1.1",
        ] {
            lines.append("x-forwarded-for", line.parse().unwrap());
        }
        assert_eq!(
            proxies.client_ip(Some(peer), &lines),
            "203.0.113.7".parse().ok()
        );
        // Bytes that are not visible ASCII in a farther line, or in the
        // client's part of the line its proxy appended to, cannot hide the
        // hops to their right (a client could otherwise have the proxy
        // recorded in its place whenever it liked).
        let mut spoiled = http::HeaderMap::new();
        spoiled.append(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"10.2.2.2 \xff").unwrap(),
        );
        for line in lines.get_all("x-forwarded-for") {
            spoiled.append("x-forwarded-for", line.clone());
        }
        assert_eq!(
            proxies.client_ip(Some(peer), &spoiled),
            "203.0.113.7".parse().ok()
        );
        let line = |bytes: &[u8]| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "x-forwarded-for",
                http::HeaderValue::from_bytes(bytes).unwrap(),
            );
            proxies.client_ip(Some(peer), &headers)
        };
        assert_eq!(line(b"\xff, 203.0.113.9"), "203.0.113.9".parse().ok());
        assert_eq!(
            line(b"a\t\xfe\xff,203.0.113.9 "),
            "203.0.113.9".parse().ok()
        );
        // A bad hop reached through trusted ones: the client is behind the
        // last trusted proxy walked, which is recorded.
        assert_eq!(
            line(b"203.0.113.5, \xff, 10.3.3.3"),
            "10.3.3.3".parse().ok()
        );
        assert_eq!(line(b"unknown, 10.0.0.7"), "10.0.0.7".parse().ok());
        // Without the list, nothing is trusted.
        assert_eq!(
            TrustedProxies::none().client_ip(Some(peer), &headers),
            Some(peer)
        );
        // IPv4-mapped IPv6 peers match IPv4 blocks.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(proxies.contains(mapped));
        assert!(TrustedProxies::new(["10.0.0.0/33"]).is_err());
        // IPv4-mapped nets are their IPv4 nets (a /104 is a /8).
        let mapped = TrustedProxies::new(["::ffff:10.0.0.0/104"]).unwrap();
        assert!(mapped.contains("10.200.0.1".parse().unwrap()));
        assert!(mapped.contains("::ffff:10.200.0.1".parse().unwrap()));
        assert!(!mapped.contains("11.0.0.1".parse().unwrap()));
        let all_v4 = TrustedProxies::new(["::ffff:0.0.0.0/96"]).unwrap();
        assert!(all_v4.contains("192.0.2.1".parse().unwrap()));
        assert!(!all_v4.contains("2001:db8::1".parse().unwrap()));
        assert!(TrustedProxies::new(["::ffff:10.0.0.0/95"]).is_err());
        assert!(TrustedProxies::new(["nope"]).is_err());
    }

    #[cfg(feature = "axum")]
    #[test]
    fn axum_templates_are_shared_per_thread() {
        let a = shared_template("/v1/tenants/{tenant}/invoices");
        let b = shared_template("/v1/tenants/{tenant}/invoices");
        assert!(Arc::ptr_eq(&a, &b));
        let other = shared_template("/healthz");
        assert_eq!(&*other, "/healthz");
        assert!(!Arc::ptr_eq(&a, &other));
        // Beyond the cache's bound templates are still right, just copied.
        for i in 0..(MAX_CACHED_TEMPLATES + 8) {
            assert_eq!(&*shared_template(&format!("/r/{i}")), format!("/r/{i}"));
        }
    }

    #[test]
    fn closures_resolve_routes_from_strings_or_shared_strings() {
        let shared: Arc<str> = Arc::from("/x/{id}");
        let by_arc =
            move |_: &Method, _: &http::Uri, _: &http::Extensions| Some(Arc::clone(&shared));
        let by_string =
            |_: &Method, uri: &http::Uri, _: &http::Extensions| Some(uri.path().to_owned());
        let uri: http::Uri = "/x/1".parse().unwrap();
        let ext = http::Extensions::new();
        assert_eq!(
            by_arc.route(&Method::GET, &uri, &ext).as_deref(),
            Some("/x/{id}")
        );
        assert_eq!(
            by_string.route(&Method::GET, &uri, &ext).as_deref(),
            Some("/x/1")
        );
        let mut ext = http::Extensions::new();
        ext.insert(MatchedRoute(Arc::from("/m")));
        let found = RouteFromExtensions.route(&Method::GET, &uri, &ext).unwrap();
        let MatchedRoute(inserted) = ext.get::<MatchedRoute>().unwrap();
        assert!(Arc::ptr_eq(&found, inserted), "no copy");
    }

    #[test]
    fn first_matching_rule_wins_per_setting() {
        let (auditor, _guard) = crate::AuditPipeline::builder()
            .spawn(crate::sink::MemorySink::new())
            .unwrap();
        let layer = AuditLayer::new(auditor)
            .policy(RoutePolicy::new().route("/healthz").level(Level::None))
            .policy(
                RoutePolicy::new()
                    .method(Method::DELETE)
                    .mode(DeliveryMode::Strict),
            )
            .policy(
                RoutePolicy::new()
                    .route_prefix("/v1/")
                    .level(Level::Request),
            );
        assert_eq!(
            layer.decide(&Method::GET, Some("/healthz"), "/healthz"),
            (Level::None, DeliveryMode::BestEffort, None)
        );
        assert_eq!(
            layer.decide(&Method::DELETE, Some("/v1/x"), "/v1/x"),
            (Level::Request, DeliveryMode::Strict, None)
        );
        assert_eq!(
            layer.decide(&Method::GET, Some("/v1/x"), "/v1/x"),
            (Level::Request, DeliveryMode::BestEffort, None)
        );
        assert_eq!(
            layer.decide(&Method::GET, Some("/other"), "/other"),
            (Level::Metadata, DeliveryMode::BestEffort, None)
        );
    }

    #[test]
    fn a_rule_may_set_the_category() {
        let (auditor, _guard) = crate::AuditPipeline::builder()
            .spawn(crate::sink::MemorySink::new())
            .unwrap();
        // gRPC: every call a POST; the first rule naming a category wins,
        // whichever rule set the level or mode.
        let layer = AuditLayer::new(auditor)
            .policy(
                RoutePolicy::new()
                    .route("/notes.v1.Notes/DeleteNote")
                    .mode(DeliveryMode::Strict),
            )
            .policy(
                RoutePolicy::new()
                    .route("/notes.v1.Notes/ListNotes")
                    .category(Category::DataRead),
            )
            .policy(
                RoutePolicy::new()
                    .route_prefix("/admin.v1.")
                    .category(Category::Admin),
            )
            .policy(RoutePolicy::new().category(Category::System));
        let category = |route: &str| layer.decide(&Method::POST, Some(route), route).2;
        assert_eq!(
            category("/notes.v1.Notes/ListNotes"),
            Some(Category::DataRead)
        );
        assert_eq!(category("/admin.v1.Users/Ban"), Some(Category::Admin));
        assert_eq!(
            category("/notes.v1.Notes/DeleteNote"),
            Some(Category::System)
        );
        let (_, mode, _) = layer.decide(
            &Method::POST,
            Some("/notes.v1.Notes/DeleteNote"),
            "/notes.v1.Notes/DeleteNote",
        );
        assert_eq!(mode, DeliveryMode::Strict);
    }

    #[test]
    fn a_get_rule_covers_head() {
        let (auditor, _guard) = crate::AuditPipeline::builder()
            .spawn(crate::sink::MemorySink::new())
            .unwrap();
        let layer = AuditLayer::new(auditor).policy(
            RoutePolicy::new()
                .method(Method::GET)
                .route("/export")
                .mode(DeliveryMode::Strict),
        );
        for method in [Method::GET, Method::HEAD] {
            assert_eq!(
                layer.decide(&method, Some("/export"), "/export").1,
                DeliveryMode::Strict,
                "{method}"
            );
        }
        assert_eq!(
            layer.decide(&Method::POST, Some("/export"), "/export").1,
            DeliveryMode::BestEffort
        );
    }

    #[test]
    fn without_a_template_rules_match_the_path_by_their_template() {
        let (auditor, _guard) = crate::AuditPipeline::builder()
            .spawn(crate::sink::MemorySink::new())
            .unwrap();
        let layer = AuditLayer::new(auditor)
            .policy(
                RoutePolicy::new()
                    .route("/things/{id}")
                    .mode(DeliveryMode::Strict),
            )
            .policy(
                RoutePolicy::new()
                    .route_prefix("/v1/tenants/{tenant}/inv")
                    .level(Level::Request),
            )
            .policy(
                RoutePolicy::new()
                    .route("/files/{*rest}")
                    .level(Level::None),
            );
        let strict =
            |path: &str| layer.decide(&Method::DELETE, None, path).1 == DeliveryMode::Strict;
        assert!(strict("/things/1"));
        assert!(strict("/things/%31"));
        assert!(!strict("/things/"), "a parameter is never empty");
        assert!(!strict("/things/1/"));
        assert!(!strict("/things/1/x"));
        assert!(!strict("/things"));
        // With a template, the template decides.
        assert!(!strict_with(&layer, "/other/{id}", "/things/1"));
        let level = |path: &str| layer.decide(&Method::GET, None, path).0;
        assert_eq!(level("/v1/tenants/acme/invoices"), Level::Request);
        assert_eq!(level("/v1/tenants/acme/inv"), Level::Request);
        assert_eq!(level("/v1/tenants/acme/other"), Level::Metadata);
        assert_eq!(level("/files/a/b/c"), Level::None);
        assert_eq!(level("/files"), Level::Metadata);
        assert_eq!(level("/files/"), Level::Metadata);
    }

    fn strict_with(layer: &AuditLayer, template: &str, path: &str) -> bool {
        layer.decide(&Method::DELETE, Some(template), path).1 == DeliveryMode::Strict
    }
}
