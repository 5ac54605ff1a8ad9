//! `POST /v1/tenants/{tenant}/invoices` validates its body exactly as the
//! contract says, and every axum rejection of the app answers problem+json.
//!
//! The invoice routes are reached through `app::invoice_routes` with a
//! `Principal` inserted by the test (authentication is tested elsewhere).

mod common;

use axum::Router;
use axum::body::Body;
use guardrails_core::{AuthMethod, Principal, Problem, ProblemType};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use saas_api::app;
use saas_api::invoices::{Invoice, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

fn routes() -> Router {
    let principal = Principal::builder("user-1", AuthMethod::Jwt)
        .tenant("acme")
        .scopes(["invoices:read", "invoices:write"])
        .build();
    app::invoice_routes(Store::default()).layer(axum::middleware::from_fn(
        move |mut request: axum::extract::Request, next: axum::middleware::Next| {
            let principal = principal.clone();
            async move {
                request.extensions_mut().insert(principal);
                next.run(request).await
            }
        },
    ))
}

fn valid() -> Value {
    json!({
        "customer_email": "billing@example.com",
        "currency": "EUR",
        "due_date": "2026-12-31",
        "lines": [
            { "description": "Seats", "quantity": 3, "unit_price_cents": 1500 },
            { "description": "Support", "quantity": 1, "unit_price_cents": 9900 }
        ],
        "memo": "thanks"
    })
}

async fn post(body: impl Into<Body>, content_type: &str) -> (StatusCode, Value) {
    let request = Request::post("/v1/tenants/acme/invoices")
        .header("content-type", content_type)
        .body(body.into())
        .unwrap();
    let response = routes().oneshot(request).await.unwrap();
    let status = response.status();
    if status.is_client_error() {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn post_json(body: &Value) -> (StatusCode, Value) {
    post(body.to_string(), "application/json").await
}

fn violations(problem: &Value) -> Vec<(String, String)> {
    let problem: Problem = serde_json::from_value(problem.clone()).unwrap();
    problem
        .violations()
        .iter()
        .map(|v| (v.pointer.clone(), v.code.to_string()))
        .collect()
}

#[tokio::test]
async fn a_valid_invoice_is_created() {
    let (status, body) = post_json(&valid()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let invoice: Invoice = serde_json::from_value(body).unwrap();
    assert_eq!(invoice.tenant, "acme");
    assert_eq!(invoice.total_cents, 3 * 1500 + 9900);
    assert_eq!(invoice.memo.as_deref(), Some("thanks"));
}

#[tokio::test]
async fn boundaries_are_accepted() {
    let mut body = valid();
    body["lines"] = Value::Array(
        (0..100)
            .map(|_| json!({ "description": "é".repeat(200), "quantity": 10_000, "unit_price_cents": 100_000_000 }))
            .collect(),
    );
    body["memo"] = Value::from("m".repeat(1000));
    body["due_date"] = Value::from("2028-02-29");
    let (status, problem) = post_json(&body).await;
    assert_eq!(status, StatusCode::CREATED, "{problem}");
    let mut body = valid();
    body["lines"][0]["unit_price_cents"] = Value::from(0);
    body.as_object_mut().unwrap().remove("memo");
    assert_eq!(post_json(&body).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn each_rule_of_the_contract() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "customer_email",
            json!("not-an-email"),
            "/customer_email",
            "email",
        ),
        ("currency", json!("eur"), "/currency", "pattern"),
        ("currency", json!("EURO"), "/currency", "pattern"),
        ("due_date", json!("31/12/2026"), "/due_date", "date"),
        ("due_date", json!("2026-02-30"), "/due_date", "date"),
        ("lines", json!([]), "/lines", "length.min"),
        ("memo", json!("m".repeat(1001)), "/memo", "length.max"),
        ("currency", json!(978), "/currency", "type_mismatch"),
    ];
    for (field, value, pointer, code) in cases {
        let mut body = valid();
        body[field] = value;
        let (status, problem) = post_json(&body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {problem}"
        );
        assert_eq!(problem["type"], ProblemType::VALIDATION_FAILED.uri());
        assert_eq!(
            violations(&problem),
            [(pointer.to_owned(), code.to_owned())],
            "{problem}"
        );
    }
    let line_cases: Vec<(&str, Value, &str)> = vec![
        ("description", json!(""), "length.min"),
        ("description", json!("x".repeat(201)), "length.max"),
        ("quantity", json!(0), "range.min"),
        ("quantity", json!(10_001), "range.max"),
        ("unit_price_cents", json!(100_000_001), "range.max"),
        ("unit_price_cents", json!(-1), "out_of_range"),
        ("quantity", json!(1.5), "type_mismatch"),
    ];
    for (field, value, code) in line_cases {
        let mut body = valid();
        body["lines"][1][field] = value;
        let (status, problem) = post_json(&body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {problem}"
        );
        assert_eq!(
            violations(&problem),
            [(format!("/lines/1/{field}"), code.to_owned())],
            "{problem}"
        );
    }
    let mut body = valid();
    body["lines"] = Value::Array(vec![valid()["lines"][0].clone(); 101]);
    assert_eq!(
        violations(&post_json(&body).await.1),
        [("/lines".into(), "length.max".into())]
    );
}

#[tokio::test]
async fn missing_and_unknown_members_all_at_once() {
    let mut body = valid();
    let obj = body.as_object_mut().unwrap();
    obj.remove("due_date");
    obj.insert("tenant".into(), json!("globex"));
    body["lines"][0]["discount"] = json!(50);
    body["currency"] = json!("usd");
    let (status, problem) = post_json(&body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let found = violations(&problem);
    assert_eq!(
        found,
        [
            ("/currency".to_owned(), "pattern".to_owned()),
            ("/lines/0/discount".to_owned(), "unknown_field".to_owned()),
            ("/tenant".to_owned(), "unknown_field".to_owned()),
            ("/due_date".to_owned(), "required".to_owned()),
        ]
    );
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let (status, problem) = post("{\"currency\":", "application/json").await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some(ProblemType::MALFORMED_BODY.uri())
        )
    );
    let (status, _) = post(valid().to_string(), "text/plain").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = post(valid().to_string(), "application/json; charset=latin1").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!("{{\"memo\":\"{}\"}}", "x".repeat(300 * 1024));
    let (status, problem) = post(huge, "application/json").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    let (status, problem) = post(
        format!("{}{}", "[".repeat(100), "]".repeat(100)),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(violations(&problem)[0].1, "depth_exceeded");
}

#[tokio::test]
async fn the_apps_own_4xx_are_problems() {
    // Unknown paths are behind authentication too (deny by default): the
    // 404 is for an authenticated client.
    let router = app::router(
        Store::default(),
        saas_api::auth::development_layer().unwrap(),
    );
    let token = saas_api::auth::development_token(&saas_api::auth::TokenArgs {
        sub: "user-1".into(),
        tenant: "acme".into(),
        scope: String::new(),
        roles: Vec::new(),
        ttl: 60,
    })
    .unwrap();
    let response = router
        .clone()
        .oneshot(
            Request::get("/nowhere")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = router
        .oneshot(Request::post("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("allow"));
}

/// The same contract through the real binary, with a token from
/// `saas-api token`, over a loopback connection.
#[tokio::test]
async fn through_the_real_binary() {
    use bytes::Bytes;
    use http_body_util::Full;

    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::command();
    cmd.env("SAAS_AUDIT__PATH", dir.path().join("audit.jsonl"));
    let app = common::start(cmd);
    let out = common::command()
        .args(["token", "--sub", "bob", "--tenant", "acme"])
        .args(["--scope", "invoices:read invoices:write"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let post = |body: String, content_type: &str| {
        Request::post(app.url("/v1/tenants/acme/invoices"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };

    let created = common::send(post(valid().to_string(), "application/json")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.json()["tenant"], "acme");

    let mut bad = valid();
    bad["currency"] = json!("eur");
    bad["lines"][1]["quantity"] = json!(0);
    bad["admin"] = json!(true);
    let rejected = common::send(post(bad.to_string(), "application/json")).await;
    assert_eq!(rejected.status, 422);
    assert_eq!(rejected.headers["content-type"], "application/problem+json");
    assert_eq!(
        violations(&rejected.json()),
        // Document order (serde_json writes members sorted by name).
        [
            ("/admin".to_owned(), "unknown_field".to_owned()),
            ("/currency".to_owned(), "pattern".to_owned()),
            ("/lines/1/quantity".to_owned(), "range.min".to_owned()),
        ]
    );

    let media = common::send(post(valid().to_string(), "text/plain")).await;
    assert_eq!(media.status, 415);
    let large = common::send(post("x".repeat(300 * 1024), "application/json")).await;
    assert_eq!(large.status, 413);
    assert_eq!(large.headers["content-type"], "application/problem+json");

    let unknown = common::send(
        Request::get(app.url("/v1/nowhere"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.headers["content-type"], "application/problem+json");

    let metrics = common::get(&app.url("/metrics")).await;
    let text = String::from_utf8_lossy(&metrics.body);
    for line in [
        r#"guardrails_validate_rejections_total{status="422",code="validation_failed"}"#,
        r#"guardrails_validate_rejections_total{status="415",code="unsupported_media_type"}"#,
        r#"guardrails_validate_rejections_total{status="413",code="payload_too_large"}"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}
