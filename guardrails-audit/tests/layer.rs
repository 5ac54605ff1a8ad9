//! The audit layer through a real axum router: route templates, actors,
//! rejection reasons, policy levels, redaction, client addresses, log
//! injection, domain events, strict ordering.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use guardrails_audit::sink::MemorySink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{
    AuditEvent, AuditLayer, AuditPipeline, CapturePrincipalLayer, Category, DeliveryMode, Level,
    Outcome, RequestAudit, RoutePolicy, Stage, TrustedProxies, verify,
};
use guardrails_core::{AuthMethod, Principal, Problem, ProblemType, Rejection, RejectionCategory};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::{Layer, ServiceExt};

fn principal() -> Principal {
    Principal::builder("alice", AuthMethod::Jwt)
        .tenant("acme")
        .token_id("jti-do-not-log")
        .build()
}

/// A stand-in for an authentication layer: `authorization: ok` gives a
/// principal, anything else is a 401 with a Rejection.
async fn fake_auth(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        Some("ok") => {
            req.extensions_mut().insert(principal());
            next.run(req).await
        }
        _ => {
            let mut response = Problem::new(ProblemType::AUTHENTICATION_REQUIRED).into_response();
            Rejection::new(
                RejectionCategory::Authentication,
                "missing_credentials",
                ProblemType::AUTHENTICATION_REQUIRED,
            )
            .insert_into(response.extensions_mut());
            response
        }
    }
}

async fn forbidden() -> axum::response::Response {
    let mut response = Problem::new(ProblemType::FORBIDDEN).into_response();
    Rejection::new(
        RejectionCategory::Authorization,
        "missing_scope",
        ProblemType::FORBIDDEN,
    )
    .insert_into(response.extensions_mut());
    response
}

async fn delete_invoice(
    audit: RequestAudit,
    axum::extract::Path((_t, id)): axum::extract::Path<(String, String)>,
) -> Result<&'static str, Problem> {
    let event = audit
        .event("invoice.delete", Category::DataWrite)
        .with_outcome(Outcome::Success)
        .with_target("invoice", id)
        .with_detail("api_key", "should-not-appear");
    audit
        .record(event)
        .await
        .map_err(|e| e.to_problem(audit.mode()))?;
    Ok("deleted")
}

fn router(layer: AuditLayer) -> Router {
    Router::new()
        .route(
            "/v1/tenants/{tenant}/invoices/{id}",
            get(|| async { "invoice" }).delete(delete_invoice),
        )
        .route("/v1/tenants/{tenant}/secret", get(forbidden))
        .route(
            "/v1/tenants/{tenant}/invoices",
            post(|body: String| async move { (StatusCode::CREATED, body) }),
        )
        .route_layer(CapturePrincipalLayer)
        .layer(axum::middleware::from_fn(fake_auth))
        .route("/healthz", get(|| async { "ok" }))
        .layer(layer)
}

async fn call(app: &Router, req: Request<Body>) -> StatusCode {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await.unwrap();
    status
}

fn setup(
    configure: impl FnOnce(AuditLayer) -> AuditLayer,
) -> (Router, MemorySink, guardrails_audit::AuditGuard) {
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
    (router(configure(AuditLayer::new(auditor))), sink, guard)
}

async fn finish(sink: &MemorySink, guard: guardrails_audit::AuditGuard) -> Vec<Value> {
    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");
    sink.events().iter().map(AuditEvent::to_json).collect()
}

#[tokio::test]
async fn records_route_template_actor_status_and_duration() {
    let (app, sink, guard) = setup(|l| l);
    let req = Request::get("/v1/tenants/acme/invoices/inv_1?token=secret-in-query")
        .header("authorization", "ok")
        .header("user-agent", "curl/8")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await, StatusCode::OK);
    let events = finish(&sink, guard).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["schema"], "guardrails.audit/1");
    assert_eq!(e["action"], "http.request");
    assert_eq!(e["category"], "data_read");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["request"]["route"], "/v1/tenants/{tenant}/invoices/{id}");
    assert_eq!(e["request"]["path"], "/v1/tenants/acme/invoices/inv_1");
    assert_eq!(e["request"]["method"], "GET");
    assert_eq!(e["request"]["status"], 200);
    assert!(e["request"]["duration_us"].is_u64());
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["actor"]["tenant"], "acme");
    assert_eq!(e["actor"]["auth_method"], "jwt");
    assert_eq!(e["source"]["user_agent"], "curl/8");
    assert!(
        uuid::Uuid::parse_str(e["id"].as_str().unwrap())
            .unwrap()
            .get_version_num()
            == 7
    );
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    let text = e.to_string();
    assert!(
        !text.contains("secret-in-query"),
        "the query is never recorded"
    );
    assert!(
        !text.contains("jti-do-not-log"),
        "token ids are never recorded"
    );
}

#[tokio::test]
async fn raw_path_can_be_left_out() {
    let (app, sink, guard) = setup(|l| l.record_path(false));
    let req = Request::get("/v1/tenants/acme/invoices/magic-link-secret")
        .header("authorization", "ok")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await, StatusCode::OK);
    let events = finish(&sink, guard).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["request"]["route"],
        "/v1/tenants/{tenant}/invoices/{id}"
    );
    assert!(events[0]["request"]["path"].is_null());
    assert!(!events[0].to_string().contains("magic-link-secret"));
}

