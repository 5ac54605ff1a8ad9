//! Per-route authorization: scopes, roles, custom predicates, tenant boundary.
//!
//! [`RequireLayer`] runs after routing (axum's `route_layer`), reads the
//! [`Principal`] that [`AuthLayer`](crate::AuthLayer) placed in the
//! extensions, and refuses the request unless every requirement holds:
//!
//! 1. a principal exists (else 401);
//! 2. the **tenant boundary**: the tenant a [`TenantResolver`] reads from the
//!    request (for example the `{tenant}` path parameter) equals the
//!    principal's tenant (else 403 `forbidden-tenant`, or 404 when
//!    [`hide_cross_tenant`](RequireLayer::hide_cross_tenant) is set);
//! 3. scopes, all-of and any-of (else 403 `insufficient_scope` with the
//!    required `scope` in `WWW-Authenticate`);
//! 4. roles (else 403 `forbidden`);
//! 5. custom predicates over the principal and the request head (else 403).
//!
//! ```
//! use guardrails_auth::require::{PathSegmentAfter, RequireLayer};
//! use guardrails_core::{AuthMethod, Principal};
//!
//! let layer = RequireLayer::new()
//!     .scope("invoices:read").unwrap()
//!     .tenant(PathSegmentAfter::new("tenants"));
//!
//! let principal = Principal::builder("alice", AuthMethod::Jwt)
//!     .tenant("acme").scope_str("invoices:read").build();
//! let mut request = http::Request::get("/v1/tenants/acme/invoices").body(()).unwrap();
//! request.extensions_mut().insert(principal);
//! let (parts, ()) = request.into_parts();
//! assert!(layer.check(&parts).is_ok());
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use guardrails_core::{GuardBody, Principal, ProblemType, ResponseFuture};
use http::request::Parts;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::AuthError;
use crate::respond::{RejectionResponder, SharedResponder, is_quotable, reject};

/// Reads the tenant a request addresses.
pub trait TenantResolver: Send + Sync + 'static {
    /// The tenant, `None` when the request names none (which is refused).
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>>;
}

impl<F> TenantResolver for F
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        self(parts).map(Cow::Owned)
    }
}

/// The path segment after a literal segment: `PathSegmentAfter::new("tenants")`
/// reads `acme` from `/v1/tenants/acme/invoices`. Percent-encoded segments
/// are decoded; a segment that does not decode to UTF-8 resolves to nothing.
///
/// It reads after the *first* segment equal to the literal. Use it where no
/// path parameter before the tenant can take the literal's value (in
/// `/v1/{region}/tenants/{tenant}`, a request for `/v1/tenants/tenants/acme`
/// would resolve the tenant `tenants`); with axum, prefer [`PathParam`],
/// which reads the route's own parameter.
#[derive(Debug, Clone)]
pub struct PathSegmentAfter {
    literal: String,
}

impl PathSegmentAfter {
    /// The segment after `literal`.
    pub fn new(literal: impl Into<String>) -> Self {
        Self {
            literal: literal.into(),
        }
    }
}

pub(crate) fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            // Exactly two hex digits: `from_str_radix` alone would take
            // `%+1` as 0x01, where the router's decoder keeps it literal, so
            // the tenant checked here and the one the handler reads differ.
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

impl TenantResolver for PathSegmentAfter {
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        let mut segments = parts.uri.path().split('/');
        segments.find(|s| *s == self.literal)?;
        segments
            .next()
            .filter(|s| !s.is_empty())
            .and_then(percent_decode)
    }
}

/// The axum path parameter `name` (for example `tenant` in
/// `/v1/tenants/{tenant}/invoices`), read through axum's `MatchedPath`, so it
/// is the parameter of the route that matched, not a guess.
///
/// The segment is read from the request's whole path (axum's `OriginalUri`,
/// like `MatchedPath` the path the outermost router saw: a layer inside
/// `Router::nest` sees the URI with the prefix removed), and only when that
/// path lines up with the route: as many segments, every literal segment
/// equal, up to a wildcard. Otherwise (a path rewritten by a layer between
/// the router and this one) the tenant resolves to nothing and the request
/// is denied.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[derive(Debug, Clone)]
pub struct PathParam {
    placeholder: String,
}

#[cfg(feature = "axum")]
impl PathParam {
    /// The parameter `name`.
    pub fn new(name: &str) -> Self {
        Self {
            placeholder: format!("{{{name}}}"),
        }
    }
}

