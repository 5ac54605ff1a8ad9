//! Authentication end to end: the real binary, a real HTTP client, tokens
//! from `saas-api token` (development HS256) and, when Python's PyJWT is
//! available, from an independent identity provider through
//! `SAAS_AUTH__JWKS_URL`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use bytes::Bytes;
use common::{command, send, start, token};
use http_body_util::Full;
use serde_json::json;

fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    b.body(Full::new(body)).unwrap()
}

fn invoice() -> serde_json::Value {
    json!({
        "customer_email": "billing@example.com",
        "currency": "EUR",
        "due_date": "2026-12-31",
        "lines": [{ "description": "Seats", "quantity": 3, "unit_price_cents": 1500 }]
    })
}

#[tokio::test]
async fn tokens_from_the_token_command_guard_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command();
    cmd.env("SAAS_AUDIT__PATH", dir.path().join("audit.jsonl"));
    let app = start(cmd);
    let reader = token(&[
        "--sub",
        "alice",
        "--tenant",
        "acme",
        "--scope",
        "invoices:read",
    ]);
    let writer = token(&[
        "--sub",
        "bob",
        "--tenant",
        "acme",
        "--scope",
        "invoices:read invoices:write",
    ]);
    let admin = token(&[
        "--sub", "carol", "--tenant", "acme", "--role", "admin", "--ttl", "60",
    ]);
    let list = app.url("/v1/tenants/acme/invoices");

    // No token: 401 with a challenge, problem+json, never the invoices.
    let r = send(request("GET", &list, None, None)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], r#"Bearer realm="api""#);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(
        r.json()["type"],
        "tag:guardrails.rs,2026:problem/authentication-required"
    );

    // A garbage token: 401 invalid_token, not echoed.
    let r = send(request("GET", &list, Some("not.a.token"), None)).await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    assert!(!String::from_utf8_lossy(&r.body).contains("not.a.token"));

    // Read with the reader; cross-tenant and write are refused.
    let r = send(request("GET", &list, Some(&reader), None)).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let r = send(request(
        "GET",
        &app.url("/v1/tenants/globex/invoices"),
        Some(&reader),
        None,
    ))
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["type"],
        "tag:guardrails.rs,2026:problem/forbidden-tenant"
    );
    let r = send(request("POST", &list, Some(&reader), Some(invoice()))).await;
    assert_eq!(r.status, 403);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"scope="invoices:write""#)
    );

    // The writer creates; the reader reads it back; delete needs admin.
    let r = send(request("POST", &list, Some(&writer), Some(invoice()))).await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let one = app.url(&format!("/v1/tenants/acme/invoices/{id}"));
    assert_eq!(
        send(request("GET", &one, Some(&reader), None)).await.status,
        200
    );
    let r = send(request("DELETE", &one, Some(&writer), None)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["type"], "tag:guardrails.rs,2026:problem/forbidden");
    let r = send(request("DELETE", &one, Some(&admin), None)).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        send(request("GET", &one, Some(&reader), None)).await.status,
        404,
        "the invoice is gone"
    );

    // Public routes need nothing; a spoofed identity header changes nothing.
    assert_eq!(
        send(request("GET", &app.url("/healthz"), None, None))
            .await
            .status,
        200
    );
    let mut spoofed = request("GET", &list, None, None);
    spoofed
        .headers_mut()
        .insert("x-user-id", "alice".parse().unwrap());
    spoofed
        .headers_mut()
        .insert("x-tenant-id", "acme".parse().unwrap());
    assert_eq!(send(spoofed).await.status, 401);

    // The decisions are counted, with bounded labels.
    let metrics = send(request("GET", &app.url("/metrics"), None, None)).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("guardrails_auth_decisions_total"), "{text}");
    assert!(!text.contains(&reader));
}

