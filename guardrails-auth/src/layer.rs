//! The authentication boundary: [`AuthLayer`] and its service [`Auth`].
//!
//! Deny by default: every request behind the layer needs a valid credential,
//! unless its path is in the explicit public list. In
//! [`optional`](AuthLayer::optional) mode, requests without any credential go
//! through anonymous (no [`Principal`] in the extensions); a credential that
//! is present but invalid is still rejected.
//!
//! Before the inner service sees a request, the layer
//!
//! - removes client-sent identity headers (`x-user-id`, `x-tenant-id`,
//!   `x-roles` by default; configurable), on every path, public or not, and
//!   their `_` spellings (`x_user_id`), which CGI-style backends and some
//!   proxies read as the same header;
//! - marks the credential headers sensitive, so tracing and tower-http redact
//!   them;
//! - inserts the verified [`Principal`] into the request extensions.
//!
//! A rejection answers with the [responder](crate::respond) (RFC 9457 +
//! RFC 6750 by default), carries a [`Rejection`](guardrails_core::Rejection)
//! in its extensions for an outer audit layer, and counts in
//! `guardrails_auth_decisions_total{outcome, reason}`.
//!
//! The response future is named and unboxed: a static-key verification or a
//! cache hit allocates no future. Only an authenticator that must wait (a
//! JWKS refetch, an API key store) returns one.
//!
//! ```
//! use std::convert::Infallible;
//! use guardrails_auth::jwt::{Issuer, JwtVerifier};
//! use guardrails_auth::AuthLayer;
//! use guardrails_core::Principal;
//! use http::{Request, Response};
//! use secrecy::SecretString;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let secret = SecretString::from("an HS256 secret of at least 32 bytes!");
//! let verifier = JwtVerifier::builder()
//!     .issuer(Issuer::builder("https://id.example.com").audience("api")
//!         .hs256_secret(&secret).unwrap().build().unwrap())
//!     .build()
//!     .unwrap();
//!
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(verifier).public_path("/healthz"))
//!     .service_fn(|req: Request<String>| async move {
//!         let who = req.extensions().get::<Principal>().map(|p| p.subject().to_owned());
//!         Ok::<_, Infallible>(Response::new(format!("{who:?}")))
//!     });
//!
//! let response = service.clone().oneshot(Request::get("/healthz").body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 200);
//! let response = service.oneshot(Request::get("/invoices").body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="api""#);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use guardrails_core::{GuardBody, Principal};
use http::{HeaderName, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::AuthError;
use crate::authenticator::{Authenticator, Verdict};
use crate::credential::{Bearer, CredentialSource, query_has_access_token};
use crate::respond::{RejectionResponder, SharedResponder, is_quotable, reject};

/// The identity headers removed from every request by default.
pub const DEFAULT_STRIPPED_HEADERS: [&str; 3] = ["x-user-id", "x-tenant-id", "x-roles"];

pub(crate) fn record_denied(error: &AuthError) {
    metrics::counter!(
        "guardrails_auth_decisions_total",
        "outcome" => "deny",
        "reason" => error.reason()
    )
    .increment(1);
    tracing::debug!(
        target: "guardrails_auth",
        outcome = "deny",
        reason = error.reason(),
        "request rejected"
    );
}

fn record_allowed(principal: &Principal) {
    metrics::counter!(
        "guardrails_auth_decisions_total",
        "outcome" => "allow",
        "reason" => "authenticated"
    )
    .increment(1);
    tracing::debug!(
        target: "guardrails_auth",
        outcome = "allow",
        subject = principal.subject(),
        tenant = principal.tenant(),
        issuer = principal.issuer(),
        method = principal.method().as_str(),
        "request authenticated"
    );
}

fn record_passed(reason: &'static str) {
    metrics::counter!(
        "guardrails_auth_decisions_total",
        "outcome" => "allow",
        "reason" => reason
    )
    .increment(1);
}

/// Whether `path` could leave a public prefix once an inner service or
/// proxy normalizes it: a `.` or `..` segment; a `\` (a separator on
/// Windows and for some proxies) or a `;` (path parameters, which some
/// servers strip before `..` resolution); an encoded `.`, `/`, `\` or `;`;
/// or an encoded `%` (decoded twice, `%252e` is a `.`). Such a path is not
/// public by prefix (deny by default).
fn may_escape(path: &str) -> bool {
    path.split('/').any(|s| s == "." || s == "..")
        || path.bytes().any(|b| b == b'\\' || b == b';')
        || path.as_bytes().windows(3).any(|w| {
            w[0] == b'%'
                && matches!(
                    (w[1], w[2].to_ascii_lowercase()),
                    (b'2', b'e' | b'f' | b'5') | (b'5', b'c') | (b'3', b'b')
                )
        })
}

/// A path pattern of the public list.
#[derive(Clone, Debug)]
enum PublicPath {
    Exact(String),
    Prefix(String),
}

#[derive(Clone)]
struct Config {
    sources: Vec<Arc<dyn CredentialSource>>,
    public: Vec<PublicPath>,
    optional: bool,
    strip: Vec<HeaderName>,
    responder: SharedResponder,
    realm: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("sources", &self.sources)
            .field("public", &self.public)
            .field("optional", &self.optional)
            .field("strip", &self.strip)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sources: vec![Arc::new(Bearer::default())],
            public: Vec::new(),
            optional: false,
            strip: DEFAULT_STRIPPED_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect(),
            responder: SharedResponder::default(),
            realm: "api".to_owned(),
        }
    }
}