#[tokio::test]
async fn authentication_authorization_and_validation_failures_are_recorded_as_such() {
    let (app, sink, guard) = setup(|l| l);
    let anon = Request::get("/v1/tenants/acme/invoices/inv_1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, anon).await, StatusCode::UNAUTHORIZED);
    let denied = Request::get("/v1/tenants/acme/secret")
        .header("authorization", "ok")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, denied).await, StatusCode::FORBIDDEN);
    let events = finish(&sink, guard).await;
    assert_eq!(events[0]["category"], "authn");
    assert_eq!(events[0]["outcome"], "failure");
    assert_eq!(events[0]["reason"], "missing_credentials");
    assert_eq!(events[0]["actor"]["type"], "anonymous");
    assert_eq!(events[0]["details"]["rejection"], "authentication");
    assert_eq!(events[1]["category"], "authz");
    assert_eq!(events[1]["outcome"], "denied");
    assert_eq!(events[1]["reason"], "missing_scope");
    assert_eq!(events[1]["actor"]["subject"], "alice");
    assert_eq!(events[1]["request"]["route"], "/v1/tenants/{tenant}/secret");
}

#[tokio::test]
async fn validation_rejection_reason_is_recorded() {
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
    let app = Router::new()
        .route(
            "/things",
            post(|| async {
                let mut r = Problem::new(ProblemType::VALIDATION_FAILED).into_response();
                Rejection::new(
                    RejectionCategory::Validation,
                    "invalid_body",
                    ProblemType::VALIDATION_FAILED,
                )
                .insert_into(r.extensions_mut());
                r
            }),
        )
        .layer(AuditLayer::new(auditor));
    let status = call(
        &app,
        Request::post("/things").body(Body::from("{}")).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let events = finish(&sink, guard).await;
    assert_eq!(events[0]["outcome"], "failure");
    assert_eq!(events[0]["reason"], "invalid_body");
    assert_eq!(events[0]["details"]["rejection"], "validation");
    assert_eq!(events[0]["category"], "data_write");
}

#[tokio::test]
async fn levels_none_metadata_and_request_with_redacted_excerpt() {
    let (app, sink, guard) = setup(|l| {
        l.policy(RoutePolicy::new().route("/healthz").level(Level::None))
            .policy(
                RoutePolicy::new()
                    .method(Method::POST)
                    .level(Level::Request),
            )
    });
    assert_eq!(
        call(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await,
        StatusCode::OK
    );
    let body = r#"{"amount_cents": 1200, "password": "hunter2", "card": {"cvv": "123"}, "note": "hi", "ratio": 0.5, "memo": "\u009b31mred\u007f"}"#;
    let req = Request::post("/v1/tenants/acme/invoices")
        .header("authorization", "ok")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap();
    assert_eq!(call(&app, req).await, StatusCode::CREATED);
    let text_req = Request::post("/v1/tenants/acme/invoices")
        .header("authorization", "ok")
        .header("content-type", "text/plain")
        .body(Body::from("password=hunter2"))
        .unwrap();
    assert_eq!(call(&app, text_req).await, StatusCode::CREATED);
    let events = finish(&sink, guard).await;
    assert_eq!(events.len(), 2, "/healthz is not audited at level none");
    let excerpt = &events[0]["details"]["request_body"];
    assert_eq!(excerpt["amount_cents"], 1200);
    assert_eq!(excerpt["password"], "[REDACTED]");
    assert_eq!(excerpt["card"]["cvv"], "[REDACTED]");
    assert_eq!(excerpt["note"], "hi");
    // The client's C1 and DEL characters are escaped, as in its headers.
    assert_eq!(excerpt["memo"], "\\x9B31mred\\x7F");
    assert_eq!(excerpt["ratio"], "0.5", "numbers are integers only");
    assert_eq!(events[1]["details"]["request_body"]["omitted"], "not_json");
    assert!(!serde_json::to_string(&events).unwrap().contains("hunter2"));
}

#[tokio::test]
async fn client_ip_from_socket_and_only_trusted_forwarded_headers() {
    let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
    let (app, sink, guard) = setup(|l| l.trusted_proxies(proxies));
    for peer in ["198.51.100.7:5000", "10.0.0.2:5000"] {
        let mut req = Request::get("/healthz")
            .header("x-forwarded-for", "203.0.113.50")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        call(&app, req).await;
    }
    let events = finish(&sink, guard).await;
    assert_eq!(
        events[0]["source"]["ip"], "198.51.100.7",
        "an untrusted peer cannot choose its address"
    );
    assert_eq!(
        events[1]["source"]["ip"], "203.0.113.50",
        "a trusted proxy's header is believed"
    );
}

#[tokio::test]
async fn log_injection_cannot_break_lines_or_terminals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLinesSink::builder(&path).open().unwrap();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let app = router(AuditLayer::new(auditor));
    // `http` (like hyper's parser) refuses C0 controls (CR, LF, ESC) in header
    // values, but accepts obs-text: UTF-8 encoded C1 controls such as CSI
    // (U+009B, an ANSI introducer for 8-bit terminals) and NEL (U+0085), and
    // bytes that are not UTF-8 at all.
    assert!(http::HeaderValue::from_bytes(b"a\x1b[2Jb").is_err());
    let evil_ua =
        http::HeaderValue::from_bytes(b"Mozilla\xc2\x9b2J\xc2\x85 \xff \"}{\"action\":\"forged\"}")
            .unwrap();
    let req = Request::get("/healthz/%0D%0A%1B[31m\u{7f}".replace('\u{7f}', "%7F"))
        .header("user-agent", evil_ua)
        .body(Body::empty())
        .unwrap();
    call(&app, req).await;
    // A domain event with raw CR/LF/ANSI in a detail value and a target id.
    let event = AuditEvent::new("test.inject", Category::System)
        .with_target("thing", "id\r\n\u{1b}[31m")
        .with_detail("note", "a\r\n{\"forged\":true}\u{1b}[0m");
    let _ = app; // the auditor is shared
    guard.auditor().record(event).unwrap();
    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete());
    let bytes = std::fs::read(&path).unwrap();
    // No raw control byte anywhere: not ESC, not BEL, not CR; LF only as separator.
    assert!(
        !bytes.iter().any(|b| *b < 0x20 && *b != b'\n'),
        "raw control bytes in the file"
    );
    let lines = common::read_lines(&path);
    assert_eq!(lines.len(), 3, "http.request, test.inject, audit.stopped");
    for line in &lines {
        serde_json::from_str::<Value>(line).unwrap();
    }
    let request: Value = serde_json::from_str(&lines[0]).unwrap();
    let ua = request["source"]["user_agent"].as_str().unwrap();
    assert!(ua.contains("\\x9B2J"), "{ua}");
    assert!(ua.contains("\\x85"), "{ua}");
    assert!(ua.contains('\u{fffd}'), "{ua}");
    assert!(
        !ua.chars().any(char::is_control),
        "terminal-safe user agent: {ua:?}"
    );
    let path_field = request["request"]["path"].as_str().unwrap();
    assert_eq!(
        path_field, "/healthz/%0D%0A%1B[31m%7F",
        "paths stay percent-encoded"
    );
    assert_eq!(request["action"], "http.request");
    // The raw detail keeps its content, JSON-escaped, so the line is intact.
    let inject: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(inject["details"]["note"], "a\r\n{\"forged\":true}\u{1b}[0m");
    assert_eq!(inject["target"]["id"], "id\\x0D\\x0A\\x1B[31m");
    verify(&path, &Default::default()).unwrap();
}

