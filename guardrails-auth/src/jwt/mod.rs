//! JSON Web Token verification: issuers, keys, strict validation.
//!
//! A [`JwtVerifier`] trusts one or more [`Issuer`]s. Each issuer has its own
//! keys (static, or a JWKS URL, or OpenID Connect discovery), its own
//! audiences and algorithm allow-list, so a key of one issuer can never
//! verify a token that claims another.
//!
//! Validation is strict by default and runs in this order:
//!
//! 1. the token is exactly three base64url segments, under the credential cap;
//! 2. the JOSE header is parsed here, not trusted to jsonwebtoken: `alg`
//!    `none` in any case, unknown `crit`, `jku`/`x5u`/`jwk`/`x5c`, a `kid`
//!    that is too long or has odd characters, duplicate members, an
//!    unexpected `typ` — all rejected before any key is touched;
//! 3. the issuer is chosen by `iss` (when there are several), the key by exact
//!    `kid`, and the header `alg` must be allowed by the issuer and equal the
//!    key's own `alg`, for a key of the right type (no RS256→HS256 confusion);
//! 4. the signature is verified (jsonwebtoken's crypto provider), before any
//!    claim is read;
//! 5. the claims are read once, with duplicate detection, and validated
//!    strictly: `exp`, `iss`, `aud` and `sub` required and of the right type,
//!    `exp`/`nbf`/`iat` against the clock with the leeway, `iss` equal to the
//!    issuer, `aud` naming one of its audiences; `scope`/`roles`/`tenant` of
//!    the wrong type reject the token.
//!
//! Steps 4 and 5 deliberately do not go through `jsonwebtoken::decode`: it
//! parses the header a second time and the claims twice, and its `Validation`
//! only checks `iss`/`aud` that are configured and present. Here every rule
//! is on, for every issuer, and the attack catalogue in `tests/attacks.rs`
//! covers each one.
//!
//! # Example
//!
//! ```
//! use guardrails_auth::jwt::{Issuer, JwtVerifier};
//! use jsonwebtoken::{encode, EncodingKey, Header};
//! use secrecy::SecretString;
//!
//! let secret = SecretString::from("an HS256 secret of at least 32 bytes!");
//! let verifier = JwtVerifier::builder()
//!     .issuer(Issuer::builder("https://id.example.com")
//!         .audience("invoices")
//!         .hs256_secret(&secret)
//!         .unwrap()
//!         .build()
//!         .unwrap())
//!     .build()
//!     .unwrap();
//!
//! let now = jsonwebtoken::get_current_timestamp();
//! let claims = serde_json::json!({
//!     "sub": "alice", "iss": "https://id.example.com", "aud": "invoices",
//!     "exp": now + 600, "scope": "invoices:read", "tenant": "acme",
//! });
//! let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"an HS256 secret of at least 32 bytes!")).unwrap();
//!
//! let principal = verifier.verify(&token).unwrap();
//! assert_eq!(principal.subject(), "alice");
//! assert_eq!(principal.tenant(), Some("acme"));
//! assert!(principal.has_scope("invoices:read"));
//! ```

pub(crate) mod claims;
pub(crate) mod header;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub mod jwks;
pub mod keys;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guardrails_core::{AuthMethod, Principal};
use jsonwebtoken::Algorithm;
use secrecy::SecretString;

pub use header::{MAX_HEADER_LEN, MAX_KID_LEN, MAX_TOKEN_LEN};
#[cfg(feature = "jwks")]
pub use jwks::JwksConfig;
pub use keys::{KeyError, KeySet, VerifyingKey};

use crate::authenticator::{Authenticator, BoxAuthFuture, Verdict};
use crate::cache::{TokenCache, TokenCacheConfig, Validity, token_hash};
use crate::{AuthError, Credential};

