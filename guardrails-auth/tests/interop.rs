//! Interop with implementations this workspace did not write: tokens signed
//! by PyJWT (RS256, ES256, EdDSA), keys served as a JWKS by Python's
//! http.server with OpenID Connect discovery; key rotation picked up without
//! restart, and cached keys that keep working when the endpoint fails.
//!
//! Needs `python3` with `pyjwt[crypto]` (installed by `.ci/setup-external`).
//! Skips when missing, unless `GUARDRAILS_REQUIRE_EXTERNAL=1`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use guardrails_auth::AuthLayer;
use guardrails_auth::jwt::{Issuer, JwksConfig, JwtVerifier};

struct Idp {
    child: Child,
    port: u16,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
                !require_external(),
                "python3 with pyjwt[crypto] is required (GUARDRAILS_REQUIRE_EXTERNAL=1)"
            );
            eprintln!(
                "SKIP interop: python3 with pyjwt[crypto] not found (run .ci/setup-external)"
            );
            return None;
        }
        let script = format!("{}/tests/interop/jose_idp.py", env!("CARGO_MANIFEST_DIR"));
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
        let port = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
        Some(Idp { child, port })
    }

    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

async fn status(layer: &AuthLayer<JwtVerifier>, token: &str) -> u16 {
    call(
        layer.clone(),
        with_token("/v1/tenants/acme/invoices", token),
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_tokens_and_python_jwks() {
    let Some(idp) = Idp::start() else { return };
    let issuer = Issuer::builder(idp.issuer())
        .audience(AUDIENCE)
        .jwks(
            JwksConfig::discovery()
                .insecure_allow_http()
                .min_refetch_interval(Duration::from_millis(300))
                .refresh_interval(Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    issuer.refresh().await.unwrap();
    let verifier = JwtVerifier::builder()
        .issuer(issuer.clone())
        .build()
        .unwrap();
    let layer = AuthLayer::new(verifier);

    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = idp.get(&format!("/token?alg={alg}"));
        assert_eq!(status(&layer, &token).await, 200, "{alg}");
        let wrong_aud = idp.get(&format!("/token?alg={alg}&aud=other"));
        assert_eq!(status(&layer, &wrong_aud).await, 401, "{alg} wrong aud");
        let other_tenant = idp.get(&format!("/token?alg={alg}&tenant=globex"));
        assert_eq!(
            status(&layer, &other_tenant).await,
            403,
            "{alg} other tenant"
        );
    }
    let before = issuer.jwks_stats().unwrap();

    // Rotation: new kids, picked up on first sight without a restart.
    idp.get("/rotate");
    tokio::time::sleep(Duration::from_millis(350)).await;
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = idp.get(&format!("/token?alg={alg}"));
        assert!(token.contains('.'));
        assert_eq!(status(&layer, &token).await, 200, "{alg} after rotation");
    }
    let after = issuer.jwks_stats().unwrap();
    assert_eq!(
        after.fetches,
        before.fetches + 1,
        "one refetch for the rotation"
    );
    assert_eq!(after.rotations, before.rotations + 1);

    // The endpoint fails: the cached keys keep working.
    idp.get("/fail?on=1");
    assert!(issuer.refresh().await.is_err());
    let stats = issuer.jwks_stats().unwrap();
    assert_eq!(stats.failures, 1);
    assert_eq!(stats.keys, 3);
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = idp.get(&format!("/token?alg={alg}"));
        assert_eq!(
            status(&layer, &token).await,
            200,
            "{alg} while the endpoint fails"
        );
    }
    // ...and a rotation the verifier cannot fetch is refused, not crashed on.
    idp.get("/rotate");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let token = idp.get("/token?alg=ES256");
    assert_eq!(status(&layer, &token).await, 401);
    // Back up: the new keys are picked up.
    idp.get("/fail?on=0");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(status(&layer, &token).await, 200);
}
