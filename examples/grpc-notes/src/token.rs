//! The deployment's authentication, and development tokens.
//!
//! Tokens are HS256 JWTs of issuer [`ISSUER`] for audience [`AUDIENCE`],
//! signed with the secret in the file `NOTES_HS256_SECRET_FILE` (at least
//! 32 bytes). A real deployment would trust its identity provider's JWKS
//! instead (`Issuer::builder(…).jwks(JwksConfig::url(…))`); the layers
//! around it do not change.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guardrails_auth::jwt::{ConfigError, Issuer, JwtVerifier, KeyError};
use guardrails_auth::respond::GrpcResponder;
use guardrails_auth::{AuthLayer, TokenCacheConfig};
use jsonwebtoken::{EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};

/// The issuer of the tokens.
pub const ISSUER: &str = "grpc-notes";
/// The audience of the tokens.
pub const AUDIENCE: &str = "grpc-notes";

/// Why authentication could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The secret is too short.
    #[error("NOTES_HS256_SECRET_FILE: {0}")]
    Key(#[from] KeyError),
    /// The verifier cannot be built.
    #[error("auth: {0}")]
    Config(#[from] ConfigError),
}

/// The authentication layer: HS256 tokens of [`ISSUER`] for [`AUDIENCE`],
/// verified tokens cached, rejections answered as gRPC statuses
/// (`UNAUTHENTICATED`, `PERMISSION_DENIED`, `UNAVAILABLE`) rather than
/// problem documents.
///
/// # Errors
///
/// [`SetupError`] when the secret is shorter than 32 bytes.
pub fn auth_layer(secret: &SecretString) -> Result<AuthLayer<JwtVerifier>, SetupError> {
    let issuer = Issuer::builder(ISSUER)
        .audience(AUDIENCE)
        .hs256_secret(secret)?
        .build()?;
    let verifier = JwtVerifier::builder()
        .issuer(issuer)
        .cache(TokenCacheConfig::new())
        .build()?;
    Ok(AuthLayer::new(verifier).responder(GrpcResponder))
}

/// A token for `sub` of `tenant` with `scope` (space-separated) and
/// `roles`, valid for `ttl`.
///
/// # Errors
///
/// When the token cannot be signed.
pub fn issue(
    secret: &SecretString,
    sub: &str,
    tenant: &str,
    scope: &str,
    roles: &[&str],
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    // jsonwebtoken's crypto backend: the one guardrails-auth verifies with
    // (needed when a build enables more than one).
    guardrails_auth::install_crypto_provider();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "tenant": tenant,
        "scope": scope,
        "roles": roles,
        "iat": now,
        "exp": now + ttl.as_secs(),
    });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
}