/// The default leeway for `exp`, `nbf` and `iat`: 30 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The largest leeway a builder accepts: 5 minutes.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The asymmetric algorithms a JWKS issuer accepts unless told otherwise.
/// HMAC is never accepted from a key set fetched over the network by default.
pub const DEFAULT_JWKS_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A configuration error of an issuer or verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer identifier is empty.
    #[error("issuer identifier is empty")]
    EmptyIssuer,
    /// The issuer has no audience: tokens for any service would be accepted.
    #[error("issuer {issuer:?} has no audience")]
    NoAudience {
        /// The issuer.
        issuer: String,
    },
    /// The issuer has neither static keys nor a JWKS source.
    #[error("issuer {issuer:?} has no keys")]
    NoKeys {
        /// The issuer.
        issuer: String,
    },
    /// The issuer has both static keys and a JWKS source. A fetched key set
    /// replaces the whole set, so the static keys would stop verifying at
    /// the first fetch, without a word: one source per issuer.
    #[error("issuer {issuer:?} has both static keys and a JWKS source; configure one")]
    KeysAndJwks {
        /// The issuer.
        issuer: String,
    },
    /// The algorithm allow-list is empty.
    #[error("issuer {issuer:?} allows no algorithm")]
    NoAlgorithms {
        /// The issuer.
        issuer: String,
    },
    /// The leeway is larger than [`MAX_LEEWAY`].
    #[error("leeway of {secs} s is larger than the maximum of 300 s")]
    LeewayTooLarge {
        /// The leeway asked for, in seconds.
        secs: u64,
    },
    /// Two issuers with the same identifier.
    #[error("issuer {issuer:?} is configured twice")]
    DuplicateIssuer {
        /// The issuer.
        issuer: String,
    },
    /// The verifier has no issuer.
    #[error("no issuer configured")]
    NoIssuer,
    /// A key could not be built.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A JWKS or discovery URL is not `https` (see `insecure_allow_http`), or
    /// is not a valid URL.
    #[error("{what} URL must be an absolute https URL")]
    InsecureUrl {
        /// Which URL.
        what: &'static str,
    },
    /// The JWKS client could not be set up (TLS roots).
    #[error("cannot set up the JWKS client")]
    Client,
}

#[derive(Clone)]
enum KeySource {
    Static(Arc<KeySet>),
    #[cfg(feature = "jwks")]
    Jwks(Arc<jwks::JwksCache>),
}

/// A trusted issuer: its identifier, audiences, keys and rules.
///
/// Build it with [`Issuer::builder`]. Cheap to clone.
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<IssuerInner>,
}

struct IssuerInner {
    iss: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    keys: KeySource,
    leeway: u64,
    typ: Option<String>,
    tenant_claim: String,
    roles_claim: String,
    /// The only tenants this issuer may name (`None`: any).
    tenants: Option<Vec<String>>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        f.debug_struct("Issuer")
            .field("iss", &i.iss)
            .field("audiences", &i.audiences)
            .field("algorithms", &i.algorithms)
            .field(
                "keys",
                &match &i.keys {
                    KeySource::Static(k) => format!("{} static", k.len()),
                    #[cfg(feature = "jwks")]
                    KeySource::Jwks(_) => "jwks".to_owned(),
                },
            )
            .field("leeway", &i.leeway)
            .field("typ", &i.typ)
            .field("tenants", &i.tenants)
            .finish()
    }
}

/// Builds an [`Issuer`].
#[must_use]
pub struct IssuerBuilder {
    iss: String,
    audiences: Vec<String>,
    algorithms: Option<Vec<Algorithm>>,
    keys: KeySet,
    #[cfg(feature = "jwks")]
    jwks: Option<JwksConfig>,
    leeway: Duration,
    typ: Option<String>,
    tenant_claim: String,
    roles_claim: String,
    tenants: Option<Vec<String>>,
}