#[test]
fn the_token_command_is_development_only() {
    // A valid production configuration with an HS256 secret: the refusal
    // comes from the environment check, not from a configuration error.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hs256");
    std::fs::write(&secret, "Zq3vN8xKp2LmA7bT5wYc9HdE1gUf4sRjh7Gk2PqX").unwrap();
    let out = command()
        .env("SAAS_ENV", "production")
        .env("SAAS_AUTH__ISSUER", "https://idp.example.com/")
        .env("SAAS_AUTH__HS256_SECRET_FILE", &secret)
        .env("SAAS_AUDIT__PATH", dir.path().join("audit.jsonl"))
        .args(["token", "--sub", "a", "--tenant", "t"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "no token printed");
    assert!(
        stderr.contains("only works in the development environment"),
        "{stderr}"
    );
}

/// An independent IdP (PyJWT + http.server, from guardrails-auth's interop
/// test), killed when dropped. `None` (the test skips) without PyJWT, unless
/// `GUARDRAILS_REQUIRE_EXTERNAL=1`.
struct Idp {
    child: std::process::Child,
    port: u16,
}

impl Idp {
    fn start() -> Option<Idp> {
        let ok = Command::new("python3")
            .args(["-c", "import jwt, cryptography"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("GUARDRAILS_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
                "python3 with pyjwt[crypto] is required"
            );
            eprintln!("SKIP: python3 with pyjwt[crypto] not found (run .ci/setup-external)");
            return None;
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../guardrails-auth/tests/interop/jose_idp.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
        Some(Idp { child, port })
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").unwrap().1.to_owned()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The external IdP's keys through `SAAS_AUTH__JWKS_URL`.
#[tokio::test]
async fn an_external_identity_provider_through_jwks_url() {
    let Some(idp) = Idp::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command();
    cmd.env("SAAS_AUDIT__PATH", dir.path().join("audit.jsonl"))
        .env("SAAS_AUTH__ISSUER", idp.base())
        .env("SAAS_AUTH__JWKS_URL", format!("{}/jwks.json", idp.base()))
        .env("SAAS_AUTH__AUDIENCE", "saas-api");
    let app = start(cmd);
    let list = app.url("/v1/tenants/acme/invoices");
    for alg in ["ES256", "RS256", "EdDSA"] {
        let t = idp.get(&format!("/token?alg={alg}&scope=invoices:read"));
        let r = send(request("GET", &list, Some(&t), None)).await;
        assert_eq!(r.status, 200, "{alg}: {:?}", r.json());
    }
    // A development token is not trusted when a JWKS is configured.
    let dev = token(&[
        "--sub",
        "mallory",
        "--tenant",
        "acme",
        "--scope",
        "invoices:read",
    ]);
    assert_eq!(
        send(request("GET", &list, Some(&dev), None)).await.status,
        401
    );
}

/// The external IdP's keys found by OpenID Connect discovery from the issuer
/// alone: no JWKS URL, no secret (the `test` environment has no development
/// secret, and allows a plain-http loopback issuer).
#[tokio::test]
async fn an_external_identity_provider_through_discovery() {
    let Some(idp) = Idp::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command();
    cmd.env("SAAS_ENV", "test")
        .env("SAAS_AUDIT__PATH", dir.path().join("audit.jsonl"))
        .env("SAAS_AUTH__ISSUER", idp.base())
        .env("SAAS_AUTH__AUDIENCE", "saas-api");
    let app = start(cmd);
    let list = app.url("/v1/tenants/acme/invoices");
    for alg in ["ES256", "RS256", "EdDSA"] {
        let t = idp.get(&format!("/token?alg={alg}&scope=invoices:read"));
        let r = send(request("GET", &list, Some(&t), None)).await;
        assert_eq!(r.status, 200, "{alg}: {:?}", r.json());
    }
    // The keys came from the `jwks_uri` the discovery document named.
    let stats: serde_json::Value = serde_json::from_str(&idp.get("/stats")).unwrap();
    assert!(stats["jwks_hits"].as_u64() >= Some(1), "{stats}");
    // Forged: a token of the IdP with its signature replaced.
    let t = idp.get("/token?alg=ES256&scope=invoices:read");
    let forged = format!("{}.AAAA", &t[..t.rfind('.').unwrap()]);
    assert_eq!(
        send(request("GET", &list, Some(&forged), None))
            .await
            .status,
        401
    );
}
