//! The `grpc-notes` binary: it refuses a short secret without printing it,
//! prints tokens it then accepts, serves gRPC on loopback, and on `SIGTERM`
//! stops gracefully with a whole audit trail.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grpc_notes::pb::ListNotesRequest;
use grpc_notes::pb::notes_client::NotesClient;
use guardrails_audit::{VerifyOptions, verify};
use tonic::{Code, Request};

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_grpc-notes"));
    cmd.current_dir(dir)
        .env_remove("NOTES_GRPC_ADDR")
        .env_remove("NOTES_AUDIT_PATH")
        .env("NOTES_HS256_SECRET_FILE", dir.join("notes.key"));
    cmd
}

#[test]
fn a_short_secret_is_refused_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.key"), "short-secret-value").unwrap();
    let output = command(dir.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NOTES_HS256_SECRET_FILE"), "{stderr}");
    assert!(!stderr.contains("short-secret-value"), "{stderr}");
}

#[tokio::test]
async fn serves_the_tokens_it_prints_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notes.key"),
        "a test secret for the grpc-notes binary\n",
    )
    .unwrap();
    let token = command(dir.path())
        .args(["token", "alice", "acme", "notes:read"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    let mut child = command(dir.path())
        .env("NOTES_GRPC_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the address line: {line:?}"))
        .to_owned();

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = NotesClient::new(channel);
    let mut request = Request::new(ListNotesRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut notes = client.list_notes(request).await.unwrap().into_inner();
    assert!(notes.message().await.unwrap().is_none());
    let status = client
        .list_notes(Request::new(ListNotesRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    drop(client);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        // Not a blocking sleep: the client's connection task runs on
        // this runtime.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(
        rest.contains("audit trail flushed: 2 written, 0 lost"),
        "{rest}"
    );
    let trail = dir.path().join("var/grpc-notes-audit.jsonl");
    let report = verify(&trail, &VerifyOptions::default()).unwrap();
    // The two calls, and the sink's record of a clean stop.
    assert_eq!(report.records, 3);
    assert!(report.cleanly_stopped);
}