impl fmt::Debug for IssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerBuilder")
            .field("iss", &self.iss)
            .field("audiences", &self.audiences)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Starts an issuer whose tokens carry `iss` exactly equal to `iss`.
    pub fn builder(iss: impl Into<String>) -> IssuerBuilder {
        IssuerBuilder {
            iss: iss.into(),
            audiences: Vec::new(),
            algorithms: None,
            keys: KeySet::new(),
            #[cfg(feature = "jwks")]
            jwks: None,
            leeway: DEFAULT_LEEWAY,
            typ: None,
            tenant_claim: "tenant".to_owned(),
            roles_claim: "roles".to_owned(),
            tenants: None,
        }
    }

    /// The issuer identifier.
    pub fn iss(&self) -> &str {
        &self.inner.iss
    }

    /// The current key set (for a JWKS issuer, the last good one fetched).
    pub fn keys(&self) -> Arc<KeySet> {
        match &self.inner.keys {
            KeySource::Static(k) => Arc::clone(k),
            #[cfg(feature = "jwks")]
            KeySource::Jwks(c) => c.keys(),
        }
    }

    /// Statistics of the JWKS cache, `None` for static keys.
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn jwks_stats(&self) -> Option<jwks::JwksStats> {
        match &self.inner.keys {
            KeySource::Static(_) => None,
            KeySource::Jwks(c) => Some(c.stats()),
        }
    }

    /// Fetches the JWKS now (and the discovery document first, when used).
    /// Useful at start-up, so the first request does not wait.
    ///
    /// # Errors
    ///
    /// [`jwks::FetchError`] when the fetch fails; the last good keys stay.
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub async fn refresh(&self) -> Result<(), jwks::FetchError> {
        match &self.inner.keys {
            KeySource::Static(_) => Ok(()),
            KeySource::Jwks(c) => c.refresh(jwks::Trigger::Manual).await,
        }
    }

    fn epoch(&self) -> u64 {
        match &self.inner.keys {
            KeySource::Static(_) => 0,
            #[cfg(feature = "jwks")]
            KeySource::Jwks(c) => c.epoch(),
        }
    }
}

impl IssuerBuilder {
    /// Adds an accepted audience; at least one is required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Adds a static verification key.
    pub fn key(mut self, key: VerifyingKey) -> Self {
        self.keys = std::mem::take(&mut self.keys).with(key);
        self
    }

    /// Adds every key of `keys` (for example a JWK set read with
    /// [`KeySet::from_jwks_json`]).
    pub fn keys(mut self, keys: &KeySet) -> Self {
        for key in keys.iter() {
            self.keys = std::mem::take(&mut self.keys).with(key.clone());
        }
        self
    }

    /// Adds an HS256 key from a secret (at least 32 bytes).
    ///
    /// # Errors
    ///
    /// [`KeyError::ShortSecret`] for a short secret.
    pub fn hs256_secret(self, secret: &SecretString) -> Result<Self, KeyError> {
        let key = VerifyingKey::hmac(&keys::hmac_secret(secret), Algorithm::HS256)?;
        Ok(self.key(key))
    }

    /// Fetches keys from a JWKS URL or by OpenID Connect discovery; the
    /// issuer then has no static keys ([`ConfigError::KeysAndJwks`]).
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn jwks(mut self, config: JwksConfig) -> Self {
        self.jwks = Some(config);
        self
    }

    /// Sets the algorithm allow-list. By default: the algorithms of the static
    /// keys, or [`DEFAULT_JWKS_ALGORITHMS`] for a JWKS issuer.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Sets the clock-skew leeway for `exp`, `nbf` and `iat` (default 30 s,
    /// at most 5 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Requires the `typ` header to be `typ` (compared case-insensitively,
    /// with or without the `application/` prefix), for example `at+jwt` for
    /// RFC 9068 access tokens.
    pub fn require_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// The claim holding the tenant (default `tenant`).
    pub fn tenant_claim(mut self, claim: impl Into<String>) -> Self {
        self.tenant_claim = claim.into();
        self
    }

