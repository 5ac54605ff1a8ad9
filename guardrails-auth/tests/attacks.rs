//! The attack catalogue: one row per attack, each asserting the status, the
//! `WWW-Authenticate` challenge, the problem `type` and the reason code, run
//! through a real tower stack (`AuthLayer` → `RequireLayer` → handler).

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use common::*;
use guardrails_auth::AuthLayer;
use guardrails_auth::jwt::{Issuer, JwtVerifier, KeySet, VerifyingKey};
use guardrails_core::ProblemType;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

fn verifier() -> JwtVerifier {
    let a = issuer_a()
        .key(
            VerifyingKey::ec_pem(&data("ec.pub.pem"), Algorithm::ES256)
                .unwrap()
                .with_kid("ec-1")
                .unwrap(),
        )
        .key(
            VerifyingKey::ed_pem(&data("ed.pub.pem"))
                .unwrap()
                .with_kid("ed-1")
                .unwrap(),
        )
        // PS256 is allowed for the issuer, but `rsa-1` is bound to RS256.
        .algorithms([
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ])
        .build()
        .unwrap();
    let b = Issuer::builder(ISSUER_B)
        .audience(AUDIENCE)
        .key(VerifyingKey::hmac(&HS_SECRET.to_vec().into(), Algorithm::HS256).unwrap())
        .build()
        .unwrap();
    let jwks = KeySet::from_jwks_json(&data("enc_keys.jwks.json"), &[Algorithm::RS256]).unwrap();
    assert_eq!(
        jwks.kids().collect::<Vec<_>>(),
        ["sig-2"],
        "use:enc and key_ops:encrypt keys are never loaded"
    );
    let c = Issuer::builder("https://c.example.com")
        .audience(AUDIENCE)
        .keys(&jwks)
        .build()
        .unwrap();
    JwtVerifier::builder()
        .issuer(a)
        .issuer(b)
        .issuer(c)
        .build()
        .unwrap()
}

