//! Turning a credential into a [`Principal`].
//!
//! An [`Authenticator`] answers synchronously when it can (a static key, a
//! cache hit: no future, no allocation) and with a future when it must wait
//! (a JWKS refetch, an API key store lookup). [`Verdict`] carries either.
//!
//! ```
//! use guardrails_auth::{AuthError, Authenticator, Credential, Verdict};
//! use guardrails_core::{AuthMethod, Principal};
//!
//! /// Accepts one hard-coded service token (for illustration only).
//! #[derive(Clone)]
//! struct OneToken;
//!
//! impl Authenticator for OneToken {
//!     type Future = std::future::Ready<Result<Principal, AuthError>>;
//!     fn authenticate(&self, credential: &Credential<'_>) -> Verdict<Self::Future> {
//!         use subtle::ConstantTimeEq;
//!         let ok: bool = credential.value().as_bytes().ct_eq(b"s3rvice-t0ken").into();
//!         Verdict::Ready(if ok {
//!             Ok(Principal::builder("svc", AuthMethod::Other("static")).build())
//!         } else {
//!             Err(AuthError::BadSignature)
//!         })
//!     }
//! }
//! ```

use std::future::Future;
use std::pin::Pin;

use guardrails_core::Principal;

use crate::{AuthError, Credential};

/// The result of [`Authenticator::authenticate`]: ready now, or a future.
#[derive(Debug)]
pub enum Verdict<F> {
    /// Decided without waiting.
    Ready(Result<Principal, AuthError>),
    /// Decided when the future completes.
    Pending(F),
}

/// A boxed authentication future, for the slow paths (I/O) of the built-in
/// authenticators.
pub type BoxAuthFuture = Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send>>;

/// Verifies a credential; see the [module documentation](self).
pub trait Authenticator: Clone + Send + Sync + 'static {
    /// The future of a verification that must wait.
    type Future: Future<Output = Result<Principal, AuthError>> + Send + 'static;

    /// Verifies `credential`.
    fn authenticate(&self, credential: &Credential<'_>) -> Verdict<Self::Future>;
}

/// JWTs and API keys behind one layer: a credential that starts with the API
/// key prefix followed by `_` goes to `api_keys`, any other to `jwt`.
#[derive(Clone, Debug)]
pub struct JwtOrApiKey<J, K> {
    jwt: J,
    api_keys: K,
    prefix: std::sync::Arc<str>,
}

impl<J, K> JwtOrApiKey<J, K> {
    /// Combines a JWT authenticator and an API key authenticator whose keys
    /// start with `prefix` (for example `sk_live`).
    pub fn new(jwt: J, api_keys: K, prefix: &str) -> Self {
        Self {
            jwt,
            api_keys,
            prefix: std::sync::Arc::from(prefix),
        }
    }
}

impl<J, K> Authenticator for JwtOrApiKey<J, K>
where
    J: Authenticator,
    K: Authenticator,
{
    type Future = BoxAuthFuture;

    fn authenticate(&self, credential: &Credential<'_>) -> Verdict<Self::Future> {
        let value = credential.value();
        let is_key = value
            .strip_prefix(&*self.prefix)
            .is_some_and(|rest| rest.starts_with('_'));
        if is_key {
            match self.api_keys.authenticate(credential) {
                Verdict::Ready(r) => Verdict::Ready(r),
                Verdict::Pending(f) => Verdict::Pending(Box::pin(f)),
            }
        } else {
            match self.jwt.authenticate(credential) {
                Verdict::Ready(r) => Verdict::Ready(r),
                Verdict::Pending(f) => Verdict::Pending(Box::pin(f)),
            }
        }
    }
}
