//! API keys through the layer: format and checksum before lookup, peppered
//! HMAC storage, expiry, revocation, store failure; JWTs and keys side by side.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::*;
use guardrails_auth::api_key::{
    ApiKeyAuthenticator, ApiKeyGenerator, ApiKeyStore, InMemoryApiKeyStore, Pepper, StoreError,
    StoreFuture, parse_key,
};
use guardrails_auth::{AuthLayer, HeaderSource, JwtOrApiKey};
use http::{HeaderName, Request};
use http_body_util::Full;
use secrecy::ExposeSecret;

/// Counts lookups; fails when `down`.
#[derive(Clone, Default)]
struct Counting {
    inner: InMemoryApiKeyStore,
    lookups: Arc<AtomicUsize>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl ApiKeyStore for Counting {
    fn find(&self, id: &str) -> StoreFuture<'_> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Err(StoreError)));
        }
        self.inner.find(id)
    }
}

fn pepper() -> Pepper {
    Pepper::new(b"server-side pepper, 32 bytes or more".to_vec()).unwrap()
}

fn req(key: &str) -> Request<Full<Bytes>> {
    Request::get("/v1/tenants/acme/invoices")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn api_key_lifecycle() {
    let store = Counting::default();
    let generator = ApiKeyGenerator::new("sk_test", pepper()).unwrap();
    let (key, record) = generator.generate("svc", Some("acme"), ["invoices:read"], None);
    let key = key.expose_secret().to_owned();
    assert_ne!(
        &record.digest[..],
        key.as_bytes(),
        "only the HMAC is stored"
    );
    store.inner.insert(record.clone());
    let auth = ApiKeyAuthenticator::new("sk_test", pepper(), store.clone()).unwrap();
    let layer = AuthLayer::new(auth);

    let ok = call(layer.clone(), req(&key)).await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.starts_with(b"svc "));
    assert_eq!(store.lookups.load(Ordering::SeqCst), 1);

    // A typo is caught by the checksum: no lookup at all.
    let mut typo = key.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let reply = call(layer.clone(), req(&typo)).await;
    assert_eq!(
        (reply.status, reply.json()["reason"].as_str()),
        (401, Some("malformed_api_key"))
    );
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        1,
        "no lookup for a bad checksum"
    );

    // Same id, another secret with a valid checksum: the digest does not match.
    let (other, _) = generator.generate("x", None, [], None);
    let other = other.expose_secret();
    let forged_body = format!(
        "sk_test_{}{}",
        record.id,
        &other["sk_test_".len() + 8..other.len() - 6]
    );
    let forged = forged_with_checksum(&forged_body, &generator);
    assert_eq!(parse_key("sk_test", &forged).unwrap().id, record.id);
    let reply = call(layer.clone(), req(&forged)).await;
    assert_eq!(
        (reply.status, reply.json()["reason"].as_str()),
        (401, Some("unknown_api_key"))
    );

    // Another pepper (another deployment) cannot verify this key.
    let foreign =
        ApiKeyAuthenticator::new("sk_test", Pepper::new(vec![9; 32]).unwrap(), store.clone())
            .unwrap();
    assert_eq!(call(AuthLayer::new(foreign), req(&key)).await.status, 401);

    // Unknown id.
    let (stranger, _) = generator.generate("y", None, [], None);
    let reply = call(layer.clone(), req(stranger.expose_secret())).await;
    assert_eq!(reply.json()["reason"], "unknown_api_key");

    // Revocation.
    assert!(store.inner.revoke(&record.id));
    let reply = call(layer.clone(), req(&key)).await;
    assert_eq!(
        (reply.status, reply.json()["reason"].as_str()),
        (401, Some("api_key_revoked"))
    );

    // Expiry.
    let (old, mut rec) = generator.generate(
        "svc",
        Some("acme"),
        ["invoices:read"],
        Some(SystemTime::now() - Duration::from_secs(1)),
    );
    rec.roles.push("admin".to_owned());
    store.inner.insert(rec);
    let reply = call(layer.clone(), req(old.expose_secret())).await;
    assert_eq!(
        (reply.status, reply.json()["reason"].as_str()),
        (401, Some("api_key_expired"))
    );

    // Store down: 503, not 401.
    let (fresh, rec) = generator.generate("svc", Some("acme"), ["invoices:read"], None);
    store.inner.insert(rec);
    store.down.store(true, Ordering::SeqCst);
    let reply = call(layer, req(fresh.expose_secret())).await;
    // 5xx problems disclose nothing but their type; the reason is in the
    // `Rejection` for the audit layer.
    assert_eq!(reply.status, 503);
    assert_eq!(reply.rejection.unwrap().reason(), "store_unavailable");
}

/// Appends a valid checksum to `body`, as an attacker who knows the public
/// format can: the checksum catches typos, it is not a secret.
fn forged_with_checksum(body: &str, _g: &ApiKeyGenerator) -> String {
    // CRC-32 (IEEE) in base62, 6 characters, as documented.
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut crc = 0xFFFF_FFFFu32;
    for &b in body.as_bytes() {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    let mut n = !crc;
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = B62[(n % 62) as usize];
        n /= 62;
    }
    format!("{body}{}", std::str::from_utf8(&sum).unwrap())
}

#[tokio::test]
async fn jwts_and_api_keys_side_by_side_and_custom_header() {
    let store = InMemoryApiKeyStore::new();
    let generator = ApiKeyGenerator::new("sk_test", pepper()).unwrap();
    let (key, record) = generator.generate("svc", Some("acme"), ["invoices:read"], None);
    store.insert(record);
    let keys = ApiKeyAuthenticator::new("sk_test", pepper(), store).unwrap();
    let jwt = rsa_verifier();
    let both = JwtOrApiKey::new(jwt, keys.clone(), "sk_test");
    let layer = AuthLayer::new(both);
    assert_eq!(
        call(layer.clone(), req(key.expose_secret())).await.status,
        200
    );
    assert_eq!(
        call(layer.clone(), req(&token_a(&claims(ISSUER_A))))
            .await
            .status,
        200
    );
    assert_eq!(call(layer, req("sk_test_garbage")).await.status, 401);

    let layer = AuthLayer::new(keys).credential_sources(vec![Arc::new(HeaderSource::new(
        HeaderName::from_static("x-api-key"),
    ))]);
    let r = Request::get("/v1/tenants/acme/invoices")
        .header("x-api-key", key.expose_secret())
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(call(layer, r).await.status, 200);
}
