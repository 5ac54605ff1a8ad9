//! Verification keys: static keys and JWK sets.
//!
//! A [`VerifyingKey`] is bound to one algorithm family (and for EC, one
//! curve), optionally to one `alg`, and never changes kind: an RSA public key
//! can never be used as an HMAC secret, whatever a token's header says.
//!
//! ```
//! use guardrails_auth::jwt::{KeySet, VerifyingKey};
//! use jsonwebtoken::Algorithm;
//!
//! let jwks = r#"{"keys":[
//!   {"kty":"oct","kid":"k1","alg":"HS256","use":"sig","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
//!   {"kty":"oct","kid":"k2","alg":"HS256","use":"enc","k":"c2VjcmV0"}
//! ]}"#;
//! let keys = KeySet::from_jwks_json(jwks.as_bytes(), &[Algorithm::HS256]).unwrap();
//! assert_eq!(keys.len(), 1); // the `use: enc` key is never used
//! assert!(keys.find("k1").is_some());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Sha256, Sha384, Sha512};

use crate::AuthError;
use crate::jwt::header::kid_is_valid;

/// The kind of a key; each algorithm accepts exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    fn accepts(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (Self::Hmac, HS256 | HS384 | HS512)
                | (Self::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (Self::EcP256, ES256)
                | (Self::EcP384, ES384)
                | (Self::Ed25519, EdDSA)
        )
    }
}

fn key_algorithm(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// An HMAC key with its inner and outer hash states computed once, so a
/// verification does not redo the key schedule.
#[derive(Clone)]
enum HmacState {
    S256(Hmac<Sha256>),
    S384(Hmac<Sha384>),
    S512(Hmac<Sha512>),
}

impl HmacState {
    fn new(alg: Algorithm, secret: &[u8]) -> Option<Self> {
        Some(match alg {
            Algorithm::HS256 => Self::S256(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS384 => Self::S384(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS512 => Self::S512(Hmac::new_from_slice(secret).ok()?),
            _ => return None,
        })
    }

    /// Constant-time check of `tag` over `message` (`verify_slice` compares
    /// with `subtle`).
    fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        fn check<M: Mac + Clone>(mac: &M, message: &[u8], tag: &[u8]) -> bool {
            let mut mac = mac.clone();
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        }
        match self {
            Self::S256(m) => check(m, message, tag),
            Self::S384(m) => check(m, message, tag),
            Self::S512(m) => check(m, message, tag),
        }
    }
}

/// A key that verifies signatures; see the [module documentation](self).
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    kind: KeyKind,
    key: DecodingKey,
    hmac: Option<HmacState>,
    /// The length of an HMAC secret (0 for other keys): an HMAC key verifies
    /// only algorithms whose hash is no longer than it (RFC 7518 section 3.2).
    secret_len: usize,
}

/// The shortest HMAC secret for `alg`: the hash output's length.
fn hmac_min_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// Never prints key material (an HMAC key is a secret).
impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A key could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM or DER input is not a key of the expected type.
    #[error("invalid {kind} key")]
    Invalid {
        /// The key type that was expected.
        kind: &'static str,
    },
    /// The algorithm does not fit the key type.
    #[error("algorithm {alg:?} does not fit a {kind} key")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: Algorithm,
        /// The key type.
        kind: &'static str,
    },
    /// An HMAC secret shorter than the hash output (RFC 7518 section 3.2).
    #[error("HMAC secret too short: {len} bytes, at least {min} required")]
    ShortSecret {
        /// The secret's length.
        len: usize,
        /// The minimum length.
        min: usize,
    },
    /// The `kid` is empty, too long or has characters outside the allowed set.
    #[error("invalid key id")]
    InvalidKid,
    /// The JWK set is not JSON of the form `{"keys":[...]}`.
    #[error("invalid JWK set")]
    InvalidJwks,
}