#[cfg(feature = "axum")]
impl TenantResolver for PathParam {
    fn resolve<'a>(&self, parts: &'a Parts) -> Option<Cow<'a, str>> {
        let matched = parts.extensions.get::<axum::extract::MatchedPath>()?;
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(parts.uri.path(), |original| original.0.path());
        let mut template = matched.as_str().split('/');
        let mut segments = path.split('/');
        let mut found = None;
        loop {
            match (template.next(), segments.next()) {
                (None, None) => break,
                (Some(placeholder), Some(segment)) if placeholder == self.placeholder => {
                    found = Some(segment);
                }
                // A wildcard takes the rest, whatever its length.
                (Some(wildcard), _) if wildcard.starts_with("{*") => break,
                // Another parameter: any value.
                (Some(param), Some(_)) if param.starts_with('{') => {}
                (Some(literal), Some(segment)) if literal == segment => {}
                // Misaligned: not this route's parameter.
                _ => return None,
            }
        }
        found.filter(|s| !s.is_empty()).and_then(percent_decode)
    }
}

type Predicate = Arc<dyn Fn(&Principal, &Parts) -> bool + Send + Sync>;

#[derive(Clone)]
struct Requirements {
    all_scopes: Vec<String>,
    any_scopes: Vec<String>,
    all_roles: Vec<String>,
    any_roles: Vec<String>,
    predicates: Vec<Predicate>,
    tenant: Option<Arc<dyn TenantResolver>>,
    hide_cross_tenant: bool,
    responder: SharedResponder,
    realm: String,
    /// The `scope` of the insufficient-scope challenge.
    scope_hint: String,
}

impl Default for Requirements {
    fn default() -> Self {
        Self {
            all_scopes: Vec::new(),
            any_scopes: Vec::new(),
            all_roles: Vec::new(),
            any_roles: Vec::new(),
            predicates: Vec::new(),
            tenant: None,
            hide_cross_tenant: false,
            responder: SharedResponder::default(),
            realm: "api".to_owned(),
            scope_hint: String::new(),
        }
    }
}

/// A rejected requirement: the reason, and whether to hide it as 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// Why.
    pub error: AuthError,
    /// Answer 404 instead (a cross-tenant request with hiding on).
    pub hidden: bool,
}

/// Layer of per-route requirements; see the [module documentation](self).
#[derive(Clone)]
#[must_use]
pub struct RequireLayer {
    reqs: Arc<Requirements>,
}

impl fmt::Debug for RequireLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.reqs;
        f.debug_struct("RequireLayer")
            .field("all_scopes", &r.all_scopes)
            .field("any_scopes", &r.any_scopes)
            .field("all_roles", &r.all_roles)
            .field("any_roles", &r.any_roles)
            .field("predicates", &r.predicates.len())
            .field("tenant", &r.tenant.is_some())
            .field("hide_cross_tenant", &r.hide_cross_tenant)
            .finish()
    }
}

impl Default for RequireLayer {
    fn default() -> Self {
        Self::new()
    }
}

/// An invalid scope or role name (empty, or with `"`, `\` or control
/// characters, which cannot appear in a challenge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope or role name")]
pub struct InvalidName;

fn valid_name(s: &str) -> Result<(), InvalidName> {
    if is_quotable(s) && !s.contains(' ') {
        Ok(())
    } else {
        Err(InvalidName)
    }
}

/// Requires the scope `scope`.
///
/// # Errors
///
/// [`InvalidName`] for an empty name or one with spaces, quotes or control characters.
pub fn require_scope(scope: &str) -> Result<RequireLayer, InvalidName> {
    RequireLayer::new().scope(scope)
}

/// Requires the role `role`.
///
/// # Errors
///
/// [`InvalidName`] for an empty name or one with spaces, quotes or control characters.
pub fn require_role(role: &str) -> Result<RequireLayer, InvalidName> {
    RequireLayer::new().role(role)
}

impl RequireLayer {
    /// No requirement but an authenticated principal.
    pub fn new() -> Self {
        Self {
            reqs: Arc::new(Requirements::default()),
        }
    }

    fn reqs(&mut self) -> &mut Requirements {
        Arc::make_mut(&mut self.reqs)
    }

    fn update_hint(&mut self) {
        let r = self.reqs();
        let mut hint: Vec<&str> = r.all_scopes.iter().map(String::as_str).collect();
        hint.extend(r.any_scopes.iter().map(String::as_str));
        r.scope_hint = hint.join(" ");
    }