    /// The only tenants this issuer's tokens may name: a token of it whose
    /// tenant claim is missing or not one of them is invalid (401
    /// `invalid_token`).
    ///
    /// With several trusted issuers, a tenant boundary compares only the
    /// tenant a token names; without this list any trusted issuer can name
    /// any tenant. Give each issuer that speaks for some tenants only (an
    /// identity provider per customer) the tenants it speaks for.
    ///
    /// ```
    /// use guardrails_auth::jwt::Issuer;
    /// use secrecy::SecretString;
    ///
    /// let globex_sso = Issuer::builder("https://sso.globex.example")
    ///     .audience("invoices")
    ///     .hs256_secret(&SecretString::from("a secret of at least thirty-two bytes"))?
    ///     .tenants(["globex"])
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tenants<T: Into<String>>(mut self, tenants: impl IntoIterator<Item = T>) -> Self {
        self.tenants = Some(tenants.into_iter().map(Into::into).collect());
        self
    }

    /// The claim holding the roles (default `roles`).
    pub fn roles_claim(mut self, claim: impl Into<String>) -> Self {
        self.roles_claim = claim.into();
        self
    }

    /// The issuer.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the issuer is empty, has no audience, no keys, no
    /// algorithm, a leeway above 5 minutes, or an insecure JWKS URL.
    pub fn build(self) -> Result<Issuer, ConfigError> {
        crate::crypto::ensure_provider();
        if self.iss.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        if self.audiences.is_empty() {
            return Err(ConfigError::NoAudience { issuer: self.iss });
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge {
                secs: self.leeway.as_secs(),
            });
        }
        #[cfg(feature = "jwks")]
        let is_jwks = self.jwks.is_some();
        #[cfg(not(feature = "jwks"))]
        let is_jwks = false;
        if !is_jwks && self.keys.is_empty() {
            return Err(ConfigError::NoKeys { issuer: self.iss });
        }
        let algorithms = match self.algorithms {
            Some(a) => a,
            None if is_jwks => DEFAULT_JWKS_ALGORITHMS.to_vec(),
            None => {
                let mut a: Vec<Algorithm> = Vec::new();
                for key in self.keys_iter() {
                    if let Some(alg) = key.algorithm()
                        && !a.contains(&alg)
                    {
                        a.push(alg);
                    }
                }
                a
            }
        };
        if algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms { issuer: self.iss });
        }
        let leeway = self.leeway.as_secs();
        let keys = {
            #[cfg(feature = "jwks")]
            {
                match self.jwks {
                    Some(_) if !self.keys.is_empty() => {
                        return Err(ConfigError::KeysAndJwks { issuer: self.iss });
                    }
                    Some(config) => KeySource::Jwks(jwks::JwksCache::new(
                        config,
                        &self.iss,
                        algorithms.clone(),
                        self.keys,
                    )?),
                    None if self.keys.is_empty() => {
                        return Err(ConfigError::NoKeys { issuer: self.iss });
                    }
                    None => KeySource::Static(Arc::new(self.keys)),
                }
            }
            #[cfg(not(feature = "jwks"))]
            {
                if self.keys.is_empty() {
                    return Err(ConfigError::NoKeys { issuer: self.iss });
                }
                KeySource::Static(Arc::new(self.keys))
            }
        };
        Ok(Issuer {
            inner: Arc::new(IssuerInner {
                iss: self.iss,
                audiences: self.audiences,
                algorithms,
                keys,
                leeway,
                typ: self.typ,
                tenant_claim: self.tenant_claim,
                roles_claim: self.roles_claim,
                tenants: self.tenants,
            }),
        })
    }

    fn keys_iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter()
    }
}

/// Verifies JWTs for one or more issuers; see the [module documentation](self).
///
/// Cheap to clone (one reference count). Implements [`Authenticator`] for
/// [`AuthLayer`](crate::AuthLayer).
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    issuers: Vec<Issuer>,
    cache: Option<TokenCache>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuers", &self.inner.issuers)
            .field("cache", &self.inner.cache.is_some())
            .finish()
    }
}

/// Builds a [`JwtVerifier`].
#[derive(Debug, Default)]
#[must_use]
pub struct JwtVerifierBuilder {
    issuers: Vec<Issuer>,
    cache: Option<TokenCacheConfig>,
}

