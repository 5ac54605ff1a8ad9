//! The verified-token cache (opt-in, bounded).
//!
//! A token that verified once is remembered by the SHA-256 of its bytes, so
//! the next request with the same token skips the signature check. The rules:
//!
//! - an entry lives `min(exp − now, ttl cap)`, and `exp`/`nbf` are checked
//!   again on every hit;
//! - failures are never cached (a forged token costs a full verification
//!   every time, as it should, and cannot evict good entries by being cached);
//! - entries are dropped when keys rotate (the verifier's key epoch changes);
//! - the cache holds at most `capacity` entries; when full, expired entries
//!   are purged first, then an arbitrary eighth of the entries is dropped.
//!
//! The token itself is never stored, only its hash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use guardrails_core::Principal;
use sha2::{Digest, Sha256};

/// Settings of the verified-token cache.
#[derive(Clone, Debug)]
#[must_use]
pub struct TokenCacheConfig {
    pub(crate) capacity: usize,
    pub(crate) ttl: Duration,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Duration::from_secs(300),
        }
    }
}

impl TokenCacheConfig {
    /// 10 000 entries, each for at most 5 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The maximum number of entries.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The longest an entry lives (it never outlives the token's `exp`).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// The validity of a verified token, re-checked on every hit: its `exp`,
/// `nbf` and its own issuer's leeway (not the largest of all issuers').
#[derive(Debug, Clone, Copy)]
pub(crate) struct Validity {
    pub(crate) exp: u64,
    pub(crate) nbf: Option<u64>,
    pub(crate) leeway: u64,
}

#[derive(Debug)]
struct Entry {
    principal: Principal,
    deadline: Instant,
    validity: Validity,
    epoch: u64,
}

/// The keys are SHA-256 digests, already uniform: hash them by taking their
/// first eight bytes instead of running SipHash over all 32. (An attacker
/// who could steer digests could only collide buckets, never entries.)
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

type DigestMap<V> = HashMap<[u8; 32], V, BuildHasherDefault<DigestHasher>>;

/// The cache; see the [module documentation](self).
#[derive(Debug)]
pub(crate) struct TokenCache {
    config: TokenCacheConfig,
    map: RwLock<DigestMap<Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub(crate) fn new(config: TokenCacheConfig) -> Self {
        Self {
            config,
            map: RwLock::new(DigestMap::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached principal for `hash`, if the entry is live, within its
    /// token's validity at `now` (UNIX seconds, with its issuer's leeway) and
    /// of the current key `epoch`.
    pub(crate) fn get(&self, hash: &[u8; 32], now: u64, epoch: u64) -> Option<Principal> {
        let found = {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            map.get(hash).map(|e| {
                let Validity { exp, nbf, leeway } = e.validity;
                let live = e.epoch == epoch
                    && Instant::now() < e.deadline
                    // RFC 7519 §4.1.4: valid only before `exp`.
                    && exp.saturating_add(leeway) > now
                    && nbf.is_none_or(|nbf| nbf <= now.saturating_add(leeway));
                (live, live.then(|| e.principal.clone()))
            })
        };
        match found {
            Some((true, principal)) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                principal
            }
            Some((false, _)) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
                map.remove(hash);
                None
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Remembers a verified token.
    pub(crate) fn insert(
        &self,
        hash: [u8; 32],
        principal: Principal,
        now: u64,
        validity: Validity,
        epoch: u64,
    ) {
        let left = Duration::from_secs(validity.exp.saturating_sub(now));
        let ttl = left.min(self.config.ttl);
        if ttl.is_zero() {
            return;
        }
        // A TTL cap so large that the deadline overflows: not cached.
        let Some(deadline) = Instant::now().checked_add(ttl) else {
            return;
        };
        let entry = Entry {
            principal,
            deadline,
            validity,
            epoch,
        };
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.config.capacity && !map.contains_key(&hash) {
            let instant = Instant::now();
            map.retain(|_, e| e.deadline > instant && e.epoch == epoch);
            if map.len() >= self.config.capacity {
                let drop = (self.config.capacity / 8).max(1);
                let victims: Vec<[u8; 32]> = map.keys().take(drop).copied().collect();
                for key in victims {
                    map.remove(&key);
                }
            }
        }
        map.insert(hash, entry);
    }

    /// Drops every entry.
    pub(crate) fn clear(&self) {
        self.map.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardrails_core::AuthMethod;

    fn p() -> Principal {
        Principal::builder("u", AuthMethod::Jwt).build()
    }

    #[test]
    fn entries_respect_exp_nbf_epoch_and_capacity() {
        let v = |exp, nbf, leeway| Validity { exp, nbf, leeway };
        let cache = TokenCache::new(TokenCacheConfig::new().capacity(8));
        let h = token_hash("t");
        cache.insert(h, p(), 1000, v(2000, Some(900), 0), 1);
        assert!(cache.get(&h, 1000, 1).is_some());
        // exp re-checked on hit
        assert!(cache.get(&h, 2001, 1).is_none());
        cache.insert(h, p(), 1000, v(2000, Some(1500), 0), 1);
        // nbf re-checked on hit
        assert!(cache.get(&h, 1000, 1).is_none());
        // with the entry's own leeway, and only that
        cache.insert(h, p(), 1000, v(2000, None, 30), 1);
        assert!(cache.get(&h, 2029, 1).is_some());
        assert!(cache.get(&h, 2030, 1).is_none(), "valid only before exp");
        cache.insert(h, p(), 1000, v(2000, None, 0), 1);
        // another key epoch: flushed
        assert!(cache.get(&h, 1000, 2).is_none());
        // an already expired token is not cached
        cache.insert(h, p(), 3000, v(2000, None, 0), 1);
        assert!(cache.get(&h, 1000, 1).is_none());
        for i in 0..100 {
            cache.insert(token_hash(&i.to_string()), p(), 1000, v(2000, None, 0), 1);
        }
        assert!(cache.len() <= 8);
        // a TTL cap beyond what `Instant` can hold does not panic
        let huge = TokenCache::new(TokenCacheConfig::new().ttl(Duration::MAX));
        huge.insert(
            h,
            p(),
            0,
            v(crate::jwt::claims::MAX_NUMERIC_DATE, None, 0),
            1,
        );
    }
}
