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
        ("DELETE", "/no/such/route"),
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
    // Only DELETE routes are strict: a DELETE anywhere else (no durable
    // write for anyone who asks) has its completed record alone.
    let elsewhere = &completed[5]["request"]["id"];
    assert_eq!(completed[5]["request"]["status"], 401);
    assert!(
        !records
            .iter()
            .any(|r| r["stage"] == "received" && r["request"]["id"] == *elsewhere),
        "{text}"
    );
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

#[tokio::test]
async fn actors_denials_and_the_invoice_delete_domain_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut cmd = common::command();
    cmd.env("SAAS_AUDIT__PATH", &path);
    let mut app = common::start(cmd);
    let writer = common::token(&[
        "--sub",
        "wendy",
        "--tenant",
        "acme",
        "--scope",
        "invoices:read invoices:write",
    ]);
    let admin = common::token(&["--sub", "carol", "--tenant", "acme", "--role", "admin"]);

    let invoice = r#"{"customer_email":"billing@example.com","currency":"EUR","due_date":"2026-12-31","lines":[{"description":"Seats","quantity":3,"unit_price_cents":1500}]}"#;
    let created = common::send(common::authorized(
        "POST",
        &app.url("/v1/tenants/acme/invoices"),
        &writer,
        Some(invoice),
    ))
    .await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let url = app.url(&format!("/v1/tenants/acme/invoices/{id}"));
    // Not an admin: denied by the route's requirement.
    let denied = common::send(common::authorized("DELETE", &url, &writer, None)).await;
    assert_eq!(denied.status, 403);
    let deleted = common::send(common::authorized("DELETE", &url, &admin, None)).await;
    assert_eq!(deleted.status, 204);

    assert!(app.terminate(Duration::from_secs(15)).success());
    let mut checkpoints = path.as_os_str().to_owned();
    checkpoints.push(".checkpoints");
    let report = verify(
        &path,
        &VerifyOptions::new().checkpoints(std::path::PathBuf::from(checkpoints)),
    )
    .unwrap();
    assert!(report.cleanly_stopped);

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(&admin) && !text.contains(&writer),
        "tokens are never recorded"
    );
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |f: &dyn Fn(&Value) -> bool| {
        records
            .iter()
            .find(|r| f(r))
            .cloned()
            .unwrap_or_else(|| panic!("{text}"))
    };
    let create = find(&|r| r["request"]["method"] == "POST" && r["stage"] == "completed");
    assert_eq!(create["actor"]["subject"], "wendy");
    assert_eq!(create["outcome"], "success");
    assert_eq!(create["request"]["route"], "/v1/tenants/{tenant}/invoices");
    let denial = find(&|r| r["request"]["status"] == 403);
    assert_eq!(denial["category"], "authz");
    assert_eq!(denial["outcome"], "denied");
    assert_eq!(denial["actor"]["subject"], "wendy");
    assert!(denial["reason"].is_string());
    let domain = find(&|r| r["action"] == "invoice.delete");
    assert_eq!(domain["actor"]["subject"], "carol");
    assert_eq!(domain["actor"]["tenant"], "acme");
    assert_eq!(domain["target"]["id"], id.as_str());
    assert_eq!(domain["outcome"], "success");
    let completion = find(&|r| r["request"]["status"] == 204);
    assert_eq!(completion["request"]["id"], domain["request"]["id"]);
    assert_eq!(
        completion["request"]["route"],
        "/v1/tenants/{tenant}/invoices/{id}"
    );
    // Strict: attempt, then domain event, then completion.
    let seq = |r: &Value| r["chain"]["seq"].as_u64().unwrap();
    let attempt =
        find(&|r| r["stage"] == "received" && r["request"]["id"] == domain["request"]["id"]);
    assert!(seq(&attempt) < seq(&domain) && seq(&domain) < seq(&completion));
}

/// The trail's key is changed by configuration: the new key, and the old
/// one as `audit.previous_hmac_key`. The trail goes on in the same chain
/// and verifies with both keys, not with the new one alone.
#[tokio::test]
async fn the_audit_key_is_changed_without_a_new_trail() {
    const NEW_KEY: &str = "the-next-audit-hmac-key-of-32-bytes-or-more";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    for keys in [
        vec![("SAAS_AUDIT__HMAC_KEY", KEY)],
        vec![
            ("SAAS_AUDIT__HMAC_KEY", NEW_KEY),
            ("SAAS_AUDIT__PREVIOUS_HMAC_KEY", KEY),
        ],
    ] {
        let mut cmd = common::command();
        cmd.env("SAAS_AUDIT__PATH", &path).envs(keys);
        let mut app = common::start(cmd);
        let reply = common::send(request("GET", &app.url("/healthz"))).await;
        assert_eq!(reply.status, 200);
        let status = app.terminate(Duration::from_secs(15));
        assert!(status.success(), "exit status {status:?}");
        let output = app.drain_output().join("\n");
        for key in [KEY, NEW_KEY] {
            assert!(!output.contains(key), "{output}");
        }
    }
    let mut checkpoints = path.as_os_str().to_owned();
    checkpoints.push(".checkpoints");
    let checkpoints = std::path::PathBuf::from(checkpoints);
    let both = VerifyOptions::new()
        .key(SecretString::from(NEW_KEY))
        .previous_key(SecretString::from(KEY))
        .checkpoints(&checkpoints);
    let report = verify(&path, &both).unwrap();
    assert_eq!(report.key_changes, 1);
    assert!(report.cleanly_stopped);
    let records: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records
            .iter()
            .filter(|r| r["action"] == "http.request")
            .count(),
        2
    );
    let new_only = VerifyOptions::new()
        .key(SecretString::from(NEW_KEY))
        .checkpoints(&checkpoints);
    assert!(verify(&path, &new_only).is_err());
}