impl JwtVerifierBuilder {
    /// Trusts `issuer`.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Turns on the verified-token cache (see [`crate::cache`]).
    pub fn cache(mut self, config: TokenCacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// The verifier. With a tokio runtime running, JWKS issuers start their
    /// background refresh (and their first fetch) now.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoIssuer`] or [`ConfigError::DuplicateIssuer`].
    pub fn build(self) -> Result<JwtVerifier, ConfigError> {
        crate::crypto::ensure_provider();
        if self.issuers.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        for (i, a) in self.issuers.iter().enumerate() {
            if self.issuers[..i].iter().any(|b| b.iss() == a.iss()) {
                return Err(ConfigError::DuplicateIssuer {
                    issuer: a.iss().to_owned(),
                });
            }
        }
        #[cfg(feature = "jwks")]
        for issuer in &self.issuers {
            if let KeySource::Jwks(c) = &issuer.inner.keys {
                c.start_background_refresh();
            }
        }
        Ok(JwtVerifier {
            inner: Arc::new(VerifierInner {
                issuers: self.issuers,
                cache: self.cache.map(TokenCache::new),
            }),
        })
    }
}

enum Step {
    Done(Result<Principal, AuthError>),
    /// Fetch the key set, or wait for the fetch already running, then verify
    /// again.
    #[cfg(feature = "jwks")]
    Refetch(Refetch),
}

/// The slow path of an unknown `kid` at a JWKS issuer.
#[cfg(feature = "jwks")]
enum Refetch {
    /// This request claimed the (rate-limited) refetch.
    Fetch(jwks::RefetchClaim),
    /// Another fetch is claimed or running, or the keys changed since they
    /// were looked up: wait for it (registered before the state was read).
    Wait(jwks::FetchWaiter),
}

/// The wall clock in UNIX seconds. A clock set before 1970 fails closed: it
/// reads as the end of time, so every token is expired (0 would make every
/// token without `nbf` valid forever).
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(u64::MAX, |d| d.as_secs())
}

fn typ_matches(expected: &str, got: &str) -> bool {
    let strip = |s: &str| -> String {
        let lower = s.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    };
    strip(expected) == strip(got)
}

impl JwtVerifier {
    /// Starts a verifier.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::default()
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> &[Issuer] {
        &self.inner.issuers
    }

