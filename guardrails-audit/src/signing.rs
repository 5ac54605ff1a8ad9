//! Ed25519 keys for checkpoints: the trail's writer signs with the private
//! key, and anyone verifies with the public one, which cannot forge.
//!
//! With an HMAC checkpoint key, whoever can verify the checkpoints can also
//! write new ones. With Ed25519 the verifying party (an auditor, a second
//! system) holds only the public key. Keys are PEM files, as OpenSSL writes
//! them:
//!
//! ```text
//! openssl genpkey -algorithm ed25519 -out checkpoint-key.pem        # the writer's, secret
//! openssl pkey -in checkpoint-key.pem -pubout -out checkpoint-key.pub.pem
//! ```
//!
//! ```
//! use guardrails_audit::signing::{Ed25519SigningKey, Ed25519VerifyingKey};
//! use secrecy::SecretString;
//!
//! let pem = SecretString::from(
//!     "-----BEGIN PRIVATE KEY-----\n\
//!      MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
//!      -----END PRIVATE KEY-----\n",
//! );
//! let key = Ed25519SigningKey::from_pkcs8_pem(&pem)?;
//! let public = Ed25519VerifyingKey::from_public_key_pem(&key.verifying_key().to_public_key_pem())?;
//! assert_eq!(public, key.verifying_key());
//! # Ok::<(), guardrails_audit::signing::KeyError>(())
//! ```

use std::fmt;

use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use secrecy::{ExposeSecret, SecretString};

use crate::chain::{ChainAlg, ChainHasher};

/// The `sig_alg` of an Ed25519-signed checkpoint.
pub(crate) const ED25519: &str = "ed25519";

/// A key that cannot be read. Says which kind was expected, never what the
/// input held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 {expected} in PEM")]
pub struct KeyError {
    expected: &'static str,
}

/// The private key that signs checkpoints. `Debug` shows only its public
/// half; the private one is zeroed when dropped.
#[derive(Clone)]
pub struct Ed25519SigningKey(ed25519_dalek::SigningKey);

impl Ed25519SigningKey {
    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    ///
    /// When it is not an Ed25519 private key in PEM.
    pub fn from_pkcs8_pem(pem: &SecretString) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.expose_secret().trim())
            .map(Self)
            .map_err(|_| KeyError {
                expected: "private key (PKCS#8)",
            })
    }

    /// The public key that verifies this key's signatures.
    pub fn verifying_key(&self) -> Ed25519VerifyingKey {
        Ed25519VerifyingKey(self.0.verifying_key())
    }
}

impl fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519SigningKey")
            .field("public", &self.verifying_key())
            .finish_non_exhaustive()
    }
}

/// The public key that verifies checkpoints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519VerifyingKey(ed25519_dalek::VerifyingKey);

impl Ed25519VerifyingKey {
    /// Reads a SubjectPublicKeyInfo PEM public key (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// # Errors
    ///
    /// When it is not an Ed25519 public key in PEM.
    pub fn from_public_key_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self)
            .map_err(|_| KeyError {
                expected: "public key",
            })
    }

    /// The key as a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_public_key_pem(&self) -> String {
        self.0
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap_or_default()
    }

    /// Whether `sig_hex` (128 hex digits) is this key's signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], sig_hex: &str) -> bool {
        let mut bytes = [0u8; 64];
        if hex::decode_to_slice(sig_hex, &mut bytes).is_err() {
            return false;
        }
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Debug for Ed25519VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519VerifyingKey({})", hex::encode(self.0.as_bytes()))
    }
}

/// What signs checkpoints: the HMAC-SHA-256 key or an Ed25519 key.
#[derive(Debug)]
pub(crate) enum CheckpointSigner {
    Hmac(ChainHasher),
    Ed25519(Ed25519SigningKey),
}

impl CheckpointSigner {
    /// The checkpoint's `sig_alg`.
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            Self::Hmac(_) => ChainAlg::HmacSha256.as_str(),
            Self::Ed25519(_) => ED25519,
        }
    }

    /// The signature of `message`, in lowercase hex.
    pub(crate) fn sign_hex(&self, message: &[u8]) -> String {
        match self {
            Self::Hmac(hasher) => hasher.digest_hex(message),
            Self::Ed25519(key) => hex::encode(key.0.sign(message).to_bytes()),
        }
    }

    /// What verifies this signer's checkpoints.
    pub(crate) fn verifier(&self) -> CheckpointVerifier {
        match self {
            Self::Hmac(hasher) => CheckpointVerifier {
                hmac: Some(hasher.clone()),
                previous_hmac: Vec::new(),
                ed25519: None,
            },
            Self::Ed25519(key) => CheckpointVerifier {
                hmac: None,
                previous_hmac: Vec::new(),
                ed25519: Some(key.verifying_key()),
            },
        }
    }
}