/// A route resolver may return text from the request (a decoded path): the
/// route is recorded sanitized like the path, and a plain one as it is.
#[tokio::test]
async fn a_resolvers_route_is_recorded_sanitized() {
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
    let layer = AuditLayer::new(auditor).route_resolver(
        |_: &Method, uri: &http::Uri, _: &http::Extensions| {
            let route = match uri.path() {
                "/plain" => "/plain/{id}",
                _ => "/evil\u{202e}\r\n\u{1b}[2J\u{85}{id}",
            };
            Some(std::sync::Arc::from(route))
        },
    );
    let app = Router::new().fallback(|| async { "ok" }).layer(layer);
    for path in ["/plain", "/evil"] {
        assert_eq!(
            call(&app, Request::get(path).body(Body::empty()).unwrap()).await,
            200
        );
    }
    let events = finish(&sink, guard).await;
    assert_eq!(events[0]["request"]["route"], "/plain/{id}");
    assert_eq!(
        events[1]["request"]["route"],
        "/evil\\u{202E}\\x0D\\x0A\\x1B[2J\\x85{id}"
    );
}

#[tokio::test]
async fn strict_attempt_is_durable_before_the_handler_and_domain_events_carry_the_actor() {
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
    let seen = sink.clone();
    let layer = AuditLayer::new(auditor).policy(
        RoutePolicy::new()
            .method(Method::DELETE)
            .mode(DeliveryMode::Strict),
    );
    let app = Router::new()
        .route(
            "/v1/tenants/{tenant}/invoices/{id}",
            axum::routing::delete(
                move |audit: RequestAudit, p: axum::extract::Path<(String, String)>| {
                    // At handler time the attempt record is already written.
                    let written = seen.events();
                    assert_eq!(written.len(), 1);
                    assert_eq!(written[0].stage(), Stage::Received);
                    delete_invoice(audit, p)
                },
            ),
        )
        .route_layer(CapturePrincipalLayer)
        .layer(axum::middleware::from_fn(fake_auth))
        .layer(layer);
    let req = Request::delete("/v1/tenants/acme/invoices/inv_9")
        .header("authorization", "ok")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await, StatusCode::OK);
    let events = finish(&sink, guard).await;
    let actions: Vec<_> = events
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["stage"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("http.request", "received"),
            ("invoice.delete", "completed"),
            ("http.request", "completed")
        ]
    );
    assert_eq!(events[0]["outcome"], "unknown");
    let domain = &events[1];
    assert_eq!(domain["actor"]["subject"], "alice");
    assert_eq!(
        domain["target"],
        serde_json::json!({"type": "invoice", "id": "inv_9"})
    );
    assert_eq!(domain["details"]["api_key"], "[REDACTED]");
    assert_eq!(domain["request"]["id"], events[2]["request"]["id"]);
    assert_eq!(events[2]["outcome"], "success");
    assert_eq!(events[2]["actor"]["subject"], "alice");
}