/// How the layer that let a request through without a principal (a public
/// path, or no credential behind an [`optional`](AuthLayer::optional) layer)
/// answers a missing one: its realm and responder. In the request
/// extensions for the [`Authenticated`](crate::extract::Authenticated)
/// extractor, so that its 401 matches the layer's own.
#[cfg(feature = "axum")]
#[derive(Clone)]
pub(crate) struct Challenge(Arc<Config>);

#[cfg(feature = "axum")]
impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("realm", &self.0.realm)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "axum")]
impl Challenge {
    /// The layer's rejection of `error`, not counted: the layer counted the
    /// request as let through.
    pub(crate) fn reject<B>(&self, error: &AuthError) -> Response<GuardBody<B>> {
        crate::respond::rejection_response(&self.0.responder, error, &self.0.realm, None)
    }
}

/// What the layer decided for a request head, before any verification.
#[derive(Debug)]
pub(crate) enum Decision<'a> {
    /// The path is public.
    Public,
    /// No credential, and the layer is optional.
    Anonymous,
    /// A credential to verify.
    Verify(crate::Credential<'a>),
}

impl Config {
    fn is_public(&self, path: &str) -> bool {
        self.public.iter().any(|p| match p {
            PublicPath::Exact(e) => e == path,
            PublicPath::Prefix(pre) => path.starts_with(pre.as_str()) && !may_escape(path),
        })
    }

    /// The decision for a request head: the pure part of the layer.
    fn check<'a>(&self, parts: &'a http::request::Parts) -> Result<Decision<'a>, AuthError> {
        if self.is_public(parts.uri.path()) {
            return Ok(Decision::Public);
        }
        let mut found = None;
        for source in &self.sources {
            if let Some(credential) = source.extract(parts)? {
                if found.is_some() {
                    return Err(AuthError::MultipleCredentials);
                }
                found = Some(credential);
            }
        }
        if !self.sources.iter().any(|s| s.reads_query()) && query_has_access_token(parts) {
            return Err(AuthError::CredentialInQuery);
        }
        match found {
            Some(c) => Ok(Decision::Verify(c)),
            None if self.optional => Ok(Decision::Anonymous),
            None => Err(AuthError::Missing),
        }
    }

    fn prepare(&self, parts: &mut http::request::Parts) {
        for name in &self.strip {
            parts.headers.remove(name);
        }
        // `x_user_id` is `X-User-Id` to CGI-style backends (both become
        // `HTTP_X_USER_ID`) and to proxies that fold `_` into `-`.
        if parts.headers.keys().any(|k| k.as_str().contains('_')) {
            let aliases: Vec<HeaderName> = parts
                .headers
                .keys()
                .filter(|k| {
                    let name = k.as_str();
                    name.contains('_')
                        && self.strip.iter().any(|s| {
                            let s = s.as_str();
                            s.len() == name.len()
                                && s.bytes()
                                    .zip(name.bytes())
                                    .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
                        })
                })
                .cloned()
                .collect();
            for name in aliases {
                parts.headers.remove(name);
            }
        }
        for source in &self.sources {
            if let Some(name) = source.header()
                && let http::header::Entry::Occupied(mut e) = parts.headers.entry(name)
            {
                for v in e.iter_mut() {
                    v.set_sensitive(true);
                }
            }
        }
    }
}

