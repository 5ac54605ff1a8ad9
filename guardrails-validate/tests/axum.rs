//! The axum integration: extractors, the layer on a route, the 4xx rewrite,
//! the rejection metric.
#![cfg(feature = "axum")]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use garde::Validate;
use guardrails_core::{Problem, ProblemType, Rejection, RejectionCategory};
use guardrails_validate::axum::{Valid, ValidationContext};
use guardrails_validate::{Config, ProblemJsonLayer, ValidateJsonLayer, Validated};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

#[derive(Debug, Deserialize, Validate)]
struct NewTodo {
    #[garde(length(chars, min = 1, max = 10))]
    title: String,
}

#[derive(Debug, Deserialize, Validate)]
struct Page {
    #[garde(range(min = 1, max = 50))]
    per_page: u32,
}

#[derive(Debug, Deserialize, Validate)]
struct TodoPath {
    #[garde(length(min = 2))]
    tenant: String,
    #[garde(range(max = 1000))]
    id: u32,
}

/// A rule set with a context taken from the state.
#[derive(Debug, Deserialize, Validate)]
#[garde(context(MaxLen))]
struct Note {
    #[garde(custom(within_max))]
    text: String,
}

struct MaxLen(usize);

fn within_max(value: &str, ctx: &MaxLen) -> garde::Result {
    if value.len() > ctx.0 {
        return Err(garde::Error::new(format!(
            "must be at most {} bytes",
            ctx.0
        )));
    }
    Ok(())
}

#[derive(Clone)]
struct AppState {
    max_note: usize,
}

impl ValidationContext<AppState> for MaxLen {
    fn from_state(state: &AppState) -> Self {
        MaxLen(state.max_note)
    }
}

fn app() -> Router {
    Router::new()
        .route(
            "/todos",
            post(|Valid(Json(todo)): Valid<Json<NewTodo>>| async move { todo.title })
                .get(|Valid(Query(page)): Valid<Query<Page>>| async move { page.per_page.to_string() }),
        )
        .route(
            "/forms",
            post(|Valid(Form(todo)): Valid<Form<NewTodo>>| async move { todo.title }),
        )
        .route(
            "/tenants/{tenant}/todos/{id}",
            get(|Valid(Path(p)): Valid<Path<TodoPath>>| async move { format!("{}:{}", p.tenant, p.id) }),
        )
        .route(
            "/notes",
            post(|Valid(Json(note)): Valid<Json<Note>>| async move { note.text }),
        )
        .route(
            "/layered",
            post(|todo: Validated<NewTodo>| async move { todo.title.clone() })
                .route_layer(ValidateJsonLayer::<NewTodo>::new()),
        )
        .route(
            "/small",
            post(|Valid(Json(todo)): Valid<Json<NewTodo>>| async move { todo.title })
                .layer(Extension(Config::default().max_body_bytes(16))),
        )
        .route(
            "/plain",
            post(|Json(todo): Json<Value>| async move { todo.to_string() }),
        )
        .layer(ProblemJsonLayer::new())
        .with_state(AppState { max_note: 5 })
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
    rejection: Option<Rejection>,
}

impl Reply {
    fn problem(&self) -> Problem {
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{}",
            self.body
        );
        serde_json::from_str(&self.body).unwrap()
    }

    fn first(&self) -> (String, String) {
        let p = self.problem();
        let v = &p.violations()[0];
        (v.pointer.clone(), v.code.to_string())
    }
}

async fn call(request: Request<Body>) -> Reply {
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let rejection = response.extensions().get::<Rejection>().copied();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
        rejection,
    }
}