#[tokio::test]
async fn request_audit_without_layer_fails_closed() {
    let app = Router::new().route("/x", get(|_audit: RequestAudit| async { "ran" }));
    let response = app
        .oneshot(Request::get("/x").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn layer_fits_axum_router() {
    fn assert_layer<L>(_: L)
    where
        L: Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
    {
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (auditor, guard) = AuditPipeline::builder().spawn(MemorySink::new()).unwrap();
        assert_layer(AuditLayer::new(auditor));
        let _ = guard.shutdown(Duration::from_secs(1)).await;
    });
}

/// A request whose response future is dropped before the response is known
/// (the client went away, an outer timeout gave up) still leaves its event:
/// outcome `unknown`, reason `cancelled`, no status. A request that finishes
/// leaves exactly one event, not a second `cancelled` one.
#[tokio::test]
async fn a_request_dropped_before_its_response_is_recorded_as_cancelled() {
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
    let app = Router::new()
        .route(
            "/v1/reports/{id}",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(AuditLayer::new(auditor));

    let slow = app
        .clone()
        .oneshot(Request::get("/v1/reports/7").body(Body::empty()).unwrap());
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err(),
        "the handler should still be waiting"
    );
    assert_eq!(
        call(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await,
        200
    );

    let events = finish(&sink, guard).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let cancelled = &events[0];
    assert_eq!(cancelled["action"], "http.request");
    assert_eq!(cancelled["request"]["route"], "/v1/reports/{id}");
    assert_eq!(cancelled["outcome"], "unknown");
    assert_eq!(cancelled["reason"], "cancelled");
    assert_eq!(cancelled["request"]["status"], Value::Null);
    assert_eq!(cancelled["details"]["handler"], "started");
    let served = &events[1];
    assert_eq!(served["request"]["route"], "/healthz");
    assert_eq!(served["outcome"], "success");
    assert_eq!(served["reason"], Value::Null);
    assert_eq!(served["request"]["status"], 200);
}

/// A strict request dropped while its attempt record is still being written
/// says that its handler never ran.
#[tokio::test]
async fn a_strict_request_dropped_before_its_attempt_record_says_the_handler_did_not_run() {
    /// Holds the first batch for a while, then writes everything.
    struct SlowFirst(MemorySink, bool);
    impl guardrails_audit::sink::AuditSink for SlowFirst {
        fn name(&self) -> &'static str {
            "slow-first"
        }
        fn write_batch<'a>(
            &'a mut self,
            batch: &'a [AuditEvent],
        ) -> guardrails_audit::sink::SinkFuture<'a, guardrails_audit::sink::WriteReceipt> {
            let slow = !std::mem::replace(&mut self.1, true);
            Box::pin(async move {
                if slow {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                self.0.write_batch(batch).await
            })
        }
    }
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder()
        .spawn(SlowFirst(sink.clone(), false))
        .unwrap();
    let app = Router::new()
        .route("/v1/reports/{id}", get(|| async { "ran" }))
        .layer(AuditLayer::new(auditor).default_mode(DeliveryMode::Strict));
    let strict = app
        .clone()
        .oneshot(Request::get("/v1/reports/7").body(Body::empty()).unwrap());
    assert!(
        tokio::time::timeout(Duration::from_millis(50), strict)
            .await
            .is_err(),
        "the attempt record should still be on its way"
    );
    let events = finish(&sink, guard).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["stage"], "received");
    assert_eq!(events[1]["reason"], "cancelled");
    assert_eq!(events[1]["details"]["handler"], "not_run");
}

/// Writes every batch, holding those with a completed `/v1/reports/{id}` or
/// `/notes.Notes/{method}` request for `hold` first, or failing them when
/// `fail`.
struct HoldsReports {
    sink: MemorySink,
    hold: Duration,
    fail: bool,
}

impl guardrails_audit::sink::AuditSink for HoldsReports {
    fn name(&self) -> &'static str {
        "holds-reports"
    }
    fn write_batch<'a>(
        &'a mut self,
        batch: &'a [AuditEvent],
    ) -> guardrails_audit::sink::SinkFuture<'a, guardrails_audit::sink::WriteReceipt> {
        // A completion record (not a follow-up, which has `handler`).
        let report = batch.iter().any(|e| {
            !e.details().contains_key("handler")
                && e.request().is_some_and(|r| {
                    matches!(
                        r.route.as_deref(),
                        Some("/v1/reports/{id}" | "/notes.Notes/{method}")
                    ) && r.status == Some(200)
                })
        });
        Box::pin(async move {
            if report {
                tokio::time::sleep(self.hold).await;
                if self.fail {
                    return Err(guardrails_audit::sink::SinkError::Unavailable("refused"));
                }
            }
            self.sink.write_batch(batch).await
        })
    }
}

