//! Verified-token cache semantics through the verifier.

mod common;

use std::time::Duration;

use common::*;
use guardrails_auth::jwt::{Issuer, JwtVerifier, VerifyingKey};
use guardrails_auth::{AuthError, TokenCacheConfig};
use jsonwebtoken::Algorithm;
use serde_json::json;

fn verifier(cache: TokenCacheConfig) -> JwtVerifier {
    let issuer = Issuer::builder(ISSUER_A)
        .audience(AUDIENCE)
        .key(VerifyingKey::ec_pem(&data("ec.pub.pem"), Algorithm::ES256).unwrap())
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    JwtVerifier::builder()
        .issuer(issuer)
        .cache(cache)
        .build()
        .unwrap()
}

fn es(claims: &serde_json::Value) -> String {
    sign(json!({"alg":"ES256"}), claims, &ec_private())
}

#[test]
fn hits_skip_verification_and_return_the_same_principal() {
    let v = verifier(TokenCacheConfig::new());
    let t = es(&claims(ISSUER_A));
    let first = v.verify(&t).unwrap();
    let second = v.verify(&t).unwrap();
    assert_eq!(first, second);
    assert_eq!(v.cache_stats(), Some((1, 1)));
    assert_eq!(v.cache_len(), 1);
}

#[test]
fn failures_are_never_cached() {
    let v = verifier(TokenCacheConfig::new());
    let mut c = claims(ISSUER_A);
    c["aud"] = json!("other");
    let bad = es(&c);
    for _ in 0..3 {
        assert_eq!(v.verify(&bad).unwrap_err(), AuthError::WrongAudience);
    }
    let forged = format!("{}x", &es(&claims(ISSUER_A))[..]);
    assert!(v.verify(&forged).is_err());
    assert_eq!(v.cache_len(), 0);
    assert_eq!(v.cache_stats(), Some((0, 4)));
}

#[test]
fn entries_do_not_outlive_exp() {
    let v = verifier(TokenCacheConfig::new());
    let mut c = claims(ISSUER_A);
    // Two seconds ahead: with `now() + 1`, a verification that crossed a
    // second boundary on a loaded machine already found the token expired.
    // After 2.1 s, `now()` has reached `exp` whenever the test started.
    c["exp"] = json!(now() + 2);
    let t = es(&c);
    assert!(v.verify(&t).is_ok());
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(v.verify(&t).unwrap_err(), AuthError::Expired);
}

#[test]
fn entries_do_not_outlive_the_ttl_cap() {
    let v = verifier(TokenCacheConfig::new().ttl(Duration::from_millis(100)));
    let t = es(&claims(ISSUER_A));
    assert!(v.verify(&t).is_ok());
    assert!(v.verify(&t).is_ok());
    std::thread::sleep(Duration::from_millis(150));
    assert!(v.verify(&t).is_ok());
    // miss, hit, miss (expired entry)
    assert_eq!(v.cache_stats(), Some((1, 2)));
}

#[test]
fn the_cache_is_bounded() {
    let v = verifier(TokenCacheConfig::new().capacity(16));
    for i in 0..100 {
        let mut c = claims(ISSUER_A);
        c["jti"] = json!(format!("t-{i}"));
        assert!(v.verify(&es(&c)).is_ok());
        assert!(v.cache_len() <= 16);
    }
    v.clear_cache();
    assert_eq!(v.cache_len(), 0);
}
