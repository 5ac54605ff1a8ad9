//! The JWKS cache against an in-process HTTP server that counts fetches:
//! refetch rate-limiting under a spray of random `kid`s, rotation, stale keys
//! on failure, size cap, timeout, discovery, and the token-cache flush on
//! rotation.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use common::*;
use guardrails_auth::jwt::jwks::FetchError;
use guardrails_auth::jwt::{Issuer, JwksConfig, JwtVerifier};
use guardrails_auth::{AuthError, AuthLayer, Authenticator, Credential, TokenCacheConfig, Verdict};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

#[derive(Clone, Default)]
struct Server {
    jwks: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    status: Arc<Mutex<u16>>,
    delay: Arc<Mutex<Duration>>,
}

fn jwk(key: &EncodingKey, kid: &str) -> serde_json::Value {
    guardrails_auth::install_crypto_provider();
    let mut jwk = Jwk::from_encoding_key(key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    serde_json::to_value(jwk).unwrap()
}

async fn serve(server: Server) -> String {
    async fn jwks(State(s): State<Server>) -> (StatusCode, String) {
        s.hits.fetch_add(1, Ordering::SeqCst);
        let delay = *s.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let status = *s.status.lock().unwrap();
        (
            StatusCode::from_u16(status).unwrap(),
            s.jwks.lock().unwrap().clone(),
        )
    }
    *server.status.lock().unwrap() = 200;
    let app = Router::new()
        .route("/jwks.json", get(jwks))
        .with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn set_keys(server: &Server, keys: &[serde_json::Value]) {
    *server.jwks.lock().unwrap() = json!({ "keys": keys }).to_string();
}

const ISS: &str = "https://idp.example.com";

fn issuer(base: &str, config: impl FnOnce(JwksConfig) -> JwksConfig) -> Issuer {
    Issuer::builder(ISS)
        .audience(AUDIENCE)
        .jwks(config(
            JwksConfig::url(format!("{base}/jwks.json")).insecure_allow_http(),
        ))
        .build()
        .unwrap()
}

fn token(kid: &str, key: &EncodingKey) -> String {
    sign(json!({"alg":"RS256","kid":kid}), &claims(ISS), key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kid_spray_causes_at_most_one_fetch_per_interval() {
    let server = Server::default();
    set_keys(&server, &[jwk(&rsa_private(), "k1")]);
    let base = serve(server.clone()).await;
    let issuer = issuer(&base, |c| c.min_refetch_interval(Duration::from_secs(60)));
    // No background refresh: built outside... (it is inside a runtime, so the
    // startup fetch runs; wait for it).
    let verifier = JwtVerifier::builder()
        .issuer(issuer.clone())
        .build()
        .unwrap();
    let layer = AuthLayer::new(verifier.clone());
    for _ in 0..100 {
        if issuer.jwks_stats().unwrap().keys == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status_of(&layer, &token("k1", &rsa_private())).await, 200);
    let after_startup = server.hits.load(Ordering::SeqCst);
    assert_eq!(after_startup, 1);

    // 500 requests, each with a random, unknown kid, 50 at a time.
    let mut handles = Vec::new();
    for i in 0..500 {
        let layer = layer.clone();
        let t = token(&format!("spray-{i}-{}", i * 7919 % 1000), &rsa_private());
        handles.push(tokio::spawn(async move { status_of(&layer, &t).await }));
        if handles.len() == 50 {
            for h in handles.drain(..) {
                assert_eq!(h.await.unwrap(), 401);
            }
        }
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 401);
    }
    let fetches = server.hits.load(Ordering::SeqCst) - after_startup;
    // The startup fetch was less than 60 s ago: the spray causes no fetch.
    assert_eq!(fetches, 0, "fetches caused by the spray");
    assert_eq!(status_of(&layer, &token("k1", &rsa_private())).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kids_share_one_refetch() {
    let server = Server::default();
    set_keys(&server, &[jwk(&rsa_private(), "k1")]);
    let base = serve(server.clone()).await;
    let issuer = issuer(&base, |c| {
        c.min_refetch_interval(Duration::from_millis(200))
    });
    issuer.refresh().await.unwrap();
    let verifier = JwtVerifier::builder()
        .issuer(issuer.clone())
        .build()
        .unwrap();
    let layer = AuthLayer::new(verifier);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = server.hits.load(Ordering::SeqCst);
    // A new key appears at the IdP; 100 requests with its kid arrive at once.
    set_keys(
        &server,
        &[jwk(&rsa_private(), "k1"), jwk(&rsa2_private(), "k2")],
    );
    let t = token("k2", &rsa2_private());
    let mut handles = Vec::new();
    for _ in 0..100 {
        let (layer, t) = (layer.clone(), t.clone());
        handles.push(tokio::spawn(async move { status_of(&layer, &t).await }));
    }
    let mut ok = 0;
    for h in handles {
        if h.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst) - before,
        1,
        "one fetch for the whole burst"
    );
    // Requests that arrive while the fetch is claimed or runs wait for it
    // rather than fail: every one of them.
    assert_eq!(ok, 100, "{ok} of 100 succeeded");
    // Once fetched, every request succeeds without fetching.
    assert_eq!(status_of(&layer, &t).await, 200);
    assert_eq!(server.hits.load(Ordering::SeqCst) - before, 1);
}

/// The race the single-flight wait must not lose: a request that loses the
/// refetch claim runs before the claimant's fetch has even started. It must
/// wait for that fetch, not look at the old keys and fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loser_of_the_claim_waits_even_before_the_fetch_starts() {
    let server = Server::default();
    set_keys(&server, &[jwk(&rsa_private(), "k1")]);
    let base = serve(server.clone()).await;
    let issuer = issuer(&base, |c| {
        c.min_refetch_interval(Duration::from_millis(200))
    });
    issuer.refresh().await.unwrap();
    let verifier = JwtVerifier::builder().issuer(issuer).build().unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = server.hits.load(Ordering::SeqCst);
    set_keys(
        &server,
        &[jwk(&rsa_private(), "k1"), jwk(&rsa2_private(), "k2")],
    );
    let t = token("k2", &rsa2_private());
    let credential = Credential::new(&t, "bearer");
    let Verdict::Pending(claimant) = verifier.authenticate(&credential) else {
        panic!("the first unknown kid claims a fetch");
    };
    let Verdict::Pending(loser) = verifier.authenticate(&credential) else {
        panic!("the second waits for the claimed fetch, it is not rejected");
    };
    let loser = tokio::spawn(loser);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !loser.is_finished(),
        "the loser waits for the claimed fetch"
    );
    assert_eq!(server.hits.load(Ordering::SeqCst) - before, 0);
    assert_eq!(claimant.await.unwrap().subject(), "alice");
    assert_eq!(loser.await.unwrap().unwrap().subject(), "alice");
    assert_eq!(server.hits.load(Ordering::SeqCst) - before, 1);

    // A claim whose request goes away before fetching releases its waiters.
    let t3 = token("k3", &rsa2_private());
    let credential = Credential::new(&t3, "bearer");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let Verdict::Pending(claimant) = verifier.authenticate(&credential) else {
        panic!("a new claim after the interval");
    };
    let Verdict::Pending(loser) = verifier.authenticate(&credential) else {
        panic!("the loser waits");
    };
    let loser = tokio::spawn(loser);
    drop(claimant);
    let answer = tokio::time::timeout(Duration::from_secs(2), loser)
        .await
        .expect("released when the claim is dropped, not after a timeout")
        .unwrap();
    assert_eq!(answer.unwrap_err(), AuthError::UnknownKey);
}

async fn status_of(layer: &AuthLayer<JwtVerifier>, token: &str) -> u16 {
    call(
        layer.clone(),
        with_token("/v1/tenants/acme/invoices", token),
    )
    .await
    .status
}

#[tokio::test]
async fn failures_keep_the_last_good_keys() {
    let server = Server::default();
    set_keys(&server, &[jwk(&rsa_private(), "k1")]);
    let base = serve(server.clone()).await;
    let issuer = issuer(&base, |c| {
        c.timeout(Duration::from_millis(300))
            .max_body_bytes(64 * 1024)
    });
    issuer.refresh().await.unwrap();
    let verifier = JwtVerifier::builder()
        .issuer(issuer.clone())
        .build()
        .unwrap();
    let good = token("k1", &rsa_private());
    assert!(verifier.verify(&good).is_ok());

    *server.status.lock().unwrap() = 503;
    assert_eq!(issuer.refresh().await.unwrap_err(), FetchError::Status(503));
    assert!(verifier.verify(&good).is_ok(), "stale-if-error");

    *server.status.lock().unwrap() = 200;
    *server.jwks.lock().unwrap() = "x".repeat(100 * 1024);
    assert_eq!(issuer.refresh().await.unwrap_err(), FetchError::TooLarge);
    *server.jwks.lock().unwrap() = "{\"keys\": 5}".to_owned();
    assert_eq!(
        issuer.refresh().await.unwrap_err(),
        FetchError::InvalidDocument
    );
    set_keys(
        &server,
        &[json!({"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"})],
    );
    assert_eq!(issuer.refresh().await.unwrap_err(), FetchError::NoUsableKey);
    set_keys(&server, &[jwk(&rsa_private(), "k1")]);
    *server.delay.lock().unwrap() = Duration::from_millis(600);
    assert_eq!(issuer.refresh().await.unwrap_err(), FetchError::Timeout);
    assert!(verifier.verify(&good).is_ok(), "still the last good keys");
    let stats = issuer.jwks_stats().unwrap();
    assert!(stats.failures >= 5, "{stats:?}");
    assert_eq!(stats.keys, 1);
}

#[tokio::test]
async fn rotation_flushes_the_token_cache() {
    let server = Server::default();
    set_keys(&server, &[jwk(&rsa_private(), "k1")]);
    let base = serve(server.clone()).await;
    let issuer = issuer(&base, |c| c);
    issuer.refresh().await.unwrap();
    let verifier = JwtVerifier::builder()
        .issuer(issuer.clone())
        .cache(TokenCacheConfig::new())
        .build()
        .unwrap();
    let t = token("k1", &rsa_private());
    assert!(verifier.verify(&t).is_ok());
    assert!(verifier.verify(&t).is_ok());
    assert_eq!(verifier.cache_stats(), Some((1, 1)));
    // k1 is retired (compromised, say): the cached verification must not survive.
    set_keys(&server, &[jwk(&rsa2_private(), "k2")]);
    issuer.refresh().await.unwrap();
    assert_eq!(verifier.verify(&t).unwrap_err(), AuthError::UnknownKey);
    assert!(verifier.verify(&token("k2", &rsa2_private())).is_ok());
}

#[tokio::test]
async fn discovery_checks_the_issuer() {
    #[derive(Clone)]
    struct Doc(Arc<Mutex<String>>);
    async fn doc(State(d): State<Doc>) -> String {
        d.0.lock().unwrap().clone()
    }
    let d = Doc(Arc::new(Mutex::new(String::new())));
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(doc))
        .with_state(d.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let issuer = Issuer::builder(base.clone())
        .audience(AUDIENCE)
        .jwks(JwksConfig::discovery().insecure_allow_http())
        .build()
        .unwrap();
    *d.0.lock().unwrap() =
        json!({"issuer": "https://evil.example", "jwks_uri": format!("{base}/jwks")}).to_string();
    assert_eq!(
        issuer.refresh().await.unwrap_err(),
        FetchError::IssuerMismatch
    );
    *d.0.lock().unwrap() = json!({"issuer": base, "jwks_uri": "file:///etc/passwd"}).to_string();
    assert_eq!(issuer.refresh().await.unwrap_err(), FetchError::InsecureUrl);
    // https is required without `insecure_allow_http`.
    assert!(
        Issuer::builder(base)
            .audience(AUDIENCE)
            .jwks(JwksConfig::discovery())
            .build()
            .is_err()
    );
}

#[test]
fn static_keys_and_a_jwks_source_are_refused_together() {
    let key = guardrails_auth::jwt::VerifyingKey::rsa_pem(&data("rsa.pub.pem"), Algorithm::RS256)
        .unwrap();
    let error = Issuer::builder("https://idp.example.com/")
        .audience(AUDIENCE)
        .key(key)
        .jwks(JwksConfig::url("https://idp.example.com/jwks"))
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        guardrails_auth::jwt::ConfigError::KeysAndJwks {
            issuer: "https://idp.example.com/".into()
        }
    );
}

#[tokio::test]
async fn no_keys_ever_fetched_is_503_not_401() {
    // Nothing listens on this port: every fetch fails.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let issuer = issuer(&base, |c| c.timeout(Duration::from_millis(500)));
    let verifier = JwtVerifier::builder().issuer(issuer).build().unwrap();
    let reply = call(
        AuthLayer::new(verifier),
        with_token("/v1/tenants/acme/invoices", &token("k1", &rsa_private())),
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.rejection.unwrap().reason(), "keys_unavailable");
}

/// A verifier whose refresh task never ran (its runtime shut down first)
/// starts its key refresh in the runtime that first uses it, and again in
/// the next one when that runtime is gone (its task went with it): a token
/// without a `kid`, which never triggers an unknown-kid refetch, still gets
/// keys.
#[test]
fn the_key_refresh_starts_in_the_runtime_that_uses_the_verifier() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = Server::default();
    set_keys(&server, &[jwk(&rsa_private(), "k1")]);
    let base = server_runtime.block_on(serve(server.clone()));
    // Built inside a runtime that never runs the refresh task it spawns,
    // and is then shut down.
    let verifier = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            JwtVerifier::builder()
                .issuer(issuer(&base, |c| c))
                .build()
                .unwrap()
        });
    assert_eq!(server.hits.load(Ordering::SeqCst), 0, "fetched at build");
    let no_kid = sign(json!({"alg": "RS256"}), &claims(ISS), &rsa_private());
    for round in 0..2 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let hits_before = server.hits.load(Ordering::SeqCst);
        runtime.block_on(async {
            let layer = AuthLayer::new(verifier.clone());
            for _ in 0..500 {
                let status = status_of(&layer, &no_kid).await;
                if status == 200 && server.hits.load(Ordering::SeqCst) > hits_before {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("round {round}: no key refresh in this runtime");
        });
        drop(runtime);
    }
}

