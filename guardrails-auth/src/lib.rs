//! Authentication boundaries for tower services.
//!
//! This crate turns a credential (a bearer JWT, an API key) into a verified
//! [`Principal`](guardrails_core::Principal) and enforces authorization
//! boundaries (scopes, roles, tenant) in front of an inner service, answering
//! every rejection with an RFC 9457 problem and an RFC 6750
//! `WWW-Authenticate` header.
//!
//! - [`AuthLayer`]: deny by default; a [`CredentialSource`] finds the
//!   credential ([`Bearer`] by default, [`Cookie`], [`HeaderSource`],
//!   [`InsecureQuery`]), an [`Authenticator`] verifies it, the
//!   [`Principal`](guardrails_core::Principal) goes into the request
//!   extensions, client-sent identity headers are stripped.
//! - [`jwt`]: [`JwtVerifier`](jwt::JwtVerifier) with several issuers, static
//!   keys, JWKS and OpenID Connect discovery ([`jwt::jwks`], feature `jwks`),
//!   strict validation that rejects the known token attacks, and an opt-in
//!   verified-token [`cache`].
//! - [`api_key`]: GitHub-style API keys with a checksum, stored as a peppered
//!   HMAC, compared in constant time.
//! - [`require`]: per-route [`RequireLayer`]: scopes (all-of, any-of), roles,
//!   predicates, and the tenant boundary.
//! - [`respond`]: the pluggable rejection response (RFC 9457 + RFC 6750 by
//!   default, gRPC status for tonic servers).
//!
//! # Example
//!
//! ```
//! use guardrails_auth::jwt::{Issuer, JwtVerifier};
//! use guardrails_auth::{AuthLayer, RequireLayer, TokenCacheConfig};
//! use guardrails_auth::require::PathSegmentAfter;
//! use secrecy::SecretString;
//!
//! let secret = SecretString::from("an HS256 secret of at least 32 bytes!");
//! let verifier = JwtVerifier::builder()
//!     .issuer(
//!         Issuer::builder("https://id.example.com")
//!             .audience("invoices")
//!             .hs256_secret(&secret)?
//!             .build()?,
//!     )
//!     .cache(TokenCacheConfig::new())
//!     .build()?;
//!
//! // Around the whole router: deny by default, a few public paths.
//! let auth = AuthLayer::new(verifier).public_path("/healthz");
//! // On a route (axum: `route_layer`): scope and tenant boundary.
//! let read = RequireLayer::new()
//!     .scope("invoices:read")?
//!     .tenant(PathSegmentAfter::new("tenants"));
//! # let _ = (auth, read);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `aws-lc-rs` | yes | JWT signatures with aws-lc-rs |
//! | `rust-crypto` | no | JWT signatures with the RustCrypto crates (an alternative) |
//! | `jwks` | no | JWKS URLs and OIDC discovery (hyper-util + rustls on aws-lc-rs), background refresh |
//! | `axum` | no | the [`Authenticated`](extract::Authenticated) extractor and the `PathParam` tenant resolver |
//!
//! # Crypto backends
//!
//! jsonwebtoken 11 panics on first use when neither or both of its backends
//! are enabled. This crate instead fails to compile without a backend, and
//! when both `aws-lc-rs` and `rust-crypto` are enabled (as
//! `cargo test --all-features` does), `aws-lc-rs` takes precedence: it is
//! installed explicitly as jsonwebtoken's process default by every builder,
//! before any key is used. An application that installed its own provider
//! first keeps it. See [`install_crypto_provider`] and [`crypto_backend`].
//!
//! # Observability
//!
//! Every decision is counted in `guardrails_auth_decisions_total{outcome,
//! reason}` (`reason` is one of the fixed [`AuthError::reason`] codes, or
//! `authenticated`/`public`/`anonymous`), and traced at `debug` with the
//! subject, tenant, issuer and reason — never the token. JWKS fetches are
//! counted in `guardrails_auth_jwks_fetches_total{outcome, trigger}`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api_key;
pub mod authenticator;
pub mod cache;
pub mod credential;
mod crypto;
pub mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
pub mod jwt;
pub mod layer;
pub mod require;
pub mod respond;

pub use authenticator::{Authenticator, BoxAuthFuture, JwtOrApiKey, Verdict};
pub use cache::TokenCacheConfig;
pub use credential::{Bearer, Cookie, Credential, CredentialSource, HeaderSource, InsecureQuery};
pub use crypto::{backend as crypto_backend, install_crypto_provider};
pub use error::AuthError;
pub use layer::{Auth, AuthFuture, AuthLayer};
pub use require::{RequireLayer, require_role, require_scope};