impl VerifyingKey {
    /// An HMAC key for `alg` (HS256, HS384 or HS512). The secret must be at
    /// least as long as the hash output (32, 48 or 64 bytes).
    ///
    /// # Errors
    ///
    /// [`KeyError::AlgorithmMismatch`] for a non-HMAC `alg`,
    /// [`KeyError::ShortSecret`] for a short secret.
    pub fn hmac(secret: &SecretSlice<u8>, alg: Algorithm) -> Result<Self, KeyError> {
        let min = match alg {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => return Err(KeyError::AlgorithmMismatch { alg, kind: "HMAC" }),
        };
        let bytes = secret.expose_secret();
        if bytes.len() < min {
            return Err(KeyError::ShortSecret {
                len: bytes.len(),
                min,
            });
        }
        Ok(Self {
            kid: None,
            alg: Some(alg),
            kind: KeyKind::Hmac,
            key: DecodingKey::from_secret(bytes),
            hmac: HmacState::new(alg, bytes),
            secret_len: bytes.len(),
        })
    }

    /// An RSA public key (PEM, `BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`)
    /// for `alg` (RS256/384/512, PS256/384/512).
    ///
    /// # Errors
    ///
    /// [`KeyError::Invalid`] or [`KeyError::AlgorithmMismatch`].
    pub fn rsa_pem(pem: &[u8], alg: Algorithm) -> Result<Self, KeyError> {
        Self::checked(KeyKind::Rsa, alg, "RSA")?;
        let key = DecodingKey::from_rsa_pem(pem).map_err(|_| KeyError::Invalid { kind: "RSA" })?;
        Ok(Self::new(KeyKind::Rsa, alg, key))
    }

    /// An EC public key (PEM) for `alg` (ES256 on P-256, ES384 on P-384).
    ///
    /// # Errors
    ///
    /// [`KeyError::Invalid`] or [`KeyError::AlgorithmMismatch`].
    pub fn ec_pem(pem: &[u8], alg: Algorithm) -> Result<Self, KeyError> {
        let kind = match alg {
            Algorithm::ES256 => KeyKind::EcP256,
            Algorithm::ES384 => KeyKind::EcP384,
            _ => return Err(KeyError::AlgorithmMismatch { alg, kind: "EC" }),
        };
        let key = DecodingKey::from_ec_pem(pem).map_err(|_| KeyError::Invalid { kind: "EC" })?;
        Ok(Self::new(kind, alg, key))
    }