/// The keys checkpoints are verified with: none (checkpoints must then be
/// unsigned), the HMAC key, the Ed25519 public key, or both.
#[derive(Debug, Default, Clone)]
pub(crate) struct CheckpointVerifier {
    pub(crate) hmac: Option<ChainHasher>,
    /// Earlier chain keys, for the checkpoints of a trail whose key changed
    /// (checkpoints signed with the chain key).
    pub(crate) previous_hmac: Vec<ChainHasher>,
    pub(crate) ed25519: Option<Ed25519VerifyingKey>,
}

impl CheckpointVerifier {
    /// A verifier's keys: the checkpoint key, else the chain key (HMAC),
    /// and the Ed25519 public key.
    ///
    /// `previous_chain_keys` verify checkpoints too when no checkpoint key
    /// of its own is given: the sink signs checkpoints with the chain key
    /// of the moment.
    pub(crate) fn from_keys(
        checkpoint_key: Option<&SecretString>,
        chain_key: Option<&SecretString>,
        previous_chain_keys: &[SecretString],
        public: Option<Ed25519VerifyingKey>,
    ) -> Self {
        let previous_hmac = if checkpoint_key.is_none() {
            previous_chain_keys.iter().map(ChainHasher::hmac).collect()
        } else {
            Vec::new()
        };
        Self {
            hmac: checkpoint_key.or(chain_key).map(ChainHasher::hmac),
            previous_hmac,
            ed25519: public,
        }
    }

    /// Which key the HMAC `sig` of `unsigned` verifies with: its place
    /// among the previous keys and the key, oldest first (`None`: none).
    pub(crate) fn hmac_epoch(&self, unsigned: &[u8], sig: &str) -> Option<usize> {
        let verifies =
            |hmac: &ChainHasher| crate::chain::same_hash(sig, &hmac.digest_hex(unsigned));
        if self.hmac.as_ref().is_some_and(verifies) {
            return Some(self.previous_hmac.len());
        }
        self.previous_hmac.iter().rposition(verifies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn signs_and_verifies_and_refuses_other_messages_and_keys() {
        let key = Ed25519SigningKey::from_pkcs8_pem(&SecretString::from(PRIVATE)).unwrap();
        let signer = CheckpointSigner::Ed25519(key.clone());
        let sig = signer.sign_hex(b"checkpoint");
        assert_eq!(sig.len(), 128);
        let public = key.verifying_key();
        assert!(public.verifies(b"checkpoint", &sig));
        assert!(!public.verifies(b"checkpoinT", &sig));
        assert!(!public.verifies(b"checkpoint", &sig[..126]));
        assert!(!public.verifies(b"checkpoint", "zz"));
        let other = Ed25519SigningKey(ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
        assert!(!other.verifying_key().verifies(b"checkpoint", &sig));
    }

    #[test]
    fn debug_and_errors_never_show_the_private_key() {
        let pem = SecretString::from(PRIVATE);
        let key = Ed25519SigningKey::from_pkcs8_pem(&pem).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.starts_with("Ed25519SigningKey"), "{shown}");
        assert!(!shown.contains("MC4CAQAw"), "{shown}");
        // The 32-byte seed, in hex, is nowhere.
        let seed = hex::encode(key.0.to_bytes());
        assert!(!shown.contains(&seed), "{shown}");
        // A public key where the private one belongs, and the reverse.
        let public_pem = key.verifying_key().to_public_key_pem();
        let error =
            Ed25519SigningKey::from_pkcs8_pem(&SecretString::from(public_pem.clone())).unwrap_err();
        assert_eq!(
            error.to_string(),
            "not an Ed25519 private key (PKCS#8) in PEM"
        );
        let error = Ed25519VerifyingKey::from_public_key_pem(PRIVATE).unwrap_err();
        assert!(!error.to_string().contains("MC4C"), "{error}");
        assert_eq!(
            Ed25519VerifyingKey::from_public_key_pem(&public_pem).unwrap(),
            key.verifying_key()
        );
    }
}
