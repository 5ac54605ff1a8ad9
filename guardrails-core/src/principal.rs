//! The verified identity of a request.
//!
//! Authentication places a [`Principal`] into the request extensions once a
//! credential has been verified; authorization checks, handlers and the audit
//! layer read it from there. Identity never comes from anywhere else: a
//! request without a `Principal` is anonymous.
//!
//! A `Principal` is cheap to clone (one reference count).
//!
//! # Example
//!
//! ```
//! use guardrails_core::{AuthMethod, Principal};
//! use serde::Deserialize;
//!
//! let mut claims = serde_json::Map::new();
//! claims.insert("plan".into(), serde_json::json!({ "name": "pro", "seats": 25 }));
//!
//! let principal = Principal::builder("user-42", AuthMethod::Jwt)
//!     .tenant("acme")
//!     .scopes(["invoices:read", "invoices:write"])
//!     .roles(["admin"])
//!     .issuer("https://id.example.com")
//!     .claims(claims)
//!     .build();
//!
//! assert!(principal.has_scope("invoices:read"));
//! assert!(principal.has_all_scopes(["invoices:read", "invoices:write"]));
//! assert!(principal.has_role("admin"));
//! assert_eq!(principal.tenant(), Some("acme"));
//!
//! #[derive(Deserialize)]
//! struct Plan { name: String, seats: u32 }
//! let plan: Plan = principal.claim("plan").unwrap().unwrap();
//! assert_eq!((plan.name.as_str(), plan.seats), ("pro", 25));
//!
//! // Handlers read it from the request extensions.
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(principal);
//! let who = request.extensions().get::<Principal>().map(Principal::subject);
//! assert_eq!(who, Some("user-42"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// How a principal proved its identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A signed JSON Web Token.
    Jwt,
    /// An API key.
    ApiKey,
    /// Another method, named by a short, static, low-cardinality string.
    Other(&'static str),
}

impl AuthMethod {
    /// A short name for logs, metrics and audit records: `jwt`, `api_key`, or
    /// the name of [`AuthMethod::Other`].
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
struct Inner {
    subject: String,
    method: AuthMethod,
    tenant: Option<String>,
    scopes: Vec<String>,
    roles: Vec<String>,
    issuer: Option<String>,
    token_id: Option<String>,
    expires_at: Option<SystemTime>,
    claims: Map<String, Value>,
}

/// A verified identity: who, of which tenant, allowed what, and how it
/// authenticated. See the [module documentation](self).
///
/// Build it with [`Principal::builder`]. It holds no credential: the token or
/// key it was verified from is never kept.
#[derive(Clone)]
pub struct Principal {
    inner: Arc<Inner>,
}

impl Principal {
    /// Starts a principal for `subject`, authenticated by `method`.
    pub fn builder(subject: impl Into<String>, method: AuthMethod) -> PrincipalBuilder {
        PrincipalBuilder {
            inner: Inner {
                subject: subject.into(),
                method,
                tenant: None,
                scopes: Vec::new(),
                roles: Vec::new(),
                issuer: None,
                token_id: None,
                expires_at: None,
                claims: Map::new(),
            },
        }
    }

    /// The subject: a stable identifier of the user or client (`sub`).
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// How the principal authenticated.
    pub fn method(&self) -> &AuthMethod {
        &self.inner.method
    }

    /// The tenant the principal belongs to, if the deployment has tenants.
    pub fn tenant(&self) -> Option<&str> {
        self.inner.tenant.as_deref()
    }

    /// The granted scopes, sorted and without duplicates.
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// The granted roles, sorted and without duplicates.
    pub fn roles(&self) -> &[String] {
        &self.inner.roles
    }

    /// The issuer that vouched for the principal (`iss`), if any.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// The credential's own identifier (`jti`, or an API key's id), if any.
    pub fn token_id(&self) -> Option<&str> {
        self.inner.token_id.as_deref()
    }

    /// When the credential expires, if it does.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.inner.expires_at
    }

    /// Whether the principal was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        contains(&self.inner.scopes, scope)
    }

    /// Whether the principal was granted every scope in `scopes`.
    pub fn has_all_scopes<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> bool {
        scopes.into_iter().all(|s| self.has_scope(s))
    }

    /// Whether the principal was granted at least one scope in `scopes`.
    pub fn has_any_scope<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> bool {
        scopes.into_iter().any(|s| self.has_scope(s))
    }

    /// Whether the principal has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        contains(&self.inner.roles, role)
    }

    /// Every claim of the credential that is not mapped to a field above.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.inner.claims
    }

    /// The custom claim `name`, deserialized into `T`.
    ///
    /// `None` when the claim is absent.
    ///
    /// # Errors
    ///
    /// The inner `Err` when the claim does not have the shape of `T`.
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Option<Result<T, serde_json::Error>> {
        self.inner
            .claims
            .get(name)
            .map(|value| T::deserialize(value))
    }
}

/// Debug shows who, never the custom claims, which may carry personal data.
impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_inner("Principal", &self.inner, f)
    }
}