    /// Verifies `token` with the keys at hand, without fetching: an unknown
    /// `kid` of a JWKS issuer is [`AuthError::UnknownKey`] here, while the
    /// [`Authenticator`] implementation may refetch the key set first.
    ///
    /// # Errors
    ///
    /// The [`AuthError`] that rejects the token.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        match self.step(token, false) {
            Step::Done(r) => r,
            #[cfg(feature = "jwks")]
            Step::Refetch(..) => Err(AuthError::UnknownKey),
        }
    }

    /// Cache statistics `(hits, misses)`, `None` without a cache.
    pub fn cache_stats(&self) -> Option<(u64, u64)> {
        self.inner.cache.as_ref().map(TokenCache::stats)
    }

    /// The number of entries in the verified-token cache (0 without one).
    pub fn cache_len(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Empties the verified-token cache.
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.clear();
        }
    }

    fn epoch(&self) -> u64 {
        self.inner
            .issuers
            .iter()
            .fold(0u64, |acc, i| acc.wrapping_add(i.epoch()))
    }

    fn step(&self, token: &str, allow_refetch: bool) -> Step {
        let now = now_secs();
        let cached = self.inner.cache.as_ref().map(|cache| {
            let hash = token_hash(token);
            let epoch = self.epoch();
            (cache, hash, epoch)
        });
        if let Some((cache, hash, epoch)) = &cached
            && let Some(p) = cache.get(hash, now, *epoch)
        {
            return Step::Done(Ok(p));
        }
        let result = self.verify_uncached(token, now, allow_refetch);
        match result {
            Ok((principal, validity)) => {
                if let Some((cache, hash, epoch)) = cached {
                    cache.insert(hash, principal.clone(), now, validity, epoch);
                }
                Step::Done(Ok(principal))
            }
            Err(StepErr::Fail(e)) => Step::Done(Err(e)),
            #[cfg(feature = "jwks")]
            Err(StepErr::Refetch(r)) => Step::Refetch(r),
        }
    }

    fn choose_issuer(&self, payload: &[u8]) -> Result<&Issuer, AuthError> {
        if let [only] = self.inner.issuers.as_slice() {
            return Ok(only);
        }
        #[derive(serde::Deserialize)]
        struct Peek {
            iss: Option<serde_json::Value>,
        }
        // Unverified: only picks whose keys to try. The claims are read
        // (with duplicate detection) after the signature verifies.
        let peek: Peek = serde_json::from_slice(payload).map_err(|e| {
            if e.to_string().contains("duplicate field") {
                AuthError::DuplicateClaim
            } else {
                AuthError::MalformedClaims
            }
        })?;
        let iss = match peek.iss {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return Err(AuthError::InvalidClaim),
            None => return Err(AuthError::MissingClaim),
        };
        self.inner
            .issuers
            .iter()
            .find(|i| i.iss() == iss)
            .ok_or(AuthError::UntrustedIssuer)
    }

    #[allow(clippy::type_complexity)]
    fn verify_uncached(
        &self,
        token: &str,
        now: u64,
        allow_refetch: bool,
    ) -> Result<(Principal, Validity), StepErr> {
        let segments = header::split(token)?;
        let head = header::parse(segments.header)?;
        let payload = URL_SAFE_NO_PAD
            .decode(segments.payload)
            .map_err(|_| AuthError::Malformed)?;
        let issuer = self.choose_issuer(&payload)?;
        let inner = &*issuer.inner;
        if let Some(expected) = &inner.typ {
            match &head.typ {
                Some(got) if typ_matches(expected, got) => {}
                _ => return Err(AuthError::WrongType.into()),
            }
        }
        // A verifier built outside a runtime, or in one that has shut down,
        // starts its key refresh here (one atomic load once it runs).
        #[cfg(feature = "jwks")]
        if let KeySource::Jwks(c) = &inner.keys {
            c.start_background_refresh();
        }
        // Read before the keys: a key set stored after this read is noticed
        // below, when the kid is unknown.
        #[cfg(feature = "jwks")]
        let epoch_before = issuer.epoch();
        let keys = issuer.keys();
        let key = match keys.select(head.kid.as_deref(), head.alg, &inner.algorithms) {
            Ok(key) => key,
            Err(AuthError::UnknownKey) => {
                #[cfg(feature = "jwks")]
                if allow_refetch
                    && head.kid.is_some()
                    && let KeySource::Jwks(c) = &inner.keys
                {
                    // Rate-limited: at most one fetch per interval, whatever
                    // the number of unknown kids. A request that arrives
                    // while a fetch is claimed or runs waits for it instead.
                    if let Some(claim) = c.try_claim_refetch() {
                        return Err(StepErr::Refetch(Refetch::Fetch(claim)));
                    }
                    if let Some(waiter) = c.waiter(epoch_before) {
                        return Err(StepErr::Refetch(Refetch::Wait(waiter)));
                    }
                }
                #[cfg(not(feature = "jwks"))]
                let _ = allow_refetch;
                // A JWKS issuer whose keys could never be fetched: the
                // server cannot verify anything; 503, so clients retry.
                #[cfg(feature = "jwks")]
                if keys.is_empty() && matches!(inner.keys, KeySource::Jwks(_)) {
                    return Err(AuthError::KeysUnavailable.into());
                }
                return Err(AuthError::UnknownKey.into());
            }
            Err(e) => return Err(e.into()),
        };
        // The signature, with the key bound to the header's algorithm
        // (HMAC with a precomputed key state; others through jsonwebtoken).
        if !key.verify_signature(segments.message.as_bytes(), segments.signature, head.alg) {
            return Err(AuthError::BadSignature.into());
        }
        let mut c: claims::Claims = serde_json::from_slice(&payload).map_err(|e| {
            if e.to_string().starts_with(claims::DUPLICATE_CLAIM) {
                AuthError::DuplicateClaim
            } else {
                AuthError::MalformedClaims
            }
        })?;
        let (principal, exp, nbf) = build_principal(&mut c, inner, now)?;
        Ok((
            principal,
            Validity {
                exp,
                nbf,
                leeway: inner.leeway,
            },
        ))
    }
}

