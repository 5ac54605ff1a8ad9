//! End to end: requests to the real binary → the audit file → `verify`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use guardrails_audit::{VerifyOptions, verify};
use http_body_util::Full;
use secrecy::SecretString;
use serde_json::Value;

const KEY: &str = "an-audit-hmac-key-of-at-least-32-bytes!";

fn request(method: &str, url: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(url)
        .header(
            "user-agent",
            "e2e\u{1b}test".replace('\u{1b}', "") + " \u{85}",
        )
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn every_request_is_audited_and_the_trail_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit").join("audit.jsonl");
    let mut cmd = common::command();
    cmd.env("SAAS_AUDIT__PATH", &path)
        .env("SAAS_AUDIT__HMAC_KEY", KEY);
    let mut app = common::start(cmd);

    let mut answered = Vec::new();
    for (method, p) in [
        ("GET", "/healthz"),
        ("GET", "/v1/tenants/acme/invoices"),
        ("DELETE", "/v1/tenants/acme/invoices/inv_1"),
        ("GET", "/metrics"),
        ("GET", "/no/such/route?token=do-not-record"),
    ] {
        let reply = common::send(request(method, &app.url(p))).await;
        answered.push((method, p.split('?').next().unwrap(), reply.status));
    }

    let status = app.terminate(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    let output = app.drain_output().join("\n");
    assert!(output.contains("audit trail flushed"), "{output}");

    let mut checkpoints = path.as_os_str().to_owned();
    checkpoints.push(".checkpoints");
    let options = VerifyOptions::new()
        .key(SecretString::from(KEY))
        .checkpoints(std::path::PathBuf::from(checkpoints));
    let report = verify(&path, &options).unwrap();
    assert!(report.cleanly_stopped);
    assert!(report.checkpoints_checked >= 1);
    assert_eq!(
        report.alg,
        Some(guardrails_audit::chain::ChainAlg::HmacSha256)
    );

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("do-not-record"));
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let completed: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "http.request" && r["stage"] == "completed")
        .collect();
    // One completed record per request, in order, with the status answered.
    assert_eq!(completed.len(), answered.len(), "{text}");
    for (record, (method, path, status)) in completed.iter().zip(&answered) {
        assert_eq!(record["request"]["method"], *method);
        assert_eq!(record["request"]["path"], *path);
        assert_eq!(record["request"]["status"], *status);
        assert_eq!(record["source"]["ip"], "127.0.0.1");
        assert_eq!(record["observer"]["service"], "saas-api");
        assert_eq!(record["chain"]["alg"], "hmac-sha256");
        assert!(
            !record["source"]["user_agent"]
                .as_str()
                .unwrap()
                .chars()
                .any(char::is_control)
        );
    }
    assert_eq!(completed[0]["request"]["route"], "/healthz");
    // DELETE is strict: its attempt record comes first.
    let delete_id = &completed[2]["request"]["id"];
    let attempt = records
        .iter()
        .find(|r| r["stage"] == "received" && r["request"]["id"] == *delete_id)
        .expect("strict attempt record for DELETE");
    assert!(attempt["chain"]["seq"].as_u64() < completed[2]["chain"]["seq"].as_u64());
    assert_eq!(records.last().unwrap()["action"], "audit.stopped");
}

#[test]
fn an_unusable_audit_path_fails_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let output = common::command()
        .env("SAAS_AUDIT__PATH", blocker.join("audit.jsonl"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("audit"), "{text}");
    assert!(!text.contains("listening on"), "{text}");
}
