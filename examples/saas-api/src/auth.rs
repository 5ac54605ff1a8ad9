//! Authentication and authorization of the API, with guardrails-auth.
//!
//! - [`layer`] builds the [`AuthLayer`] from the settings: tokens of
//!   `auth.issuer` for `auth.audience`, verified with the keys of
//!   `auth.jwks_url`, or found by OpenID Connect discovery from the issuer,
//!   or (development) the HS256 secret `auth.hs256_secret`. Verified tokens
//!   are cached. `/healthz` and `/metrics` are public; everything else,
//!   unknown paths included, needs a valid bearer token.
//! - [`read()`], [`write()`] and [`admin()`] are the per-route requirements of
//!   the invoice routes, each with the tenant boundary: the `{tenant}` in
//!   the path must equal the token's `tenant` claim, else 403.
//! - [`TokenArgs`] / [`issue_token`] implement `saas-api token` (development
//!   only): a token signed with the development secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guardrails_auth::jwt::{ConfigError, Issuer, JwksConfig, JwtVerifier};
use guardrails_auth::require::PathParam;
use guardrails_auth::{AuthLayer, RequireLayer, TokenCacheConfig};
use guardrails_config::Environment;
use jsonwebtoken::{EncodingKey, Header};
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// The scope that lists and reads invoices.
pub const SCOPE_READ: &str = "invoices:read";
/// The scope that creates invoices.
pub const SCOPE_WRITE: &str = "invoices:write";
/// The role that deletes invoices.
pub const ROLE_ADMIN: &str = "admin";

/// Why authentication could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The issuer, keys or JWKS URL are invalid.
    #[error("auth settings: {0}")]
    Config(#[from] ConfigError),
    /// A key could not be built (a short secret, say).
    #[error("auth settings: {0}")]
    Key(#[from] guardrails_auth::jwt::KeyError),
}

/// The authentication layer for `settings`.
///
/// # Errors
///
/// [`SetupError`] when the settings cannot make a verifier.
pub fn layer(settings: &Settings) -> Result<AuthLayer<JwtVerifier>, SetupError> {
    let auth = &settings.auth;
    let local = matches!(
        settings.environment,
        Environment::Development | Environment::Test
    );
    let jwks = |config: JwksConfig| {
        // Plain-http identity providers only on a developer's machine or in
        // tests; staging and production require https (also enforced by the
        // configuration hardening).
        if local {
            config.insecure_allow_http()
        } else {
            config
        }
    };
    let issuer = Issuer::builder(auth.issuer.as_str()).audience(auth.audience.as_str());
    let issuer = match (&auth.jwks_url, &auth.hs256_secret) {
        (Some(url), _) => issuer.jwks(jwks(JwksConfig::url(url.as_str()))),
        (None, Some(secret)) => issuer.hs256_secret(secret)?,
        (None, None) => issuer.jwks(jwks(JwksConfig::discovery())),
    };
    let verifier = JwtVerifier::builder()
        .issuer(issuer.build()?)
        .cache(TokenCacheConfig::new())
        .build()?;
    Ok(AuthLayer::new(verifier)
        .public_path("/healthz")
        .public_path("/metrics"))
}

fn tenant_bound(layer: RequireLayer) -> RequireLayer {
    layer.tenant(PathParam::new("tenant"))
}

/// `GET` invoice routes: scope `invoices:read`, same tenant.
pub fn read() -> RequireLayer {
    match RequireLayer::new().scope(SCOPE_READ) {
        Ok(layer) => tenant_bound(layer),
        // The name is a valid constant; keep the tenant boundary regardless.
        Err(_) => tenant_bound(RequireLayer::new().predicate(|_, _| false)),
    }
}

/// `POST` invoice routes: scope `invoices:write`, same tenant.
pub fn write() -> RequireLayer {
    match RequireLayer::new().scope(SCOPE_WRITE) {
        Ok(layer) => tenant_bound(layer),
        Err(_) => tenant_bound(RequireLayer::new().predicate(|_, _| false)),
    }
}

/// `DELETE` invoice routes: role `admin`, same tenant.
pub fn admin() -> RequireLayer {
    match RequireLayer::new().role(ROLE_ADMIN) {
        Ok(layer) => tenant_bound(layer),
        Err(_) => tenant_bound(RequireLayer::new().predicate(|_, _| false)),
    }
}

/// `saas-api token`: prints a development token.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The subject (`sub`).
    #[arg(long)]
    pub sub: String,
    /// The tenant (`tenant`).
    #[arg(long)]
    pub tenant: String,
    /// Space-separated scopes (`scope`), e.g. "invoices:read invoices:write".
    #[arg(long, default_value = "")]
    pub scope: String,
    /// A role (`roles`); repeat for several.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

/// Why no token could be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Only the development environment signs tokens.
    #[error("`saas-api token` only works in the development environment (SAAS_ENV=development)")]
    NotDevelopment,
    /// No HS256 secret is configured.
    #[error("`saas-api token` needs auth.hs256_secret (SAAS_AUTH__HS256_SECRET)")]
    NoSecret,
    /// The lifetime is 0 or longer than a day.
    #[error("--ttl must be between 1 and 86400 seconds")]
    BadTtl,
    /// Signing failed.
    #[error("cannot sign the token")]
    Sign,
}

