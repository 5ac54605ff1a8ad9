//! API keys: GitHub-style format, checksum, peppered HMAC storage.
//!
//! A key looks like `{prefix}_{id}{secret}{checksum}`:
//!
//! - `prefix`: lower-case letters, digits and `_` naming the key kind, for
//!   example `sk_live` (so secret scanners and humans recognise it);
//! - `id`: 8 base62 characters, the key's public identifier (safe to log and
//!   show), used to look the key up;
//! - `secret`: 24 base62 characters (≈143 bits; with the id, 32 random
//!   characters, ≈190 bits, from the OS generator);
//! - `checksum`: 6 base62 characters of CRC-32 over everything before it, so
//!   a mistyped or truncated key is rejected before any lookup.
//!
//! The server stores only `HMAC-SHA-256(pepper, key)`; the pepper is a
//! server-side secret that is not in the database, so a leaked table of
//! digests cannot be brute-forced offline. Verification computes the HMAC
//! first (the same work whether or not the id exists) and compares digests
//! in constant time (`subtle`). Expiry and revocation are checked after the
//! digest matches.
//!
//! ```
//! use guardrails_auth::api_key::{ApiKeyAuthenticator, ApiKeyGenerator, InMemoryApiKeyStore, Pepper};
//! use guardrails_auth::{Authenticator, Credential, Verdict};
//! use secrecy::ExposeSecret;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pepper = Pepper::new(b"a server-side pepper of 32+ bytes!!".to_vec()).unwrap();
//! let generator = ApiKeyGenerator::new("sk_live", pepper.clone()).unwrap();
//! let (key, record) = generator.generate("svc-billing", Some("acme"), ["invoices:read"], None);
//!
//! let store = InMemoryApiKeyStore::new();
//! store.insert(record);
//! let auth = ApiKeyAuthenticator::new("sk_live", pepper, store).unwrap();
//!
//! let Verdict::Pending(check) = auth.authenticate(&Credential::new(key.expose_secret(), "bearer")) else { unreachable!() };
//! let principal = check.await.unwrap();
//! assert_eq!(principal.subject(), "svc-billing");
//! assert!(principal.has_scope("invoices:read"));
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use guardrails_core::{AuthMethod, Principal};
use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::authenticator::{Authenticator, BoxAuthFuture, Verdict};
use crate::{AuthError, Credential};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of the public key id.
pub const ID_LEN: usize = 8;
/// Length of the secret part.
pub const SECRET_LEN: usize = 24;
/// Length of the checksum.
pub const CHECKSUM_LEN: usize = 6;

/// The server-side pepper: at least 32 bytes. `Debug` prints `[REDACTED]`.
#[derive(Clone)]
pub struct Pepper(Arc<SecretSlice<u8>>);

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

/// An API key configuration error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The pepper is shorter than 32 bytes.
    #[error("pepper too short: at least 32 bytes required")]
    ShortPepper,
    /// The prefix is empty, longer than 32 characters, or has characters
    /// other than `a-z`, `0-9` and `_`.
    #[error("invalid API key prefix")]
    InvalidPrefix,
}

impl Pepper {
    /// A pepper from secret bytes.
    ///
    /// # Errors
    ///
    /// [`ApiKeyError::ShortPepper`] under 32 bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ApiKeyError> {
        if bytes.len() < 32 {
            return Err(ApiKeyError::ShortPepper);
        }
        Ok(Self(Arc::new(SecretSlice::from(bytes))))
    }

    /// A pepper from a secret string (for example from configuration).
    ///
    /// # Errors
    ///
    /// [`ApiKeyError::ShortPepper`] under 32 bytes.
    pub fn from_secret(secret: &SecretString) -> Result<Self, ApiKeyError> {
        Self::new(secret.expose_secret().as_bytes().to_vec())
    }

    fn digest(&self, key: &str) -> [u8; 32] {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 32
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// CRC-32 (IEEE), bitwise: keys are short.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn checksum(body: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A parsed, checksum-verified key: its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The public id.
    pub id: &'a str,
}

