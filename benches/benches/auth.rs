//! guardrails-auth against raw `jsonwebtoken::decode`, same key and validation.
//!
//! - `decode/{alg}/raw`: `jsonwebtoken::decode` into a derived claims struct.
//! - `decode/{alg}/layer`: the whole `AuthLayer` service call (header
//!   extraction, JOSE header pre-checks, key selection, decode, duplicate-claim
//!   check, principal, metrics, inner call) — no cache.
//! - `cache/hit`: the layer with the verified-token cache, on a cached token.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use guardrails_auth::jwt::{Issuer, JwtVerifier, VerifyingKey};
use guardrails_auth::{AuthLayer, TokenCacheConfig};
use http::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::SecretSlice;
use serde::Deserialize;
use tower::{Layer, Service};

const ISS: &str = "https://id.example.com";
const AUD: &str = "saas-api";
const HS: &[u8] = b"bench-hmac-secret-0123456789-abcdef-0123";

macro_rules! data {
    ($f:literal) => {
        include_bytes!(concat!("../../guardrails-auth/tests/data/", $f))
    };
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "read by serde")]
struct RawClaims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
    scope: String,
    tenant: String,
}

struct Case {
    alg: Algorithm,
    token: String,
    raw_key: DecodingKey,
    key: VerifyingKey,
}

fn cases() -> Vec<Case> {
    guardrails_auth::install_crypto_provider();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "sub": "alice", "iss": ISS, "aud": AUD, "exp": now + 3600, "iat": now,
        "scope": "invoices:read invoices:write", "tenant": "acme",
    });
    let mut out = Vec::new();
    let mut add = |alg, enc: EncodingKey, raw_key, key: VerifyingKey| {
        let mut header = Header::new(alg);
        header.kid = Some("k1".to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
        out.push(Case {
            alg,
            token,
            raw_key,
            key: key.with_kid("k1").unwrap(),
        });
    };
    add(
        Algorithm::HS256,
        EncodingKey::from_secret(HS),
        DecodingKey::from_secret(HS),
        VerifyingKey::hmac(&SecretSlice::from(HS.to_vec()), Algorithm::HS256).unwrap(),
    );
    add(
        Algorithm::RS256,
        EncodingKey::from_rsa_pem(data!("rsa.key.pem")).unwrap(),
        DecodingKey::from_rsa_pem(data!("rsa.pub.pem")).unwrap(),
        VerifyingKey::rsa_pem(data!("rsa.pub.pem"), Algorithm::RS256).unwrap(),
    );
    add(
        Algorithm::ES256,
        EncodingKey::from_ec_pem(data!("ec.key.pem")).unwrap(),
        DecodingKey::from_ec_pem(data!("ec.pub.pem")).unwrap(),
        VerifyingKey::ec_pem(data!("ec.pub.pem"), Algorithm::ES256).unwrap(),
    );
    add(
        Algorithm::EdDSA,
        EncodingKey::from_ed_pem(data!("ed.key.pem")).unwrap(),
        DecodingKey::from_ed_pem(data!("ed.pub.pem")).unwrap(),
        VerifyingKey::ed_pem(data!("ed.pub.pem")).unwrap(),
    );
    out
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.set_issuer(&[ISS]);
    v.set_audience(&[AUD]);
    v.leeway = 30;
    v
}

fn verifier(key: VerifyingKey, cache: bool) -> JwtVerifier {
    let issuer = Issuer::builder(ISS).audience(AUD).key(key).build().unwrap();
    let b = JwtVerifier::builder().issuer(issuer);
    let b = if cache {
        b.cache(TokenCacheConfig::new())
    } else {
        b
    };
    b.build().unwrap()
}

type Inner =
    tower::util::ServiceFn<fn(Request<()>) -> std::future::Ready<Result<Response<()>, Infallible>>>;

fn inner() -> Inner {
    fn ok(_: Request<()>) -> std::future::Ready<Result<Response<()>, Infallible>> {
        std::future::ready(Ok(Response::new(())))
    }
    tower::service_fn(ok as fn(_) -> _)
}

/// Calls the service and polls its future once (it is ready on the hot path).
fn call<S>(svc: &mut S, req: Request<()>) -> u16
where
    S: Service<Request<()>, Response = Response<guardrails_core::GuardBody<()>>>,
{
    let fut = pin!(svc.call(req));
    let mut cx = Context::from_waker(Waker::noop());
    match fut.poll(&mut cx) {
        Poll::Ready(Ok(r)) => r.status().as_u16(),
        _ => panic!("not ready"),
    }
}

fn request(token: &str) -> Request<()> {
    Request::get("/v1/tenants/acme/invoices")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap()
}