enum StepErr {
    Fail(AuthError),
    #[cfg(feature = "jwks")]
    Refetch(Refetch),
}

impl From<AuthError> for StepErr {
    fn from(e: AuthError) -> Self {
        Self::Fail(e)
    }
}

/// The registered claims, strictly: `exp`, `iss`, `aud` and `sub` required
/// and of the right type; `exp`, `nbf`, `iat` against the clock with the
/// issuer's leeway; `iss` equal to the issuer; `aud` (a string or an array of
/// strings) naming one of the issuer's audiences.
fn validate(
    c: &claims::Claims,
    issuer: &IssuerInner,
    now: u64,
) -> Result<(u64, Option<u64>), AuthError> {
    use claims::numeric_date;
    let leeway = issuer.leeway;
    let (Some(exp), Some(iss), Some(aud), Some(_)) = (&c.exp, &c.iss, &c.aud, &c.sub) else {
        return Err(AuthError::MissingClaim);
    };
    let exp = numeric_date(exp, false).ok_or(AuthError::InvalidClaim)?;
    // RFC 7519 §4.1.4: the current time must be before `exp`.
    if exp.saturating_add(leeway) <= now {
        return Err(AuthError::Expired);
    }
    let nbf = match &c.nbf {
        Some(v) => {
            let nbf = numeric_date(v, true).ok_or(AuthError::InvalidClaim)?;
            if nbf > now.saturating_add(leeway) {
                return Err(AuthError::NotYetValid);
            }
            Some(nbf)
        }
        None => None,
    };
    if let Some(iat) = &c.iat
        && numeric_date(iat, true).ok_or(AuthError::InvalidClaim)? > now.saturating_add(leeway)
    {
        return Err(AuthError::IssuedInFuture);
    }
    match iss {
        serde_json::Value::String(iss) if *iss == issuer.iss => {}
        serde_json::Value::String(_) => return Err(AuthError::UntrustedIssuer),
        _ => return Err(AuthError::InvalidClaim),
    }
    let for_us = |a: &str| issuer.audiences.iter().any(|ours| ours == a);
    let aud_ok = match aud {
        serde_json::Value::String(a) => for_us(a),
        serde_json::Value::Array(items) => {
            let mut any = false;
            for item in items {
                match item {
                    serde_json::Value::String(a) => any |= for_us(a),
                    _ => return Err(AuthError::InvalidClaim),
                }
            }
            any
        }
        _ => return Err(AuthError::InvalidClaim),
    };
    if !aud_ok {
        return Err(AuthError::WrongAudience);
    }
    Ok((exp, nbf))
}

fn build_principal(
    c: &mut claims::Claims,
    issuer: &IssuerInner,
    now: u64,
) -> Result<(Principal, u64, Option<u64>), AuthError> {
    use claims::{string, strings};
    let (exp, nbf) = validate(c, issuer, now)?;
    let sub = c
        .sub
        .as_ref()
        .and_then(string)
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::InvalidClaim)?;
    // Checked: on some platforms (Windows) `SystemTime` ends long before
    // the largest `exp` the claims accept.
    let expires_at = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(exp))
        .ok_or(AuthError::InvalidClaim)?;
    let mut builder = Principal::builder(sub, AuthMethod::Jwt)
        .issuer(issuer.iss.as_str())
        .expires_at(expires_at);
    let scopes = match (&c.scope, &c.scp) {
        (Some(v), _) => strings(v, true).ok_or(AuthError::InvalidClaim)?,
        (None, Some(v)) => strings(v, true).ok_or(AuthError::InvalidClaim)?,
        (None, None) => Vec::new(),
    };
    builder = builder.scopes(scopes);
    let tenant = if issuer.tenant_claim == "tenant" {
        c.tenant.take()
    } else {
        c.extra.remove(&issuer.tenant_claim)
    };
    match tenant {
        Some(serde_json::Value::String(t))
            if !t.is_empty()
                && issuer
                    .tenants
                    .as_ref()
                    .is_none_or(|allowed| allowed.contains(&t)) =>
        {
            builder = builder.tenant(t);
        }
        // An issuer limited to some tenants names one of them.
        None if issuer.tenants.is_none() => {}
        _ => return Err(AuthError::InvalidClaim),
    }
    let roles = if issuer.roles_claim == "roles" {
        c.roles.take()
    } else {
        c.extra.remove(&issuer.roles_claim)
    };
    if let Some(r) = roles {
        builder = builder.roles(strings(&r, false).ok_or(AuthError::InvalidClaim)?);
    }
    if let Some(jti) = &c.jti {
        builder = builder.token_id(string(jti).ok_or(AuthError::InvalidClaim)?);
    }
    let principal = builder.claims(std::mem::take(&mut c.extra)).build();
    Ok((principal, exp, nbf))
}