/// A pipeline writing into a [`MemorySink`] through [`HoldsReports`].
fn holding(
    hold: Duration,
    fail: bool,
) -> (
    guardrails_audit::Auditor,
    guardrails_audit::AuditGuard,
    MemorySink,
) {
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder()
        .spawn(HoldsReports {
            sink: sink.clone(),
            hold,
            fail,
        })
        .unwrap();
    (auditor, guard, sink)
}

fn reports(auditor: guardrails_audit::Auditor) -> Router {
    Router::new()
        .route("/v1/reports/{id}", get(|| async { "report" }))
        .layer(AuditLayer::new(auditor).default_mode(DeliveryMode::Blocking))
}

/// A blocking response whose completion record fails is answered 500, and
/// the trail says so: the handler's 200 alone would misstate the answer.
#[tokio::test]
async fn a_blocking_response_whose_record_fails_is_recorded_as_the_500_it_became() {
    let (auditor, guard, sink) = holding(Duration::ZERO, true);
    let app = reports(auditor);
    let response = app
        .oneshot(Request::get("/v1/reports/7").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let _ = guard.shutdown(Duration::from_secs(5)).await;
    // The failed batch is reported in-band (`audit.dropped`); the answer's
    // record is the request's only one.
    let events: Vec<Value> = sink
        .events()
        .iter()
        .map(AuditEvent::to_json)
        .filter(|e| e["action"] == "http.request")
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    let answered = &events[0];
    assert_eq!(answered["request"]["route"], "/v1/reports/{id}");
    assert_eq!(answered["request"]["status"], 500);
    assert_eq!(answered["outcome"], "failure");
    assert_eq!(answered["reason"], "audit_write_failed");
    assert_eq!(answered["details"]["handler"], "finished");
    assert_eq!(answered["details"]["response_status"], 200);
}

/// A blocking request cancelled while its completion record is being
/// written: the record is written, and one that says the response was never
/// sent follows it.
#[tokio::test]
async fn a_blocking_request_cancelled_while_its_record_is_written_says_so() {
    let (auditor, guard, sink) = holding(Duration::from_millis(1500), false);
    let app = reports(auditor);
    let request = app.oneshot(Request::get("/v1/reports/7").body(Body::empty()).unwrap());
    assert!(
        tokio::time::timeout(Duration::from_millis(100), request)
            .await
            .is_err(),
        "answered before its record was durable"
    );
    let events = finish(&sink, guard).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let (completed, cancelled) = (&events[0], &events[1]);
    assert_eq!(completed["request"]["status"], 200);
    assert_eq!(completed["outcome"], "success");
    assert_eq!(cancelled["request"]["id"], completed["request"]["id"]);
    assert_ne!(cancelled["id"], completed["id"]);
    assert_eq!(cancelled["request"]["status"], Value::Null);
    assert_eq!(cancelled["outcome"], "unknown");
    assert_eq!(cancelled["reason"], "cancelled");
    assert_eq!(cancelled["details"]["handler"], "finished");
    assert_eq!(cancelled["details"]["response_status"], 200);
}

/// A sink that writes nothing until `open` says so, and says when a batch
/// has reached it.
struct Gate {
    sink: MemorySink,
    open: tokio::sync::watch::Receiver<bool>,
    entered: std::sync::Arc<tokio::sync::Notify>,
}

impl guardrails_audit::sink::AuditSink for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }
    fn write_batch<'a>(
        &'a mut self,
        batch: &'a [AuditEvent],
    ) -> guardrails_audit::sink::SinkFuture<'a, guardrails_audit::sink::WriteReceipt> {
        Box::pin(async move {
            self.entered.notify_one();
            let _ = self.open.wait_for(|open| *open).await;
            self.sink.write_batch(batch).await
        })
    }
}

/// A blocking request cancelled while the queue is full: its handler may
/// have run, so its record waits for space instead of being dropped.
#[tokio::test]
async fn a_blocking_requests_cancellation_waits_for_queue_space() {
    let (auditor, guard, sink, open) = full_pipeline(1).await;
    let dropped = auditor.stats().dropped_full;
    // The client gives up while the handler runs.
    let request = pending_reports(&auditor)
        .oneshot(Request::get("/v1/reports/7").body(Body::empty()).unwrap());
    assert!(
        tokio::time::timeout(Duration::from_millis(100), request)
            .await
            .is_err()
    );
    assert_eq!(
        auditor.stats().dropped_full,
        dropped,
        "the cancellation was dropped"
    );

    open.send(true).unwrap();
    let events = finish(&sink, guard).await;
    let cancelled = http_request_events(&events);
    assert_eq!(cancelled.len(), 1, "{events:#?}");
    assert_eq!(cancelled[0]["request"]["route"], "/v1/reports/{id}");
    assert_eq!(cancelled[0]["reason"], "cancelled");
    assert_eq!(cancelled[0]["details"]["handler"], "started");
}