/// Checks a key's format and checksum (no lookup, no secret involved).
///
/// # Errors
///
/// [`AuthError::MalformedApiKey`] when the prefix, length, alphabet or
/// checksum is wrong.
pub fn parse_key<'a>(prefix: &str, key: &'a str) -> Result<ParsedKey<'a>, AuthError> {
    let rest = key
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .ok_or(AuthError::MalformedApiKey)?;
    if rest.len() != ID_LEN + SECRET_LEN + CHECKSUM_LEN
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(AuthError::MalformedApiKey);
    }
    let body_len = key.len() - CHECKSUM_LEN;
    let expected = checksum(&key[..body_len]);
    if key.as_bytes()[body_len..] != expected {
        return Err(AuthError::MalformedApiKey);
    }
    Ok(ParsedKey {
        id: &rest[..ID_LEN],
    })
}

/// What the server stores for a key: never the key, only its peppered HMAC.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    /// The public id.
    pub id: String,
    /// `HMAC-SHA-256(pepper, key)`.
    pub digest: [u8; 32],
    /// The principal's subject.
    pub subject: String,
    /// The principal's tenant.
    pub tenant: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Granted roles.
    pub roles: Vec<String>,
    /// When the key stops working.
    pub expires_at: Option<SystemTime>,
    /// Whether the key was revoked.
    pub revoked: bool,
}

impl fmt::Debug for StoredApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredApiKey")
            .field("id", &self.id)
            .field("digest", &"[REDACTED]")
            .field("subject", &self.subject)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.revoked)
            .finish()
    }
}

/// Generates keys for the app's admin path.
#[derive(Debug, Clone)]
pub struct ApiKeyGenerator {
    prefix: String,
    pepper: Pepper,
}

impl ApiKeyGenerator {
    /// A generator of keys starting with `prefix_`.
    ///
    /// # Errors
    ///
    /// [`ApiKeyError::InvalidPrefix`].
    pub fn new(prefix: &str, pepper: Pepper) -> Result<Self, ApiKeyError> {
        if !valid_prefix(prefix) {
            return Err(ApiKeyError::InvalidPrefix);
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            pepper,
        })
    }

    /// A new key (show it once to its owner) and the record to store.
    pub fn generate<'a>(
        &self,
        subject: &str,
        tenant: Option<&str>,
        scopes: impl IntoIterator<Item = &'a str>,
        expires_at: Option<SystemTime>,
    ) -> (SecretString, StoredApiKey) {
        let mut rng = rand::rng();
        let mut key =
            String::with_capacity(self.prefix.len() + 1 + ID_LEN + SECRET_LEN + CHECKSUM_LEN);
        key.push_str(&self.prefix);
        key.push('_');
        for _ in 0..ID_LEN + SECRET_LEN {
            key.push(char::from(BASE62[rng.random_range(0..62)]));
        }
        let sum = checksum(&key);
        key.extend(sum.iter().map(|&b| char::from(b)));
        let id = key[self.prefix.len() + 1..self.prefix.len() + 1 + ID_LEN].to_owned();
        let record = StoredApiKey {
            id,
            digest: self.pepper.digest(&key),
            subject: subject.to_owned(),
            tenant: tenant.map(str::to_owned),
            scopes: scopes.into_iter().map(str::to_owned).collect(),
            roles: Vec::new(),
            expires_at,
            revoked: false,
        };
        (SecretString::from(key), record)
    }
}

/// A store lookup failed (the store is down, not "no such key").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("API key store unavailable")]
pub struct StoreError;

/// The future of a store lookup.
pub type StoreFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<StoredApiKey>, StoreError>> + Send + 'a>>;

/// Where key records live (a database in production).
pub trait ApiKeyStore: Send + Sync + 'static {
    /// The record with public id `id`, if any.
    fn find(&self, id: &str) -> StoreFuture<'_>;
}

/// An in-memory store, for tests and small deployments.
#[derive(Debug, Clone, Default)]
pub struct InMemoryApiKeyStore {
    keys: Arc<RwLock<HashMap<String, StoredApiKey>>>,
}

impl InMemoryApiKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a record.
    pub fn insert(&self, record: StoredApiKey) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.id.clone(), record);
    }

    /// Revokes the key with id `id`; false when there is none.
    pub fn revoke(&self, id: &str) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        match keys.get_mut(id) {
            Some(k) => {
                k.revoked = true;
                true
            }
            None => false,
        }
    }
}

