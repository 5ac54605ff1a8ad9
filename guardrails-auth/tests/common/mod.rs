//! Shared helpers: test keys, raw token signing, the protected test stack.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a subset")]

use std::convert::Infallible;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use guardrails_auth::require::{PathSegmentAfter, RequireLayer};
use guardrails_auth::{AuthLayer, Authenticator};
use guardrails_core::Principal;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::{Algorithm, EncodingKey};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

pub const ISSUER_A: &str = "https://a.example.com";
pub const ISSUER_B: &str = "https://b.example.com";
pub const AUDIENCE: &str = "saas-api";
pub const HS_SECRET: &[u8] = b"issuer-b-hmac-secret-0123456789-abcdef";

pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub fn rsa_private() -> EncodingKey {
    EncodingKey::from_rsa_pem(&data("rsa.key.pem")).unwrap()
}
pub fn rsa2_private() -> EncodingKey {
    EncodingKey::from_rsa_pem(&data("rsa2.key.pem")).unwrap()
}
pub fn ec_private() -> EncodingKey {
    EncodingKey::from_ec_pem(&data("ec.key.pem")).unwrap()
}
pub fn ed_private() -> EncodingKey {
    EncodingKey::from_ed_pem(&data("ed.key.pem")).unwrap()
}
pub fn hs_key() -> EncodingKey {
    EncodingKey::from_secret(HS_SECRET)
}

/// Issuer A for audience [`AUDIENCE`], with its RSA key `rsa-1` (RS256).
pub fn issuer_a() -> guardrails_auth::jwt::IssuerBuilder {
    use guardrails_auth::jwt::{Issuer, VerifyingKey};
    Issuer::builder(ISSUER_A).audience(AUDIENCE).key(
        VerifyingKey::rsa_pem(&data("rsa.pub.pem"), Algorithm::RS256)
            .unwrap()
            .with_kid("rsa-1")
            .unwrap(),
    )
}

/// A verifier trusting only issuer A, with its RSA key `rsa-1` (RS256).
pub fn rsa_verifier() -> guardrails_auth::jwt::JwtVerifier {
    use guardrails_auth::jwt::JwtVerifier;
    JwtVerifier::builder()
        .issuer(issuer_a().build().unwrap())
        .build()
        .unwrap()
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// Signs `header.payload` (raw JSON, exactly as given) with `key` under `alg`.
pub fn sign_raw(header: &str, payload: &str, key: &EncodingKey, alg: Algorithm) -> String {
    guardrails_auth::install_crypto_provider();
    let message = format!("{}.{}", b64(header), b64(payload));
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{sig}")
}

/// Good claims for issuer `iss`, tenant acme, scope invoices:read.
pub fn claims(iss: &str) -> serde_json::Value {
    serde_json::json!({
        "sub": "alice",
        "iss": iss,
        "aud": AUDIENCE,
        "exp": now() + 600,
        "iat": now(),
        "scope": "invoices:read",
        "tenant": "acme",
    })
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "call sites pass json! literals"
)]
pub fn sign(header: serde_json::Value, claims: &serde_json::Value, key: &EncodingKey) -> String {
    let alg: Algorithm = serde_json::from_value(header["alg"].clone()).unwrap();
    sign_raw(&header.to_string(), &claims.to_string(), key, alg)
}

/// A token from issuer A signed with its RSA key (kid `rsa-1`, RS256).
pub fn token_a(claims: &serde_json::Value) -> String {
    sign(
        serde_json::json!({"alg":"RS256","kid":"rsa-1","typ":"JWT"}),
        claims,
        &rsa_private(),
    )
}

/// The response of the stack, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub rejection: Option<guardrails_core::Rejection>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn www(&self) -> Option<String> {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// The inner handler: answers with the principal's subject and what
/// identity headers it saw.
pub async fn handler(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let who = req
        .extensions()
        .get::<Principal>()
        .map_or("anonymous".to_owned(), |p| p.subject().to_owned());
    // Also the `_` spellings that CGI-style backends read as the same name.
    let spoofed = [
        "x-user-id",
        "x-tenant-id",
        "x-roles",
        "x_user_id",
        "x_tenant_id",
        "x_roles",
    ]
    .iter()
    .filter(|h| req.headers().contains_key(**h))
    .count();
    let sensitive = req
        .headers()
        .get("authorization")
        .is_none_or(http::HeaderValue::is_sensitive);
    Ok(Response::new(Full::new(Bytes::from(format!(
        "{who} spoofed={spoofed} sensitive={sensitive}"
    )))))
}

/// `AuthLayer` (public: /healthz) → `RequireLayer` (scope invoices:read,
/// tenant from the path) → handler.
pub async fn call<A: Authenticator>(layer: AuthLayer<A>, request: Request<Full<Bytes>>) -> Reply
where
{
    let require = RequireLayer::new()
        .scope("invoices:read")
        .unwrap()
        .tenant(PathSegmentAfter::new("tenants"));
    let svc = ServiceBuilder::new()
        .layer(layer.public_path("/healthz"))
        .layer(require)
        .service_fn(handler);
    send(svc, request).await
}

pub async fn send<S, B>(svc: S, request: Request<Full<Bytes>>) -> Reply
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let response = svc.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => panic!("body error"),
    };
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        rejection: parts
            .extensions
            .get::<guardrails_core::Rejection>()
            .copied(),
    }
}

pub fn get(uri: &str) -> http::request::Builder {
    Request::get(uri)
}

pub fn with_token(uri: &str, token: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Whether an external tool is required (CI) rather than optional.
pub fn require_external() -> bool {
    std::env::var("GUARDRAILS_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}