/// Layer that authenticates requests; see the [module documentation](self).
#[derive(Clone)]
#[must_use]
pub struct AuthLayer<A> {
    authenticator: A,
    config: Arc<Config>,
}

impl<A: fmt::Debug> fmt::Debug for AuthLayer<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("authenticator", &self.authenticator)
            .field("config", &self.config)
            .finish()
    }
}

impl<A> AuthLayer<A> {
    /// Protects everything with `authenticator`, reading `Authorization: Bearer`.
    pub fn new(authenticator: A) -> Self {
        Self {
            authenticator,
            config: Arc::new(Config::default()),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Makes the exact path `path` public (no credential needed).
    pub fn public_path(mut self, path: impl Into<String>) -> Self {
        self.config_mut()
            .public
            .push(PublicPath::Exact(path.into()));
        self
    }

    /// Makes every path starting with `prefix` public. Prefer exact paths;
    /// end the prefix with `/` so `/static` does not open `/static-admin`.
    /// A path with a `.` or `..` segment, a `\` or `;`, or a
    /// percent-encoded `.`, `/`, `\` or `%`, is never public by prefix:
    /// normalized later, it could name a protected route.
    pub fn public_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config_mut()
            .public
            .push(PublicPath::Prefix(prefix.into()));
        self
    }

    /// Lets requests without any credential through, anonymous. A credential
    /// that is present but invalid is still rejected.
    pub fn optional(mut self) -> Self {
        self.config_mut().optional = true;
        self
    }

    /// Replaces the credential sources (default: [`Bearer`]). When several
    /// sources find a credential in one request, it is rejected as ambiguous.
    pub fn credential_sources(mut self, sources: Vec<Arc<dyn CredentialSource>>) -> Self {
        self.config_mut().sources = sources;
        self
    }

    /// Adds a credential source.
    pub fn credential_source(mut self, source: impl CredentialSource) -> Self {
        self.config_mut().sources.push(Arc::new(source));
        self
    }

    /// Also accepts the credential from the query parameter `param` (for
    /// clients that cannot send headers, such as `EventSource`). Insecure:
    /// query strings are logged by proxies, kept in browser history and leaked
    /// through `Referer`; use only with short-lived tokens. Without this, a
    /// query `access_token` is rejected with 400 `invalid_request`.
    pub fn insecure_allow_query_token(self, param: impl Into<String>) -> Self {
        self.credential_source(crate::InsecureQuery::new(param))
    }

    /// Adds a client-sent identity header to remove from every request.
    pub fn strip_header(mut self, name: HeaderName) -> Self {
        self.config_mut().strip.push(name);
        self
    }

    /// Replaces the list of identity headers to remove.
    pub fn strip_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.config_mut().strip = names.into_iter().collect();
        self
    }

    /// Sets the responder for rejections (default: [`ProblemResponder`](crate::respond::ProblemResponder)).
    pub fn responder(mut self, responder: impl RejectionResponder) -> Self {
        self.config_mut().responder = SharedResponder(Arc::new(responder));
        self
    }

