//! The hostile-inputs table, through the real tower layer (body reading,
//! limits, deadline, media type, pre-scan, deserialization, garde), plus the
//! contract details: bounded responses, JSON names, document order, every
//! violation at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use garde::Validate;
use guardrails_core::{ProblemType, Rejection, RejectionCategory};
use guardrails_validate::{Config, UnknownFields, ValidateJsonLayer, Validated};
use http::{Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use tower::{ServiceBuilder, ServiceExt};

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct Order {
    #[garde(email)]
    customer_email: String,
    #[garde(pattern(r"^[A-Z]{3}$"))]
    currency: String,
    #[garde(length(min = 1, max = 3), dive)]
    lines: Vec<Line>,
    #[garde(skip)]
    #[serde(default)]
    #[allow(dead_code)]
    priority: Option<u8>,
    #[serde(rename = "type", default)]
    #[garde(inner(length(max = 5)))]
    r#type: Option<String>,
}

#[derive(Debug, Deserialize, Validate)]
struct Line {
    #[garde(length(chars, min = 1, max = 10))]
    description: String,
    #[garde(range(min = 1, max = 100))]
    quantity: u32,
}

#[derive(Debug, Deserialize, Validate)]
struct Bulk {
    #[garde(dive)]
    items: Vec<Item>,
}

#[derive(Debug, Deserialize, Validate)]
struct Item {
    #[garde(range(max = 0))]
    n: u32,
}

const VALID: &str = r#"{"customerEmail":"billing@example.com","currency":"EUR","lines":[{"description":"Seats","quantity":3}]}"#;

/// A body of `count` frames of `chunk`, counting how often it is polled,
/// never holding more than one chunk.
struct Chunks {
    chunk: Bytes,
    remaining: usize,
    polled: Arc<AtomicUsize>,
    exact: Option<u64>,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.polled.fetch_add(1, Ordering::SeqCst);
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        self.remaining -= 1;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }

    fn size_hint(&self) -> SizeHint {
        self.exact.map(SizeHint::with_exact).unwrap_or_default()
    }
}

/// Sends `{` and then nothing, ever.
struct Stalled {
    sent: bool,
}

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent {
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{")))))
    }
}

struct Outcome {
    status: StatusCode,
    json: Value,
    raw: Bytes,
    rejection: Option<Rejection>,
}