/// A blocking route whose handler never answers.
fn pending_reports(auditor: &guardrails_audit::Auditor) -> Router {
    Router::new()
        .route(
            "/v1/reports/{id}",
            get(std::future::pending::<&'static str>),
        )
        .layer(AuditLayer::new(auditor.clone()).default_mode(DeliveryMode::Blocking))
}

/// The `http.request` records among `events`.
fn http_request_events(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["action"] == "http.request")
        .collect()
}

/// A pipeline of `capacity` whose sink holds its first batch until `open`
/// says so, its queue then filled with `job.run` events.
async fn full_pipeline(
    capacity: usize,
) -> (
    guardrails_audit::Auditor,
    guardrails_audit::AuditGuard,
    MemorySink,
    tokio::sync::watch::Sender<bool>,
) {
    let sink = MemorySink::new();
    let (open, gate) = tokio::sync::watch::channel(false);
    let entered = std::sync::Arc::new(tokio::sync::Notify::new());
    let (auditor, guard) = AuditPipeline::builder()
        .capacity(capacity)
        .spawn(Gate {
            sink: sink.clone(),
            open: gate,
            entered: std::sync::Arc::clone(&entered),
        })
        .unwrap();
    auditor
        .record(AuditEvent::new("job.run", Category::System))
        .unwrap();
    entered.notified().await;
    while auditor
        .record(AuditEvent::new("job.run", Category::System))
        .is_ok()
    {}
    (auditor, guard, sink, open)
}

/// A blocking response whose record timed out waiting for queue space is
/// answered 500, and the record still waits for space (as the record of
/// the 500 after it), instead of being dropped: the handler ran.
#[tokio::test]
async fn a_blocking_record_that_timed_out_waiting_for_space_is_still_written() {
    let (auditor, guard, sink, open) = full_pipeline(2).await;
    let dropped = auditor.stats().dropped_full;
    let app = Router::new()
        .route("/v1/reports/{id}", get(|| async { "report" }))
        .layer(
            AuditLayer::new(auditor.clone())
                .default_mode(DeliveryMode::Blocking)
                .delivery_timeout(Duration::from_millis(100)),
        );
    let response = app
        .oneshot(Request::get("/v1/reports/7").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(auditor.stats().detached, 2);
    assert_eq!(
        auditor.stats().dropped_full,
        dropped,
        "a record was dropped"
    );

    open.send(true).unwrap();
    let events = finish(&sink, guard).await;
    let requests = http_request_events(&events);
    assert_eq!(requests.len(), 2, "{events:#?}");
    assert_eq!(requests[0]["request"]["status"], 200);
    assert_eq!(requests[1]["request"]["status"], 500);
    assert_eq!(requests[1]["reason"], "audit_write_failed");
}

/// No more records wait for queue space than the queue holds: beyond that
/// they are dropped and counted, as best-effort events.
#[tokio::test]
async fn detached_records_are_bounded_by_the_queue_capacity() {
    let (auditor, guard, sink, open) = full_pipeline(2).await;
    let dropped = auditor.stats().dropped_full;
    let app = pending_reports(&auditor);
    for _ in 0..5 {
        let request = app
            .clone()
            .oneshot(Request::get("/v1/reports/7").body(Body::empty()).unwrap());
        assert!(
            tokio::time::timeout(Duration::from_millis(20), request)
                .await
                .is_err()
        );
    }
    assert_eq!(auditor.stats().detached, 2);
    assert_eq!(auditor.stats().dropped_full, dropped + 3);
    open.send(true).unwrap();
    let events = finish(&sink, guard).await;
    let cancelled = events
        .iter()
        .filter(|e| e["action"] == "http.request" && e["reason"] == "cancelled")
        .count();
    assert_eq!(cancelled, 2, "{events:#?}");
}

/// A response body of given frames, then the end; or, `stalls`, one that
/// never ends.
struct Frames {
    frames: std::collections::VecDeque<http_body::Frame<bytes::Bytes>>,
    stalls: bool,
}

impl http_body::Body for Frames {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        match self.frames.pop_front() {
            Some(frame) => std::task::Poll::Ready(Some(Ok(frame))),
            None if self.stalls => std::task::Poll::Pending,
            None => std::task::Poll::Ready(None),
        }
    }
}

/// A streamed gRPC answer: a message, then `grpc-status` in the trailers
/// (or no trailers, or no end).
fn streamed(status: Option<&str>, stalls: bool) -> http::Response<Body> {
    let mut frames = std::collections::VecDeque::from([http_body::Frame::data(
        bytes::Bytes::from_static(b"\0\0\0\0\0"),
    )]);
    if let Some(status) = status {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", status.parse().unwrap());
        trailers.insert("grpc-message", "details the handler wrote".parse().unwrap());
        frames.push_back(http_body::Frame::trailers(trailers));
    }
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(Frames { frames, stalls }))
        .unwrap()
}

