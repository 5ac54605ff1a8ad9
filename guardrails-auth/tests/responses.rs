//! Pluggable rejections (a tonic-style gRPC answer), the `Rejection` for outer
//! layers, and observability that never carries the token.

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use guardrails_auth::jwt::JwtVerifier;
use guardrails_auth::respond::{AuthRejection, GrpcResponder};
use guardrails_auth::{AuthError, AuthLayer, RequireLayer};
use http::{Request, Response};
use http_body_util::Full;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde_json::json;
use tower::ServiceBuilder;

fn verifier() -> JwtVerifier {
    rsa_verifier()
}

fn grpc_request(token: Option<&str>) -> Request<Full<Bytes>> {
    let mut b =
        Request::post("/invoices.v1.Invoices/List").header("content-type", "application/grpc");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn grpc_rejections_are_http_200_with_grpc_status() {
    let svc = ServiceBuilder::new()
        .layer(AuthLayer::new(verifier()).responder(GrpcResponder))
        .layer(
            RequireLayer::new()
                .scope("invoices:write")
                .unwrap()
                .responder(GrpcResponder),
        )
        .service_fn(handler);
    let r = send(svc.clone(), grpc_request(None)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/grpc");
    assert_eq!(r.headers["grpc-status"], "16");
    assert!(r.headers.get("www-authenticate").is_none());
    assert_eq!(r.rejection.unwrap().reason(), "missing_credential");

    let r = send(svc.clone(), grpc_request(Some("a.b.c"))).await;
    assert_eq!(
        (r.status, r.headers["grpc-status"].to_str().unwrap()),
        (200, "16")
    );

    // Valid token, missing scope: PERMISSION_DENIED.
    let r = send(svc, grpc_request(Some(&token_a(&claims(ISSUER_A))))).await;
    assert_eq!(
        (r.status, r.headers["grpc-status"].to_str().unwrap()),
        (200, "7")
    );
    assert_eq!(r.rejection.unwrap().reason(), "missing_scope");
}

#[tokio::test]
async fn a_closure_is_a_responder() {
    // What a tonic server would do with `tonic::Status::unauthenticated(..).into_http()`.
    let responder = |rejection: &AuthRejection<'_>| {
        let code = if rejection.error().is_authorization() {
            "7"
        } else {
            "16"
        };
        Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", code)
            .header("grpc-message", rejection.error().reason())
            .body(Bytes::new())
            .unwrap()
    };
    let svc = ServiceBuilder::new()
        .layer(AuthLayer::new(verifier()).responder(responder))
        .service_fn(handler);
    let r = send(svc, grpc_request(Some("x.y.z"))).await;
    assert_eq!(r.headers["grpc-status"], "16");
    assert_eq!(r.headers["grpc-message"], "malformed_token");
}

/// A recorder that keeps every counter key it sees.
#[derive(Clone, Default)]
struct Keys(Arc<Mutex<Vec<String>>>);

impl Recorder for Keys {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        self.0
            .lock()
            .unwrap()
            .push(format!("{}{{{}}}", key.name(), labels.join(",")));
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// A tracing writer that keeps everything written.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn metrics_and_traces_never_carry_the_token() {
    let recorder = Keys::default();
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let good = token_a(&claims(ISSUER_A));
    let mut expired = claims(ISSUER_A);
    expired["exp"] = json!(now() - 3600);
    let expired = token_a(&expired);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        tracing::subscriber::with_default(subscriber, || {
            // Interest cached by other tests' threads is recomputed under
            // this subscriber (tracing's callsite cache is process-wide).
            tracing::callsite::rebuild_interest_cache();
            rt.block_on(async {
                for t in [&good, &expired, &"garbage.token.here".to_owned()] {
                    call(
                        AuthLayer::new(verifier()),
                        with_token("/v1/tenants/acme/invoices", t),
                    )
                    .await;
                }
                call(
                    AuthLayer::new(verifier()),
                    with_token("/v1/tenants/globex/invoices", &good),
                )
                .await;
            });
        });
    });
    let keys = recorder.0.lock().unwrap().join("\n");
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    for needle in [&good, &expired] {
        let sig = needle.rsplit('.').next().unwrap();
        assert!(!keys.contains(sig) && !logs.contains(sig), "token leaked");
        let payload = needle.split('.').nth(1).unwrap();
        assert!(
            !keys.contains(payload) && !logs.contains(payload),
            "token leaked"
        );
    }
    assert!(!logs.contains("garbage.token.here"));
    assert!(
        keys.contains("guardrails_auth_decisions_total{outcome=allow,reason=authenticated}"),
        "{keys}"
    );
    assert!(
        keys.contains("guardrails_auth_decisions_total{outcome=deny,reason=token_expired}"),
        "{keys}"
    );
    assert!(
        keys.contains("guardrails_auth_decisions_total{outcome=deny,reason=cross_tenant}"),
        "{keys}"
    );
    assert!(
        logs.contains("subject=\"alice\"") || logs.contains("subject=alice"),
        "{logs}"
    );
    assert!(
        logs.contains("reason=\"token_expired\"") || logs.contains("reason=token_expired"),
        "{logs}"
    );
    // Every label value is one of the fixed reason codes.
    for line in keys
        .lines()
        .filter(|l| l.starts_with("guardrails_auth_decisions_total"))
    {
        let reason = line.split("reason=").nth(1).unwrap().trim_end_matches('}');
        assert!(
            ["authenticated", "public", "anonymous"].contains(&reason)
                || AuthError::ALL.iter().any(|e| e.reason() == reason),
            "{line}"
        );
    }
}
