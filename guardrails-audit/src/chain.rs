//! The hash chain format.
//!
//! Every record written by the JSON-lines sink carries
//!
//! ```json
//! "chain": {"alg": "sha256" | "hmac-sha256", "id": "<chain id>", "seq": 7,
//!           "prev": "<hex hash of record 6, 64 zeros for the first record>",
//!           "hash": "<hex>"}
//! ```
//!
//! where `hash` is the lower-case hex SHA-256 — or HMAC-SHA-256 keyed with the
//! chain key — of the RFC 8785 canonical JSON ([`crate::jcs`]) of the whole
//! record with only `chain.hash` removed. Anyone can recompute it in a few
//! lines of another language, for example Python:
//!
//! ```python
//! import hashlib, hmac, json, rfc8785
//! for line in open("audit.jsonl", "rb"):
//!     record = json.loads(line)
//!     stored = record["chain"].pop("hash")
//!     data = rfc8785.dumps(record)
//!     digest = hashlib.sha256(data).hexdigest()  # or hmac.new(key, data, "sha256").hexdigest()
//!     assert digest == stored
//! ```
//!
//! A keyed chain may change its key at an `audit.key_changed` record: that
//! record and the ones after it are hashed with the new key (named by
//! [`key_id`] in its `details.key_id`), the ones before with the old key
//! (`details.previous_key_id`); `details.file_first_seq` is the seq the
//! file it was written to started at.
//!
//! ```
//! use guardrails_audit::chain::{ChainHasher, ZERO_HASH};
//! use serde_json::json;
//!
//! let hasher = ChainHasher::sha256();
//! let record = json!({"action": "x", "chain": {"alg": "sha256", "id": "c", "seq": 0, "prev": ZERO_HASH}});
//! let hash = hasher.hash_record(&record).unwrap();
//! assert_eq!(hash.len(), 64);
//! ```

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::jcs::{self, NotCanonical};

/// The `prev` of the first record of a chain.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash algorithm of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChainAlg {
    /// Plain SHA-256: detects accidental damage and, with signed checkpoints,
    /// truncation; anyone can recompute it, so a writer with file access can
    /// rewrite the whole chain after the last checkpoint.
    Sha256,
    /// HMAC-SHA-256 with a secret key: records cannot be forged without it.
    HmacSha256,
}

impl ChainAlg {
    /// The recorded name: `sha256` or `hmac-sha256`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::HmacSha256 => "hmac-sha256",
        }
    }

    /// Parses a recorded name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "hmac-sha256" => Some(Self::HmacSha256),
            _ => None,
        }
    }
}

impl fmt::Display for ChainAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Computes record hashes; holds the chain key in HMAC mode.
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct ChainHasher {
    alg: ChainAlg,
    key: Option<Hmac<Sha256>>,
}

impl fmt::Debug for ChainHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainHasher")
            .field("alg", &self.alg)
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// The shortest chain or checkpoint HMAC key the sinks accept, in bytes
/// (128 bits): an empty or short key makes an HMAC that anyone who guesses
/// it can forge, labelled `hmac-sha256` all the same.
pub const MIN_KEY_BYTES: usize = 16;

/// Whether `key` is shorter than [`MIN_KEY_BYTES`].
pub(crate) fn too_short(key: Option<&SecretString>) -> bool {
    key.is_some_and(|k| k.expose_secret().len() < MIN_KEY_BYTES)
}

impl ChainHasher {
    /// Plain SHA-256.
    pub fn sha256() -> Self {
        Self {
            alg: ChainAlg::Sha256,
            key: None,
        }
    }

    /// HMAC-SHA-256 keyed with the UTF-8 bytes of `key`.
    pub fn hmac(key: &SecretString) -> Self {
        Self::hmac_bytes(key.expose_secret().as_bytes())
    }

    /// HMAC-SHA-256 keyed with `key`.
    pub fn hmac_bytes(key: &[u8]) -> Self {
        // HMAC accepts keys of any length; the error is unreachable.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok();
        Self {
            alg: ChainAlg::HmacSha256,
            key: mac,
        }
    }