fn json(uri: &str, body: &'static str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn valid_json() {
    let ok = call(json("/todos", r#"{"title":"milk"}"#)).await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "milk"));

    let bad = call(json("/todos", r#"{"title":""}"#)).await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.first(), ("/title".into(), "length.min".into()));
    let rejection = bad.rejection.unwrap();
    assert_eq!(rejection.category(), RejectionCategory::Validation);
    assert_eq!(rejection.reason(), "validation_failed");

    let syntax = call(json("/todos", r#"{"title":"#)).await;
    assert_eq!(syntax.status, 400);
    assert_eq!(syntax.first().1, "syntax");

    let media = call(
        Request::post("/todos")
            .header("content-type", "text/plain")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(media.status, 415);
    assert!(media.problem().is(ProblemType::UNSUPPORTED_MEDIA_TYPE));
}

#[tokio::test]
async fn per_route_limits_come_from_an_extension() {
    let big = call(json("/small", r#"{"title":"0123456789"}"#)).await;
    assert_eq!(big.status, 413);
    assert_eq!(big.rejection.unwrap().reason(), "payload_too_large");
}

#[tokio::test]
async fn valid_query() {
    let ok = call(
        Request::get("/todos?per_page=10")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok.body, "10");
    let bad = call(
        Request::get("/todos?per_page=500")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(bad.first(), ("/query/per_page".into(), "range.max".into()));
    let wrong = call(
        Request::get("/todos?per_page=ten")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.first()),
        (422, ("/query/per_page".into(), "invalid_value".into()))
    );
    let unknown = call(
        Request::get("/todos?per_page=5&admin=1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        unknown.first(),
        ("/query/admin".into(), "unknown_field".into())
    );
    let encoding = call(
        Request::get("/todos?per_page=%FF")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(encoding.status, 400);
    assert_eq!(
        encoding.first(),
        ("/query/per_page".into(), "invalid_encoding".into())
    );
    assert!(encoding.problem().is(ProblemType::MALFORMED_REQUEST));
    let missing = call(Request::get("/todos").body(Body::empty()).unwrap()).await;
    assert_eq!(
        missing.first(),
        ("/query/per_page".into(), "required".into())
    );
}

#[tokio::test]
async fn valid_form() {
    let form = |body: &'static str, ct: &'static str| {
        Request::post("/forms")
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap()
    };
    let ok = call(form("title=oat+milk", "application/x-www-form-urlencoded")).await;
    assert_eq!(ok.body, "oat milk");
    let bad = call(form("title=", "application/x-www-form-urlencoded")).await;
    assert_eq!(bad.first(), ("/title".into(), "length.min".into()));
    let latin1 = call(form(
        "title=x",
        "application/x-www-form-urlencoded; charset=latin1",
    ))
    .await;
    assert_eq!(latin1.status, 415);
    let broken = call(form("title=%E9", "application/x-www-form-urlencoded")).await;
    assert_eq!(broken.status, 400);
    assert!(broken.problem().is(ProblemType::MALFORMED_BODY));
}

#[tokio::test]
async fn valid_path() {
    let ok = call(
        Request::get("/tenants/acme/todos/7")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok.body, "acme:7");
    let bad = call(
        Request::get("/tenants/a/todos/7000")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let problem = bad.problem();
    let found: Vec<_> = problem
        .violations()
        .iter()
        .map(|v| (v.pointer.as_str(), &*v.code))
        .collect();
    assert_eq!(
        found,
        [("/path/tenant", "length.min"), ("/path/id", "range.max")]
    );
    let wrong = call(
        Request::get("/tenants/acme/todos/seven")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.first(), ("/path/id".into(), "invalid_value".into()));
    let encoding = call(
        Request::get("/tenants/%FF%FE/todos/7")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (encoding.status.as_u16(), encoding.first().1.as_str()),
        (400, "invalid_encoding")
    );
    let lenient = call(
        Request::get("/tenants/%zz/todos/7")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (lenient.status.as_u16(), lenient.first().1.as_str()),
        (400, "invalid_encoding")
    );
}

#[tokio::test]
async fn context_from_state() {
    let ok = call(json("/notes", r#"{"text":"hi"}"#)).await;
    assert_eq!(ok.body, "hi");
    let long = call(json("/notes", r#"{"text":"far too long"}"#)).await;
    let problem = long.problem();
    assert_eq!(problem.violations()[0].code, "custom");
    assert_eq!(problem.violations()[0].detail, "must be at most 5 bytes");
}

#[tokio::test]
async fn the_layer_hands_the_value_to_the_handler() {
    let ok = call(json("/layered", r#"{"title":"milk"}"#)).await;
    assert_eq!(ok.body, "milk");
    let bad = call(json("/layered", r#"{"title":"","x":1}"#)).await;
    let problem = bad.problem();
    let found: Vec<_> = problem
        .violations()
        .iter()
        .map(|v| (v.pointer.as_str(), &*v.code))
        .collect();
    assert_eq!(found, [("/title", "length.min"), ("/x", "unknown_field")]);
}

#[tokio::test]
async fn the_frameworks_own_4xx_become_problems() {
    let missing = call(Request::get("/nowhere").body(Body::empty()).unwrap()).await;
    assert_eq!(missing.status, 404);
    assert!(missing.problem().is(ProblemType::NOT_FOUND));
    assert_eq!(missing.rejection.unwrap().reason(), "not_found");

    let method = call(Request::delete("/todos").body(Body::empty()).unwrap()).await;
    assert_eq!(method.status, 405);
    assert!(method.problem().is(ProblemType::METHOD_NOT_ALLOWED));
    assert!(method.headers["allow"].to_str().unwrap().contains("POST"));

    // axum's own Json extractor answers in plain text, naming Rust types.
    let plain = call(
        Request::post("/plain")
            .header("content-type", "text/plain")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(plain.status, 415);
    assert!(plain.problem().is(ProblemType::UNSUPPORTED_MEDIA_TYPE));
    let syntax = call(json("/plain", "{")).await;
    assert_eq!(syntax.status, 400);
    assert!(!syntax.body.contains("serde"));
    assert!(syntax.problem().is(ProblemType::MALFORMED_REQUEST));

    // JSON answers pass untouched.
    let ok = call(json("/plain", "{}")).await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "{}"));
}

/// A recorder that keeps the counters it is asked for.
#[derive(Default, Clone)]
struct Recorded(Arc<Mutex<Vec<String>>>);

impl metrics::Recorder for Recorded {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        self.0
            .lock()
            .unwrap()
            .push(format!("{}{{{}}}", key.name(), labels.join(",")));
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn rejections_are_counted_with_bounded_labels() {
    let recorder = Recorded::default();
    metrics::with_local_recorder(&recorder, || {
        let problem = guardrails_validate::json::from_slice::<NewTodo>(
            br#"{"title":"#,
            &Config::default(),
            &(),
        )
        .unwrap_err();
        let _ = guardrails_validate::rejection_response::<Body>(problem);
        let problem = guardrails_validate::json::from_slice::<NewTodo>(
            br#"{"title":"","secret-field":1}"#,
            &Config::default(),
            &(),
        )
        .unwrap_err();
        let _ = guardrails_validate::rejection_response::<Body>(problem);
    });
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "guardrails_validate_rejections_total{code=syntax,status=400}",
            "guardrails_validate_rejections_total{code=validation_failed,status=422}",
        ]
    );
}