impl ApiKeyStore for InMemoryApiKeyStore {
    fn find(&self, id: &str) -> StoreFuture<'_> {
        let found = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// Verifies API keys against a store.
pub struct ApiKeyAuthenticator<St> {
    inner: Arc<Inner<St>>,
}

struct Inner<St> {
    prefix: String,
    pepper: Pepper,
    store: St,
}

impl<St> Clone for ApiKeyAuthenticator<St> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<St> fmt::Debug for ApiKeyAuthenticator<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl<St: ApiKeyStore> ApiKeyAuthenticator<St> {
    /// Verifies keys starting with `prefix_` against `store`.
    ///
    /// # Errors
    ///
    /// [`ApiKeyError::InvalidPrefix`].
    pub fn new(prefix: &str, pepper: Pepper, store: St) -> Result<Self, ApiKeyError> {
        if !valid_prefix(prefix) {
            return Err(ApiKeyError::InvalidPrefix);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                prefix: prefix.to_owned(),
                pepper,
                store,
            }),
        })
    }

    /// Verifies `key`.
    ///
    /// # Errors
    ///
    /// [`AuthError::MalformedApiKey`], [`AuthError::UnknownApiKey`],
    /// [`AuthError::ApiKeyExpired`], [`AuthError::ApiKeyRevoked`] or
    /// [`AuthError::StoreUnavailable`].
    pub async fn verify(&self, key: &str) -> Result<Principal, AuthError> {
        let inner = &*self.inner;
        let parsed = parse_key(&inner.prefix, key)?;
        // The HMAC is computed before the lookup: same work for known and
        // unknown ids.
        let digest = inner.pepper.digest(key);
        let record = inner
            .store
            .find(parsed.id)
            .await
            .map_err(|_| AuthError::StoreUnavailable)?;
        let Some(record) = record else {
            return Err(AuthError::UnknownApiKey);
        };
        if !bool::from(record.digest.ct_eq(&digest)) {
            return Err(AuthError::UnknownApiKey);
        }
        if record.revoked {
            return Err(AuthError::ApiKeyRevoked);
        }
        if record.expires_at.is_some_and(|at| at <= SystemTime::now()) {
            return Err(AuthError::ApiKeyExpired);
        }
        let mut builder = Principal::builder(record.subject, AuthMethod::ApiKey)
            .scopes(record.scopes)
            .roles(record.roles)
            .token_id(record.id);
        if let Some(t) = record.tenant {
            builder = builder.tenant(t);
        }
        if let Some(at) = record.expires_at {
            builder = builder.expires_at(at);
        }
        Ok(builder.build())
    }
}

impl<St: ApiKeyStore> Authenticator for ApiKeyAuthenticator<St> {
    type Future = BoxAuthFuture;

    fn authenticate(&self, credential: &Credential<'_>) -> Verdict<Self::Future> {
        // Format and checksum first, synchronously: garbage never reaches the store.
        if let Err(e) = parse_key(&self.inner.prefix, credential.value()) {
            return Verdict::Ready(Err(e));
        }
        let this = self.clone();
        let key = SecretString::from(credential.value());
        Verdict::Pending(Box::pin(
            async move { this.verify(key.expose_secret()).await },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper() -> Pepper {
        Pepper::new(vec![42; 32]).unwrap()
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn generated_keys_parse_and_typos_do_not() {
        let g = ApiKeyGenerator::new("sk_test", pepper()).unwrap();
        let (key, record) = g.generate("s", None, [], None);
        let key = key.expose_secret();
        assert_eq!(
            key.len(),
            "sk_test_".len() + ID_LEN + SECRET_LEN + CHECKSUM_LEN
        );
        assert_eq!(parse_key("sk_test", key).unwrap().id, record.id);
        // every single-character substitution is caught by the checksum
        let bytes = key.as_bytes();
        for i in "sk_test_".len()..bytes.len() {
            let mut typo = bytes.to_vec();
            typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(typo).unwrap();
            assert_eq!(
                parse_key("sk_test", &typo),
                Err(AuthError::MalformedApiKey),
                "{i}"
            );
        }
        assert_eq!(parse_key("sk_live", key), Err(AuthError::MalformedApiKey));
        assert_eq!(
            parse_key("sk_test", &key[..key.len() - 1]),
            Err(AuthError::MalformedApiKey)
        );
        assert!(format!("{record:?}").contains("[REDACTED]"));
        assert!(!format!("{:?}", pepper()).contains("42"));
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            Pepper::new(vec![1; 31]).unwrap_err(),
            ApiKeyError::ShortPepper
        );
        assert_eq!(
            ApiKeyGenerator::new("SK", pepper()).unwrap_err(),
            ApiKeyError::InvalidPrefix
        );
    }
}