    /// SHA-256, or HMAC-SHA-256 when `key` is given.
    pub fn new(key: Option<&SecretString>) -> Self {
        key.map_or_else(Self::sha256, Self::hmac)
    }

    /// The algorithm.
    pub fn alg(&self) -> ChainAlg {
        self.alg
    }

    /// The lower-case hex digest of `data`.
    pub fn digest_hex(&self, data: &[u8]) -> String {
        let hex = self.digest_hex_array(data);
        hex.iter().map(|b| char::from(*b)).collect()
    }

    /// The lower-case hex digest of `data`, without allocating.
    pub(crate) fn digest_hex_array(&self, data: &[u8]) -> [u8; 64] {
        let digest: [u8; 32] = match &self.key {
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(data);
                mac.finalize().into_bytes().into()
            }
            None => Sha256::digest(data).into(),
        };
        hex_lower(&digest)
    }

    /// The hash of `record` (a whole record, with or without `chain.hash`:
    /// it is ignored).
    ///
    /// # Errors
    ///
    /// [`NotCanonical`] if the record contains a non-integer number.
    pub fn hash_record(&self, record: &Value) -> Result<String, NotCanonical> {
        let mut out = Vec::with_capacity(1024);
        match record {
            Value::Object(map) => jcs::write_map(&mut out, map, |out, key| {
                if key != "chain" {
                    return Ok(false);
                }
                let Some(Value::Object(chain)) = map.get("chain") else {
                    return Ok(false);
                };
                jcs::write_str(out, "chain");
                out.push(b':');
                let mut without = chain.clone();
                without.remove("hash");
                jcs::write_value(out, &Value::Object(without))?;
                Ok(true)
            })?,
            other => jcs::write_value(&mut out, other)?,
        }
        Ok(self.digest_hex(&out))
    }
}

/// The id of a chain key: the first 16 hex digits of the HMAC-SHA-256, with
/// the key, of `guardrails.audit key id`. It names a key in records and
/// messages (a key change says which key follows which) without telling
/// anything about the key to whoever does not hold it.
///
/// ```
/// use guardrails_audit::chain::key_id;
/// use secrecy::SecretString;
///
/// let id = key_id(&SecretString::from("a chain key of 32 bytes or more!"));
/// assert_eq!(id.len(), 16);
/// assert_ne!(id, key_id(&SecretString::from("another chain key of 32 bytes...")));
/// ```
pub fn key_id(key: &SecretString) -> String {
    let mut hex = ChainHasher::hmac(key).digest_hex(b"guardrails.audit key id");
    hex.truncate(16);
    hex
}

/// Lower-case hex of a 32-byte digest.
fn hex_lower(bytes: &[u8; 32]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    out
}

/// Constant-time equality of two hex digests.
pub(crate) fn same_hash(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_only_chain_hash() {
        let h = ChainHasher::sha256();
        let a = json!({"x": 1, "chain": {"alg": "sha256", "id": "c", "seq": 0, "prev": ZERO_HASH}});
        let mut b = a.clone();
        b["chain"]["hash"] = json!("ff");
        assert_eq!(h.hash_record(&a).unwrap(), h.hash_record(&b).unwrap());
        b["chain"]["seq"] = json!(1);
        assert_ne!(h.hash_record(&a).unwrap(), h.hash_record(&b).unwrap());
        // The canonical bytes are hashed: known vector.
        let canonical = br#"{"chain":{"alg":"sha256","id":"c","prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":0},"x":1}"#;
        assert_eq!(
            h.hash_record(&a).unwrap(),
            hex::encode(Sha256::digest(canonical))
        );
    }

    #[test]
    fn hmac_differs_by_key_and_hides_it() {
        let r = json!({"a": 1});
        let k1 = ChainHasher::hmac(&SecretString::from("k1"));
        let k2 = ChainHasher::hmac(&SecretString::from("k2"));
        assert_ne!(k1.hash_record(&r).unwrap(), k2.hash_record(&r).unwrap());
        assert!(!format!("{k1:?}").contains("k1\""));
        assert!(format!("{k1:?}").contains("REDACTED"));
    }
}