/// Paired measurement, robust to a noisy shared machine: alternate blocks of
/// `a` and `b` calls and take the median of the per-block time ratios.
fn paired(
    label: &str,
    block: usize,
    rounds: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(Request<()>),
    token: &str,
) -> (f64, f64, f64) {
    let mut ratios = Vec::with_capacity(rounds);
    let (mut ta, mut tb) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let start = std::time::Instant::now();
        for _ in 0..block {
            a();
        }
        let da = start.elapsed().as_nanos() as f64 / block as f64;
        let requests: Vec<_> = (0..block).map(|_| request(token)).collect();
        let start = std::time::Instant::now();
        for r in requests {
            b(r);
        }
        let db = start.elapsed().as_nanos() as f64 / block as f64;
        ratios.push(db / da);
        ta.push(da);
        tb.push(db);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap());
        v[v.len() / 2]
    };
    let (ma, mb, mr) = (median(&mut ta), median(&mut tb), median(&mut ratios));
    eprintln!(
        "paired {label}: baseline {ma:.0} ns, guardrails {mb:.0} ns, ratio {mr:.3} (median of {rounds} blocks of {block})"
    );
    (ma, mb, mr)
}

fn paired_ratios(cases: &[Case]) {
    for case in cases {
        let v = validation(case.alg);
        let mut svc = AuthLayer::new(verifier(case.key.clone(), false)).layer(inner());
        let block = if case.alg == Algorithm::HS256 {
            500
        } else {
            20
        };
        paired(
            &format!("{:?} layer vs raw decode", case.alg),
            block,
            41,
            || {
                black_box(
                    jsonwebtoken::decode::<RawClaims>(&case.token, &case.raw_key, &v).unwrap(),
                );
            },
            |req| {
                black_box(call(&mut svc, req));
            },
            &case.token,
        );
    }
    let es = cases.iter().find(|c| c.alg == Algorithm::ES256).unwrap();
    let v = validation(Algorithm::ES256);
    let mut svc = AuthLayer::new(verifier(es.key.clone(), true)).layer(inner());
    assert_eq!(call(&mut svc, request(&es.token)), 200);
    // Cache hit through the layer vs a raw ES256 decode: the speed-up.
    let (decode, hit, ratio) = paired(
        "ES256 cache hit (layer) vs raw ES256 decode",
        20,
        41,
        || {
            black_box(jsonwebtoken::decode::<RawClaims>(&es.token, &es.raw_key, &v).unwrap());
        },
        |req| {
            black_box(call(&mut svc, req));
        },
        &es.token,
    );
    eprintln!(
        "paired ES256 cache hit: {hit:.0} ns, {:.0}x faster than a raw ES256 decode ({decode:.0} ns)",
        1.0 / ratio
    );
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    if std::env::var_os("AUTH_BENCH_PAIRED").is_some() {
        paired_ratios(&cases);
    }
    let mut g = c.benchmark_group("decode");
    for case in &cases {
        let name = format!("{:?}", case.alg);
        let v = validation(case.alg);
        assert!(jsonwebtoken::decode::<RawClaims>(&case.token, &case.raw_key, &v).is_ok());
        g.bench_function(format!("{name}/raw"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<RawClaims>(black_box(&case.token), &case.raw_key, &v)
                    .unwrap()
            });
        });
        let plain = verifier(case.key.clone(), false);
        g.bench_function(format!("{name}/verify"), |b| {
            b.iter(|| plain.verify(black_box(&case.token)).unwrap());
        });
        let mut svc = AuthLayer::new(verifier(case.key.clone(), false)).layer(inner());
        assert_eq!(call(&mut svc, request(&case.token)), 200);
        g.bench_function(format!("{name}/layer"), |b| {
            b.iter_batched(
                || request(&case.token),
                |req| call(&mut svc, req),
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();

    let es = cases.iter().find(|c| c.alg == Algorithm::ES256).unwrap();
    let mut g = c.benchmark_group("cache");
    let mut svc = AuthLayer::new(verifier(es.key.clone(), true)).layer(inner());
    assert_eq!(call(&mut svc, request(&es.token)), 200);
    g.bench_function("ES256/layer_hit", |b| {
        b.iter_batched(
            || request(&es.token),
            |req| call(&mut svc, req),
            BatchSize::SmallInput,
        );
    });
    let v = verifier(es.key.clone(), true);
    v.verify(&es.token).unwrap();
    g.bench_function("ES256/verify_hit", |b| {
        b.iter(|| v.verify(black_box(&es.token)).unwrap());
    });
    let raw = validation(Algorithm::ES256);
    g.bench_function("ES256/raw_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<RawClaims>(black_box(&es.token), &es.raw_key, &raw).unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
