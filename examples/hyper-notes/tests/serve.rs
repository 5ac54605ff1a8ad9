//! The notes API served by hyper on loopback, driven by a real HTTP client,
//! with tokens signed by `jsonwebtoken`: every guard answers as it does on
//! axum, and the audit trail records every request with its route template.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::MemorySink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::sink::{SinkError, SinkFuture, WriteReceipt};
use guardrails_audit::{
    AuditEvent, AuditGuard, AuditPipeline, Outcome, ShutdownReport, Stage, VerifyOptions, verify,
};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_notes::{Notes, app, server, token};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn secret() -> SecretString {
    SecretString::from("hyper-notes test secret, 32 bytes or more")
}

struct Running {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: oneshot::Sender<()>,
    served: JoinHandle<bool>,
    guard: AuditGuard,
}

async fn start(sink: impl AuditSink) -> Running {
    start_with(sink, server::DRAIN_TIMEOUT).await
}

async fn start_with(sink: impl AuditSink, drain: Duration) -> Running {
    start_over(sink, drain, Notes::default()).await
}

/// A server over `notes`, which an earlier server may have served.
async fn start_over(sink: impl AuditSink, drain: Duration, notes: Notes) -> Running {
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let auth = token::auth_layer(&secret()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(
        listener,
        app(auth, auditor, notes),
        async move {
            let _ = stopped.await;
        },
        drain,
    ));
    Running {
        addr,
        client: Client::builder(TokioExecutor::new()).build_http(),
        stop,
        served,
        guard,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The problem's `type` suffix and `errors` as (pointer, code).
    fn problem(&self) -> (String, Vec<(String, String)>) {
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{:?}",
            self.body
        );
        let json = self.json();
        let kind = json["type"].as_str().unwrap().rsplit('/').next().unwrap();
        let errors = json["errors"]
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
            .unwrap_or_default();
        (kind.to_owned(), errors)
    }
}

impl Running {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &str)>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some((content_type, text)) => {
                request = request.header("content-type", content_type);
                Full::new(Bytes::copy_from_slice(text.as_bytes()))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self
            .client
            .request(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Stops the server and flushes the trail: whether every request
    /// finished within the drain time, and the trail's report.
    async fn stop(self) -> (bool, ShutdownReport) {
        drop(self.client);
        let _ = self.stop.send(());
        let drained = self.served.await.unwrap();
        (drained, self.guard.shutdown(Duration::from_secs(10)).await)
    }
}

fn token(sub: &str, tenant: &str, scope: &str, roles: &[&str]) -> String {
    token::issue(
        &secret(),
        sub,
        tenant,
        scope,
        roles,
        Duration::from_secs(300),
    )
    .unwrap()
}

#[tokio::test]
async fn every_guard_answers_on_plain_hyper_and_the_trail_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let app = start(JsonLinesSink::builder(&path).open().unwrap()).await;
    let reader = token("alice", "acme", "notes:read", &[]);
    let writer = token("bob", "acme", "notes:read notes:write", &[]);
    let admin = token("carol", "acme", "notes:read", &["admin"]);
    let other = token("mallory", "globex", "notes:read notes:write", &["admin"]);
    let json = "application/json";
    let mut requests = 0;
    macro_rules! send {
        ($($arg:expr),* $(,)?) => {{
            requests += 1;
            app.send($($arg),*).await
        }};
    }