    /// Sets the `realm` of `WWW-Authenticate` (default `api`).
    ///
    /// # Errors
    ///
    /// When `realm` is empty or has `"`, `\` or control characters; the
    /// layer is returned unchanged in the error.
    pub fn realm(mut self, realm: impl Into<String>) -> Result<Self, Self> {
        let realm = realm.into();
        if !is_quotable(&realm) {
            return Err(self);
        }
        self.config_mut().realm = realm;
        Ok(self)
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &A {
        &self.authenticator
    }
}

impl<A: Clone, S> Layer<S> for AuthLayer<A> {
    type Service = Auth<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            authenticator: self.authenticator.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

/// Middleware that authenticates requests; see the [module documentation](self).
#[derive(Clone)]
pub struct Auth<S, A> {
    inner: S,
    authenticator: A,
    config: Arc<Config>,
}

impl<S: fmt::Debug, A: fmt::Debug> fmt::Debug for Auth<S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .field("authenticator", &self.authenticator)
            .finish_non_exhaustive()
    }
}

impl<S, A> Auth<S, A> {
    /// Wraps `inner` with `layer`'s configuration.
    pub fn new(inner: S, layer: &AuthLayer<A>) -> Self
    where
        A: Clone,
    {
        layer.layer(inner)
    }

    /// A layer with `authenticator` and the default configuration.
    pub fn layer(authenticator: A) -> AuthLayer<A> {
        AuthLayer::new(authenticator)
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

impl<S, A, ReqB, ResB> Service<Request<ReqB>> for Auth<S, A>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    A: Authenticator,
{
    type Response = Response<GuardBody<ResB>>;
    type Error = S::Error;
    type Future = AuthFuture<S, A::Future, ReqB, ResB>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let config = &*self.config;
        let verdict = match config.check(&parts) {
            Err(error) => {
                return AuthFuture::ready(reject(&config.responder, &error, &config.realm, None));
            }
            Ok(Decision::Public) => {
                record_passed("public");
                None
            }
            Ok(Decision::Anonymous) => {
                record_passed("anonymous");
                None
            }
            Ok(Decision::Verify(credential)) => Some(self.authenticator.authenticate(&credential)),
        };
        // Only the axum extractor reads it.
        #[cfg(feature = "axum")]
        if verdict.is_none() {
            parts.extensions.insert(Challenge(Arc::clone(&self.config)));
        }
        config.prepare(&mut parts);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match verdict {
            None => AuthFuture::inner(inner.call(Request::from_parts(parts, body))),
            Some(Verdict::Ready(Ok(principal))) => {
                record_allowed(&principal);
                parts.extensions.insert(principal);
                AuthFuture::inner(inner.call(Request::from_parts(parts, body)))
            }
            Some(Verdict::Ready(Err(error))) => {
                AuthFuture::ready(reject(&config.responder, &error, &config.realm, None))
            }
            Some(Verdict::Pending(future)) => AuthFuture {
                state: State::Authenticating {
                    future,
                    request: Some(Request::from_parts(parts, body)),
                    inner: Some(inner),
                    config: Arc::clone(&self.config),
                },
            },
        }
    }
}

pin_project! {
    /// Response future of [`Auth`].
    pub struct AuthFuture<S, AF, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, AF, ReqB, ResB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, AF, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
    {
        Authenticating {
            #[pin]
            future: AF,
            request: Option<Request<ReqB>>,
            inner: Option<S>,
            config: Arc<Config>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Ready {
            response: Option<Response<GuardBody<ResB>>>,
        },
    }
}

impl<S, AF, ReqB, ResB> fmt::Debug for AuthFuture<S, AF, ReqB, ResB>
where
    S: Service<Request<ReqB>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFuture").finish_non_exhaustive()
    }
}

impl<S, AF, ReqB, ResB> AuthFuture<S, AF, ReqB, ResB>
where
    S: Service<Request<ReqB>>,
{
    fn inner(future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    fn ready(response: Response<GuardBody<ResB>>) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
        }
    }
}

