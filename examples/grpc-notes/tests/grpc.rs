//! The notes service over real HTTP/2 on loopback, called with tonic's own
//! generated client; error details decoded with `tonic-types` (not this
//! workspace's decoder); the audit trail read back and verified.

use std::time::Duration;

use grpc_notes::pb::notes_client::NotesClient;
use grpc_notes::pb::{CreateNoteRequest, DeleteNoteRequest, ListNotesRequest, Note};
use grpc_notes::{Notes, app, server, token};
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{AuditPipeline, VerifyOptions, verify};
use secrecy::SecretString;
use serde_json::Value;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

const SECRET: &str = "a test secret of at least thirty-two bytes";

fn token(sub: &str, tenant: &str, scope: &str, roles: &[&str]) -> String {
    token::issue(
        &SecretString::from(SECRET),
        sub,
        tenant,
        scope,
        roles,
        Duration::from_secs(600),
    )
    .unwrap()
}

/// tonic's generated client, connected to `addr` over HTTP/2.
async fn client(addr: std::net::SocketAddr) -> NotesClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    NotesClient::new(channel)
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn note(title: &str, tags: &[&str]) -> CreateNoteRequest {
    CreateNoteRequest {
        title: title.to_owned(),
        body: "milk, eggs".to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// The `http.request` records of `route`, in order.
fn calls<'a>(records: &'a [Value], route: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["action"] == "http.request" && r["request"]["route"] == route)
        .collect()
}

/// The app served on loopback with a JSON-lines trail, until `stop`.
struct Served {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    guard: guardrails_audit::AuditGuard,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<bool>,
}

async fn start(limits: server::Limits) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    start_with(
        limits,
        JsonLinesSink::builder(&path).open().unwrap(),
        dir,
        path,
    )
    .await
}

async fn start_with(
    limits: server::Limits,
    sink: impl guardrails_audit::sink::AuditSink,
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
) -> Served {
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let auth = token::auth_layer(&SecretString::from(SECRET)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        app(auth, auditor, Notes::default()),
        async {
            let _ = stopped.await;
        },
        limits,
    ));
    Served {
        _dir: dir,
        path,
        guard,
        addr,
        stop,
        server,
    }
}

impl Served {
    /// Stops the server, waits for it, and flushes the trail.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .unwrap()
            .unwrap();
        let _ = self.guard.shutdown(Duration::from_secs(5)).await;
    }
}

/// A server auditing into `sink`, a client, the tokens of alice (a writer)
/// and carol (an admin, who may delete), and a note of alice's.
struct WithANote {
    served: Served,
    client: NotesClient<Channel>,
    writer: String,
    admin: String,
    created: Note,
}

async fn with_a_note(sink: impl guardrails_audit::sink::AuditSink) -> WithANote {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unused");
    let served = start_with(server::Limits::default(), sink, dir, path).await;
    let mut client = client(served.addr).await;
    let writer = token("alice", "acme", "notes:read notes:write", &[]);
    let admin = token("carol", "acme", "notes:read", &["admin"]);
    let created = client
        .create_note(with_token(note("Delete me", &[]), &writer))
        .await
        .unwrap()
        .into_inner();
    WithANote {
        served,
        client,
        writer,
        admin,
        created,
    }
}