    /// An Ed25519 public key (PEM) for EdDSA.
    ///
    /// # Errors
    ///
    /// [`KeyError::Invalid`].
    pub fn ed_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key =
            DecodingKey::from_ed_pem(pem).map_err(|_| KeyError::Invalid { kind: "Ed25519" })?;
        Ok(Self::new(KeyKind::Ed25519, Algorithm::EdDSA, key))
    }

    /// A key from one JWK, accepted only for `allowed` algorithms.
    ///
    /// `None` when the JWK must not verify signatures: `use` other than
    /// `sig`, `key_ops` without `verify`, an `alg` outside `allowed` or not
    /// fitting the key type, an unsupported key type or curve, or an invalid
    /// `kid`.
    pub fn from_jwk(jwk: &Jwk, allowed: &[Algorithm]) -> Option<Self> {
        let common = &jwk.common;
        match &common.public_key_use {
            None | Some(PublicKeyUse::Signature) => {}
            Some(_) => return None,
        }
        if let Some(ops) = &common.key_operations
            && !ops.iter().any(|op| matches!(op, KeyOperations::Verify))
        {
            return None;
        }
        let kid = match &common.key_id {
            Some(kid) if kid_is_valid(kid) => Some(kid.clone()),
            Some(_) => return None,
            None => None,
        };
        let alg = match common.key_algorithm {
            None => None,
            Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => return None,
            Some(a) => Some(key_algorithm(a)?),
        };
        let kind = match &jwk.algorithm {
            // At least 2048 bits, whatever the crypto backend (aws-lc-rs
            // refuses shorter moduli, RustCrypto does not): `n` is the
            // unpadded base64url of the modulus in its minimal octets.
            AlgorithmParameters::RSA(p) if p.n.trim_end_matches('=').len() * 3 / 4 < 256 => {
                return None;
            }
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => KeyKind::EcP256,
                EllipticCurve::P384 => KeyKind::EcP384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => KeyKind::Ed25519,
                _ => return None,
            },
            AlgorithmParameters::OctetKey(_) => KeyKind::Hmac,
            _ => return None,
        };
        // The key must be usable by at least one allowed algorithm, and by
        // its own `alg` if it names one.
        match alg {
            Some(a) if !(kind.accepts(a) && allowed.contains(&a)) => return None,
            None if !allowed.iter().any(|a| kind.accepts(*a)) => return None,
            _ => {}
        }
        let key = DecodingKey::from_jwk(jwk).ok()?;
        let mut hmac = None;
        let mut secret_len = 0;
        if kind == KeyKind::Hmac {
            let min = alg.map_or(32, hmac_min_len);
            let secret = key.try_get_as_bytes().ok().filter(|k| k.len() >= min)?;
            hmac = alg.and_then(|a| HmacState::new(a, secret));
            secret_len = secret.len();
        }
        Some(Self {
            kid,
            alg,
            kind,
            key,
            hmac,
            secret_len,
        })
    }

    fn checked(kind: KeyKind, alg: Algorithm, name: &'static str) -> Result<(), KeyError> {
        if kind.accepts(alg) {
            Ok(())
        } else {
            Err(KeyError::AlgorithmMismatch { alg, kind: name })
        }
    }

    fn new(kind: KeyKind, alg: Algorithm, key: DecodingKey) -> Self {
        Self {
            kid: None,
            alg: Some(alg),
            kind,
            key,
            hmac: None,
            secret_len: 0,
        }
    }

    /// Sets the key id that tokens name in their `kid` header.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] when `kid` is empty, longer than 128 bytes or
    /// has characters outside `A-Z a-z 0-9 - _ . : @ + =`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Result<Self, KeyError> {
        let kid = kid.into();
        if !kid_is_valid(&kid) {
            return Err(KeyError::InvalidKid);
        }
        self.kid = Some(kid);
        Ok(self)
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is bound to, if it is bound to one.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// Verifies the base64url `signature` of `message` under `alg` (already
    /// checked against this key by [`check_alg`](Self::check_alg)).
    pub(crate) fn verify_signature(&self, message: &[u8], signature: &str, alg: Algorithm) -> bool {
        if let Some(state) = &self.hmac
            && self.alg == Some(alg)
        {
            use base64::Engine as _;
            // A MAC is at most 64 bytes; anything longer is not one.
            if signature.len() > 86 {
                return false;
            }
            let mut tag = [0u8; 64];
            return match base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode_slice(signature, &mut tag)
            {
                Ok(n) => state.verify(message, &tag[..n]),
                Err(_) => false,
            };
        }
        jsonwebtoken::crypto::verify(signature, message, &self.key, alg).unwrap_or(false)
    }

    /// Checks that a token with header `alg` may be verified with this key
    /// under the `allowed` list.
    pub(crate) fn check_alg(&self, alg: Algorithm, allowed: &[Algorithm]) -> Result<(), AuthError> {
        if !allowed.contains(&alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        if self.alg.is_some_and(|a| a != alg) || !self.kind.accepts(alg) {
            return Err(AuthError::AlgorithmKeyMismatch);
        }
        // An HMAC JWK without `alg`: not for a hash longer than its secret.
        if self.kind == KeyKind::Hmac && self.secret_len < hmac_min_len(alg) {
            return Err(AuthError::AlgorithmKeyMismatch);
        }
        Ok(())
    }
}