    // Public, and deny by default everywhere else, unknown paths included.
    let health = send!(Method::GET, "/healthz", None, None);
    assert_eq!(
        (health.status, &health.body[..]),
        (StatusCode::OK, &b"ok"[..])
    );
    for path in ["/v1/notes", "/nope", "/healthz/"] {
        let answer = send!(Method::GET, path, None, None);
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            answer.headers["www-authenticate"], r#"Bearer realm="api""#,
            "{path}"
        );
        assert_eq!(answer.problem().0, "authentication-required");
    }
    let forged = format!("{}x", &reader[..reader.len() - 1]);
    let answer = send!(Method::GET, "/v1/notes", Some(&forged), None);
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.problem().0, "invalid-token");

    // Scopes per route.
    let answer = send!(Method::GET, "/v1/notes", Some(&reader), None);
    assert_eq!(
        (answer.status, answer.json()),
        (StatusCode::OK, Value::Array(vec![]))
    );
    let note = r#"{"title":"Quarterly numbers","body":"up"}"#;
    let answer = send!(Method::POST, "/v1/notes", Some(&reader), Some((json, note)));
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.problem().0, "insufficient-scope");
    let challenge = answer.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="notes:write""#), "{challenge}");

    // Validation: 201, or one problem with every violation.
    let created = send!(Method::POST, "/v1/notes", Some(&writer), Some((json, note)));
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let created = created.json();
    assert_eq!(created["title"], "Quarterly numbers");
    assert_eq!(created["author"], "bob");
    let id = created["id"].as_str().unwrap().to_owned();
    let answer = send!(
        Method::POST,
        "/v1/notes",
        Some(&writer),
        Some((json, r#"{"title":"","isAdmin":true}"#)),
    );
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let (kind, mut errors) = answer.problem();
    errors.sort();
    assert_eq!(kind, "validation-failed");
    assert_eq!(
        errors,
        [
            ("/isAdmin".to_owned(), "unknown_field".to_owned()),
            ("/title".to_owned(), "length.min".to_owned()),
        ]
    );
    let answer = send!(Method::POST, "/v1/notes", Some(&writer), Some((json, "{")));
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = send!(
        Method::POST,
        "/v1/notes",
        Some(&writer),
        Some(("text/plain", note))
    );
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Tenants see only their own notes.
    let answer = send!(Method::GET, "/v1/notes", Some(&reader), None);
    assert_eq!(answer.json()[0]["id"], id.as_str());
    let answer = send!(Method::GET, "/v1/notes", Some(&other), None);
    assert_eq!(answer.json(), Value::Array(vec![]));
    let note_path = format!("/v1/notes/{id}");
    let answer = send!(Method::DELETE, &note_path, Some(&other), None);
    assert_eq!(answer.status, StatusCode::NOT_FOUND);

    // Roles, 404, 405.
    let answer = send!(Method::DELETE, &note_path, Some(&writer), None);
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.problem().0, "forbidden");
    let answer = send!(Method::DELETE, &note_path, Some(&admin), None);
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let answer = send!(Method::DELETE, &note_path, Some(&admin), None);
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = send!(Method::PUT, "/v1/notes", Some(&writer), None);
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers["allow"], "GET, HEAD, POST");
    let answer = send!(Method::GET, "/nope", Some(&reader), None);
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.problem().0, "not-found");
    // Paths that only look like a route are no route, with a valid token.
    let upper = note_path.to_uppercase().replace("/V1/NOTES/", "/v1/notes/");
    for path in [
        "/v1/notes/",
        "//v1/notes",
        "/v1//notes",
        "/v1/notes%2F",
        "/v1/notes/../notes",
        "/healthz/",
        upper.as_str(),
    ] {
        let answer = send!(Method::GET, path, Some(&admin), None);
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    // HEAD is GET without the body.
    let head = send!(Method::HEAD, "/v1/notes", Some(&reader), None);
    assert_eq!((head.status, head.body.len()), (StatusCode::OK, 0));

    let (drained, report) = app.stop().await;
    assert!(drained && report.is_complete(), "{report:?}");

    // The trail: whole, one completed `http.request` record per request,
    // with its route template, the socket peer and the verified actor.
    let report = verify(&path, &VerifyOptions::default()).unwrap();
    let records: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(report.records, records.len() as u64);
    let completed: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "http.request" && r["stage"] != "received")
        .collect();
    assert_eq!(completed.len(), requests);
    for record in &completed {
        assert_eq!(record["source"]["ip"], "127.0.0.1", "{record}");
    }
    let find = |method: &str, status: u64, subject: Option<&str>| {
        completed
            .iter()
            .find(|r| {
                r["request"]["method"] == method
                    && r["request"]["status"] == status
                    && subject.is_none_or(|s| r["actor"]["subject"] == s)
            })
            .unwrap_or_else(|| panic!("no {method} {status} {subject:?} record"))
    };
    let deleted = find("DELETE", 204, Some("carol"));
    assert_eq!(deleted["request"]["route"], "/v1/notes/{id}");
    assert_eq!(deleted["actor"]["tenant"], "acme");
    let refused = find("GET", 401, None);
    assert_eq!(refused["category"], "authn");
    assert_eq!(refused["outcome"], "failure");
    let invalid = find("POST", 422, Some("bob"));
    assert_eq!(invalid["request"]["route"], "/v1/notes");
    assert_eq!(invalid["reason"], "validation_failed");
    let no_route = find("GET", 404, Some("alice"));
    assert!(no_route["request"]["route"].is_null(), "{no_route}");
    let not_allowed = find("PUT", 405, Some("bob"));
    assert_eq!(not_allowed["request"]["route"], "/v1/notes");
    let head = find("HEAD", 200, Some("alice"));
    assert_eq!(head["request"]["route"], "/v1/notes");
    // The strict DELETEs: an attempt record before each handler ran, and
    // the domain event of the one that deleted.
    let attempts = records
        .iter()
        .filter(|r| r["stage"] == "received" && r["request"]["method"] == "DELETE")
        .count();
    assert_eq!(attempts, 4);
    let domain: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "note.delete")
        .collect();
    assert_eq!(
        domain.len(),
        3,
        "the other tenant's, the admin's, the second"
    );
    assert!(domain.iter().any(|r| r["outcome"] == "success"
        && r["target"]["id"] == id.as_str()
        && r["actor"]["subject"] == "carol"));
}