/// The fields of a principal, its claims counted rather than shown (they
/// may hold anything an identity provider put in the token).
fn debug_inner(name: &str, inner: &Inner, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(name)
        .field("subject", &inner.subject)
        .field("method", &inner.method)
        .field("tenant", &inner.tenant)
        .field("scopes", &inner.scopes)
        .field("roles", &inner.roles)
        .field("issuer", &inner.issuer)
        .field("token_id", &inner.token_id)
        .field("expires_at", &inner.expires_at)
        .field("claims", &format_args!("[{} claims]", inner.claims.len()))
        .finish()
}

impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&*self.inner, &*other.inner);
        Arc::ptr_eq(&self.inner, &other.inner)
            || (a.subject == b.subject
                && a.method == b.method
                && a.tenant == b.tenant
                && a.scopes == b.scopes
                && a.roles == b.roles
                && a.issuer == b.issuer
                && a.token_id == b.token_id
                && a.expires_at == b.expires_at
                && a.claims == b.claims)
    }
}

impl Eq for Principal {}

fn contains(sorted: &[String], item: &str) -> bool {
    sorted.binary_search_by(|s| s.as_str().cmp(item)).is_ok()
}

fn sorted_unique<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut v: Vec<String> = items.into_iter().map(Into::into).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Builds a [`Principal`]; see [`Principal::builder`].
#[must_use]
pub struct PrincipalBuilder {
    inner: Inner,
}

impl fmt::Debug for PrincipalBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_inner("PrincipalBuilder", &self.inner, f)
    }
}

impl PrincipalBuilder {
    /// Sets the tenant.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.inner.tenant = Some(tenant.into());
        self
    }

    /// Sets the granted scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.scopes = sorted_unique(scopes);
        self
    }

    /// Sets the scopes from an OAuth 2.0 `scope` string (space-separated).
    pub fn scope_str(self, scope: &str) -> Self {
        self.scopes(scope.split(' ').filter(|s| !s.is_empty()))
    }

    /// Sets the roles.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.roles = sorted_unique(roles);
        self
    }

    /// Sets the issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.inner.issuer = Some(issuer.into());
        self
    }

    /// Sets the credential's identifier.
    pub fn token_id(mut self, id: impl Into<String>) -> Self {
        self.inner.token_id = Some(id.into());
        self
    }

    /// Sets the credential's expiry.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.inner.expires_at = Some(at);
        self
    }

    /// Sets the custom claims.
    pub fn claims(mut self, claims: Map<String, Value>) -> Self {
        self.inner.claims = claims;
        self
    }

    /// Adds one custom claim.
    pub fn claim(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.inner
            .claims
            .insert(name.into().into_owned(), value.into());
        self
    }

    /// The principal.
    pub fn build(self) -> Principal {
        Principal {
            inner: Arc::new(self.inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_roles_are_sorted_deduplicated_and_exact() {
        let p = Principal::builder("s", AuthMethod::ApiKey)
            .scope_str("  b:write a:read  b:write ")
            .roles(["z", "admin", "z"])
            .build();
        assert_eq!(p.scopes(), ["a:read", "b:write"]);
        assert_eq!(p.roles(), ["admin", "z"]);
        assert!(p.has_scope("a:read"));
        assert!(!p.has_scope("a:rea"));
        assert!(!p.has_scope("A:READ"));
        assert!(!p.has_scope(""));
        assert!(p.has_any_scope(["x", "b:write"]));
        assert!(!p.has_all_scopes(["a:read", "x"]));
        assert!(p.has_all_scopes([]));
        assert!(!p.has_any_scope([]));
        assert!(!p.has_role("ADMIN"));
    }

    #[test]
    fn claims_are_typed_on_demand() {
        let p = Principal::builder("s", AuthMethod::Jwt)
            .claim("seats", 3)
            .claim("org", "acme")
            .build();
        assert_eq!(p.claim::<u32>("seats").unwrap().unwrap(), 3);
        assert!(p.claim::<u32>("org").unwrap().is_err());
        assert!(p.claim::<u32>("absent").is_none());
    }

    #[test]
    fn debug_hides_custom_claims() {
        let p = Principal::builder("s", AuthMethod::Jwt)
            .claim("email", "someone@example.com")
            .build();
        let debug = format!("{p:?}");
        assert!(debug.contains("\"s\""));
        assert!(!debug.contains("someone@example.com"), "{debug}");
        assert!(debug.contains("[1 claims]"));
        // The builder too.
        let builder =
            Principal::builder("s", AuthMethod::Jwt).claim("email", "someone@example.com");
        let debug = format!("{builder:?}");
        assert!(debug.starts_with("PrincipalBuilder"), "{debug}");
        assert!(!debug.contains("someone@example.com"), "{debug}");
    }

    #[test]
    fn method_names_are_stable() {
        assert_eq!(AuthMethod::Jwt.as_str(), "jwt");
        assert_eq!(AuthMethod::ApiKey.to_string(), "api_key");
        assert_eq!(AuthMethod::Other("mtls").as_str(), "mtls");
    }
}