impl Outcome {
    fn violations(&self) -> Vec<(String, String)> {
        self.json["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            e["pointer"].as_str().unwrap().to_owned(),
                            e["code"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn assert_problem(&self, status: u16, kind: ProblemType, violations: &[(&str, &str)]) {
        assert_eq!(self.status.as_u16(), status, "{}", self.json);
        assert_eq!(self.json["type"], kind.uri(), "{}", self.json);
        assert_eq!(self.json["status"], status);
        let got = self.violations();
        let want: Vec<(String, String)> = violations
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(got, want, "{}", self.json);
        let rejection = self
            .rejection
            .expect("a Rejection in the response extensions");
        assert_eq!(rejection.category(), RejectionCategory::Validation);
        assert_eq!(rejection.problem_type(), kind);
    }
}

/// A body type the layer can validate in these tests.
trait Doc:
    serde::de::DeserializeOwned + Validate<Context = ()> + Send + Sync + std::fmt::Debug + 'static
{
}

impl<T> Doc for T where
    T: serde::de::DeserializeOwned
        + Validate<Context = ()>
        + Send
        + Sync
        + std::fmt::Debug
        + 'static
{
}

async fn send<T: Doc>(
    config: Config,
    content_type: Option<&str>,
    content_length: Option<u64>,
    body: Body,
) -> Outcome {
    let service = ServiceBuilder::new()
        .layer(ValidateJsonLayer::<T>::new().config(config))
        .service_fn(|request: Request<Body>| async move {
            assert!(request.extensions().get::<Validated<T>>().is_some());
            let bytes = request.into_body().collect().await.unwrap().to_bytes();
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = StatusCode::CREATED;
            Ok::<_, Infallible>(response)
        });
    let mut request = Request::post("/orders");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(length) = content_length {
        request = request.header("content-length", length);
    }
    let response = service.oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let rejection = response.extensions().get::<Rejection>().copied();
    let raw = response.into_body().collect().await.unwrap().to_bytes();
    let json = if status == StatusCode::CREATED {
        Value::String(String::from_utf8_lossy(&raw).into_owned())
    } else {
        serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("not JSON ({e}): {raw:?}"))
    };
    Outcome {
        status,
        json,
        raw,
        rejection,
    }
}

async fn post_json(config: Config, body: impl Into<Bytes>) -> Outcome {
    let body: Bytes = body.into();
    send::<Order>(config, Some("application/json"), None, Body::from(body)).await
}

fn order_with(field: &str, raw_value: &str) -> String {
    let mut doc: serde_json::Map<String, Value> = serde_json::from_str(VALID).unwrap();
    doc.remove(field);
    let rest = serde_json::to_string(&doc).unwrap();
    format!("{{\"{field}\":{raw_value},{}", &rest[1..])
}

#[tokio::test]
async fn a_valid_body_reaches_the_handler_with_its_bytes() {
    let out = post_json(Config::default(), VALID).await;
    assert_eq!(out.status, StatusCode::CREATED);
    assert_eq!(out.json, VALID);
}

#[tokio::test]
async fn depth_10_000() {
    let doc = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let out = post_json(Config::default(), doc).await;
    let pointer = "/0".repeat(32);
    out.assert_problem(
        400,
        ProblemType::MALFORMED_BODY,
        &[(&pointer, "depth_exceeded")],
    );
}

#[tokio::test]
async fn a_100_mb_body_with_content_length_is_refused_before_reading() {
    let polled = Arc::new(AtomicUsize::new(0));
    let size = 100 * 1024 * 1024;
    let body = Body::new(Chunks {
        chunk: Bytes::from(vec![b' '; 64 * 1024]),
        remaining: 1600,
        polled: Arc::clone(&polled),
        exact: None,
    });
    let out = send::<Order>(
        Config::default(),
        Some("application/json"),
        Some(size),
        body,
    )
    .await;
    out.assert_problem(413, ProblemType::PAYLOAD_TOO_LARGE, &[]);
    assert_eq!(out.json["max_bytes"], 1024 * 1024);
    assert_eq!(polled.load(Ordering::SeqCst), 0, "nothing may be read");
}

#[tokio::test]
async fn a_100_mb_body_without_content_length_stops_at_the_limit() {
    let polled = Arc::new(AtomicUsize::new(0));
    let body = Body::new(Chunks {
        chunk: Bytes::from(vec![b' '; 64 * 1024]),
        remaining: 1600,
        polled: Arc::clone(&polled),
        exact: None,
    });
    let out = send::<Order>(Config::default(), Some("application/json"), None, body).await;
    out.assert_problem(413, ProblemType::PAYLOAD_TOO_LARGE, &[]);
    // 1 MiB in 64 KiB chunks: the 17th chunk crosses the limit.
    assert!(polled.load(Ordering::SeqCst) <= 17, "{polled:?}");
}

#[tokio::test]
async fn a_body_whose_size_hint_is_over_the_limit_is_refused_before_reading() {
    let polled = Arc::new(AtomicUsize::new(0));
    let body = Body::new(Chunks {
        chunk: Bytes::from_static(b"x"),
        remaining: 1,
        polled: Arc::clone(&polled),
        exact: Some(10 * 1024 * 1024),
    });
    let out = send::<Order>(Config::default(), Some("application/json"), None, body).await;
    out.assert_problem(413, ProblemType::PAYLOAD_TOO_LARGE, &[]);
    assert_eq!(polled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit() {
    let polled = Arc::new(AtomicUsize::new(0));
    let body = Body::new(Chunks {
        chunk: Bytes::from(vec![b' '; 100]),
        remaining: 20,
        polled: Arc::clone(&polled),
        exact: None,
    });
    let config = Config::default().max_body_bytes(1024);
    let out = send::<Order>(config, Some("application/json"), None, body).await;
    out.assert_problem(413, ProblemType::PAYLOAD_TOO_LARGE, &[]);
    assert_eq!(polled.load(Ordering::SeqCst), 11);
}

#[tokio::test]
async fn a_slow_body_past_the_deadline() {
    let config = Config::default().read_timeout(Some(Duration::from_millis(100)));
    let started = Instant::now();
    let out = send::<Order>(
        config,
        Some("application/json"),
        None,
        Body::new(Stalled { sent: false }),
    )
    .await;
    out.assert_problem(408, ProblemType::REQUEST_TIMEOUT, &[]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn duplicate_keys() {
    let doc = order_with("currency", r#""EUR","currency":"USD""#);
    let out = post_json(Config::default(), doc).await;
    out.assert_problem(
        400,
        ProblemType::MALFORMED_BODY,
        &[("/currency", "duplicate_key")],
    );
    // The same key spelled with an escape is the same key.
    let doc = order_with("currency", r#""EUR","\u0063urrency":"USD""#);
    let out = post_json(Config::default(), doc).await;
    out.assert_problem(
        400,
        ProblemType::MALFORMED_BODY,
        &[("/currency", "duplicate_key")],
    );
}

#[tokio::test]
async fn byte_order_mark() {
    let doc = format!("\u{feff}{VALID}");
    let out = post_json(Config::default(), doc).await;
    out.assert_problem(400, ProblemType::MALFORMED_BODY, &[("", "bom")]);
}

#[tokio::test]
async fn invalid_utf8() {
    let mut doc = order_with("currency", r#""EU?""#).into_bytes();
    let at = doc.iter().position(|b| *b == b'?').unwrap();
    doc[at] = 0xFF;
    let out = post_json(Config::default(), doc).await;
    out.assert_problem(
        400,
        ProblemType::MALFORMED_BODY,
        &[("/currency", "invalid_utf8")],
    );
}

#[tokio::test]
async fn lone_surrogates() {
    for escape in [r#""\ud800""#, r#""\udc00""#, r#""\ud800\u0041""#] {
        let out = post_json(Config::default(), order_with("currency", escape)).await;
        out.assert_problem(
            400,
            ProblemType::MALFORMED_BODY,
            &[("/currency", "lone_surrogate")],
        );
    }
    // A proper pair is fine (and then fails the pattern).
    let out = post_json(
        Config::default(),
        order_with("currency", r#""\ud83d\ude00""#),
    )
    .await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/currency", "pattern")],
    );
}

#[tokio::test]
async fn charset_latin1_and_other_media_types() {
    for content_type in [
        Some("application/json; charset=latin1"),
        Some("application/json; charset=ISO-8859-1"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let out = send::<Order>(Config::default(), content_type, None, Body::from(VALID)).await;
        out.assert_problem(415, ProblemType::UNSUPPORTED_MEDIA_TYPE, &[]);
    }
    for content_type in [
        "application/json; charset=utf-8",
        "application/vnd.api+json",
    ] {
        let out = send::<Order>(
            Config::default(),
            Some(content_type),
            None,
            Body::from(VALID),
        )
        .await;
        assert_eq!(out.status, StatusCode::CREATED, "{content_type}");
    }
}

#[tokio::test]
async fn huge_numbers() {
    let line = |q: &str| {
        order_with(
            "lines",
            &format!(r#"[{{"description":"a","quantity":{q}}}]"#),
        )
    };
    let out = post_json(Config::default(), line("1e400")).await;
    out.assert_problem(
        400,
        ProblemType::MALFORMED_BODY,
        &[("/lines/0/quantity", "syntax")],
    );
    let out = post_json(Config::default(), line(&"9".repeat(101))).await;
    out.assert_problem(
        400,
        ProblemType::MALFORMED_BODY,
        &[("/lines/0/quantity", "number_too_long")],
    );
    let out = post_json(Config::default(), line("99999999999999999999")).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/lines/0/quantity", "type_mismatch")],
    );
    let out = post_json(Config::default(), line("4294967296")).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/lines/0/quantity", "out_of_range")],
    );
}

#[tokio::test]
async fn u8_overflow() {
    for value in ["256", "-1"] {
        let out = post_json(Config::default(), order_with("priority", value)).await;
        out.assert_problem(
            422,
            ProblemType::VALIDATION_FAILED,
            &[("/priority", "out_of_range")],
        );
        assert_eq!(
            out.json["errors"][0]["detail"],
            "must be an integer from 0 to 255"
        );
    }
}

#[tokio::test]
async fn unknown_fields_in_strict_mode() {
    let doc = order_with("isAdmin", "true");
    let out = post_json(Config::default(), doc.clone()).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/isAdmin", "unknown_field")],
    );
    let nested = order_with(
        "lines",
        r#"[{"description":"a","quantity":1,"discount":100}]"#,
    );
    let out = post_json(Config::default(), nested).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/lines/0/discount", "unknown_field")],
    );
    let lenient = Config::default().unknown_fields(UnknownFields::Ignore);
    assert_eq!(post_json(lenient, doc).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_client_key_with_bidirectional_controls_is_echoed_escaped() {
    // U+202E (right-to-left override) and U+2028 (line separator) in an
    // unknown key: the pointer names the key exactly, but the response's
    // bytes carry them as JSON escapes, never raw into a log or terminal.
    let doc = order_with("admin\u{202e}txt.exe\u{2028}x", "true");
    let out = post_json(Config::default(), doc).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/admin\u{202e}txt.exe\u{2028}x", "unknown_field")],
    );
    let raw = std::str::from_utf8(&out.raw).unwrap();
    assert!(raw.contains(r"/admin\u202etxt.exe\u2028x"), "{raw}");
    assert!(!raw.contains(['\u{202e}', '\u{2028}']), "{raw}");
}

#[tokio::test]
async fn nul_bytes() {
    // A raw NUL is a control character: not JSON.
    let out = post_json(Config::default(), order_with("currency", "\"E\0R\"")).await;
    out.assert_problem(400, ProblemType::MALFORMED_BODY, &[("/currency", "syntax")]);
    // An escaped one is JSON, refused by policy.
    let out = post_json(Config::default(), order_with("currency", r#""E\u0000R""#)).await;
    out.assert_problem(
        400,
        ProblemType::MALFORMED_BODY,
        &[("/currency", "nul_character")],
    );
    // …unless allowed, then the pattern sees it.
    let allow = Config::default().insecure_allow_nul(true);
    let out = post_json(allow, order_with("currency", r#""E\u0000R""#)).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/currency", "pattern")],
    );
}

/// Posts `doc` as `T`; checks that the 422 lists the first 100 of `total`
/// violations, and returns them and the response's size.
async fn bounded_422<T: Doc>(doc: String, total: u64) -> (Vec<(String, String)>, usize) {
    let out = send::<T>(
        Config::default(),
        Some("application/json"),
        None,
        Body::from(doc),
    )
    .await;
    assert_eq!(out.status, 422);
    assert_eq!(out.json["violations_total"], total);
    let violations = out.violations();
    assert_eq!(violations.len(), 100);
    (violations, out.raw.len())
}

#[tokio::test]
async fn ten_thousand_violations_give_a_bounded_response() {
    let items: Vec<String> = (0..10_000).map(|_| r#"{"n":1}"#.to_owned()).collect();
    let doc = format!(r#"{{"items":[{}]}}"#, items.join(","));
    let (violations, raw_len) = bounded_422::<Bulk>(doc, 10_000).await;
    assert_eq!(
        violations[0],
        ("/items/0/n".to_owned(), "range.max".to_owned())
    );
    assert_eq!(violations[99].0, "/items/99/n");
    assert!(raw_len < 16 * 1024, "{raw_len} bytes");
}

#[derive(Debug, Deserialize, Validate)]
#[allow(dead_code)]
struct Tagged {
    #[garde(dive)]
    tags: std::collections::HashMap<String, Tag>,
}

#[derive(Debug, Deserialize, Validate)]
#[allow(dead_code)]
struct Tag {
    #[garde(range(max = 10))]
    n: u32,
}

#[tokio::test]
async fn many_unknown_members_under_long_keys_give_a_bounded_response() {
    // Unknown members under client-chosen keys of 8 KiB: each pointer would
    // hold its key, and every one was kept until the end.
    let key = "k".repeat(8 * 1024);
    let tags: Vec<String> = (0..120)
        .map(|i| format!(r#""{key}{i}":{{"n":1,"extra":1}}"#))
        .collect();
    let doc = format!(r#"{{"tags":{{{}}}}}"#, tags.join(","));
    let (violations, raw_len) = bounded_422::<Tagged>(doc, 120).await;
    for (pointer, code) in &violations {
        assert_eq!(code, "unknown_field");
        assert!(
            pointer.len() <= 1024 + '…'.len_utf8(),
            "{} bytes",
            pointer.len()
        );
        assert!(pointer.starts_with("/tags/kkk") && pointer.ends_with('…'));
    }
    assert!(raw_len < 128 * 1024, "{raw_len} bytes");
}

#[tokio::test]
async fn renamed_fields_are_reported_by_their_json_names() {
    let doc = r#"{"customerEmail":"not-an-email","currency":"EUR","lines":[{"description":"a","quantity":1}],"type":"much-too-long"}"#;
    let out = post_json(Config::default(), doc).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/customerEmail", "email"), ("/type", "length.max")],
    );
    let missing = r#"{"currency":"EUR","lines":[{"description":"a","quantity":1}]}"#;
    let out = post_json(Config::default(), missing).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[("/customerEmail", "required")],
    );
}

#[tokio::test]
async fn violations_come_in_document_order_every_time() {
    // Declared order: customerEmail, currency, lines; sent: lines, currency, customerEmail.
    let doc = r#"{"lines":[{"quantity":0,"description":""},{"description":"ok","quantity":500}],"currency":"eur","customerEmail":"nope"}"#;
    let want = [
        ("/lines/0/quantity", "range.min"),
        ("/lines/0/description", "length.min"),
        ("/lines/1/quantity", "range.max"),
        ("/currency", "pattern"),
        ("/customerEmail", "email"),
    ];
    for _ in 0..3 {
        let out = post_json(Config::default(), doc).await;
        out.assert_problem(422, ProblemType::VALIDATION_FAILED, &want);
    }
}

#[tokio::test]
async fn every_violation_of_a_well_formed_document_at_once() {
    // A type error, a missing member, an unknown member, an out-of-range
    // integer and garde rules, all in one response, in document order.
    let doc = r#"{"customerEmail":"x","lines":[{"description":"","quantity":"three"},{"description":"ok","quantity":1,"extra":1}],"priority":300}"#;
    let out = post_json(Config::default(), doc).await;
    out.assert_problem(
        422,
        ProblemType::VALIDATION_FAILED,
        &[
            ("/customerEmail", "email"),
            ("/lines/0/description", "length.min"),
            ("/lines/0/quantity", "type_mismatch"),
            ("/lines/1/extra", "unknown_field"),
            ("/priority", "out_of_range"),
            ("/currency", "required"),
        ],
    );
    // No detail names a Rust type or echoes a value.
    let text = out.json.to_string();
    for leak in ["u32", "u8", "String", "Order", "Line", "three", "struct"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

#[tokio::test]
async fn syntax_errors_are_400_with_a_position() {
    let out = post_json(Config::default(), "{\"lines\": [{\"quantity\":\n tru}]}").await;
    out.assert_problem(
        400,
        ProblemType::MALFORMED_BODY,
        &[("/lines/0/quantity", "syntax")],
    );
    assert!(
        out.json["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
    let out = post_json(Config::default(), r#"{"currency": "EUR",}"#).await;
    out.assert_problem(400, ProblemType::MALFORMED_BODY, &[("/currency", "syntax")]);
    let out = post_json(Config::default(), "").await;
    out.assert_problem(400, ProblemType::MALFORMED_BODY, &[("", "syntax")]);
    let out = post_json(Config::default(), format!("{VALID} {{}}")).await;
    out.assert_problem(400, ProblemType::MALFORMED_BODY, &[("", "syntax")]);
}

#[tokio::test]
async fn rejections_can_be_answered_differently() {
    use guardrails_core::{GuardBody, Problem};
    let service = ServiceBuilder::new()
        .layer(
            ValidateJsonLayer::<Order>::new().on_rejection(|problem: Problem| {
                let text = format!(
                    "{} {}",
                    problem.status().as_u16(),
                    problem.violations().len()
                );
                let mut response = Response::new(GuardBody::<Body>::full(Bytes::from(text)));
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response
            }),
        )
        .service_fn(|_: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::empty())) });
    let request = Request::post("/")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"currency":"eur"}"#))
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"422 3");
    let media = Request::post("/").body(Body::from("{}")).unwrap();
    let body = service
        .oneshot(media)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"415 0");
}

#[tokio::test]
async fn content_coded_bodies_are_refused() {
    let service = ServiceBuilder::new()
        .layer(ValidateJsonLayer::<Order>::new())
        .service_fn(|_: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::empty())) });
    for (coding, status) in [("gzip", 415), ("br, identity", 415), ("identity", 200)] {
        let request = Request::post("/")
            .header("content-type", "application/json")
            .header("content-encoding", coding)
            .body(Body::from(VALID))
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{coding}");
    }
}

#[tokio::test]
async fn a_large_body_full_of_type_errors_costs_bounded_work() {
    let items: Vec<&str> = (0..50_000).map(|_| r#"{"n":"x"}"#).collect();
    let doc = format!(r#"{{"items":[{}]}}"#, items.join(","));
    let config = Config::default().max_array_len(100_000);
    let started = Instant::now();
    let out = send::<Bulk>(config, Some("application/json"), None, Body::from(doc)).await;
    assert_eq!(out.status, 422);
    let violations = out.violations();
    // 500 KB: 8 patch-and-retry passes fit the 4 MiB work budget.
    assert_eq!(violations.len(), 8);
    assert_eq!(
        violations[0],
        ("/items/0/n".to_owned(), "type_mismatch".to_owned())
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