/// Fails every batch holding a successful `note.delete` domain event (after
/// the given delay), and writes the others to a memory sink.
#[derive(Clone, Default)]
struct RefusesDeletions(MemorySink, Duration);

impl AuditSink for RefusesDeletions {
    fn name(&self) -> &'static str {
        "refuses-deletions"
    }

    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
        let deletion = batch
            .iter()
            .any(|e| e.action() == "note.delete" && e.outcome() == Outcome::Success);
        if deletion {
            let delay = self.1;
            return Box::pin(async move {
                tokio::time::sleep(delay).await;
                Err(SinkError::Unavailable("refusing a deletion"))
            });
        }
        self.0.write_batch(batch)
    }
}

impl Running {
    /// `DELETE`s the note `id`, then lists the notes: the delete's answer
    /// and the list.
    async fn delete_then_list(&self, token: &str, id: &str) -> (Answer, Value) {
        let path = format!("/v1/notes/{id}");
        let answer = self.send(Method::DELETE, &path, Some(token), None).await;
        let list = self.send(Method::GET, "/v1/notes", Some(token), None).await;
        (answer, list.json())
    }
}

/// The app over `sink`, an admin's token, and the id of a note of theirs.
async fn start_with_a_note(sink: impl AuditSink) -> (Running, String, String) {
    start_with_a_note_over(sink, server::DRAIN_TIMEOUT, Notes::default()).await
}