#[tokio::test]
async fn calls_are_guarded_answered_as_grpc_and_audited_with_their_status() {
    let Served {
        _dir,
        path,
        guard,
        addr,
        stop,
        server,
    } = start(server::Limits::default()).await;
    let mut client = client(addr).await;

    let writer = token("alice", "acme", "notes:read notes:write", &[]);
    let reader = token("bob", "acme", "notes:read", &[]);
    let admin = token("carol", "acme", "notes:read", &["admin"]);
    let other = token("mallory", "evil", "notes:read notes:write", &["admin"]);

    // No token: UNAUTHENTICATED, from the auth layer, before the service.
    let status = client.create_note(note("x", &[])).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = client
        .create_note(with_token(note("x", &[]), "not-a-jwt"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A valid note.
    let created = client
        .create_note(with_token(note("Groceries", &["home"]), &writer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.author, "alice");
    assert_eq!(created.title, "Groceries");

    // An invalid one: INVALID_ARGUMENT, every violation in BadRequest
    // details as any gRPC client library reads them.
    let long_tag = "t".repeat(33);
    let status = client
        .create_note(with_token(note("", &["ok", &long_tag]), &writer))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    let mut found: Vec<(String, String)> = details
        .field_violations
        .iter()
        .map(|v| (v.field.clone(), v.reason.clone()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("tags[1]".to_owned(), "length.max".to_owned()),
            ("title".to_owned(), "length.min".to_owned()),
        ]
    );

    // A reader may not write.
    let status = client
        .create_note(with_token(note("Nope", &[]), &reader))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A stream of the caller's tenant's notes, and none of another's.
    let mut stream = client
        .list_notes(with_token(ListNotesRequest {}, &reader))
        .await
        .unwrap()
        .into_inner();
    let mut listed = Vec::new();
    while let Some(note) = stream.message().await.unwrap() {
        listed.push(note);
    }
    assert_eq!(listed, std::slice::from_ref(&created));
    let mut stream = client
        .list_notes(with_token(ListNotesRequest {}, &other))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_none());

    // Deletion: the admin role, in the caller's tenant only.
    let delete = |id: &str| DeleteNoteRequest { id: id.to_owned() };
    let status = client
        .delete_note(with_token(delete(&created.id), &writer))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = client
        .delete_note(with_token(delete(&created.id), &other))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::NotFound,
        "another tenant's note: {status:?}"
    );
    client
        .delete_note(with_token(delete(&created.id), &admin))
        .await
        .unwrap();
    let status: Status = client
        .delete_note(with_token(delete(&created.id), &admin))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    drop(client);
    stop.send(()).unwrap();
    let drained = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server did not stop")
        .unwrap();
    assert!(drained);
    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");

    verify(&path, &VerifyOptions::default()).unwrap();
    let records: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every record from the socket peer, every call under its template.
    assert!(
        records[..records.len() - 1]
            .iter()
            .all(|r| r["source"]["ip"] == "127.0.0.1")
    );
    let summary = |calls: Vec<&Value>| -> Vec<(String, String, String, Value, Value)> {
        calls
            .iter()
            .map(|r| {
                (
                    r["actor"]["subject"].as_str().unwrap_or("-").to_owned(),
                    r["category"].as_str().unwrap_or_default().to_owned(),
                    r["outcome"].as_str().unwrap_or_default().to_owned(),
                    r["reason"].clone(),
                    r["details"]["grpc_status"].clone(),
                )
            })
            .collect()
    };
    let row = |actor: &str, category: &str, outcome: &str, reason: Value, status: Value| {
        (
            actor.to_owned(),
            category.to_owned(),
            outcome.to_owned(),
            reason,
            status,
        )
    };
    let null = Value::Null;
    // Unary calls: a rejection by the auth layer, a status in the headers
    // (an error answered at once), or in the trailers (a success).
    assert_eq!(
        summary(calls(&records, "/notes.v1.Notes/CreateNote")),
        [
            row(
                "-",
                "authn",
                "failure",
                "missing_credential".into(),
                16.into()
            ),
            row("-", "authn", "failure", "malformed_token".into(), 16.into()),
            row("alice", "data_write", "success", null.clone(), 0.into()),
            row(
                "alice",
                "data_write",
                "failure",
                "grpc_invalid_argument".into(),
                3.into()
            ),
            row(
                "bob",
                "authz",
                "denied",
                "grpc_permission_denied".into(),
                7.into()
            ),
        ]
    );
    // Streams: the status from the trailers after the messages; a read.
    assert_eq!(
        summary(calls(&records, "/notes.v1.Notes/ListNotes")),
        [
            row("bob", "data_read", "success", null.clone(), 0.into()),
            row("mallory", "data_read", "success", null.clone(), 0.into()),
        ]
    );
    // Strict: a durable attempt before each call ran (the caller not yet
    // known), then its completion; a success's status travels in the
    // trailers, which wait until its record is durable.
    let deletes = calls(&records, "/notes.v1.Notes/DeleteNote");
    let (attempts, completions): (Vec<&Value>, Vec<&Value>) =
        deletes.into_iter().partition(|r| r["stage"] == "received");
    assert_eq!(attempts.len(), 4);
    assert!(attempts.iter().all(|r| r["outcome"] == "unknown"));
    for (attempt, completion) in attempts.iter().zip(&completions) {
        assert_eq!(attempt["request"]["id"], completion["request"]["id"]);
    }
    assert_eq!(
        summary(completions),
        [
            row(
                "alice",
                "authz",
                "denied",
                "grpc_permission_denied".into(),
                7.into()
            ),
            row(
                "mallory",
                "data_write",
                "failure",
                "grpc_not_found".into(),
                5.into()
            ),
            row("carol", "data_write", "success", null.clone(), 0.into()),
            row(
                "carol",
                "data_write",
                "failure",
                "grpc_not_found".into(),
                5.into()
            ),
        ]
    );
    // The domain events, with the caller and the tenant of the token.
    let domain: Vec<(String, String, Value, Value)> = records
        .iter()
        .filter(|r| r["action"] == "note.delete")
        .map(|r| {
            assert_eq!(r["target"]["id"], created.id.as_str());
            (
                r["actor"]["subject"].as_str().unwrap_or("-").to_owned(),
                r["outcome"].as_str().unwrap_or_default().to_owned(),
                r["reason"].clone(),
                r["details"]["tenant"].clone(),
            )
        })
        .collect();
    assert_eq!(
        domain,
        [
            (
                "mallory".to_owned(),
                "failure".to_owned(),
                "not_found".into(),
                "evil".into()
            ),
            (
                "carol".to_owned(),
                "success".to_owned(),
                null,
                "acme".into()
            ),
            (
                "carol".to_owned(),
                "failure".to_owned(),
                "not_found".into(),
                "acme".into()
            ),
        ]
    );
    // No token, and no status message (the handler's text), in the trail.
    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [
        writer.as_str(),
        reader.as_str(),
        admin.as_str(),
        other.as_str(),
    ] {
        assert!(!text.contains(secret));
    }
    assert!(!text.contains("scope notes:write required"));
}

#[tokio::test]
async fn a_stalled_call_cannot_hold_the_stop_and_is_recorded_as_cancelled() {
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let drain = Duration::from_millis(300);
    let Served {
        _dir,
        path,
        guard,
        addr,
        stop,
        server,
    } = start(server::Limits {
        drain,
        ..server::Limits::default()
    })
    .await;

    // A call whose message never comes, on a connection whose client does
    // nothing but keep it open.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let (_keep_open, frames) =
        tokio::sync::mpsc::channel::<Result<Frame<bytes::Bytes>, std::convert::Infallible>>(1);
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(frames));
    let writer = token("alice", "acme", "notes:write", &[]);
    let request = http::Request::post(format!("http://{addr}/notes.v1.Notes/CreateNote"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {writer}"))
        .body(body)
        .unwrap();
    let call = tokio::spawn(sender.send_request(request));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopping = std::time::Instant::now();
    stop.send(()).unwrap();
    let drained = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the stalled call held the stop")
        .unwrap();
    assert!(!drained, "the call was cut, not finished");
    assert!(stopping.elapsed() >= drain, "{:?}", stopping.elapsed());
    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");
    call.abort();

    verify(&path, &VerifyOptions::default()).unwrap();
    let records: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cut = calls(&records, "/notes.v1.Notes/CreateNote");
    assert_eq!(cut.len(), 1, "{records:?}");
    assert_eq!(cut[0]["reason"], "cancelled", "{}", cut[0]);
    assert_eq!(cut[0]["actor"]["subject"], "alice", "{}", cut[0]);
}

#[tokio::test]
async fn silent_connections_cannot_hold_the_slots_or_fail_the_stop() {
    let Served {
        _dir,
        path: _,
        guard,
        addr,
        stop,
        server,
    } = start(server::Limits {
        max_connections: 2,
        first_call: Duration::from_millis(300),
        drain: Duration::from_millis(300),
        ..server::Limits::default()
    })
    .await;
    // Two clients take both slots and say nothing (not even HTTP/2's
    // preface).
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // A real client still gets its answer once they are closed.
    let reader = token("bob", "acme", "notes:read", &[]);
    let call = async {
        client(addr)
            .await
            .list_notes(with_token(ListNotesRequest {}, &reader))
            .await
    };
    let answered = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the silent connections held the slots");
    assert!(answered.is_ok(), "{answered:?}");
    for mut socket in silent {
        // The server's own HTTP/2 preface, then the end.
        use tokio::io::AsyncReadExt;
        let mut sent = Vec::new();
        // Its end: EOF, or a reset; either way, closed by the server.
        let _closed = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut sent))
            .await
            .expect("the silent connection is still open");
    }

    // A silent connection open at shutdown is no call cut short.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(()).unwrap();
    let drained = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server did not stop")
        .unwrap();
    assert!(drained, "no call was running");
    assert!(guard.shutdown(Duration::from_secs(5)).await.is_complete());
}