/// A set of verification keys, looked up by exact `kid`.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    by_kid: HashMap<String, Vec<usize>>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key.
    #[must_use]
    pub fn with(mut self, key: VerifyingKey) -> Self {
        self.push(key);
        self
    }

    fn push(&mut self, key: VerifyingKey) {
        if let Some(kid) = &key.kid {
            self.by_kid
                .entry(kid.clone())
                .or_default()
                .push(self.keys.len());
        }
        self.keys.push(Arc::new(key));
    }

    /// Reads a JWK set (`{"keys":[...]}`), keeping only the keys that may
    /// verify signatures with one of `allowed` (see [`VerifyingKey::from_jwk`]).
    /// Keys that cannot be read are skipped, not fatal: one odd key in an
    /// identity provider's set must not break the others.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidJwks`] when the document is not a JSON object with a
    /// `keys` array.
    pub fn from_jwks_json(json: &[u8], allowed: &[Algorithm]) -> Result<Self, KeyError> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(json).map_err(|_| KeyError::InvalidJwks)?;
        let mut set = Self::new();
        for value in doc.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if let Some(key) = VerifyingKey::from_jwk(&jwk, allowed) {
                set.push(key);
            }
        }
        Ok(set)
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The first key with exactly this `kid`.
    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid
            .get(kid)
            .and_then(|idx| idx.first())
            .and_then(|&i| self.keys.get(i))
            .map(|k| &**k)
    }

    /// The keys, in order.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter().map(|k| &**k)
    }

    /// The key ids in the set, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// Selects the key for a header: by exact `kid`, or, without `kid`, the
    /// only key that accepts `alg`. Checks the algorithm binding.
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        allowed: &[Algorithm],
    ) -> Result<&VerifyingKey, AuthError> {
        match kid {
            Some(kid) => {
                let candidates = self.by_kid.get(kid).ok_or(AuthError::UnknownKey)?;
                let mut first_err = AuthError::UnknownKey;
                for &i in candidates {
                    let Some(key) = self.keys.get(i) else {
                        continue;
                    };
                    match key.check_alg(alg, allowed) {
                        Ok(()) => return Ok(key),
                        Err(e) if first_err == AuthError::UnknownKey => first_err = e,
                        Err(_) => {}
                    }
                }
                Err(first_err)
            }
            None => {
                if !allowed.contains(&alg) {
                    return Err(AuthError::AlgorithmNotAllowed);
                }
                // Without `kid`, only an unnamed key, or the set's only key, is
                // a candidate; two fitting candidates are ambiguous.
                let single = self.keys.len() == 1;
                let mut candidates = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.is_none() || single)
                    .peekable();
                if candidates.peek().is_none() {
                    return Err(AuthError::UnknownKey);
                }
                let mut fitting = candidates.filter(|k| k.check_alg(alg, allowed).is_ok());
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) => Err(AuthError::AlgorithmKeyMismatch),
                    (Some(_), Some(_)) => Err(AuthError::UnknownKey),
                }
            }
        }
    }

    /// Verifies a compact JWS against this set and returns its decoded
    /// payload, without reading any claim: the header checks, the key
    /// selection and algorithm binding, and the signature. Useful for JWS
    /// that are not JWTs, and for test vectors.
    ///
    /// # Errors
    ///
    /// The [`AuthError`] that rejects the JWS.
    pub fn verify_jws(&self, jws: &str, allowed: &[Algorithm]) -> Result<Vec<u8>, AuthError> {
        use base64::Engine as _;
        crate::crypto::ensure_provider();
        let segments = crate::jwt::header::split(jws)?;
        let header = crate::jwt::header::parse(segments.header)?;
        let key = self.select(header.kid.as_deref(), header.alg, allowed)?;
        if !key.verify_signature(segments.message.as_bytes(), segments.signature, header.alg) {
            return Err(AuthError::BadSignature);
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segments.payload)
            .map_err(|_| AuthError::Malformed)
    }
}