    /// Requires `scope` (all-of with the other `scope` calls).
    ///
    /// # Errors
    ///
    /// [`InvalidName`] for an empty name or one with spaces, quotes or control characters.
    pub fn scope(mut self, scope: &str) -> Result<Self, InvalidName> {
        valid_name(scope)?;
        self.reqs().all_scopes.push(scope.to_owned());
        self.update_hint();
        Ok(self)
    }

    /// Requires at least one of `scopes`.
    ///
    /// # Errors
    ///
    /// [`InvalidName`] for an invalid name.
    pub fn any_scope<'a>(
        mut self,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, InvalidName> {
        for s in scopes {
            valid_name(s)?;
            self.reqs().any_scopes.push(s.to_owned());
        }
        self.update_hint();
        Ok(self)
    }

    /// Requires `role` (all-of with the other `role` calls).
    ///
    /// # Errors
    ///
    /// [`InvalidName`] for an invalid name.
    pub fn role(mut self, role: &str) -> Result<Self, InvalidName> {
        valid_name(role)?;
        self.reqs().all_roles.push(role.to_owned());
        Ok(self)
    }

    /// Requires at least one of `roles`.
    ///
    /// # Errors
    ///
    /// [`InvalidName`] for an invalid name.
    pub fn any_role<'a>(
        mut self,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, InvalidName> {
        for r in roles {
            valid_name(r)?;
            self.reqs().any_roles.push(r.to_owned());
        }
        Ok(self)
    }

    /// Requires `predicate(principal, request head)` to hold.
    pub fn predicate(
        mut self,
        predicate: impl Fn(&Principal, &Parts) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.reqs().predicates.push(Arc::new(predicate));
        self
    }

    /// Requires the request's tenant (read by `resolver`) to equal the
    /// principal's tenant.
    pub fn tenant(mut self, resolver: impl TenantResolver) -> Self {
        self.reqs().tenant = Some(Arc::new(resolver));
        self
    }

    /// Answers a cross-tenant request with 404 instead of 403, so a client
    /// cannot learn which tenants exist.
    pub fn hide_cross_tenant(mut self) -> Self {
        self.reqs().hide_cross_tenant = true;
        self
    }

    /// Sets the responder for rejections.
    pub fn responder(mut self, responder: impl RejectionResponder) -> Self {
        self.reqs().responder = SharedResponder(Arc::new(responder));
        self
    }

    /// Sets the `realm` of `WWW-Authenticate` (default `api`).
    ///
    /// # Errors
    ///
    /// [`InvalidName`] when `realm` is empty or has quotes or control characters.
    pub fn realm(mut self, realm: &str) -> Result<Self, InvalidName> {
        if !is_quotable(realm) {
            return Err(InvalidName);
        }
        self.reqs().realm = realm.to_owned();
        Ok(self)
    }

    /// The decision for a request head: the pure part of the layer.
    ///
    /// # Errors
    ///
    /// [`Denied`] with the first requirement that does not hold.
    pub fn check(&self, parts: &Parts) -> Result<(), Denied> {
        let r = &*self.reqs;
        let deny = |error| {
            Err(Denied {
                error,
                hidden: false,
            })
        };
        let Some(principal) = parts.extensions.get::<Principal>() else {
            return deny(AuthError::Unauthenticated);
        };
        if let Some(resolver) = &r.tenant {
            let Some(tenant) = resolver.resolve(parts) else {
                return deny(AuthError::TenantUnresolved);
            };
            if principal.tenant() != Some(&*tenant) {
                return Err(Denied {
                    error: AuthError::CrossTenant,
                    hidden: r.hide_cross_tenant,
                });
            }
        }
        if !principal.has_all_scopes(r.all_scopes.iter().map(String::as_str))
            || (!r.any_scopes.is_empty()
                && !principal.has_any_scope(r.any_scopes.iter().map(String::as_str)))
        {
            return deny(AuthError::InsufficientScope);
        }
        if !r.all_roles.iter().all(|role| principal.has_role(role))
            || (!r.any_roles.is_empty() && !r.any_roles.iter().any(|role| principal.has_role(role)))
        {
            return deny(AuthError::MissingRole);
        }
        if !r.predicates.iter().all(|p| p(principal, parts)) {
            return deny(AuthError::RequirementFailed);
        }
        Ok(())
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Require {
            inner,
            reqs: Arc::clone(&self.reqs),
        }
    }
}

/// Middleware enforcing per-route requirements; see the [module documentation](self).
#[derive(Clone)]
pub struct Require<S> {
    inner: S,
    reqs: Arc<Requirements>,
}