/// A sink that writes everything but a `note.delete` success, which it
/// fails after a while: the trail refuses a deletion.
#[derive(Debug, Default)]
struct RefusesDeletions;

impl guardrails_audit::sink::AuditSink for RefusesDeletions {
    fn name(&self) -> &'static str {
        "refuses-deletions"
    }

    fn write_batch<'a>(
        &'a mut self,
        batch: &'a [guardrails_audit::AuditEvent],
    ) -> guardrails_audit::sink::SinkFuture<'a, guardrails_audit::sink::WriteReceipt> {
        Box::pin(async move {
            if batch
                .iter()
                .any(|e| e.action() == "note.delete" && e.reason().is_none())
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Err(guardrails_audit::sink::SinkError::Unavailable("refused"));
            }
            Ok(guardrails_audit::sink::WriteReceipt {
                first_seq: None,
                durable: true,
            })
        })
    }
}

#[tokio::test]
async fn a_deletion_cancelled_while_its_record_fails_is_still_undone() {
    let WithANote {
        served,
        mut client,
        writer,
        admin,
        created,
    } = with_a_note(RefusesDeletions).await;

    // The client gives up while the deletion's record is pending: its call
    // is reset, and the server drops the handler's future.
    let delete = DeleteNoteRequest {
        id: created.id.clone(),
    };
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        client.delete_note(with_token(delete, &admin)),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "answered before the record failed: {gave_up:?}"
    );
    // The record fails; the deletion must be undone all the same.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut listed = client
        .list_notes(with_token(ListNotesRequest {}, &writer))
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    while let Some(note) = listed.message().await.unwrap() {
        ids.push(note.id);
    }
    assert_eq!(ids, [created.id]);

    drop(client);
    served.stop().await;
}