/// [`start_with_a_note`] with a drain time, over `notes`.
async fn start_with_a_note_over(
    sink: impl AuditSink,
    drain: Duration,
    notes: Notes,
) -> (Running, String, String) {
    let app = start_over(sink, drain, notes).await;
    let admin = token("bob", "acme", "notes:read notes:write", &["admin"]);
    let created = app
        .send(
            Method::POST,
            "/v1/notes",
            Some(&admin),
            Some(("application/json", r#"{"title":"keep me"}"#)),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    (app, admin, id)
}

#[tokio::test]
async fn a_strict_delete_whose_attempt_cannot_be_audited_never_runs() {
    let sink = MemorySink::new();
    let (app, admin, id) = start_with_a_note(sink.clone()).await;

    sink.set_failing(true);
    let (answer, list) = app.delete_then_list(&admin, &id).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.problem().0, "audit-unavailable");
    assert_eq!(list[0]["id"], id.as_str(), "never deleted");
    sink.set_failing(false);
    assert!(sink.events().iter().all(|e| e.action() != "note.delete"));
    let (drained, _) = app.stop().await;
    assert!(drained);
}

#[tokio::test]
async fn a_delete_whose_domain_event_cannot_be_audited_is_undone() {
    let sink = RefusesDeletions::default();
    let (app, admin, id) = start_with_a_note(sink.clone()).await;

    // The attempt record is written, the handler deletes, its domain event
    // fails: the answer is 503 and the deletion is undone.
    let (answer, list) = app.delete_then_list(&admin, &id).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(list[0]["id"], id.as_str(), "restored");

    let (drained, _) = app.stop().await;
    assert!(drained);
    let events = sink.0.events();
    assert!(events.iter().any(|e| {
        e.action() == "http.request"
            && e.request()
                .is_some_and(|r| r.method.as_deref() == Some("DELETE"))
            && e.stage() == Stage::Received
    }));
    assert!(
        events
            .iter()
            .any(|e| e.action() == "note.delete" && e.reason() == Some("reverted")),
        "the undoing is recorded"
    );
}

#[tokio::test]
async fn a_delete_cut_by_shutdown_while_its_event_is_pending_is_still_undone() {
    let notes = Notes::default();
    let sink = RefusesDeletions(MemorySink::new(), Duration::from_millis(2000));
    let (app, admin, id) =
        start_with_a_note_over(sink.clone(), Duration::from_millis(100), notes.clone()).await;

    // The deletion's event is pending when the drain time runs out: the
    // server cuts the request, and its handler's future is dropped.
    let path = format!("/v1/notes/{id}");
    let request = app.client.request(
        Request::delete(format!("http://{}{path}", app.addr))
            .header("authorization", format!("Bearer {admin}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    );
    let cut = tokio::spawn(request);
    // Its strict attempt record is written: the handler runs, and its
    // event waits in the sink.
    let attempted = || {
        sink.0.events().iter().any(|e| {
            e.stage() == Stage::Received
                && e.request()
                    .is_some_and(|r| r.method.as_deref() == Some("DELETE"))
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !attempted() {
        assert!(tokio::time::Instant::now() < deadline, "never attempted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = app.stop.send(());
    assert!(!app.served.await.unwrap(), "the deletion was not cut");
    assert!(cut.await.unwrap().is_err(), "the cut request was answered");

    // The event fails after the cut; the deletion is undone all the same.
    let _ = app.guard.shutdown(Duration::from_secs(10)).await;
    let again = start_over(MemorySink::new(), server::DRAIN_TIMEOUT, notes).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = again
            .send(Method::GET, "/v1/notes", Some(&admin), None)
            .await;
        if list.json()[0]["id"] == id.as_str() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never restored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (drained, _) = again.stop().await;
    assert!(drained);
    assert!(
        sink.0.events().iter().any(|e| e.action() == "http.request"
            && e.stage() == Stage::Received
            && e.request()
                .is_some_and(|r| r.method.as_deref() == Some("DELETE"))),
        "the attempt was recorded"
    );
}

/// A request still running when the drain time is up is cancelled, and
/// recorded as such before the trail is flushed.
#[tokio::test]
async fn a_request_cut_by_shutdown_is_in_the_trail() {
    use tokio::io::AsyncWriteExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let app = start_with(
        JsonLinesSink::builder(&path).open().unwrap(),
        Duration::from_millis(300),
    )
    .await;
    let writer = token("bob", "acme", "notes:write", &[]);
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/notes HTTP/1.1\r\nhost: notes\r\nauthorization: Bearer {writer}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The body never comes; give the server time to start reading it.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (drained, report) = app.stop().await;
    assert!(!drained, "the stalled request outlived the drain time");
    assert!(report.is_complete(), "{report:?}");
    drop(stream);
    verify(&path, &VerifyOptions::default()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let cut: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["action"] == "http.request")
        .collect();
    assert_eq!(cut.len(), 1, "{text}");
    assert_eq!(cut[0]["request"]["method"], "POST");
    assert_eq!(cut[0]["reason"], "cancelled", "{}", cut[0]);
    assert_eq!(cut[0]["actor"]["subject"], "bob");
}