enum Www {
    /// `Bearer realm="api"` exactly.
    Challenge,
    /// Contains `error="<code>"`.
    Error(&'static str),
    None,
}

struct Row {
    name: &'static str,
    request: Request<Full<Bytes>>,
    status: u16,
    www: Www,
    problem: Option<ProblemType>,
    reason: Option<&'static str>,
}

fn row(
    name: &'static str,
    request: Request<Full<Bytes>>,
    status: u16,
    www: Www,
    problem: Option<ProblemType>,
    reason: Option<&'static str>,
) -> Row {
    Row {
        name,
        request,
        status,
        www,
        problem,
        reason,
    }
}

const URI: &str = "/v1/tenants/acme/invoices";

#[allow(clippy::needless_pass_by_value, reason = "rows are built from format!")]
fn bad(name: &'static str, token: String, reason: &'static str) -> Row {
    row(
        name,
        with_token(URI, &token),
        401,
        Www::Error("invalid_token"),
        Some(ProblemType::INVALID_TOKEN),
        Some(reason),
    )
}

fn without(claim: &str) -> serde_json::Value {
    let mut c = claims(ISSUER_A);
    c.as_object_mut().unwrap().remove(claim);
    c
}

fn with(claim: &str, value: serde_json::Value) -> serde_json::Value {
    let mut c = claims(ISSUER_A);
    c[claim] = value;
    c
}

fn rows() -> Vec<Row> {
    let good = claims(ISSUER_A);
    let good_json = good.to_string();
    let rsa_pub_as_hmac = EncodingKey::from_secret(&data("rsa.pub.pem"));
    let body = || Full::new(Bytes::new());
    let n = now();
    vec![
        row(
            "valid RS256 token",
            with_token(URI, &token_a(&good)),
            200,
            Www::None,
            None,
            None,
        ),
        row(
            "valid ES256 token",
            with_token(
                URI,
                &sign(json!({"alg":"ES256","kid":"ec-1"}), &good, &ec_private()),
            ),
            200,
            Www::None,
            None,
            None,
        ),
        row(
            "valid EdDSA token",
            with_token(
                URI,
                &sign(json!({"alg":"EdDSA","kid":"ed-1"}), &good, &ed_private()),
            ),
            200,
            Www::None,
            None,
            None,
        ),
        row(
            "valid HS256 token of issuer B",
            with_token(
                URI,
                &sign(json!({"alg":"HS256"}), &claims(ISSUER_B), &hs_key()),
            ),
            200,
            Www::None,
            None,
            None,
        ),
        row(
            "no credential",
            get(URI).body(body()).unwrap(),
            401,
            Www::Challenge,
            Some(ProblemType::AUTHENTICATION_REQUIRED),
            Some("missing_credential"),
        ),
        bad(
            "alg none",
            format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&good_json)),
            "alg_none",
        ),
        bad(
            "alg None",
            format!("{}.{}.", b64(r#"{"alg":"None"}"#), b64(&good_json)),
            "alg_none",
        ),
        bad(
            "alg NONE with a signature",
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"NONE","kid":"rsa-1"}"#),
                b64(&good_json)
            ),
            "alg_none",
        ),
        bad(
            "RS256->HS256 confusion: public key as HMAC secret",
            sign_raw(
                r#"{"alg":"HS256","kid":"rsa-1"}"#,
                &good_json,
                &rsa_pub_as_hmac,
                Algorithm::HS256,
            ),
            "alg_not_allowed",
        ),
        bad(
            "alg/JWK mismatch: PS256 on an RS256-bound key (valid PS256 signature)",
            sign(json!({"alg":"PS256","kid":"rsa-1"}), &good, &rsa_private()),
            "alg_key_mismatch",
        ),
        bad(
            "alg/JWK mismatch: ES256 header on the RSA key",
            sign(json!({"alg":"ES256","kid":"rsa-1"}), &good, &ec_private()),
            "alg_key_mismatch",
        ),
        bad(
            "use: enc key is never used",
            sign(
                json!({"alg":"RS256","kid":"enc-1"}),
                &claims("https://c.example.com"),
                &rsa2_private(),
            ),
            "unknown_kid",
        ),
        bad(
            "key_ops without verify is never used",
            sign(
                json!({"alg":"RS256","kid":"ops-1"}),
                &claims("https://c.example.com"),
                &rsa2_private(),
            ),
            "unknown_kid",
        ),
        row(
            "the same key with use: sig verifies",
            with_token(
                URI,
                &sign(
                    json!({"alg":"RS256","kid":"sig-2"}),
                    &claims("https://c.example.com"),
                    &rsa2_private(),
                ),
            ),
            200,
            Www::None,
            None,
            None,
        ),
        bad(
            "unknown crit",
            sign(
                json!({"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1}),
                &good,
                &rsa_private(),
            ),
            "unsupported_crit",
        ),
        bad(
            "jku header",
            sign(
                json!({"alg":"RS256","kid":"rsa-1","jku":"https://evil.example/jwks"}),
                &good,
                &rsa_private(),
            ),
            "embedded_key",
        ),
        bad(
            "x5u header",
            sign(
                json!({"alg":"RS256","kid":"rsa-1","x5u":"https://evil.example/cert"}),
                &good,
                &rsa_private(),
            ),
            "embedded_key",
        ),
        bad(
            "embedded jwk header",
            sign(
                json!({"alg":"RS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}),
                &good,
                &rsa_private(),
            ),
            "embedded_key",
        ),
        bad(
            "x5c header",
            sign(
                json!({"alg":"RS256","kid":"rsa-1","x5c":["MIIB"]}),
                &good,
                &rsa_private(),
            ),
            "embedded_key",
        ),
        bad(
            "kid traversal",
            sign(
                json!({"alg":"RS256","kid":"../../../../dev/null"}),
                &good,
                &rsa_private(),
            ),
            "invalid_kid",
        ),
        bad(
            "kid too long",
            sign(
                json!({"alg":"RS256","kid":"k".repeat(200)}),
                &good,
                &rsa_private(),
            ),
            "invalid_kid",
        ),
        bad(
            "unknown kid",
            sign(json!({"alg":"RS256","kid":"rsa-9"}), &good, &rsa_private()),
            "unknown_kid",
        ),
        bad(
            "expired",
            token_a(&with("exp", json!(n - 3600))),
            "token_expired",
        ),
        bad(
            "nbf in the future",
            token_a(&with("nbf", json!(n + 3600))),
            "token_not_yet_valid",
        ),
        bad(
            "iat in the future",
            token_a(&with("iat", json!(n + 3600))),
            "iat_in_future",
        ),
        bad("missing iss", token_a(&without("iss")), "missing_claim"),
        bad(
            "iss of the wrong type",
            token_a(&with("iss", json!(42))),
            "invalid_claim",
        ),
        bad(
            "untrusted iss",
            token_a(&with("iss", json!("https://evil.example"))),
            "untrusted_issuer",
        ),
        bad("missing aud", token_a(&without("aud")), "missing_claim"),
        bad(
            "aud of the wrong type",
            token_a(&with("aud", json!(42))),
            "invalid_claim",
        ),
        bad(
            "wrong aud",
            token_a(&with("aud", json!("another-api"))),
            "wrong_audience",
        ),
        bad("missing exp", token_a(&without("exp")), "missing_claim"),
        bad(
            "exp of the wrong type",
            token_a(&with("exp", json!("tomorrow"))),
            "invalid_claim",
        ),
        bad("missing sub", token_a(&without("sub")), "missing_claim"),
        bad(
            "aud array of the wrong items",
            token_a(&with("aud", json!([AUDIENCE, 7]))),
            "invalid_claim",
        ),
        bad(
            "aud array without us",
            token_a(&with("aud", json!(["a", "b"]))),
            "wrong_audience",
        ),
        bad(
            "empty aud array",
            token_a(&with("aud", json!([]))),
            "wrong_audience",
        ),
        bad(
            "sub of the wrong type",
            token_a(&with("sub", json!(1))),
            "invalid_claim",
        ),
        bad(
            "exp just beyond the leeway",
            token_a(&with("exp", json!(now() - 31))),
            "token_expired",
        ),
        bad(
            // RFC 7519 §4.1.4: valid only before `exp` (plus the leeway).
            "exp exactly at the end of the leeway",
            token_a(&with("exp", json!(now() - 30))),
            "token_expired",
        ),
        bad(
            "exp beyond any date (would overflow the clock)",
            token_a(&with("exp", json!(u64::MAX))),
            "invalid_claim",
        ),
        bad(
            "negative exp",
            token_a(&with("exp", json!(-1))),
            "invalid_claim",
        ),
        bad(
            "exp null",
            token_a(&with("exp", json!(null))),
            "invalid_claim",
        ),
        bad(
            "fractional exp in the past",
            token_a(&with("exp", json!(n as f64 - 3600.5))),
            "token_expired",
        ),
        bad(
            "nbf as a string",
            token_a(&with("nbf", json!(n.to_string()))),
            "invalid_claim",
        ),
        bad(
            "iat beyond any date",
            token_a(&with("iat", json!(1.0e300))),
            "invalid_claim",
        ),
        bad(
            "iss as an array",
            token_a(&with("iss", json!([ISSUER_A]))),
            "invalid_claim",
        ),
        bad(
            "HS256 signature truncated to 16 bytes",
            {
                let t = sign(json!({"alg":"HS256"}), &claims(ISSUER_B), &hs_key());
                let dot = t.rfind('.').unwrap();
                let sig = URL_SAFE_NO_PAD.decode(&t[dot + 1..]).unwrap();
                format!("{}.{}", &t[..dot], URL_SAFE_NO_PAD.encode(&sig[..16]))
            },
            "bad_signature",
        ),
        bad(
            "HS256 signature with non-canonical trailing bits",
            {
                let t = sign(json!({"alg":"HS256"}), &claims(ISSUER_B), &hs_key());
                // 32 bytes are 43 characters; the last one carries 2 unused
                // bits. Flipping one gives another string for the same bytes.
                let mut bytes = t.into_bytes();
                let last = bytes.len() - 1;
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let i = alphabet.iter().position(|&c| c == bytes[last]).unwrap();
                bytes[last] = alphabet[i ^ 1];
                String::from_utf8(bytes).unwrap()
            },
            "bad_signature",
        ),
        bad(
            "HS256 signature with base64 padding",
            format!(
                "{}=",
                sign(json!({"alg":"HS256"}), &claims(ISSUER_B), &hs_key())
            ),
            "malformed_token",
        ),
        bad(
            "scope of the wrong type",
            token_a(&with("scope", json!(7))),
            "invalid_claim",
        ),
        bad(
            "tenant of the wrong type",
            token_a(&with("tenant", json!(["acme"]))),
            "invalid_claim",
        ),
        bad(
            "wrong issuer's key: claims B, signed by A's RSA key",
            sign(
                json!({"alg":"RS256","kid":"rsa-1"}),
                &claims(ISSUER_B),
                &rsa_private(),
            ),
            "unknown_kid",
        ),
        bad(
            "wrong issuer's key: claims A, signed by B's HMAC key",
            sign(json!({"alg":"HS256"}), &good, &hs_key()),
            "alg_not_allowed",
        ),
        bad(
            "tampered payload",
            {
                let t = token_a(&good);
                let mut parts: Vec<&str> = t.split('.').collect();
                let evil = b64(&with("tenant", json!("globex")).to_string());
                parts[1] = &evil;
                parts.join(".")
            },
            "bad_signature",
        ),
        bad(
            "empty signature",
            {
                let t = token_a(&good);
                format!("{}.", &t[..t.rfind('.').unwrap()])
            },
            "bad_signature",
        ),
        bad(
            "oversized token",
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"RS256"}"#),
                "A".repeat(9000),
                "sig"
            ),
            "credential_too_large",
        ),
        bad(
            "malformed base64 header",
            format!("eyJhbGciOiJSUzI1NiJ9x.{}.c2ln", b64(&good_json)),
            "malformed_token",
        ),
        bad(
            "malformed JSON header",
            format!("{}.{}.c2ln", b64(r#"{"alg":"RS256""#), b64(&good_json)),
            "malformed_header",
        ),
        bad(
            "two segments",
            format!("{}.{}", b64(r#"{"alg":"RS256"}"#), b64(&good_json)),
            "malformed_token",
        ),
        bad(
            "malformed JSON claims",
            sign_raw(
                r#"{"alg":"RS256","kid":"rsa-1"}"#,
                r#"{"sub":"alice","#,
                &rsa_private(),
                Algorithm::RS256,
            ),
            "malformed_claims",
        ),
        bad(
            "duplicate sub claim",
            sign_raw(
                r#"{"alg":"RS256","kid":"rsa-1"}"#,
                &good_json.replacen('{', r#"{"sub":"admin","#, 1),
                &rsa_private(),
                Algorithm::RS256,
            ),
            "duplicate_claim",
        ),
        bad(
            "duplicate tenant claim",
            sign_raw(
                r#"{"alg":"RS256","kid":"rsa-1"}"#,
                &good_json.replacen('{', r#"{"tenant":"globex","#, 1),
                &rsa_private(),
                Algorithm::RS256,
            ),
            "duplicate_claim",
        ),
        bad(
            "duplicate member in a nested claim",
            sign_raw(
                r#"{"alg":"RS256","kid":"rsa-1"}"#,
                &good_json.replacen('{', r#"{"perms":{"admin":false,"admin":true},"#, 1),
                &rsa_private(),
                Algorithm::RS256,
            ),
            "duplicate_claim",
        ),
        bad(
            "duplicate header member",
            sign_raw(
                r#"{"alg":"RS256","kid":"rsa-1","kid":"ec-1"}"#,
                &good_json,
                &rsa_private(),
                Algorithm::RS256,
            ),
            "malformed_header",
        ),
        row(
            "scheme bearer accepted",
            get(URI)
                .header("authorization", format!("bearer {}", token_a(&good)))
                .body(body())
                .unwrap(),
            200,
            Www::None,
            None,
            None,
        ),
        row(
            "scheme BEARER accepted",
            get(URI)
                .header("authorization", format!("BEARER {}", token_a(&good)))
                .body(body())
                .unwrap(),
            200,
            Www::None,
            None,
            None,
        ),
        row(
            "two Authorization headers",
            get(URI)
                .header("authorization", format!("Bearer {}", token_a(&good)))
                .header("authorization", format!("Bearer {}", token_a(&good)))
                .body(body())
                .unwrap(),
            400,
            Www::Error("invalid_request"),
            Some(ProblemType::INVALID_REQUEST),
            Some("multiple_credentials"),
        ),
        row(
            "Basic scheme",
            get(URI)
                .header("authorization", "Basic YWxpY2U6c2VjcmV0")
                .body(body())
                .unwrap(),
            400,
            Www::Error("invalid_request"),
            Some(ProblemType::INVALID_REQUEST),
            Some("malformed_credential"),
        ),
        row(
            "token in the query rejected by default",
            get(&format!("{URI}?access_token={}", token_a(&good)))
                .body(body())
                .unwrap(),
            400,
            Www::Error("invalid_request"),
            Some(ProblemType::INVALID_REQUEST),
            Some("credential_in_query"),
        ),
        row(
            "cross-tenant access",
            with_token("/v1/tenants/globex/invoices", &token_a(&good)),
            403,
            Www::None,
            Some(ProblemType::FORBIDDEN_TENANT),
            Some("cross_tenant"),
        ),
        row(
            "missing scope",
            with_token(URI, &token_a(&with("scope", json!("invoices:write")))),
            403,
            Www::Error("insufficient_scope"),
            Some(ProblemType::INSUFFICIENT_SCOPE),
            Some("missing_scope"),
        ),
        row(
            "spoofed identity headers are stripped",
            get(URI)
                .header("authorization", format!("Bearer {}", token_a(&good)))
                .header("x-user-id", "admin")
                .header("x-tenant-id", "globex")
                .header("x-roles", "admin")
                .header("x_user_id", "admin")
                .header("X_Tenant_Id", "globex")
                .body(body())
                .unwrap(),
            200,
            Www::None,
            None,
            None,
        ),
    ]
}

#[tokio::test]
async fn attack_catalogue() {
    let verifier = verifier();
    let mut failures = Vec::new();
    for row in rows() {
        let token_in_request = row
            .request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, t)| t.to_owned());
        let reply = call(AuthLayer::new(verifier.clone()), row.request).await;
        let mut problems = Vec::new();
        if reply.status != row.status {
            problems.push(format!("status {} (want {})", reply.status, row.status));
        }
        let www = reply.www();
        match (&row.www, &www) {
            (Www::Challenge, Some(w)) if w == r#"Bearer realm="api""# => {}
            (Www::Error(code), Some(w))
                if w.starts_with(r#"Bearer realm="api""#)
                    && w.contains(&format!("error=\"{code}\"")) => {}
            (Www::None, None) => {}
            _ => problems.push(format!("www-authenticate {www:?}")),
        }
        if let Some(pt) = row.problem {
            let json = reply.json();
            if json["type"] != pt.uri() {
                problems.push(format!("type {}", json["type"]));
            }
            if reply.headers["content-type"] != "application/problem+json" {
                problems.push("content-type".to_owned());
            }
            if json["reason"] != row.reason.unwrap() {
                problems.push(format!("reason {}", json["reason"]));
            }
            match reply.rejection {
                Some(r) if r.reason() == row.reason.unwrap() && r.problem_type() == pt => {}
                other => problems.push(format!("rejection extension {other:?}")),
            }
        } else if !reply.body.starts_with(b"alice spoofed=0 sensitive=true") {
            problems.push(format!("body {:?}", String::from_utf8_lossy(&reply.body)));
        }
        if let Some(token) = token_in_request {
            let body = String::from_utf8_lossy(&reply.body);
            if token.len() > 8 && body.contains(&token) {
                problems.push("the token is echoed".to_owned());
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", row.name, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn required_typ_rejects_other_types() {
    let issuer = issuer_a().require_typ("at+jwt").build().unwrap();
    let v = JwtVerifier::builder().issuer(issuer).build().unwrap();
    let good = claims(ISSUER_A);
    let at = sign(
        json!({"alg":"RS256","kid":"rsa-1","typ":"at+jwt"}),
        &good,
        &rsa_private(),
    );
    assert_eq!(v.verify(&at).unwrap().subject(), "alice");
    let at = sign(
        json!({"alg":"RS256","kid":"rsa-1","typ":"application/at+jwt"}),
        &good,
        &rsa_private(),
    );
    assert!(v.verify(&at).is_ok());
    for typ in [json!("JWT"), json!(null)] {
        let mut h = json!({"alg":"RS256","kid":"rsa-1"});
        if !typ.is_null() {
            h["typ"] = typ;
        }
        assert_eq!(
            v.verify(&sign(h, &good, &rsa_private())).unwrap_err(),
            guardrails_auth::AuthError::WrongType
        );
    }
}

#[tokio::test]
async fn optional_mode_lets_anonymous_through_but_not_bad_tokens() {
    let layer = AuthLayer::new(verifier()).optional();
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service_fn(handler);
    let reply = send(svc.clone(), get(URI).body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.starts_with(b"anonymous"));
    let reply = send(svc.clone(), with_token(URI, "a.b.c")).await;
    assert_eq!(reply.status, 401);
    let reply = send(
        svc,
        get("/healthz")
            .header("x-user-id", "admin")
            .header("x_roles", "admin")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.starts_with(b"anonymous spoofed=0"),
        "stripped on public paths too"
    );
}

#[tokio::test]
async fn rs_to_hs_confusion_is_refused_even_when_hs256_is_allowed() {
    // An issuer that (unwisely) allows HS256 and RS256: the RSA key still
    // cannot be used as an HMAC secret, because keys never change kind.
    let issuer = issuer_a()
        .algorithms([Algorithm::RS256, Algorithm::HS256])
        .build()
        .unwrap();
    let v = JwtVerifier::builder().issuer(issuer).build().unwrap();
    let forged = sign_raw(
        r#"{"alg":"HS256","kid":"rsa-1"}"#,
        &claims(ISSUER_A).to_string(),
        &EncodingKey::from_secret(&data("rsa.pub.pem")),
        Algorithm::HS256,
    );
    assert_eq!(
        v.verify(&forged).unwrap_err(),
        guardrails_auth::AuthError::AlgorithmKeyMismatch
    );
}

#[tokio::test]
async fn query_tokens_only_with_the_insecure_opt_in() {
    let uri = format!("{URI}?access_token={}", token_a(&claims(ISSUER_A)));
    let req = || get(&uri).body(Full::new(Bytes::new())).unwrap();
    assert_eq!(call(AuthLayer::new(verifier()), req()).await.status, 400);
    let layer = AuthLayer::new(verifier()).insecure_allow_query_token("access_token");
    assert_eq!(call(layer.clone(), req()).await.status, 200);
    // A header and a query token at once: ambiguous.
    let mut both = req();
    both.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token_a(&claims(ISSUER_A)))
            .parse()
            .unwrap(),
    );
    assert_eq!(call(layer, both).await.status, 400);
}

#[tokio::test]
async fn claims_reach_the_principal() {
    let mut c = claims(ISSUER_A);
    c["roles"] = json!(["admin", "billing"]);
    c["jti"] = json!("t-1");
    c["plan"] = json!({"name": "pro"});
    let p = verifier().verify(&token_a(&c)).unwrap();
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.issuer(), Some(ISSUER_A));
    assert_eq!(p.tenant(), Some("acme"));
    assert!(p.has_role("admin") && p.has_role("billing"));
    assert_eq!(p.token_id(), Some("t-1"));
    assert_eq!(p.claims()["plan"]["name"], "pro");
    assert!(p.expires_at().is_some());
}

/// With several trusted issuers, one that speaks for some tenants only (an
/// identity provider per customer) cannot name another tenant: its tokens
/// must name one of its own, or are invalid.
#[tokio::test]
async fn an_issuer_limited_to_some_tenants_cannot_name_another() {
    let a = issuer_a().build().unwrap();
    let globex_sso = Issuer::builder(ISSUER_B)
        .audience(AUDIENCE)
        .key(VerifyingKey::hmac(&HS_SECRET.to_vec().into(), Algorithm::HS256).unwrap())
        .tenants(["globex"])
        .build()
        .unwrap();
    let verifier = JwtVerifier::builder()
        .issuer(a)
        .issuer(globex_sso)
        .build()
        .unwrap();
    let b_token = |tenant: Option<&str>| {
        let mut c = claims(ISSUER_B);
        match tenant {
            Some(t) => c["tenant"] = json!(t),
            None => {
                c.as_object_mut().unwrap().remove("tenant");
            }
        }
        sign(json!({"alg":"HS256"}), &c, &hs_key())
    };
    let status = |uri: &str, token: &str| {
        let verifier = verifier.clone();
        let request = with_token(uri, token);
        async move { call(AuthLayer::new(verifier), request).await.status }
    };
    // Its own tenant: through.
    assert_eq!(
        status("/v1/tenants/globex/invoices", &b_token(Some("globex"))).await,
        200
    );
    // Another tenant, or none: the token is invalid.
    assert_eq!(
        status("/v1/tenants/acme/invoices", &b_token(Some("acme"))).await,
        401
    );
    assert_eq!(status("/healthz", &b_token(None)).await, 401);
    // The unrestricted issuer still names any tenant.
    assert_eq!(
        status("/v1/tenants/acme/invoices", &token_a(&claims(ISSUER_A))).await,
        200
    );
}