/// A sink that fails the batch holding a deletion's completion record (the
/// call's own `http.request`, status 0) and writes everything else into
/// `written`.
struct FailsCompletedDeletions {
    written: guardrails_audit::sink::MemorySink,
}

impl guardrails_audit::sink::AuditSink for FailsCompletedDeletions {
    fn name(&self) -> &'static str {
        "fails-completed-deletions"
    }

    fn write_batch<'a>(
        &'a mut self,
        batch: &'a [guardrails_audit::AuditEvent],
    ) -> guardrails_audit::sink::SinkFuture<'a, guardrails_audit::sink::WriteReceipt> {
        let completed = batch.iter().any(|e| {
            e.stage() == guardrails_audit::Stage::Completed
                && e.details().get("grpc_status") == Some(&Value::from(0))
                && e.request().and_then(|r| r.route.as_deref())
                    == Some("/notes.v1.Notes/DeleteNote")
        });
        Box::pin(async move {
            if completed {
                return Err(guardrails_audit::sink::SinkError::Unavailable("refused"));
            }
            self.written.write_batch(batch).await
        })
    }
}

/// A strict call's status travels in the trailers, after its message: they
/// wait for the completion record, and when it fails the client is told
/// `INTERNAL`, not OK, and the trail says what the client was told.
#[tokio::test]
async fn a_call_whose_completion_record_fails_ends_internal() {
    let written = guardrails_audit::sink::MemorySink::new();
    let WithANote {
        served,
        mut client,
        admin,
        created,
        ..
    } = with_a_note(FailsCompletedDeletions {
        written: written.clone(),
    })
    .await;
    let status = client
        .delete_note(with_token(
            DeleteNoteRequest {
                id: created.id.clone(),
            },
            &admin,
        ))
        .await
        .expect_err("answered OK though its record failed");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(
        status.message(),
        "the call's audit record could not be written"
    );

    drop(client);
    served.stop().await;
    let records: Vec<Value> = written
        .events()
        .iter()
        .map(guardrails_audit::AuditEvent::to_json)
        .collect();
    let deletes = calls(&records, "/notes.v1.Notes/DeleteNote");
    assert_eq!(deletes.len(), 2, "{deletes:#?}");
    let (attempt, answered) = (deletes[0], deletes[1]);
    assert_eq!(attempt["stage"], "received");
    assert_eq!(answered["request"]["id"], attempt["request"]["id"]);
    assert_eq!(answered["actor"]["subject"], "carol");
    assert_eq!(answered["request"]["status"], 200);
    assert_eq!(answered["outcome"], "failure");
    assert_eq!(answered["reason"], "audit_write_failed");
    assert_eq!(answered["details"]["grpc_status"], 13);
    assert_eq!(answered["details"]["response_grpc_status"], 0);
    assert_eq!(answered["details"]["handler"], "finished");
}
