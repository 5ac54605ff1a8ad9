//! The `hyper-notes` binary: it refuses to start without its secret, prints
//! tokens it then accepts, serves on loopback, and on `SIGTERM` stops
//! gracefully with a whole audit trail.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use guardrails_audit::{VerifyOptions, verify};
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyper-notes"));
    cmd.current_dir(dir)
        .env_remove("NOTES_ADDR")
        .env_remove("NOTES_AUDIT_PATH")
        .env("NOTES_HS256_SECRET_FILE", dir.join("notes.key"));
    cmd
}

#[test]
fn without_its_secret_it_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .env_remove("NOTES_HS256_SECRET_FILE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NOTES_HS256_SECRET_FILE"), "{stderr}");

    // A short secret: refused, and never printed.
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
        "a test secret for the hyper-notes binary\n",
    )
    .unwrap();
    let token = command(dir.path())
        .args(["token", "alice", "acme", "notes:read"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");

    let mut child = command(dir.path())
        .env("NOTES_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the address line: {line:?}"))
        .to_owned();

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let get = |token: Option<&str>| {
        let mut request = Request::get(format!("{base}/v1/notes"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        client.request(request.body(Empty::new()).unwrap())
    };
    let response = get(Some(&token)).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"[]");
    assert_eq!(get(None).await.unwrap().status(), 401);
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
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(
        rest.contains("audit trail flushed: 2 written, 0 lost"),
        "{rest}"
    );

    let trail = dir.path().join("var/notes-audit.jsonl");
    let report = verify(&trail, &VerifyOptions::default()).unwrap();
    let text = std::fs::read_to_string(&trail).unwrap();
    let actions: Vec<String> = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["action"].to_string())
        .collect();
    // The two requests, and the sink's record of a clean stop.
    assert_eq!(
        actions,
        [
            r#""http.request""#,
            r#""http.request""#,
            r#""audit.stopped""#
        ]
    );
    assert_eq!(report.records, 3);
}