/// A gRPC call answers HTTP 200 whatever its outcome. An error answered
/// before any message carries its status in the headers (tonic's
/// `Status::into_http`, as a tonic server sends it); a streamed answer, in
/// the trailers: the event waits for them.
#[tokio::test]
async fn grpc_statuses_in_headers_or_trailers_are_recorded_as_such() {
    use tonic::Status;
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
    let grpc = tower::service_fn(
        |req: Request<guardrails_audit::layer::ExcerptBody<Body>>| async move {
            let response = match req.uri().path() {
                "/notes.Notes/Get" => Status::not_found("no such note").into_http(),
                "/notes.Notes/Delete" => Status::permission_denied("not yours").into_http(),
                "/notes.Notes/List" => Status::unauthenticated("who are you").into_http(),
                "/notes.Notes/Watch" => streamed(Some("0"), false),
                "/notes.Notes/Export" => streamed(Some("13"), false),
                "/notes.Notes/Broken" => streamed(None, false),
                // Ends at once: the server must still poll for trailers.
                "/notes.Notes/Empty" => http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(Body::empty())
                    .unwrap(),
                // gRPC-web carries its status inside the body: judged by
                // its head, as any HTTP answer.
                "/notes.Notes/Web" => http::Response::builder()
                    .header("content-type", "application/grpc-web+proto")
                    .body(Body::from("\u{80}\0\0\0\x0egrpc-status:0\n"))
                    .unwrap(),
                // Not 200: failed, whatever trailers might follow.
                "/notes.Notes/Refused" => {
                    let mut response = streamed(Some("0"), false);
                    *response.status_mut() = StatusCode::FORBIDDEN;
                    response
                }
                _ => streamed(None, true),
            };
            Ok::<_, std::convert::Infallible>(response)
        },
    );
    let app = AuditLayer::new(auditor).layer(grpc);
    for path in [
        "/notes.Notes/Get",
        "/notes.Notes/Delete",
        "/notes.Notes/List",
        "/notes.Notes/Watch",
        "/notes.Notes/Export",
        "/notes.Notes/Broken",
        "/notes.Notes/Empty",
        "/notes.Notes/Web",
        "/notes.Notes/Refused",
        "/notes.Notes/Stalled",
    ] {
        let request = Request::post(path)
            .header("content-type", "application/grpc")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        if path.ends_with("Empty") {
            use http_body::Body as _;
            assert!(!response.body().is_end_stream(), "the trailers are awaited");
        }
        if path.ends_with("Watch") {
            // The call lasts until its trailers.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if path.ends_with("Stalled") {
            // The client goes away mid-stream.
            drop(response);
        } else {
            let _ = response.into_body().collect().await.unwrap();
        }
    }
    let events = finish(&sink, guard).await;
    let got: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["request"]["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap(),
                e["category"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str(),
                e["details"]["grpc_status"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "Get",
                "data_write",
                "failure",
                Some("grpc_not_found"),
                Some(5)
            ),
            (
                "Delete",
                "authz",
                "denied",
                Some("grpc_permission_denied"),
                Some(7)
            ),
            (
                "List",
                "authn",
                "failure",
                Some("grpc_unauthenticated"),
                Some(16)
            ),
            ("Watch", "data_write", "success", None, Some(0)),
            (
                "Export",
                "data_write",
                "failure",
                Some("grpc_internal"),
                Some(13)
            ),
            (
                "Broken",
                "data_write",
                "unknown",
                Some("grpc_no_status"),
                None
            ),
            (
                "Empty",
                "data_write",
                "unknown",
                Some("grpc_no_status"),
                None
            ),
            ("Web", "data_write", "success", None, None),
            ("Refused", "authz", "denied", None, None),
            ("Stalled", "data_write", "unknown", Some("cancelled"), None),
        ],
        "{events:#?}"
    );
    let watch = &events[3];
    assert!(
        watch["request"]["duration_us"].as_u64().unwrap() >= 50_000,
        "{watch}"
    );
    // The status messages are the handler's text: never recorded.
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("not yours"), "{text}");
    assert!(!text.contains("details the handler wrote"), "{text}");
}

/// A gRPC call on a blocking or strict route: its head and messages go at
/// once, and its trailers, where the client reads the call's outcome, wait
/// until the record that says it is durable.
fn grpc_calls(auditor: guardrails_audit::Auditor, mode: DeliveryMode) -> Router {
    Router::new()
        .route(
            "/notes.Notes/{method}",
            post(|| async { streamed(Some("5"), false) }),
        )
        .layer(AuditLayer::new(auditor).default_mode(mode))
}

fn grpc_call() -> Request<Body> {
    Request::post("/notes.Notes/Export")
        .header("content-type", "application/grpc")
        .body(Body::empty())
        .unwrap()
}

/// The next frame of `body`, or `None` when it does not come within `limit`.
async fn next_frame(
    body: &mut Body,
    limit: Duration,
) -> Option<Option<http_body::Frame<bytes::Bytes>>> {
    tokio::time::timeout(limit, body.frame())
        .await
        .ok()
        .map(|frame| frame.map(Result::unwrap))
}

fn http_requests(sink: &MemorySink) -> Vec<Value> {
    sink.events()
        .iter()
        .map(AuditEvent::to_json)
        .filter(|e| e["action"] == "http.request")
        .collect()
}

