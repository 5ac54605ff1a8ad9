//! Authentication boundaries for tower services.
//!
//! This crate turns a credential (a bearer JWT, an API key) into a verified
//! [`Principal`](guardrails_core::Principal) and enforces authorization
//! boundaries (scopes, roles, tenant) in front of an inner service, answering
//! every rejection with an RFC 9457 problem and an RFC 6750
//! `WWW-Authenticate` header.
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
