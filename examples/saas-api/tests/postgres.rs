//! The example with its audit trail in PostgreSQL: the real binary against a
//! throwaway local server (guardrails-audit's test harness: server binaries
//! on the PATH or under /usr/lib/postgresql), which the end-to-end test stops
//! and starts again.

mod common;

#[path = "../../../guardrails-audit/tests/common/pg.rs"]
#[allow(dead_code, unreachable_pub)]
mod pg;

use std::time::{Duration, Instant};

use guardrails_audit::verify::{PgVerifyOptions, verify_postgres};
use secrecy::SecretString;

/// Whether external tools must be present (CI) rather than skipped; read by
/// the harness.
fn require_external() -> bool {
    std::env::var("GUARDRAILS_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}

const KEY: &str = "saas-api-postgres-test-chain-key-0123456789";
/// The password in the app's database URL: the local cluster trusts
/// loopback connections and never asks for it, so it only shows whether the
/// URL leaks into the output.
const DB_PASSWORD: &str = "db-password-never-printed";
const STRONG: &str = "Zq3vN8xKp2LmA7bT5wYc9HdE1gUf4sRjh7Gk2PqX";

const INVOICE: &str = r#"{"customer_email":"billing@example.com","currency":"EUR","due_date":"2026-12-31","lines":[{"description":"Seats","quantity":3,"unit_price_cents":1500}]}"#;

#[tokio::test]
async fn audit_trail_in_postgres_end_to_end() {
    let Some(pg) = pg::PgServer::start_local().await else {
        return;
    };
    let url_file = tempfile::NamedTempFile::new().unwrap();
    // The test server has no TLS: said so, or the app refuses it.
    let url = format!("{}?sslmode=disable", pg.url_as("postgres", DB_PASSWORD));
    std::fs::write(url_file.path(), url).unwrap();
    let mut cmd = common::command();
    cmd.env("SAAS_AUDIT__POSTGRES_URL_FILE", url_file.path())
        .env("SAAS_AUDIT__HMAC_KEY", KEY);
    let mut app = common::start(cmd);
    let writer = common::token(&[
        "--sub",
        "wendy",
        "--tenant",
        "acme",
        "--scope",
        "invoices:read invoices:write",
    ]);
    let admin_token = common::token(&["--sub", "carol", "--tenant", "acme", "--role", "admin"]);

    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = common::send(common::authorized(
            "POST",
            &app.url("/v1/tenants/acme/invoices"),
            &writer,
            Some(INVOICE),
        ))
        .await;
        assert_eq!(created.status, 201);
        ids.push(created.json()["id"].as_str().unwrap().to_owned());
    }
    let first = app.url(&format!("/v1/tenants/acme/invoices/{}", ids[0]));
    let second = app.url(&format!("/v1/tenants/acme/invoices/{}", ids[1]));
    assert_eq!(
        common::send(common::authorized("GET", &first, &writer, None))
            .await
            .status,
        200
    );
    // DELETE, strict: the attempt record is committed before the handler runs.
    assert_eq!(
        common::send(common::authorized("DELETE", &first, &admin_token, None))
            .await
            .status,
        204
    );
    assert_eq!(
        common::send(common::authorized("GET", &first, &writer, None))
            .await
            .status,
        404
    );

    // The rows are in the database (best-effort records within moments).
    let admin = pg.admin().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE action = 'http.request'), \
                        count(*) FILTER (WHERE action = 'invoice.delete' AND tenant = 'acme' \
                                          AND actor = 'carol' AND target_id = $1) \
                 FROM audit_events",
                &[&ids[0]],
            )
            .await
            .unwrap();
        let (requests, deletes): (i64, i64) = (row.get(0), row.get(1));
        if requests >= 5 && deletes == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rows missing: {requests} requests, {deletes} deletes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tokens_recorded: i64 = admin
        .query_one(
            "SELECT count(*) FROM audit_events WHERE record::text LIKE '%' || $1 || '%'",
            &[&admin_token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tokens_recorded, 0, "tokens are never recorded");
    let options = PgVerifyOptions::new().key(SecretString::from(KEY));
    verify_postgres(&admin, &options).await.unwrap();

    // The database goes away: a strict DELETE fails closed.
    drop(admin);
    pg.stop();
    let started = Instant::now();
    let refused = common::send(common::authorized("DELETE", &second, &admin_token, None)).await;
    assert_eq!(
        refused.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&refused.body)
    );
    // An RFC 9457 problem that says why, without the database's cause.
    assert_eq!(
        refused.headers[http::header::CONTENT_TYPE],
        "application/problem+json"
    );
    let problem = refused.json();
    assert_eq!(
        problem["type"],
        "tag:guardrails.rs,2026:problem/audit-unavailable"
    );
    assert_eq!(problem["status"], 503);
    let text = String::from_utf8_lossy(&refused.body).to_lowercase();
    for cause in ["postgres", "connect", "127.0.0.1", DB_PASSWORD] {
        assert!(!text.contains(cause), "the cause leaks: {text}");
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    pg.start_again();
    // The handler did not run: the invoice is still there.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = common::send(common::authorized("GET", &second, &writer, None)).await;
        assert_ne!(reply.status, 404, "the refused DELETE deleted the invoice");
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "GET answered {}", reply.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A clean stop flushes everything; the chain verifies and ends with the
    // stop record. The refused DELETE's attempt record
    // (its batch failed while the database was down) is the one event not
    // written: recorded in-band as `audit.dropped` (reason `sink_error`) once
    // the database was back, and the exit status says the trail is not
    // complete.
    let status = app.terminate(Duration::from_secs(60));
    let output = app.drain_output().join("\n");
    assert!(!status.success(), "{output}");
    assert!(output.contains("failed=1"), "{output}");
    assert!(
        !output.contains(DB_PASSWORD),
        "the database URL is never logged: {output}"
    );
    let admin = pg.admin().await;
    let report = verify_postgres(&admin, &options).await.unwrap();
    assert_eq!(report.chains.len(), 1);
    assert!(report.chains[0].cleanly_stopped, "{report:?}");
    assert!(report.records() >= 8, "{report:?}");
    let dropped: i64 = admin
        .query_one(
            "SELECT count(*) FROM audit_events WHERE action = 'audit.dropped' \
               AND reason = 'sink_error' \
               AND (record #>> '{details,count}')::int = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dropped, 1, "the failed attempt record is reported in-band");
    let deleted: i64 = admin
        .query_one(
            "SELECT count(*) FROM audit_events WHERE action = 'invoice.delete' \
               AND target_id = $1",
            &[&ids[1]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deleted, 0, "the refused DELETE's handler never ran");

    // A second start: migrate() again is a no-op, and a new chain begins.
    let mut cmd = common::command();
    cmd.env(
        "SAAS_AUDIT__POSTGRES_URL",
        format!("{} sslmode=disable", pg.admin_conn()),
    )
    .env("SAAS_AUDIT__HMAC_KEY", KEY)
    .env("SAAS_AUDIT__CHAIN_ID", "instance-a");
    let mut app = common::start(cmd);
    assert_eq!(common::get(&app.url("/healthz")).await.status, 200);
    assert!(app.terminate(Duration::from_secs(30)).success());
    let report = verify_postgres(&admin, &options).await.unwrap();
    assert_eq!(report.chains.len(), 2);
    assert!(
        report
            .chains
            .iter()
            .any(|c| c.chain_id.as_deref() == Some("instance-a") && c.cleanly_stopped)
    );
}

#[test]
fn the_database_url_is_a_secret() {
    let url = "postgresql://app:hunter2-database-password@db.internal:5432/app";
    let output = common::command()
        .arg("config")
        .env("SAAS_AUDIT__POSTGRES_URL", url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("audit.postgres_url"), "{text}");
    assert!(text.contains("[REDACTED]"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn production_accepts_a_database_as_the_audit_destination() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hs256");
    std::fs::write(&secret, STRONG).unwrap();
    let url = dir.path().join("db-url");
    // Unreachable on purpose: the configuration passes, the start-up does not.
    std::fs::write(
        &url,
        "postgresql://app:hunter2-database-password@127.0.0.1:1/app",
    )
    .unwrap();
    let output = common::command()
        .env("SAAS_ENV", "production")
        .env("SAAS_AUTH__ISSUER", "https://idp.example.com/")
        .env("SAAS_AUTH__HS256_SECRET_FILE", &secret)
        .env("SAAS_AUDIT__POSTGRES_URL_FILE", &url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(!text.contains("audit.path"), "no audit file needed: {text}");
    assert!(text.contains("cannot connect to 127.0.0.1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("listening on"), "{text}");
}

/// The application name the TLS test gives the app's connections, to find
/// them in `pg_stat_activity` and the server log.
const TLS_APP_NAME: &str = "saas-api-tls-test";

#[tokio::test]
async fn audit_trail_in_postgres_over_verified_tls() {
    let Some(pg) = pg::PgServer::start_tls().await else {
        return;
    };
    let ca = pg.tls_ca_file().unwrap().to_owned();
    let conn = format!(
        "{} sslmode=require application_name={TLS_APP_NAME}",
        pg.admin_conn()
    );
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("db-url");
    std::fs::write(&url_file, &conn).unwrap();
    let mut cmd = common::command();
    cmd.env("SAAS_AUDIT__POSTGRES_URL_FILE", &url_file)
        .env("SAAS_AUDIT__POSTGRES_CA_FILE", &ca)
        .env("SAAS_AUDIT__HMAC_KEY", KEY);
    let mut app = common::start(cmd);
    let writer = common::token(&[
        "--sub",
        "wendy",
        "--tenant",
        "acme",
        "--scope",
        "invoices:read invoices:write",
    ]);
    let created = common::send(common::authorized(
        "POST",
        &app.url("/v1/tenants/acme/invoices"),
        &writer,
        Some(INVOICE),
    ))
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(common::get(&app.url("/healthz")).await.status, 200);

    let admin = pg.admin().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let requests: i64 = admin
            .query_one(
                "SELECT count(*) FROM audit_events WHERE action = 'http.request'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if requests >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{requests} request records");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The app's open connection (the sink's) uses TLS; the test's own
    // connection does not, so the query tells the two apart.
    let app_connections = admin
        .query(
            "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&TLS_APP_NAME],
        )
        .await
        .unwrap();
    assert!(!app_connections.is_empty(), "the sink holds a connection");
    for row in &app_connections {
        let (ssl, version): (bool, Option<String>) = (row.get(0), row.get(1));
        assert!(ssl, "an app connection without TLS");
        assert!(
            version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")),
            "{version:?}"
        );
    }
    let own: bool = admin
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!own, "the test's own connection is plain");

    let status = app.terminate(Duration::from_secs(60));
    let output = app.drain_output().join("\n");
    assert!(status.success(), "exit status {status:?}: {output}");
    assert!(!output.contains(&conn), "the database URL is never logged");
    // Every connection the app opened (the migration's, the sink's) was
    // TLS, as the server logged them.
    let authorized_lines = pg.authorized_connections(TLS_APP_NAME);
    assert!(authorized_lines.len() >= 2, "{authorized_lines:?}");
    for line in &authorized_lines {
        assert!(line.contains("SSL enabled"), "{line}");
    }
    let options = PgVerifyOptions::new().key(SecretString::from(KEY));
    let report = verify_postgres(&admin, &options).await.unwrap();
    assert_eq!(report.chains.len(), 1);
    assert!(report.chains[0].cleanly_stopped, "{report:?}");

    // A CA file that did not sign the server's certificate, and the webpki
    // roots alone: the app refuses to start, naming the host, never the URL.
    let unrelated = pg::unrelated_ca(dir.path()).unwrap();
    for ca_file in [Some(unrelated.as_path()), None] {
        let mut cmd = common::command();
        cmd.env("SAAS_AUDIT__POSTGRES_URL_FILE", &url_file);
        if let Some(ca_file) = ca_file {
            cmd.env("SAAS_AUDIT__POSTGRES_CA_FILE", ca_file);
        }
        let output = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{ca_file:?}: {text}");
        assert!(
            text.contains("audit.postgres_url: cannot connect to 127.0.0.1"),
            "{text}"
        );
        assert!(text.contains("certificate"), "{text}");
        assert!(!text.contains(&conn), "{text}");
        assert!(!text.contains(TLS_APP_NAME), "{text}");
        assert!(!text.contains("listening on"), "{text}");
    }
    // Nothing more reached the database: still one chain.
    let report = verify_postgres(&admin, &options).await.unwrap();
    assert_eq!(report.chains.len(), 1);
}