impl<S: fmt::Debug> fmt::Debug for Require<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Require")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Require<S> {
    /// Wraps `inner` with `layer`'s requirements.
    pub fn new(inner: S, layer: &RequireLayer) -> Self {
        layer.layer(inner)
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

impl<S, ReqB, ResB> Service<Request<ReqB>> for Require<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
{
    type Response = Response<GuardBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let layer = RequireLayer {
            reqs: Arc::clone(&self.reqs),
        };
        match layer.check(&parts) {
            Ok(()) => {
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::inner(inner.call(Request::from_parts(parts, body)))
            }
            Err(denied) => {
                let r = &*self.reqs;
                if denied.hidden {
                    let mut response =
                        guardrails_core::Problem::new(ProblemType::NOT_FOUND).into_http_response();
                    guardrails_core::Rejection::new(
                        denied.error.category(),
                        denied.error.reason(),
                        ProblemType::NOT_FOUND,
                    )
                    .insert_into(response.extensions_mut());
                    crate::layer::record_denied(&denied.error);
                    return ResponseFuture::ready(response);
                }
                let scope = (denied.error == AuthError::InsufficientScope
                    && !r.scope_hint.is_empty())
                .then_some(r.scope_hint.as_str());
                ResponseFuture::ready(reject(&r.responder, &denied.error, &r.realm, scope))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardrails_core::AuthMethod;

    fn parts(uri: &str, principal: Option<Principal>) -> Parts {
        let mut r = Request::get(uri).body(()).unwrap();
        if let Some(p) = principal {
            r.extensions_mut().insert(p);
        }
        r.into_parts().0
    }

    fn alice(scope: &str, roles: &[&str]) -> Principal {
        Principal::builder("alice", AuthMethod::Jwt)
            .tenant("acme")
            .scope_str(scope)
            .roles(roles.iter().copied())
            .build()
    }

    #[test]
    #[allow(clippy::type_complexity, reason = "table rows")]
    fn table() {
        let read = RequireLayer::new()
            .scope("invoices:read")
            .unwrap()
            .tenant(PathSegmentAfter::new("tenants"));
        let admin = RequireLayer::new()
            .role("admin")
            .unwrap()
            .tenant(PathSegmentAfter::new("tenants"));
        let any = RequireLayer::new().any_scope(["a", "b"]).unwrap();
        let pred = RequireLayer::new()
            .predicate(|p, parts| p.subject() == "alice" && parts.method == "GET");
        let rows: Vec<(
            &RequireLayer,
            &str,
            Option<Principal>,
            Result<(), AuthError>,
        )> = vec![
            (
                &read,
                "/v1/tenants/acme/invoices",
                Some(alice("invoices:read", &[])),
                Ok(()),
            ),
            (
                &read,
                "/v1/tenants/ac%6De/invoices",
                Some(alice("invoices:read", &[])),
                Ok(()),
            ),
            (
                &read,
                "/v1/tenants/globex/invoices",
                Some(alice("invoices:read", &[])),
                Err(AuthError::CrossTenant),
            ),
            (
                &read,
                "/v1/tenants//invoices",
                Some(alice("invoices:read", &[])),
                Err(AuthError::TenantUnresolved),
            ),
            (
                &read,
                "/v1/tenants/acme/invoices",
                Some(alice("invoices:write", &[])),
                Err(AuthError::InsufficientScope),
            ),
            (
                &read,
                "/v1/tenants/acme/invoices",
                None,
                Err(AuthError::Unauthenticated),
            ),
            (
                &admin,
                "/v1/tenants/acme/invoices/1",
                Some(alice("", &["admin"])),
                Ok(()),
            ),
            (
                &admin,
                "/v1/tenants/acme/invoices/1",
                Some(alice("", &["user"])),
                Err(AuthError::MissingRole),
            ),
            (&any, "/", Some(alice("b", &[])), Ok(())),
            (
                &any,
                "/",
                Some(alice("c", &[])),
                Err(AuthError::InsufficientScope),
            ),
            (&pred, "/", Some(alice("", &[])), Ok(())),
            (
                &pred,
                "/",
                Some(Principal::builder("bob", AuthMethod::Jwt).build()),
                Err(AuthError::RequirementFailed),
            ),
        ];
        for (layer, uri, principal, expected) in rows {
            let got = layer.check(&parts(uri, principal)).map_err(|d| d.error);
            assert_eq!(got, expected, "{uri}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(require_scope("a b").is_err());
        assert!(require_scope("a\"b").is_err());
        assert!(require_role("").is_err());
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%-1"), None);
        assert_eq!(percent_decode("a%2Db").as_deref(), Some("a-b"));
    }
}