impl<S, AF, ReqB, ResB> Future for AuthFuture<S, AF, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    AF: Future<Output = Result<Principal, AuthError>>,
{
    type Output = Result<Response<GuardBody<ResB>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Inner { future } => {
                    return future
                        .poll(cx)
                        .map(|r| r.map(|response| response.map(GuardBody::new)));
                }
                StateProj::Ready { response } => {
                    return match response.take() {
                        Some(response) => Poll::Ready(Ok(response)),
                        None => Poll::Pending,
                    };
                }
                StateProj::Authenticating {
                    future,
                    request,
                    inner,
                    config,
                } => {
                    let outcome = match future.poll(cx) {
                        Poll::Ready(outcome) => outcome,
                        Poll::Pending => return Poll::Pending,
                    };
                    let next = match (outcome, request.take(), inner.take()) {
                        (Ok(principal), Some(mut request), Some(mut inner)) => {
                            record_allowed(&principal);
                            request.extensions_mut().insert(principal);
                            State::Inner {
                                future: inner.call(request),
                            }
                        }
                        (Err(error), _, _) => State::Ready {
                            response: Some(reject(&config.responder, &error, &config.realm, None)),
                        },
                        // Polled again after completion.
                        _ => return Poll::Pending,
                    };
                    this.state.set(next);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    #[allow(clippy::type_complexity, reason = "table rows")]
    fn decision_table() {
        let mut config = Config::default();
        config.public.push(PublicPath::Exact("/healthz".into()));
        config.public.push(PublicPath::Prefix("/static/".into()));
        let rows: &[(&str, &[(&str, &str)], Result<&str, AuthError>)] = &[
            ("/healthz", &[], Ok("public")),
            ("/healthz/", &[], Err(AuthError::Missing)),
            ("/static/app.js", &[], Ok("public")),
            ("/staticx", &[], Err(AuthError::Missing)),
            ("/static/../v1/x", &[], Err(AuthError::Missing)),
            ("/static/./app.js", &[], Err(AuthError::Missing)),
            ("/static/%2e%2e/v1/x", &[], Err(AuthError::Missing)),
            ("/static/..%2Fv1/x", &[], Err(AuthError::Missing)),
            ("/static/..%5cv1/x", &[], Err(AuthError::Missing)),
            ("/static/..\\v1\\x", &[], Err(AuthError::Missing)),
            ("/static/%252e%252e/v1/x", &[], Err(AuthError::Missing)),
            ("/static/..%3b/v1/x", &[], Err(AuthError::Missing)),
            ("/static/..%3B/v1/x", &[], Err(AuthError::Missing)),
            ("/static/..;/v1/x", &[], Err(AuthError::Missing)),
            ("/static/app.v2.js", &[], Ok("public")),
            ("/v1/x", &[], Err(AuthError::Missing)),
            ("/v1/x", &[("authorization", "Bearer t")], Ok("verify")),
            ("/v1/x", &[("authorization", "bearer t")], Ok("verify")),
            (
                "/v1/x",
                &[("authorization", "Basic t")],
                Err(AuthError::MalformedCredential),
            ),
            (
                "/v1/x?access_token=t",
                &[],
                Err(AuthError::CredentialInQuery),
            ),
            (
                "/v1/x",
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Err(AuthError::MultipleCredentials),
            ),
        ];
        for (uri, headers, expected) in rows {
            let p = parts(uri, headers);
            let got = config.check(&p).map(|d| match d {
                Decision::Public => "public",
                Decision::Anonymous => "anonymous",
                Decision::Verify(_) => "verify",
            });
            assert_eq!(&got, expected, "{uri} {headers:?}");
        }
        config.optional = true;
        assert!(matches!(
            config.check(&parts("/v1/x", &[])),
            Ok(Decision::Anonymous)
        ));
    }

    #[test]
    fn prepare_strips_and_marks_sensitive() {
        let config = Config::default();
        let mut p = parts(
            "/v1/x",
            &[
                ("authorization", "Bearer t"),
                ("x-user-id", "admin"),
                ("x-roles", "admin"),
            ],
        );
        config.prepare(&mut p);
        assert!(p.headers.get("x-user-id").is_none());
        assert!(p.headers.get("x-roles").is_none());
        assert!(p.headers["authorization"].is_sensitive());
    }
}