/// Signs a development token for `args` with the settings' HS256 secret.
///
/// # Errors
///
/// [`TokenError`] outside development, without a secret, or with a bad TTL.
pub fn issue_token(settings: &Settings, args: &TokenArgs) -> Result<String, TokenError> {
    if settings.environment != Environment::Development {
        return Err(TokenError::NotDevelopment);
    }
    let secret = settings
        .auth
        .hs256_secret
        .as_ref()
        .ok_or(TokenError::NoSecret)?;
    sign_token(secret, &settings.auth.issuer, &settings.auth.audience, args)
}

/// Signs a token for `args` with an HS256 `secret`, for `issuer` and `audience`.
///
/// # Errors
///
/// [`TokenError::BadTtl`] or [`TokenError::Sign`].
pub fn sign_token(
    secret: &secrecy::SecretString,
    issuer: &str,
    audience: &str,
    args: &TokenArgs,
) -> Result<String, TokenError> {
    if args.ttl == 0 || args.ttl > 86_400 {
        return Err(TokenError::BadTtl);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let mut claims = serde_json::json!({
        "sub": args.sub,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + args.ttl,
        "scope": args.scope,
        "tenant": args.tenant,
        "jti": uuid::Uuid::now_v7().to_string(),
    });
    if !args.roles.is_empty() {
        claims["roles"] = serde_json::json!(args.roles);
    }
    guardrails_auth::install_crypto_provider();
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .map_err(|_| TokenError::Sign)
}

/// The layer of a development deployment (default issuer and audience, the
/// built-in development secret), for tests of the router.
///
/// # Errors
///
/// Never in practice: the built-in secret and names are valid.
pub fn development_layer() -> Result<AuthLayer<JwtVerifier>, SetupError> {
    use crate::settings::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEVELOPMENT_HS256_SECRET};
    let secret = secrecy::SecretString::from(DEVELOPMENT_HS256_SECRET);
    let issuer = Issuer::builder(DEFAULT_ISSUER)
        .audience(DEFAULT_AUDIENCE)
        .hs256_secret(&secret)?
        .build()?;
    let verifier = JwtVerifier::builder().issuer(issuer).build()?;
    Ok(AuthLayer::new(verifier)
        .public_path("/healthz")
        .public_path("/metrics"))
}

/// A token signed like `saas-api token` does in development, for tests.
///
/// # Errors
///
/// [`TokenError`] for a bad TTL.
pub fn development_token(args: &TokenArgs) -> Result<String, TokenError> {
    use crate::settings::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEVELOPMENT_HS256_SECRET};
    let secret = secrecy::SecretString::from(DEVELOPMENT_HS256_SECRET);
    sign_token(&secret, DEFAULT_ISSUER, DEFAULT_AUDIENCE, args)
}