impl Authenticator for JwtVerifier {
    type Future = BoxAuthFuture;

    fn authenticate(&self, credential: &Credential<'_>) -> Verdict<Self::Future> {
        match self.step(credential.value(), true) {
            Step::Done(r) => Verdict::Ready(r),
            #[cfg(feature = "jwks")]
            Step::Refetch(refetch) => {
                // The slow path: a `kid` not in the key set, and a fetch to
                // make or to wait for. The token is copied once here.
                let this = self.clone();
                let token = credential.value().to_owned();
                Verdict::Pending(Box::pin(async move {
                    match refetch {
                        Refetch::Fetch(claim) => {
                            // A failed fetch keeps the last good keys
                            // (stale-if-error). The claim is released only
                            // after the keys are stored.
                            let fetch = async move {
                                let _ = claim.cache().refresh(jwks::Trigger::UnknownKid).await;
                                drop(claim);
                            };
                            // In a task of its own where there is a runtime:
                            // a request dropped mid-fetch (the client went
                            // away, an outer timeout) must not abort the one
                            // fetch its claim allows per interval, or keys
                            // rotated in would wait for the next interval.
                            match tokio::runtime::Handle::try_current() {
                                Ok(runtime) => {
                                    let _ = runtime.spawn(fetch).await;
                                }
                                Err(_) => fetch.await,
                            }
                        }
                        Refetch::Wait(waiter) => waiter.wait().await,
                    }
                    match this.step(&token, false) {
                        Step::Done(r) => r,
                        Step::Refetch(..) => Err(AuthError::UnknownKey),
                    }
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison() {
        assert!(typ_matches("at+jwt", "AT+JWT"));
        assert!(typ_matches("at+jwt", "application/at+jwt"));
        assert!(!typ_matches("at+jwt", "JWT"));
    }

    #[test]
    fn builder_errors() {
        let s = SecretString::from("x".repeat(32));
        assert_eq!(
            Issuer::builder("i")
                .hs256_secret(&s)
                .unwrap()
                .build()
                .unwrap_err(),
            ConfigError::NoAudience { issuer: "i".into() }
        );
        assert_eq!(
            Issuer::builder("i").audience("a").build().unwrap_err(),
            ConfigError::NoKeys { issuer: "i".into() }
        );
        assert_eq!(
            Issuer::builder("i")
                .audience("a")
                .hs256_secret(&s)
                .unwrap()
                .leeway(Duration::from_secs(301))
                .build()
                .unwrap_err(),
            ConfigError::LeewayTooLarge { secs: 301 }
        );
        assert_eq!(
            JwtVerifier::builder().build().unwrap_err(),
            ConfigError::NoIssuer
        );
        let i = Issuer::builder("i")
            .audience("a")
            .hs256_secret(&s)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            JwtVerifier::builder()
                .issuer(i.clone())
                .issuer(i)
                .build()
                .unwrap_err(),
            ConfigError::DuplicateIssuer { issuer: "i".into() }
        );
    }
}