#[tokio::test]
async fn a_blocking_grpc_calls_trailers_wait_for_its_durable_record() {
    for mode in [DeliveryMode::Blocking, DeliveryMode::Strict] {
        let (auditor, guard, sink) = holding(Duration::from_millis(600), false);
        let app = grpc_calls(auditor, mode);
        // The head is not held: the completion record is written at the
        // trailers, which the sink holds for 600 ms.
        let response = tokio::time::timeout(Duration::from_millis(400), app.oneshot(grpc_call()))
            .await
            .expect("the head waited for the record")
            .unwrap();
        let mut body = response.into_body();
        let data = next_frame(&mut body, Duration::from_millis(400)).await;
        assert!(
            data.flatten().is_some_and(|f| f.is_data()),
            "{mode:?}: the message waited"
        );
        assert!(
            next_frame(&mut body, Duration::from_millis(100))
                .await
                .is_none(),
            "{mode:?}: the trailers came before the record was durable"
        );
        let trailers = next_frame(&mut body, Duration::from_secs(5))
            .await
            .flatten()
            .and_then(|f| f.into_trailers().ok())
            .expect("trailers");
        // The record is in the sink when the trailers come.
        let events = http_requests(&sink);
        let completed = events.last().expect("the completion record");
        assert_eq!(trailers["grpc-status"], "5", "{mode:?}");
        assert_eq!(completed["outcome"], "failure", "{mode:?}");
        assert_eq!(completed["reason"], "grpc_not_found", "{mode:?}");
        assert_eq!(completed["details"]["grpc_status"], 5, "{mode:?}");
        let strict = mode == DeliveryMode::Strict;
        assert_eq!(events.len(), if strict { 2 } else { 1 }, "{events:#?}");
        if strict {
            assert_eq!(events[0]["stage"], "received");
        }
        assert!(
            next_frame(&mut body, Duration::from_secs(1))
                .await
                .unwrap()
                .is_none()
        );
        assert!(http_body::Body::is_end_stream(&body));
        drop(body);
        let events = finish(&sink, guard).await;
        assert_eq!(events.len(), if strict { 2 } else { 1 }, "{events:#?}");
    }
}

/// A gRPC call whose record fails ends `INTERNAL`, as an HTTP response
/// becomes a 500, and the trail says so.
#[tokio::test]
async fn a_blocking_grpc_call_whose_record_fails_ends_internal() {
    let (auditor, guard, sink) = holding(Duration::ZERO, true);
    let response = grpc_calls(auditor, DeliveryMode::Blocking)
        .oneshot(grpc_call())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().expect("trailers").clone();
    assert_eq!(trailers["grpc-status"], "13");
    assert_eq!(
        trailers["grpc-message"],
        "the call's audit record could not be written"
    );
    let _ = guard.shutdown(Duration::from_secs(5)).await;
    let events = http_requests(&sink);
    assert_eq!(events.len(), 1, "{events:#?}");
    let answered = &events[0];
    assert_eq!(answered["request"]["status"], 200);
    assert_eq!(answered["outcome"], "failure");
    assert_eq!(answered["reason"], "audit_write_failed");
    assert_eq!(answered["details"]["grpc_status"], 13);
    assert_eq!(answered["details"]["response_grpc_status"], 5);
    assert_eq!(answered["details"]["handler"], "finished");
}

/// A gRPC call dropped while its trailers wait for the record: the record
/// is still written, and one saying the call never ended follows.
#[tokio::test]
async fn a_blocking_grpc_call_dropped_while_its_record_is_written_says_so() {
    let (auditor, guard, sink) = holding(Duration::from_millis(800), false);
    let response = grpc_calls(auditor, DeliveryMode::Blocking)
        .oneshot(grpc_call())
        .await
        .unwrap();
    let mut body = response.into_body();
    assert!(
        next_frame(&mut body, Duration::from_secs(1))
            .await
            .is_some()
    );
    assert!(
        next_frame(&mut body, Duration::from_millis(100))
            .await
            .is_none(),
        "the trailers came before the record was durable"
    );
    drop(body);
    let events = finish(&sink, guard).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let (completed, cancelled) = (&events[0], &events[1]);
    assert_eq!(completed["details"]["grpc_status"], 5);
    assert_eq!(cancelled["request"]["id"], completed["request"]["id"]);
    assert_eq!(cancelled["request"]["status"], Value::Null);
    assert_eq!(cancelled["outcome"], "unknown");
    assert_eq!(cancelled["reason"], "cancelled");
    assert_eq!(cancelled["details"]["handler"], "finished");
    assert_eq!(cancelled["details"]["response_grpc_status"], 5);
    assert!(cancelled["details"].get("grpc_status").is_none());
}

/// A `grpc-status` header on a response that is not gRPC is not believed.
#[tokio::test]
async fn a_grpc_status_header_outside_grpc_is_ignored() {
    let sink = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
    let app = AuditLayer::new(auditor).layer(tower::service_fn(
        |_: Request<guardrails_audit::layer::ExcerptBody<Body>>| async {
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .header("content-type", "text/plain")
                    .header("grpc-status", "7")
                    .body(Body::empty())
                    .unwrap(),
            )
        },
    ));
    let request = Request::get("/x").body(Body::empty()).unwrap();
    app.oneshot(request).await.unwrap();
    let events = finish(&sink, guard).await;
    assert_eq!(events[0]["outcome"], "success");
    assert!(events[0]["details"].get("grpc_status").is_none());
}