/// A static HMAC secret as a [`SecretSlice`], for [`VerifyingKey::hmac`].
pub fn hmac_secret(secret: &secrecy::SecretString) -> SecretSlice<u8> {
    SecretSlice::from(secret.expose_secret().as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs() -> VerifyingKey {
        VerifyingKey::hmac(&SecretSlice::from(vec![7u8; 32]), Algorithm::HS256).unwrap()
    }

    #[test]
    fn short_hmac_secrets_are_refused() {
        let err = VerifyingKey::hmac(&SecretSlice::from(vec![7u8; 31]), Algorithm::HS256);
        assert_eq!(err.unwrap_err(), KeyError::ShortSecret { len: 31, min: 32 });
        let err = VerifyingKey::hmac(&SecretSlice::from(vec![7u8; 32]), Algorithm::RS256);
        assert!(matches!(err, Err(KeyError::AlgorithmMismatch { .. })));
    }

    #[test]
    fn debug_hides_key_material() {
        let dbg = format!("{:?}", hs());
        assert!(!dbg.contains("7, 7"), "{dbg}");
    }

    #[test]
    fn selection_binds_alg() {
        let set = KeySet::new().with(hs().with_kid("a").unwrap());
        let all = [Algorithm::HS256, Algorithm::RS256];
        assert!(set.select(Some("a"), Algorithm::HS256, &all).is_ok());
        assert_eq!(
            set.select(Some("a"), Algorithm::RS256, &all).unwrap_err(),
            AuthError::AlgorithmKeyMismatch
        );
        assert_eq!(
            set.select(Some("a"), Algorithm::HS384, &all).unwrap_err(),
            AuthError::AlgorithmNotAllowed
        );
        assert_eq!(
            set.select(Some("b"), Algorithm::HS256, &all).unwrap_err(),
            AuthError::UnknownKey
        );
        // a single key is selected without kid
        assert!(set.select(None, Algorithm::HS256, &all).is_ok());
    }

    #[test]
    fn rsa_jwks_below_2048_bits_are_refused() {
        // Moduli of 2047 and 2048 bits: 256 octets, the first below 0x80
        // or not; 255 octets (2040 bits) is too short.
        let n = |octets: usize| {
            let bytes: String = "A".repeat(octets * 4 / 3);
            // 256 octets: 342 base64url characters (2 bits of padding).
            let extra = if (octets * 4).is_multiple_of(3) {
                ""
            } else {
                "Q"
            };
            format!("w{}{extra}", &bytes[1..])
        };
        let doc = |octets: usize| {
            format!(
                r#"{{"keys":[{{"kty":"RSA","kid":"r","alg":"RS256","n":"{}","e":"AQAB"}}]}}"#,
                n(octets)
            )
        };
        let kids = |octets: usize| {
            KeySet::from_jwks_json(doc(octets).as_bytes(), &[Algorithm::RS256])
                .map(|set| set.kids().count())
                .unwrap_or(0)
        };
        assert_eq!(kids(255), 0);
        assert_eq!(kids(128), 0);
        assert_eq!(kids(256), 1);
    }

    #[test]
    fn jwk_use_and_key_ops_are_honoured() {
        let k = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA";
        let doc = format!(
            r#"{{"keys":[
            {{"kty":"oct","kid":"sig","use":"sig","k":"{k}"}},
            {{"kty":"oct","kid":"enc","use":"enc","k":"{k}"}},
            {{"kty":"oct","kid":"ops","key_ops":["sign","verify"],"k":"{k}"}},
            {{"kty":"oct","kid":"noverify","key_ops":["encrypt"],"k":"{k}"}},
            {{"kty":"oct","kid":"wrongalg","alg":"RS256","k":"{k}"}},
            {{"kty":"oct","kid":"short","k":"c2hvcnQ"}},
            {{"kty":"weird","kid":"w"}},
            {{"kty":"oct","kid":"../x","k":"{k}"}}
        ]}}"#
        );
        let set = KeySet::from_jwks_json(doc.as_bytes(), &[Algorithm::HS256]).unwrap();
        let kids: Vec<_> = set.kids().collect();
        assert_eq!(kids, ["sig", "ops"]);
        // The 34-byte secret of `sig` (no `alg`) verifies HS256, never HS512.
        let all = [Algorithm::HS256, Algorithm::HS512];
        let set = KeySet::from_jwks_json(doc.as_bytes(), &all).unwrap();
        assert!(set.select(Some("sig"), Algorithm::HS256, &all).is_ok());
        assert_eq!(
            set.select(Some("sig"), Algorithm::HS512, &all).unwrap_err(),
            AuthError::AlgorithmKeyMismatch
        );
        let short512 = format!(r#"{{"keys":[{{"kty":"oct","kid":"s","alg":"HS512","k":"{k}"}}]}}"#);
        assert!(
            KeySet::from_jwks_json(short512.as_bytes(), &all)
                .unwrap()
                .is_empty(),
            "an HS512 JWK needs a 64-byte secret"
        );
        // no HMAC algorithm allowed: no oct key at all
        let set = KeySet::from_jwks_json(doc.as_bytes(), &[Algorithm::RS256]).unwrap();
        assert!(set.is_empty());
        assert_eq!(
            KeySet::from_jwks_json(b"[]", &[]).unwrap_err(),
            KeyError::InvalidJwks
        );
    }
}