/// A fetch claimed by a request that is then dropped (the client went away,
/// an outer timeout) still completes: the claim holds back every other
/// kid-triggered fetch for its interval, so an aborted fetch kept a key
/// rotated in at the identity provider refused until the interval passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_claimed_by_a_dropped_request_still_completes() {
    let server = Server::default();
    set_keys(&server, &[jwk(&rsa_private(), "k1")]);
    let base = serve(server.clone()).await;
    let issuer = issuer(&base, |c| c.min_refetch_interval(Duration::from_secs(2)));
    let verifier = JwtVerifier::builder()
        .issuer(issuer.clone())
        .build()
        .unwrap();
    for _ in 0..100 {
        if issuer.jwks_stats().unwrap().keys == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The identity provider rotates in k2; its answers are a little slow.
    set_keys(
        &server,
        &[jwk(&rsa_private(), "k1"), jwk(&rsa2_private(), "k2")],
    );
    *server.delay.lock().unwrap() = Duration::from_millis(300);
    // A token with an unknown kid claims the fetch; its request is dropped
    // while the fetch is in flight.
    let junk = token("junk-1", &rsa_private());
    let Verdict::Pending(pending) = verifier.authenticate(&Credential::new(&junk, "bearer")) else {
        panic!("an unknown kid needs a fetch");
    };
    let task = tokio::spawn(pending);
    tokio::time::sleep(Duration::from_millis(50)).await;
    task.abort();
    // A token signed with the rotated-in key.
    let good = token("k2", &rsa2_private());
    let answer = match verifier.authenticate(&Credential::new(&good, "bearer")) {
        Verdict::Ready(result) => result,
        Verdict::Pending(pending) => pending.await,
    };
    assert!(answer.is_ok(), "the k2 token was refused: {answer:?}");
}
