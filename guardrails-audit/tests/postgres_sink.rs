//! The PostgreSQL sink against a real server (see `common/pg.rs`): schema
//! migrations, concurrent writers, a restart under load, the writer role's
//! limits, the outbox, NUL handling, secrets in `Debug`.
#![cfg(feature = "postgres")]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use common::pg::{PgServer, as_owner};
use guardrails_audit::chain::{ChainHasher, ZERO_HASH};
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::postgres::{PgError, PostgresSink, SCHEMA_VERSION, migrate, record_in};
use guardrails_audit::{
    Actor, AuditEvent, AuditLayer, AuditPipeline, Auditor, Category, DeliveryError, DeliveryMode,
    Outcome, RoutePolicy,
};
use http::{Method, Request, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use tokio_postgres::Client;
use tower::ServiceExt;
use uuid::Uuid;

macro_rules! server {
    () => {
        match PgServer::start().await {
            Some(server) => server,
            None => return,
        }
    };
}

/// A server of the test's own, to stop, restart or proxy (never skipped
/// quietly on an external server).
macro_rules! local_server {
    () => {
        match PgServer::start_local().await {
            Some(server) => server,
            None => return,
        }
    };
}

/// A migrated database and a superuser client.
async fn migrated(pg: &PgServer) -> Client {
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    admin
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new("test.event", Category::DataWrite)
        .with_outcome(Outcome::Success)
        .with_target("invoice", format!("inv_{i}"))
        .with_detail("i", i as u64)
}

/// The records of a chain in seq order, checked: seqs from 0 without gaps,
/// each `prev` the previous hash, each hash recomputed from the stored
/// `jsonb` record, the chain columns equal to the record's chain member.
async fn verified_chain(admin: &Client, chain_id: &str, hasher: &ChainHasher) -> Vec<Value> {
    let rows = admin
        .query(
            "SELECT seq, prev, hash, id, record::text FROM audit_events WHERE chain_id = $1 ORDER BY seq",
            &[&chain_id],
        )
        .await
        .unwrap();
    let mut prev = ZERO_HASH.to_owned();
    let mut records = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let seq: i64 = row.get(0);
        let row_prev: String = row.get(1);
        let hash: String = row.get(2);
        let id: Uuid = row.get(3);
        let record: Value = serde_json::from_str(row.get::<_, &str>(4)).unwrap();
        assert_eq!(seq, i as i64, "{chain_id}: seqs are contiguous from 0");
        assert_eq!(row_prev, prev, "{chain_id}: prev of {seq}");
        assert_eq!(record["chain"]["prev"], Value::from(prev.as_str()));
        assert_eq!(record["chain"]["seq"], Value::from(seq));
        assert_eq!(record["chain"]["id"], Value::from(chain_id));
        assert_eq!(record["chain"]["alg"], Value::from(hasher.alg().as_str()));
        assert_eq!(record["chain"]["hash"], Value::from(hash.as_str()));
        assert_eq!(record["id"], Value::from(id.to_string()));
        assert_eq!(
            hasher.hash_record(&record).unwrap(),
            hash,
            "{chain_id}: hash of {seq}"
        );
        prev = hash;
        records.push(record);
    }
    records
}

async fn count(admin: &Client, sql: &str) -> i64 {
    admin.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn migrate_twice_is_a_no_op() {
    let pg = server!();
    let mut admin = pg.admin().await;
    let first = migrate(&mut admin).await.unwrap();
    assert_eq!(first.applied, vec![1, 2, 3]);
    assert_eq!(first.version, SCHEMA_VERSION);
    let second = migrate(&mut admin).await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(second.version, SCHEMA_VERSION);
    let rows = admin
        .query(
            "SELECT version, name, applied_at <= now() FROM guardrails_audit_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for (row, (version, name)) in rows.iter().zip([
        (1, "audit_trail"),
        (2, "outbox_record_size"),
        (3, "chain_owners"),
    ]) {
        assert_eq!(row.get::<_, i32>(0), version);
        assert_eq!(row.get::<_, String>(1), name);
        assert!(row.get::<_, bool>(2));
    }
    for table in [
        "audit_chains",
        "audit_events",
        "audit_checkpoints",
        "audit_outbox",
    ] {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = $1",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "{table}");
    }
    // A database from a newer crate is refused.
    admin
        .execute(
            "INSERT INTO guardrails_audit_migrations (version, name) VALUES ($1, 'future')",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let newer = migrate(&mut admin).await.unwrap_err();
    assert!(
        matches!(newer, PgError::NewerSchema { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{newer}"
    );
}

#[tokio::test]
async fn concurrent_migrations_apply_once() {
    let pg = server!();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut client = pg.admin().await;
        tasks.push(tokio::spawn(async move {
            migrate(&mut client).await.unwrap().applied
        }));
    }
    let mut applied = Vec::new();
    for task in tasks {
        applied.extend(task.await.unwrap());
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        vec![1, 2, 3],
        "exactly one caller applied each version"
    );
}

#[tokio::test]
async fn several_writers_concurrently_every_acknowledged_event_once() {
    let pg = server!();
    let admin = migrated(&pg).await;
    const WRITERS: usize = 3;
    const TASKS: usize = 4;
    const PER_TASK: usize = 500;
    let mut pipelines = Vec::new();
    for w in 0..WRITERS {
        let mut builder = PostgresSink::builder(secret(pg.admin_conn()));
        if w == 1 {
            builder = builder.hmac_key(secret("writer-1-chain-key"));
        }
        let sink = builder.open().await.unwrap();
        let chain_id = sink.chain_id().to_owned();
        let (auditor, guard) = AuditPipeline::builder().capacity(8192).spawn(sink).unwrap();
        pipelines.push((chain_id, auditor, guard));
    }
    let chain_ids: HashSet<_> = pipelines.iter().map(|p| p.0.clone()).collect();
    assert_eq!(chain_ids.len(), WRITERS, "each sink gets its own chain");

    // Writer 0 blocking, writer 1 best effort, writer 2 mixed.
    let mut tasks = Vec::new();
    for (w, (_, auditor, _)) in pipelines.iter().enumerate() {
        for t in 0..TASKS {
            let auditor = auditor.clone();
            tasks.push(tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..PER_TASK {
                    let event = event(i);
                    let id = event.id();
                    let blocking = match w {
                        0 => true,
                        1 => false,
                        _ => (i + t) % 2 == 0,
                    };
                    if blocking {
                        auditor.record_durable(event).await.unwrap();
                        acknowledged.push(id);
                    } else if auditor.record(event).is_ok() {
                        acknowledged.push(id);
                    }
                }
                acknowledged
            }));
        }
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    for (_, _, guard) in pipelines {
        let report = guard.shutdown(Duration::from_secs(30)).await;
        assert!(report.is_complete(), "{report:?}");
    }
    assert!(acknowledged.len() >= WRITERS * TASKS * PER_TASK * 2 / 3);

    let duplicates = count(
        &admin,
        "SELECT count(*) FROM (SELECT id FROM audit_events GROUP BY id HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(duplicates, 0);
    let rows = admin
        .query("SELECT id FROM audit_events", &[])
        .await
        .unwrap();
    let stored: HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let missing = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .count();
    assert_eq!(missing, 0, "every acknowledged event is stored");
    for chain_id in &chain_ids {
        let alg: String = admin
            .query_one(
                "SELECT alg FROM audit_chains WHERE chain_id = $1",
                &[chain_id],
            )
            .await
            .unwrap()
            .get(0);
        let hasher = if alg == "hmac-sha256" {
            ChainHasher::hmac(&secret("writer-1-chain-key"))
        } else {
            ChainHasher::sha256()
        };
        let records = verified_chain(&admin, chain_id, &hasher).await;
        assert_eq!(
            records.last().unwrap()["action"],
            "audit.stopped",
            "closed cleanly"
        );
        let checkpoints = count(
            &admin,
            &format!("SELECT count(*) FROM audit_checkpoints WHERE chain_id = '{chain_id}'"),
        )
        .await;
        assert!(checkpoints >= 2, "count checkpoints and the shutdown one");
    }
}

/// Acknowledged ids of a load run against `auditor` until `stop` is set:
/// blocking senders that keep count of failures, and best-effort ones.
async fn load(
    auditor: Auditor,
    stop: Arc<std::sync::atomic::AtomicBool>,
    blocking: bool,
) -> (Vec<Uuid>, usize) {
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    let mut i = 0;
    while !stop.load(Ordering::Acquire) {
        let event = event(i);
        let id = event.id();
        i += 1;
        if blocking {
            match auditor.record_durable(event).await {
                Ok(_) => acknowledged.push(id),
                Err(DeliveryError::WriteFailed) => failed += 1,
                Err(other) => panic!("{other}"),
            }
        } else {
            if auditor.record(event).is_ok() {
                acknowledged.push(id);
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    (acknowledged, failed)
}

/// Three blocking senders and one best-effort sender, until `finish`.
struct LoadRun {
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(Vec<Uuid>, usize)>>,
}

impl LoadRun {
    fn start(auditor: &Auditor) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = [true, true, true, false]
            .into_iter()
            .map(|blocking| tokio::spawn(load(auditor.clone(), Arc::clone(&stop), blocking)))
            .collect();
        Self { stop, tasks }
    }

    /// Stops the senders: the acknowledged ids and the failed count.
    async fn finish(self) -> (Vec<Uuid>, usize) {
        self.stop.store(true, Ordering::Release);
        let mut acknowledged = Vec::new();
        let mut failed = 0;
        for task in self.tasks {
            let (ids, f) = task.await.unwrap();
            acknowledged.extend(ids);
            failed += f;
        }
        (acknowledged, failed)
    }
}

/// No record twice, and every acknowledged event among the records.
fn assert_each_stored_once(records: &[Value], acknowledged: &[Uuid]) {
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no record twice");
    let missing = acknowledged
        .iter()
        .filter(|id| !unique.contains(id.to_string().as_str()))
        .count();
    assert_eq!(missing, 0, "every acknowledged event is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_under_load_loses_and_duplicates_nothing_acknowledged() {
    let pg = local_server!();
    let admin = migrated(&pg).await;
    drop(admin);
    let sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("restart")
        .retry_for(Duration::from_secs(10))
        .open()
        .await
        .unwrap();
    let (auditor, guard) = AuditPipeline::builder()
        .capacity(100_000)
        .spawn(sink)
        .unwrap();
    let run = LoadRun::start(&auditor);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = auditor.stats().written;
    let restarter = {
        let pg = &pg;
        async move { tokio::task::block_in_place(|| pg.restart()) }
    };
    restarter.await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (acknowledged, failed) = run.finish().await;
    let report = guard.shutdown(Duration::from_secs(30)).await;
    assert!(report.is_complete(), "{report:?}");
    assert!(before > 0, "the load ran before the restart");

    let admin = pg.admin().await;
    let records = verified_chain(&admin, "restart", &ChainHasher::sha256()).await;
    assert_each_stored_once(&records, &acknowledged);
    assert!(
        acknowledged.len() as u64 > before,
        "writes resumed after the restart"
    );
    let dropped = records
        .iter()
        .filter(|r| r["action"] == "audit.dropped" && r["reason"] == "sink_error")
        .count();
    if failed > 0 {
        assert!(dropped > 0, "a loss is reported in-band");
    }
    eprintln!(
        "restart: {} acknowledged, {failed} failed, {} records",
        acknowledged.len(),
        records.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_requests_during_an_outage_get_503_and_skip_the_handler() {
    let pg = local_server!();
    drop(migrated(&pg).await);
    let sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("strict")
        // Long enough to reconnect on a loaded machine once the server is
        // back; during the outage a strict request waits this long for 503.
        .retry_for(Duration::from_secs(2))
        .io_timeout(Duration::from_secs(2))
        .open()
        .await
        .unwrap();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let flusher = auditor.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let handler_calls = Arc::clone(&calls);
    let app = Router::new()
        .route(
            "/v1/things/{id}",
            axum::routing::delete(move || {
                let calls = Arc::clone(&handler_calls);
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    "deleted"
                }
            }),
        )
        .layer(
            AuditLayer::new(auditor).policy(
                RoutePolicy::new()
                    .method(Method::DELETE)
                    .mode(DeliveryMode::Strict),
            ),
        );
    let delete = |app: &Router| {
        let app = app.clone();
        async move {
            app.oneshot(
                Request::delete("/v1/things/t1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
            .status()
        }
    };
    assert_eq!(delete(&app).await, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The completion record is not waited for: write it before the outage.
    flusher.flush().await.unwrap();

    tokio::task::block_in_place(|| pg.stop());
    assert_eq!(delete(&app).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the handler did not run without its attempt record"
    );

    tokio::task::block_in_place(|| pg.start_again());
    assert_eq!(delete(&app).await, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let report = guard.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.failed, 1, "the refused attempt record: {report:?}");
    assert!(report.sink_closed && report.unflushed == 0, "{report:?}");

    let admin = pg.admin().await;
    let records = verified_chain(&admin, "strict", &ChainHasher::sha256()).await;
    let summary: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let dropped: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "audit.dropped")
        .collect();
    assert_eq!(dropped.len(), 1, "{summary:?}");
    assert_eq!(dropped[0]["reason"], "sink_error");
    assert_eq!(
        dropped[0]["details"]["count"], 1,
        "the refused attempt record"
    );
    let received = records
        .iter()
        .filter(|r| r["action"] == "http.request" && r["stage"] == "received")
        .count();
    assert_eq!(received, 2, "{summary:?}");
}

#[tokio::test]
async fn the_writer_role_cannot_change_or_remove_records() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let writer_url = pg.create_writer_role().await;

    // The sink works with the writer's privileges, outbox relay included.
    let sink = PostgresSink::builder(secret(&writer_url))
        .chain_id("writer")
        .checkpoint_every(2, Duration::from_secs(3600))
        .open()
        .await
        .unwrap();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    record_in(&admin, &event(100)).await.unwrap();
    for i in 0..3 {
        auditor.record_durable(event(i)).await.unwrap();
    }
    assert!(guard.shutdown(Duration::from_secs(10)).await.is_complete());
    let records = verified_chain(&admin, "writer", &ChainHasher::sha256()).await;
    assert_eq!(records.len(), 5, "outbox event, 3 events, audit.stopped");
    assert_eq!(count(&admin, "SELECT count(*) FROM audit_outbox").await, 0);

    let writer = common::pg::connect(&writer_url).await.unwrap();
    let statements = [
        "UPDATE audit_events SET action = 'forged'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_checkpoints SET hash = 'x'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
        "UPDATE audit_chains SET alg = 'sha256'",
        "DELETE FROM audit_chains",
        "TRUNCATE audit_chains",
        "UPDATE audit_outbox SET record = '{}'",
    ];
    for sql in statements {
        let error = writer.batch_execute(sql).await.unwrap_err();
        let db = error.as_db_error().unwrap();
        assert_eq!(db.code().code(), "42501", "{sql}: {}", db.message());
        assert!(
            db.message().contains("permission denied"),
            "{sql}: {}",
            db.message()
        );
    }
    // INSERT works (a hand-made record in the outbox becomes an
    // `audit.outbox_rejected` record when relayed).
    let inserted = writer
        .execute(
            "INSERT INTO audit_outbox (record) VALUES ('{}'::jsonb)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    // Even with the privileges, the triggers refuse.
    admin
        .batch_execute(
            "GRANT UPDATE, DELETE, TRUNCATE ON audit_events, audit_checkpoints, audit_chains, audit_outbox TO audit_writer",
        )
        .await
        .unwrap();
    for sql in statements {
        let error = writer.batch_execute(sql).await.unwrap_err();
        let db = error.as_db_error().unwrap();
        assert!(
            db.message().contains("append-only"),
            "{sql}: {}",
            db.message()
        );
    }
    assert_eq!(
        count(&admin, "SELECT count(*) FROM audit_events").await,
        5,
        "nothing changed"
    );
    assert_eq!(count(&admin, "SELECT count(*) FROM audit_outbox").await, 1);
}

#[tokio::test]
async fn outbox_events_exist_only_when_their_transaction_commits() {
    let pg = server!();
    let mut admin = migrated(&pg).await;
    admin
        .batch_execute("CREATE TABLE invoices (id text PRIMARY KEY)")
        .await
        .unwrap();
    admin
        .batch_execute("INSERT INTO invoices VALUES ('inv_1'), ('inv_2')")
        .await
        .unwrap();

    let rolled_back = AuditEvent::new("invoice.delete", Category::DataWrite)
        .with_target("invoice", "inv_1")
        .with_detail("password", "hunter2");
    let tx = admin.transaction().await.unwrap();
    tx.execute("DELETE FROM invoices WHERE id = 'inv_1'", &[])
        .await
        .unwrap();
    record_in(&tx, &rolled_back).await.unwrap();
    tx.rollback().await.unwrap();

    let committed = AuditEvent::new("invoice.delete", Category::DataWrite)
        .with_outcome(Outcome::Success)
        .with_target("invoice", "inv_2")
        .with_detail("password", "hunter2");
    let tx = admin.transaction().await.unwrap();
    tx.execute("DELETE FROM invoices WHERE id = 'inv_2'", &[])
        .await
        .unwrap();
    record_in(&tx, &committed).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&admin, "SELECT count(*) FROM audit_outbox").await, 1);

    // Two sinks relay concurrently: the row moves exactly once.
    let mut guards = Vec::new();
    let mut auditors = Vec::new();
    for name in ["relay-a", "relay-b"] {
        let sink = PostgresSink::builder(secret(pg.admin_conn()))
            .chain_id(name)
            .open()
            .await
            .unwrap();
        let (auditor, guard) = AuditPipeline::builder()
            .tick(Duration::from_millis(20))
            .spawn(sink)
            .unwrap();
        auditors.push(auditor);
        guards.push(guard);
    }
    // The relay runs at ticks (and before batches).
    let mut waited = Duration::ZERO;
    while count(&admin, "SELECT count(*) FROM audit_outbox").await > 0 {
        assert!(
            waited < Duration::from_secs(10),
            "the outbox was not relayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    for guard in guards {
        assert!(guard.shutdown(Duration::from_secs(10)).await.is_complete());
    }
    let mut found = Vec::new();
    for chain in ["relay-a", "relay-b"] {
        for record in verified_chain(&admin, chain, &ChainHasher::sha256()).await {
            if record["action"] == "invoice.delete" {
                found.push(record);
            }
        }
    }
    assert_eq!(found.len(), 1, "exactly once");
    assert_eq!(found[0]["id"], committed.id().to_string());
    assert_eq!(found[0]["target"]["id"], "inv_2");
    assert_eq!(found[0]["details"]["password"], "[REDACTED]");
    let rolled = count(
        &admin,
        &format!(
            "SELECT count(*) FROM audit_events WHERE id = '{}'",
            rolled_back.id()
        ),
    )
    .await;
    assert_eq!(rolled, 0, "the rolled-back event never appears");
    assert_eq!(count(&admin, "SELECT count(*) FROM audit_outbox").await, 0);
    let (target_id, tenant): (Option<String>, Option<String>) = {
        let row = admin
            .query_one(
                "SELECT target_id, tenant FROM audit_events WHERE action = 'invoice.delete'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(target_id.as_deref(), Some("inv_2"));
    assert_eq!(tenant, None);
}

#[tokio::test]
async fn an_outbox_row_that_is_not_a_record_is_kept_as_evidence() {
    let pg = server!();
    let admin = migrated(&pg).await;
    admin
        .batch_execute(r#"INSERT INTO audit_outbox (record) VALUES ('{"not": "an event"}')"#)
        .await
        .unwrap();
    // Terminal controls are escaped on every way into the trail: in an
    // event of `record_in`, in a row written by hand, in a rejected row.
    let controlled = AuditEvent::new("test.outbox", Category::DataWrite).with_actor(Actor {
        subject: Some("ev\u{9b}2Jil".into()),
        tenant: Some("CORP\\xavier".into()),
        auth_method: None,
    });
    record_in(&admin, &controlled).await.unwrap();
    let mut by_hand = controlled.to_json();
    by_hand["id"] = Value::from(Uuid::now_v7().to_string());
    by_hand["details"] = serde_json::json!({"note": "\u{85}"});
    admin
        .execute(
            "INSERT INTO audit_outbox (record) VALUES ($1::text::jsonb)",
            &[&by_hand.to_string()],
        )
        .await
        .unwrap();
    admin
        .batch_execute(r#"INSERT INTO audit_outbox (record) VALUES ('{"not": "\u009b2J"}')"#)
        .await
        .unwrap();
    let mut sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("rejects")
        .build()
        .unwrap();
    sink.write_batch(&[event(1)]).await.unwrap();
    sink.close().await.unwrap();
    let records = verified_chain(&admin, "rejects", &ChainHasher::sha256()).await;
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "audit.outbox_rejected",
            "test.outbox",
            "test.outbox",
            "audit.outbox_rejected",
            "test.event",
            "audit.stopped"
        ]
    );
    assert_eq!(records[0]["details"]["record"], r#"{"not": "an event"}"#);
    for relayed in &records[1..3] {
        assert_eq!(relayed["actor"]["subject"], "ev\\x9B2Jil");
        assert_eq!(relayed["actor"]["tenant"], "CORP\\x5Cxavier");
    }
    assert_eq!(records[2]["details"]["note"], "\\x85");
    assert_eq!(records[3]["details"]["record"], r#"{"not": "\x9B2J"}"#);
    assert_eq!(count(&admin, "SELECT count(*) FROM audit_outbox").await, 0);
}

#[tokio::test]
async fn nul_characters_are_stored_as_replacement_characters() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let mut sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("nul")
        .build()
        .unwrap();
    let with_nul = AuditEvent::new("test.nul", Category::System)
        .with_reason("a\0b")
        .with_detail("k\0", "v\0")
        .with_detail("escaped", "back\\u0000slash");
    let plain = event(2);
    let receipt = sink
        .write_batch(&[with_nul.clone(), plain.clone()])
        .await
        .unwrap();
    assert_eq!(receipt.first_seq, Some(0));
    assert!(receipt.durable);
    // The record is found by its id, its strings carry U+FFFD, it verifies.
    let records = verified_chain(&admin, "nul", &ChainHasher::sha256()).await;
    assert_eq!(records[0]["id"], with_nul.id().to_string());
    assert_eq!(records[0]["reason"], "a\u{FFFD}b");
    assert_eq!(records[0]["details"]["k\u{FFFD}"], "v\u{FFFD}");
    assert_eq!(records[0]["details"]["escaped"], "back\\u0000slash");
    let reason: String = admin
        .query_one(
            "SELECT reason FROM audit_events WHERE chain_id = 'nul' AND seq = 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason, "a\u{FFFD}b");
    // An event without U+0000 is stored byte for byte as the file sink
    // writes it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let mut file = guardrails_audit::sink::file::JsonLinesSink::builder(&path)
        .open()
        .unwrap();
    file.write_batch(&[plain]).await.unwrap();
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let mut ours = records[1].clone();
    let mut theirs = line;
    for v in [&mut ours, &mut theirs] {
        v.as_object_mut().unwrap().remove("chain");
    }
    assert_eq!(ours, theirs);
    sink.close().await.unwrap();
}

#[tokio::test]
async fn a_stable_chain_id_continues_its_chain_and_a_wrong_key_is_refused() {
    let pg = server!();
    let admin = migrated(&pg).await;
    for round in 0..2 {
        let mut sink = PostgresSink::builder(secret(pg.admin_conn()))
            .chain_id("stable")
            .hmac_key(secret("stable-key-0123456789"))
            .open()
            .await
            .unwrap();
        let receipt = sink.write_batch(&[event(round)]).await.unwrap();
        assert_eq!(receipt.first_seq, Some(round as u64 * 2));
        sink.close().await.unwrap();
    }
    let records = verified_chain(
        &admin,
        "stable",
        &ChainHasher::hmac(&secret("stable-key-0123456789")),
    )
    .await;
    assert_eq!(records.len(), 4);
    let wrong_key = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("stable")
        .hmac_key(secret("another-key-0123456789"))
        .open()
        .await
        .unwrap_err();
    assert!(matches!(wrong_key, PgError::Incompatible(_)), "{wrong_key}");
    let wrong_alg = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("stable")
        .open()
        .await
        .unwrap_err();
    assert!(matches!(wrong_alg, PgError::Incompatible(_)), "{wrong_alg}");
}

#[tokio::test]
async fn a_chain_that_lost_checkpointed_records_is_not_continued() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let builder = || {
        PostgresSink::builder(secret(pg.admin_conn()))
            .chain_id("cut")
            .hmac_key(secret("cut-key-0123456789"))
            .checkpoint_every(2, Duration::from_secs(3600))
    };
    let mut sink = builder().open().await.unwrap();
    for pair in [[event(0), event(1)], [event(2), event(3)]] {
        sink.write_batch(&pair).await.unwrap();
    }
    sink.close().await.unwrap();
    // One more record after the last checkpoint, and no clean stop: the
    // state a crash leaves, which must still open.
    let mut sink = builder().open().await.unwrap();
    sink.write_batch(&[event(4)]).await.unwrap();
    drop(sink);
    let newest: i64 = admin
        .query_one(
            "SELECT max(seq) FROM audit_checkpoints WHERE chain_id = 'cut'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let last: i64 = count(&admin, "SELECT max(seq) FROM audit_events").await;
    assert_eq!(last, newest + 1, "one record after the newest checkpoint");
    builder().open().await.expect("a whole chain opens");

    let refused = |error: PgError, expected: &str| {
        assert!(
            matches!(&error, PgError::BehindCheckpoints(why) if why.contains(expected)),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains("checkpointed records") && text.contains(expected),
            "{text}"
        );
    };
    // The checkpointed record rewritten (its hash column; the record after
    // it still verifies as the head).
    let hash: String = admin
        .query_one(
            "SELECT hash FROM audit_events WHERE chain_id = 'cut' AND seq = $1",
            &[&newest],
        )
        .await
        .unwrap()
        .get(0);
    as_owner(
        &admin,
        &format!(
            "UPDATE audit_events SET hash = repeat('0', 64) WHERE chain_id = $1 AND seq = {newest}"
        ),
        "cut",
    )
    .await;
    refused(
        builder().open().await.unwrap_err(),
        &format!("the record at seq {newest} is not the one its checkpoint names"),
    );
    as_owner(
        &admin,
        &format!("UPDATE audit_events SET hash = '{hash}' WHERE chain_id = $1 AND seq = {newest}"),
        "cut",
    )
    .await;
    builder().open().await.expect("restored, it opens again");

    // The tail cut at the checkpointed record: continuing would give the
    // removed records' seqs to new ones.
    as_owner(
        &admin,
        &format!("DELETE FROM audit_events WHERE chain_id = $1 AND seq >= {newest}"),
        "cut",
    )
    .await;
    let error = builder().open().await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    refused(
        error,
        &format!(
            "a checkpoint names seq {newest}, but the chain ends at seq {}",
            newest - 1
        ),
    );
    // Every record removed: not a new chain over the old one's checkpoints.
    as_owner(
        &admin,
        "DELETE FROM audit_events WHERE chain_id = $1",
        "cut",
    )
    .await;
    refused(
        builder().open().await.unwrap_err(),
        &format!("a checkpoint names seq {newest}, but the chain ends before seq 0"),
    );
    assert_eq!(
        count(&admin, "SELECT count(*) FROM audit_events").await,
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn an_old_checkpoint_copied_to_a_higher_seq_does_not_hide_a_cut() {
    // The `seq` column is not signed, and the writer role may INSERT
    // checkpoints: a copy of a genuine old checkpoint under a huge `seq`
    // must not stand in for the newest one.
    let pg = server!();
    let admin = migrated(&pg).await;
    let writer_url = pg.create_writer_role().await;
    let builder = || {
        PostgresSink::builder(secret(pg.admin_conn()))
            .chain_id("mask")
            .hmac_key(secret("mask-key-0123456789"))
            .checkpoint_every(2, Duration::from_secs(3600))
    };
    let mut sink = builder().open().await.unwrap();
    for pair in [[event(0), event(1)], [event(2), event(3)]] {
        sink.write_batch(&pair).await.unwrap();
    }
    sink.close().await.unwrap();
    let writer = common::pg::connect(&writer_url).await.unwrap();
    writer
        .batch_execute(
            "INSERT INTO audit_checkpoints (chain_id, seq, hash, record) \
             SELECT chain_id, 1000000000, hash, record FROM audit_checkpoints \
             WHERE chain_id = 'mask' ORDER BY seq LIMIT 1",
        )
        .await
        .unwrap();
    as_owner(
        &admin,
        "DELETE FROM audit_events WHERE chain_id = $1 AND seq >= 2",
        "mask",
    )
    .await;
    let error = builder().open().await.unwrap_err();
    assert!(
        matches!(&error, PgError::Incompatible(why) if why.contains("disagrees with its signed record")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_chain_checkpointed_another_way_is_not_continued() {
    let pg = server!();
    let _admin = migrated(&pg).await;
    let builder = || {
        PostgresSink::builder(secret(pg.admin_conn()))
            .chain_id("signed")
            .hmac_key(secret("chain-key-0123456789"))
    };
    let mut sink = builder()
        .checkpoint_key(secret("checkpoint-key-0123456789"))
        .open()
        .await
        .unwrap();
    sink.write_batch(&[event(0)]).await.unwrap();
    sink.close().await.unwrap();
    // Signed with another HMAC key (here the chain key), then with Ed25519.
    let other_key = builder().open().await.unwrap_err();
    assert!(
        matches!(&other_key, PgError::Incompatible(why) if why.contains("does not verify")),
        "{other_key:?}"
    );
    let signing = common::ed25519_key();
    let other_way = builder()
        .checkpoint_signing_key(signing)
        .open()
        .await
        .unwrap_err();
    assert!(
        matches!(&other_way, PgError::Incompatible(why) if why.contains("signed another way")),
        "{other_way:?}"
    );
    builder()
        .checkpoint_key(secret("checkpoint-key-0123456789"))
        .open()
        .await
        .expect("the same keys continue the chain");
}

#[tokio::test]
async fn debug_and_errors_never_show_the_password() {
    let password = "s3cret-pa55word-in-the-url";
    let url = format!("postgresql://audit_writer:{password}@127.0.0.1:1/audit?connect_timeout=1");
    let builder = PostgresSink::builder(secret(&url))
        .hmac_key(secret("chain-key-value-0123456789"))
        .checkpoint_key(secret("checkpoint-key-value"));
    let shown = format!("{builder:?}");
    assert!(!shown.contains(password), "{shown}");
    assert!(!shown.contains("chain-key-value"), "{shown}");
    assert!(!shown.contains("checkpoint-key-value"), "{shown}");
    assert!(shown.contains("[REDACTED]"));
    let sink = builder.build().unwrap();
    let shown = format!("{sink:?}");
    assert!(!shown.contains(password), "{shown}");
    assert!(!shown.contains("127.0.0.1"), "{shown}");
    // Nothing listens on port 1: the error says so without the URL.
    let error = PostgresSink::builder(secret(&url))
        .retry_for(Duration::ZERO)
        .open()
        .await
        .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(!text.contains(password), "{text}");
    let bad = PostgresSink::builder(secret(&format!(
        "postgresql://u:{password}@host:notaport/db"
    )))
    .build()
    .unwrap_err();
    let text = format!("{bad} {bad:?}");
    assert!(!text.contains(password), "{text}");
    assert!(matches!(bad, PgError::InvalidConfig(_)));
}

/// The ids of the `test.event` records, in chain order.
fn test_event_ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["action"] == "test.event")
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A refused row's values (the server's `DETAIL`) stay out of the error's
/// `Display` and `Debug`.
#[tokio::test]
async fn database_errors_do_not_quote_row_values() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let row_value = "actor-value-that-must-not-be-printed";
    let source = admin
        .execute(
            "INSERT INTO audit_events (chain_id, seq, prev, hash, id, time, action, category, \
             outcome, actor, record) VALUES ('c', 0, 'not hex', 'not hex', gen_random_uuid(), \
             now(), 'a', 'c', 'o', $1, '{}')",
            &[&row_value],
        )
        .await
        .unwrap_err();
    let detail = source.as_db_error().unwrap().detail().unwrap_or_default();
    assert!(
        detail.contains(row_value),
        "the server quotes the row: {detail}"
    );
    let error = PgError::Database {
        operation: "insert events",
        driver: source,
    };
    assert_eq!(error.sqlstate(), Some("23514"));
    // Display, Debug, and every error of the source chain.
    let mut text = format!("{error} {error:?}");
    let mut cause = std::error::Error::source(&error);
    while let Some(e) = cause {
        text.push_str(&format!(" | {e} {e:?}"));
        cause = e.source();
    }
    assert!(!text.contains(row_value), "{text}");
    assert!(text.contains("audit_events"), "the message stays: {text}");
}

#[tokio::test]
async fn sslmode_require_is_not_served_in_plain_text() {
    let pg = local_server!();
    drop(migrated(&pg).await);
    let error = PostgresSink::builder(secret(&format!("{} sslmode=require", pg.admin_conn())))
        .retry_for(Duration::ZERO)
        .open()
        .await
        .unwrap_err();
    assert!(matches!(error, PgError::Database { .. }), "{error}");
    // The same server without the requirement works.
    PostgresSink::builder(secret(pg.admin_conn()))
        .open()
        .await
        .unwrap();
}

/// A loopback TCP proxy whose connections can all be cut at once.
struct CuttingProxy {
    port: u16,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let generation = Arc::new(tokio::sync::watch::channel(0u64).0);
        let cuts = Arc::clone(&generation);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            generation,
            task,
        }
    }

    /// Closes every open connection (new ones are accepted).
    fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_at_any_moment_lose_and_duplicate_nothing_acknowledged() {
    let pg = local_server!();
    drop(migrated(&pg).await);
    let port = pg.port();
    let proxy = CuttingProxy::start(port).await;
    let through_proxy = pg
        .admin_conn()
        .replace(&format!("port={port}"), &format!("port={}", proxy.port));
    let sink = PostgresSink::builder(secret(&through_proxy))
        .chain_id("cuts")
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
        .retry_for(Duration::from_secs(10))
        .open()
        .await
        .unwrap();
    let (auditor, guard) = AuditPipeline::builder()
        .capacity(100_000)
        .spawn(sink)
        .unwrap();
    let run = LoadRun::start(&auditor);
    // Cut every few milliseconds, at varying points of the transactions.
    for i in 0..150u64 {
        tokio::time::sleep(Duration::from_micros(3000 + (i * 7919) % 9000)).await;
        proxy.cut();
    }
    let (acknowledged, failed) = run.finish().await;
    let report = guard.shutdown(Duration::from_secs(30)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(failed, 0, "every batch succeeded within its retries");

    let admin = pg.admin().await;
    let records = verified_chain(&admin, "cuts", &ChainHasher::sha256()).await;
    assert_each_stored_once(&records, &acknowledged);
    eprintln!(
        "cuts: {} acknowledged, {} records",
        acknowledged.len(),
        records.len()
    );
}

/// A loopback proxy that forwards the PostgreSQL protocol and, when asked,
/// swallows the server's next `COMMIT` acknowledgement and cuts the
/// connection: the transaction is committed, the client never learns it.
struct AckLosingProxy {
    port: u16,
    swallow: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl AckLosingProxy {
    async fn start(upstream: u16) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let swallow = Arc::new(AtomicUsize::new(0));
        let acks = Arc::clone(&swallow);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let acks = Arc::clone(&acks);
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let upstream = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    });
                    // Server to client, message by message (type byte, then
                    // a length that counts itself): no SSL negotiation with
                    // NoTls, so every server message is typed.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 16 * 1024];
                    while let Ok(n) = server_read.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let mut start = 0;
                        let mut swallowed = false;
                        while buf.len() - start >= 5 {
                            let len =
                                u32::from_be_bytes(buf[start + 1..start + 5].try_into().unwrap())
                                    as usize;
                            let end = start + 1 + len;
                            if buf.len() < end {
                                break;
                            }
                            let message = &buf[start..end];
                            if message[0] == b'C'
                                && &message[5..] == b"COMMIT\0"
                                && acks
                                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                        n.checked_sub(1)
                                    })
                                    .is_ok()
                            {
                                swallowed = true;
                                break;
                            }
                            start = end;
                        }
                        // Forward the complete messages before the
                        // swallowed one in one write.
                        if client_write.write_all(&buf[..start]).await.is_err() || swallowed {
                            break;
                        }
                        buf.drain(..start);
                    }
                    upstream.abort();
                });
            }
        });
        Self {
            port,
            swallow,
            task,
        }
    }
}

impl Drop for AckLosingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_batch_committed_before_its_acknowledgement_was_lost_is_not_written_twice() {
    let pg = local_server!();
    let admin = migrated(&pg).await;
    let port = pg.port();
    let proxy = AckLosingProxy::start(port).await;
    let through_proxy = pg
        .admin_conn()
        .replace(&format!("port={port}"), &format!("port={}", proxy.port));
    let mut sink = PostgresSink::builder(secret(&through_proxy))
        .chain_id("lost-acks")
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .open()
        .await
        .unwrap();
    let mut expected = Vec::new();
    let mut next_seq = 0;
    for round in 0..6 {
        let batch: Vec<AuditEvent> = (0..5).map(|i| event(round * 10 + i)).collect();
        if round % 2 == 1 {
            proxy.swallow.store(1, Ordering::SeqCst);
        }
        let receipt = sink.write_batch(&batch).await.unwrap();
        assert_eq!(proxy.swallow.load(Ordering::SeqCst), 0, "the ack was lost");
        assert_eq!(receipt.first_seq, Some(next_seq), "round {round}");
        next_seq += batch.len() as u64;
        expected.extend(batch.iter().map(|e| e.id().to_string()));
    }
    sink.close().await.unwrap();
    let records = verified_chain(&admin, "lost-acks", &ChainHasher::sha256()).await;
    let ids = test_event_ids(&records);
    assert_eq!(ids, expected, "each event once, in order");
    assert_eq!(records.last().unwrap()["action"], "audit.stopped");
}

/// A `COMMIT` the sink gave up on (its timeout) may still complete on the
/// server after the sink reconnected and found nothing: the doubt must stay
/// until it is settled, or the batch is written a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_completes_after_the_retry_looked_is_not_written_twice() {
    let pg = server!();
    let admin = migrated(&pg).await;
    // The first commit that has a row in slow_once waits 1.5 s (longer
    // than the sink's io_timeout), then completes anyway: the server does
    // not notice that the client went away while it sleeps.
    admin
        .batch_execute(
            "CREATE TABLE slow_once (x int);
             CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
             DECLARE n bigint;
             BEGIN
                 WITH d AS (DELETE FROM slow_once RETURNING 1) SELECT count(*) INTO n FROM d;
                 IF n > 0 THEN
                     PERFORM pg_sleep(1.5);
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON audit_events
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
        )
        .await
        .unwrap();
    let mut sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("late-commit")
        .io_timeout(Duration::from_millis(400))
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .retry_for(Duration::from_secs(10))
        .outbox_relay(0)
        .open()
        .await
        .unwrap();
    let first: Vec<AuditEvent> = (0..3).map(event).collect();
    assert_eq!(sink.write_batch(&first).await.unwrap().first_seq, Some(0));
    admin
        .execute("INSERT INTO slow_once VALUES (1)", &[])
        .await
        .unwrap();
    let second: Vec<AuditEvent> = (10..13).map(event).collect();
    let receipt = sink.write_batch(&second).await.unwrap();
    assert_eq!(receipt.first_seq, Some(3));
    sink.close().await.unwrap();
    let records = verified_chain(&admin, "late-commit", &ChainHasher::sha256()).await;
    let ids = test_event_ids(&records);
    let expected: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|e| e.id().to_string())
        .collect();
    assert_eq!(ids, expected, "each event once, in order");
}

#[tokio::test]
async fn an_event_recorded_twice_is_stored_twice_and_fails_nothing() {
    // Event ids are not a constraint: an application that records the same
    // event twice (a clone, or through the outbox and the auditor) must not
    // make the other events of the batch fail.
    let pg = server!();
    let admin = migrated(&pg).await;
    let mut sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("twice")
        .build()
        .unwrap();
    let same = event(1);
    sink.write_batch(&[same.clone(), event(2)]).await.unwrap();
    let receipt = sink.write_batch(&[event(3), same.clone()]).await.unwrap();
    assert_eq!(receipt.first_seq, Some(2));
    let records = verified_chain(&admin, "twice", &ChainHasher::sha256()).await;
    assert_eq!(records.len(), 4);
    let id = same.id().to_string();
    assert_eq!(records.iter().filter(|r| r["id"] == id).count(), 2);
    sink.close().await.unwrap();
}

#[tokio::test]
async fn two_writers_on_one_chain_id_never_overwrite_or_lose_each_other() {
    // A misconfiguration (two instances given the same chain id): the unique
    // (chain_id, seq) refuses the second record at a seq, and the writer
    // retries after the other's records instead of reusing the seq.
    let pg = server!();
    let admin = migrated(&pg).await;
    let open = || {
        PostgresSink::builder(secret(pg.admin_conn()))
            .chain_id("shared")
            .build()
            .unwrap()
    };
    let (mut a, mut b) = (open(), open());
    let events: Vec<AuditEvent> = (0..6).map(event).collect();
    for (i, e) in events.iter().enumerate() {
        let sink = if i % 2 == 0 { &mut a } else { &mut b };
        sink.write_batch(std::slice::from_ref(e)).await.unwrap();
    }
    let records = verified_chain(&admin, "shared", &ChainHasher::sha256()).await;
    assert_eq!(records.len(), 6);
    for (record, e) in records.iter().zip(&events) {
        assert_eq!(record["id"], e.id().to_string());
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn record_in_refuses_an_event_too_large_for_the_outbox() {
    use guardrails_audit::sink::postgres::MAX_OUTBOX_RECORD_BYTES;

    let pg = server!();
    let mut admin = migrated(&pg).await;
    let tx = admin.transaction().await.unwrap();
    let too_large = |error: &PgError| match error {
        PgError::OutboxRecordTooLarge { size, max } => {
            assert_eq!(*max, MAX_OUTBOX_RECORD_BYTES);
            assert!(size > max, "{error}");
            assert!(!error.to_string().contains("s3cr3t"), "{error}");
            assert!(!format!("{error:?}").contains("s3cr3t"), "{error:?}");
        }
        other => panic!("{other:?}"),
    };
    // Too long already as canonical JSON: refused before it is sent.
    let blob = AuditEvent::new("test.big", Category::DataWrite)
        .with_detail("blob", "s3cr3t".repeat(MAX_OUTBOX_RECORD_BYTES / 6 + 1));
    too_large(&record_in(&tx, &blob).await.unwrap_err());
    // Short enough as canonical JSON, too long as the server measures it,
    // as the relay does (its text has a space after every `:` and `,`, its
    // `jsonb` takes more for numbers).
    let mut keys = AuditEvent::new("test.keys", Category::DataWrite).with_detail("s3cr3t", 1);
    for i in 0..6400 {
        keys = keys.with_detail(format!("k{i:04}"), 1);
    }
    let canonical = serde_json::to_string(&keys.to_json()).unwrap().len();
    assert!(canonical < MAX_OUTBOX_RECORD_BYTES, "{canonical}");
    too_large(&record_in(&tx, &keys).await.unwrap_err());
    // Nothing failed in the caller's transaction, which goes on.
    record_in(&tx, &event(1)).await.unwrap();
    tx.commit().await.unwrap();
    let actions: Vec<String> = admin
        .query("SELECT record->>'action' FROM audit_outbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(actions, ["test.event"]);
}

#[tokio::test]
async fn outbox_rows_too_large_are_rejected_unread_and_hold_up_nothing() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let before = AuditEvent::new("test.before", Category::DataWrite);
    record_in(&admin, &before).await.unwrap();
    // Rows the database took before migration 2 bounded them (here: with
    // its constraint dropped), written by hand, made on the server: two
    // rows of 20 MB of random text, and one of 4 MB that compresses to less
    // than the limit when stored.
    admin
        .batch_execute("ALTER TABLE audit_outbox DROP CONSTRAINT audit_outbox_record_size")
        .await
        .unwrap();
    let huge = AuditEvent::new("test.huge", Category::DataWrite)
        .to_json()
        .to_string();
    for blob in [
        "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 625000))",
        "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 625000))",
        "repeat('x', 4000000)",
    ] {
        admin
            .execute(
                &format!(
                    "INSERT INTO audit_outbox (record) SELECT jsonb_set($1::text::jsonb, \
                     '{{details}}', jsonb_build_object('blob', {blob}))"
                ),
                &[&huge],
            )
            .await
            .unwrap();
    }
    let huge_ids: Vec<i64> = admin
        .query("SELECT id FROM audit_outbox ORDER BY id OFFSET 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let after = AuditEvent::new("test.after", Category::DataWrite);
    record_in(&admin, &after).await.unwrap();
    // More medium rows than one transaction relays (1 MiB).
    let medium: Vec<AuditEvent> = (0..40)
        .map(|i| {
            AuditEvent::new("test.medium", Category::DataWrite)
                .with_detail("i", i)
                .with_detail("blob", "m".repeat(60_000))
        })
        .collect();
    for e in &medium {
        record_in(&admin, e).await.unwrap();
    }

    let mut sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("large")
        .io_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    sink.write_batch(&[event(1)]).await.unwrap();
    let left = count(&admin, "SELECT count(*) FROM audit_outbox").await;
    assert!(0 < left && left < 40, "{left} medium rows left");
    // The rest at the next ticks.
    for _ in 0..10 {
        sink.tick().await.unwrap();
    }
    assert_eq!(count(&admin, "SELECT count(*) FROM audit_outbox").await, 0);
    sink.close().await.unwrap();

    let records = verified_chain(&admin, "large", &ChainHasher::sha256()).await;
    assert_eq!(records.len(), 1 + 3 + 1 + 40 + 1 + 1);
    assert_eq!(records[0]["id"], before.id().to_string());
    for (record, id) in records[1..4].iter().zip(&huge_ids) {
        assert_eq!(record["action"], "audit.outbox_rejected");
        assert_eq!(record["reason"], "too_large");
        assert_eq!(record["details"]["outbox_id"], *id);
        assert!(record["details"].get("record").is_none(), "not read");
    }
    let sizes = |i: usize| {
        let details = &records[i]["details"];
        (
            details["stored_bytes"].as_u64(),
            details["text_bytes"].as_u64(),
        )
    };
    for random in [1, 2] {
        assert!(sizes(random).0.unwrap() > 1_000_000, "{:?}", sizes(random));
        assert_eq!(sizes(random).1, None, "not even measured");
    }
    let (stored, text) = sizes(3);
    assert!(
        stored.unwrap() < 65_536 && text.unwrap() > 4_000_000,
        "{stored:?} {text:?}"
    );
    assert_eq!(records[4]["id"], after.id().to_string());
    let event_at = records
        .iter()
        .position(|r| r["action"] == "test.event")
        .unwrap();
    assert_eq!(event_at, 5 + 40 - left as usize);
    let relayed: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "test.medium")
        .map(|r| &r["id"])
        .collect();
    let expected: Vec<Value> = medium.iter().map(|e| e.id().to_string().into()).collect();
    assert_eq!(relayed, expected.iter().collect::<Vec<_>>(), "in order");
    guardrails_audit::verify::verify_postgres(
        &admin,
        &guardrails_audit::verify::PgVerifyOptions::new().chain("large"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn outbox_rows_whose_columns_would_change_are_rejected_and_the_chain_verifies() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let requested = |action| {
        AuditEvent::new(action, Category::DataWrite).with_request(guardrails_audit::RequestInfo {
            status: Some(200),
            duration_us: Some(1),
            ..Default::default()
        })
    };
    // Written by hand: one as `record_in` writes it, one with a time of
    // seven fractional digits (the column keeps six), one with a status
    // beyond the `int4` column.
    let exact = requested("test.exact").to_json();
    let mut long_time = requested("test.time").to_json();
    long_time["time"] = long_time["time"]
        .as_str()
        .unwrap()
        .replace('Z', "7Z")
        .into();
    let mut big_status = requested("test.status").to_json();
    big_status["request"]["status"] = 3_000_000_000_u64.into();
    for record in [&exact, &long_time, &big_status] {
        admin
            .execute(
                "INSERT INTO audit_outbox (record) VALUES ($1::text::jsonb)",
                &[&record.to_string()],
            )
            .await
            .unwrap();
    }
    record_in(&admin, &requested("test.record_in"))
        .await
        .unwrap();
    let mut sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("exact")
        .build()
        .unwrap();
    sink.write_batch(&[event(1)]).await.unwrap();
    sink.close().await.unwrap();

    let report = guardrails_audit::verify::verify_postgres(
        &admin,
        &guardrails_audit::verify::PgVerifyOptions::new().chain("exact"),
    )
    .await
    .unwrap();
    assert_eq!(report.records(), 6, "the chain is whole");
    let records = verified_chain(&admin, "exact", &ChainHasher::sha256()).await;
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "test.exact",
            "audit.outbox_rejected",
            "audit.outbox_rejected",
            "test.record_in",
            "test.event",
            "audit.stopped"
        ]
    );
    assert_eq!(records[0]["id"], exact["id"]);
    for (rejected, record) in records[1..3].iter().zip([&long_time, &big_status]) {
        assert_eq!(rejected["reason"], "columns_not_exact");
        let kept: Value =
            serde_json::from_str(rejected["details"]["record"].as_str().unwrap()).unwrap();
        assert_eq!(kept["id"], record["id"], "kept as evidence");
    }
    assert_eq!(count(&admin, "SELECT count(*) FROM audit_outbox").await, 0);
}

/// With a TLS connector the sink never goes on in the clear, whoever says
/// the server has no TLS (here the server itself: it has none): the default
/// `sslmode=prefer` is taken as `require`. Only an explicit
/// `sslmode=disable` connects without TLS.
#[cfg(feature = "postgres-rustls")]
#[tokio::test]
async fn a_tls_connector_never_falls_back_to_the_clear() {
    let pg = server!();
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    let tls = guardrails_audit::sink::postgres::rustls_connector(None).unwrap();
    let refused = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
        .tls(tls.clone())
        .retry_for(Duration::from_millis(200))
        .open()
        .await;
    let error = refused.expect_err("connected in the clear");
    assert!(
        matches!(error, PgError::Database { .. }),
        "{error}: {error:?}"
    );
    let mut sink = PostgresSink::builder(SecretString::from(format!(
        "{} sslmode=disable",
        pg.admin_conn()
    )))
    .tls(tls)
    .open()
    .await
    .unwrap();
    sink.write_batch(&[AuditEvent::new("test.plain", Category::System)])
        .await
        .unwrap();
    sink.close().await.unwrap();
}

/// The `audit.` actions are the library's: `record_in` refuses them, and a
/// row written into the outbox by hand to pass for the sink's own clean
/// stop is relayed as a rejection, not as a stop.
#[tokio::test]
async fn outbox_events_in_the_librarys_namespace_are_refused() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let fake_stop = AuditEvent::new("audit.stopped", Category::System);
    let refused = record_in(&admin, &fake_stop).await;
    assert!(
        matches!(refused, Err(PgError::ReservedAction)),
        "{refused:?}"
    );
    admin
        .execute(
            "INSERT INTO audit_outbox (record) VALUES ($1::text::jsonb)",
            &[&fake_stop.to_json().to_string()],
        )
        .await
        .unwrap();
    let mut sink = PostgresSink::builder(secret(pg.admin_conn()))
        .chain_id("reserved")
        .build()
        .unwrap();
    sink.write_batch(&[event(1)]).await.unwrap();
    let records = verified_chain(&admin, "reserved", &ChainHasher::sha256()).await;
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["audit.outbox_rejected", "test.event"]);
    assert_eq!(records[0]["reason"], "reserved_action");
    // Not stopped: the sink is still running.
    let report = guardrails_audit::verify::verify_postgres(
        &admin,
        &guardrails_audit::verify::PgVerifyOptions::new().chain("reserved"),
    )
    .await
    .unwrap();
    assert!(!report.chains[0].cleanly_stopped, "{report:?}");
    sink.close().await.unwrap();
}

/// A copy of the chain's last record inserted at the next seq (an INSERT
/// the writer role may make) verifies with the key, but is not the record
/// of that seq: the sink does not take it for the head and build on it.
#[tokio::test]
async fn a_copied_record_is_not_taken_for_the_head() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let builder = || {
        PostgresSink::builder(secret(pg.admin_conn()))
            .chain_id("copied")
            .hmac_key(secret("chain-key-0123456789"))
    };
    let mut sink = builder().open().await.unwrap();
    sink.write_batch(&[event(0), event(1)]).await.unwrap();
    sink.close().await.unwrap();
    admin
        .execute(
            "INSERT INTO audit_events SELECT chain_id, seq + 1, prev, hash, gen_random_uuid(), \
               time, action, category, outcome, reason, actor, tenant, auth_method, \
               target_type, target_id, source_ip, request_id, method, route, status, \
               duration_us, record FROM audit_events WHERE chain_id = 'copied' \
             ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let refused = builder().open().await.unwrap_err();
    assert!(
        matches!(&refused, PgError::Incompatible(why) if why.contains("another chain or seq")),
        "{refused:?}"
    );
}

/// Since schema version 2 the database itself refuses an outbox row larger
/// than `record_in` writes (the application role may insert by hand), so
/// its cost falls on whoever writes it; a row at the limit goes in.
#[tokio::test]
async fn the_database_refuses_an_outbox_row_too_large() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let row = |blob: usize| {
        let mut record = AuditEvent::new("test.hand", Category::DataWrite).to_json();
        record["details"] = serde_json::json!({ "blob": "b".repeat(blob) });
        record.to_string()
    };
    let insert = |record: String| {
        let admin = &admin;
        async move {
            admin
                .execute(
                    "INSERT INTO audit_outbox (record) VALUES ($1::text::jsonb)",
                    &[&record],
                )
                .await
        }
    };
    let refused = insert(row(70_000)).await.unwrap_err();
    assert_eq!(
        refused.as_db_error().map(|e| e.constraint()),
        Some(Some("audit_outbox_record_size")),
        "{refused}"
    );
    insert(row(60_000)).await.unwrap();
    assert_eq!(count(&admin, "SELECT count(*) FROM audit_outbox").await, 1);
}

/// A row without a seq (the owner dropped the NOT NULL constraint) is not
/// taken for the chain's head, and reading the head does not panic; the
/// verifier names the row.
#[tokio::test]
async fn a_row_without_a_seq_is_not_the_head() {
    let pg = server!();
    let admin = migrated(&pg).await;
    let builder = || {
        PostgresSink::builder(secret(pg.admin_conn()))
            .chain_id("null-seq")
            .hmac_key(secret("chain-key-0123456789"))
    };
    let mut sink = builder().open().await.unwrap();
    sink.write_batch(&[event(0)]).await.unwrap();
    sink.close().await.unwrap();
    admin
        .batch_execute("ALTER TABLE audit_events ALTER COLUMN seq DROP NOT NULL")
        .await
        .unwrap();
    admin
        .execute(
            "INSERT INTO audit_events SELECT chain_id, NULL, prev, hash, gen_random_uuid(), \
               time, action, category, outcome, reason, actor, tenant, auth_method, \
               target_type, target_id, source_ip, request_id, method, route, status, \
               duration_us, record FROM audit_events WHERE chain_id = 'null-seq' AND seq = 0",
            &[],
        )
        .await
        .unwrap();
    let mut sink = builder().open().await.unwrap();
    sink.write_batch(&[event(1)]).await.unwrap();
    sink.close().await.unwrap();
    let error = guardrails_audit::verify::verify_postgres(
        &admin,
        &guardrails_audit::verify::PgVerifyOptions::new()
            .key(secret("chain-key-0123456789"))
            .chain("null-seq"),
    )
    .await
    .unwrap_err();
    let damage = error.damage().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(
        damage.kind,
        guardrails_audit::DamageKind::Inserted,
        "{damage}"
    );
}

/// With `migrations/chain_owners.sql` applied and one login role per
/// instance, a role appends only to the chains it registered: another
/// instance can neither add a record or a checkpoint to them nor make a
/// sink continue them; its own chain works as before. Registration takes
/// the registering role whatever the insert says.
#[tokio::test]
async fn a_chain_takes_rows_only_from_the_role_that_registered_it() {
    const CHAIN_OWNERS_SQL: &str = include_str!("../migrations/chain_owners.sql");
    let pg = server!();
    let admin = migrated(&pg).await;
    // Applied twice: the file can be run again.
    admin.batch_execute(CHAIN_OWNERS_SQL).await.unwrap();
    admin.batch_execute(CHAIN_OWNERS_SQL).await.unwrap();
    let url_a = pg.create_writer_role_named("audit_writer_a").await;
    let url_b = pg.create_writer_role_named("audit_writer_b").await;
    let key = || secret("owners-key-0123456789");
    let mut sink_a = PostgresSink::builder(secret(&url_a))
        .chain_id("owned-a")
        .hmac_key(key())
        .checkpoint_every(2, Duration::from_secs(3600))
        .open()
        .await
        .unwrap();
    sink_a.write_batch(&[event(0), event(1)]).await.unwrap();

    // B, holding the same chain key, appends a record that verifies and a
    // checkpoint copy to A's chain: refused.
    let b = common::pg::connect(&url_b).await.unwrap();
    // Also with a temporary table that would shadow audit_chains in the
    // check's search path, and under a chain id nobody registered yet.
    b.batch_execute(
        "CREATE TEMP TABLE audit_chains (chain_id text, registered_by text); \
         INSERT INTO pg_temp.audit_chains VALUES \
           ('owned-a', 'audit_writer_b'), ('not-yet-registered', 'audit_writer_b')",
    )
    .await
    .unwrap();
    for sql in [
        "INSERT INTO audit_events SELECT chain_id, seq + 1000, prev, hash, gen_random_uuid(), \
           time, action, category, outcome, reason, actor, tenant, auth_method, target_type, \
           target_id, source_ip, request_id, method, route, status, duration_us, record \
         FROM audit_events WHERE chain_id = 'owned-a' ORDER BY seq DESC LIMIT 1",
        "INSERT INTO audit_checkpoints (chain_id, seq, hash, record) \
         SELECT chain_id, seq + 1000, hash, record FROM audit_checkpoints \
         WHERE chain_id = 'owned-a' ORDER BY seq DESC LIMIT 1",
        "INSERT INTO audit_events SELECT 'not-yet-registered', seq, prev, hash, \
           gen_random_uuid(), time, action, category, outcome, reason, actor, tenant, \
           auth_method, target_type, target_id, source_ip, request_id, method, route, status, \
           duration_us, record FROM audit_events WHERE chain_id = 'owned-a' AND seq = 0",
    ] {
        let error = b.batch_execute(sql).await.unwrap_err();
        let db = error.as_db_error().unwrap();
        assert_eq!(db.code().code(), "42501", "{sql}: {}", db.message());
        assert!(db.message().contains("audit_writer_b"), "{}", db.message());
    }
    // A sink of B's given A's chain id: its batches are refused.
    let mut intruder = PostgresSink::builder(secret(&url_b))
        .chain_id("owned-a")
        .hmac_key(key())
        .retry_for(Duration::from_millis(300))
        .open()
        .await
        .unwrap();
    assert!(intruder.write_batch(&[event(9)]).await.is_err());
    // B's own chain, and A's, go on.
    let mut sink_b = PostgresSink::builder(secret(&url_b))
        .chain_id("owned-b")
        .hmac_key(key())
        .open()
        .await
        .unwrap();
    sink_b.write_batch(&[event(2)]).await.unwrap();
    sink_b.close().await.unwrap();
    sink_a.write_batch(&[event(3)]).await.unwrap();
    sink_a.close().await.unwrap();
    // Registration records who registered, not what the insert says.
    b.batch_execute(
        "DROP TABLE pg_temp.audit_chains; \
         INSERT INTO audit_chains (chain_id, alg, registered_by) \
         VALUES ('claimed', 'sha256', 'audit_writer_a')",
    )
    .await
    .unwrap();
    let owners: Vec<(String, String)> = admin
        .query(
            "SELECT chain_id, registered_by FROM audit_chains \
             WHERE chain_id IN ('owned-a', 'owned-b', 'claimed') ORDER BY chain_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        owners,
        [
            ("claimed".to_owned(), "audit_writer_b".to_owned()),
            ("owned-a".to_owned(), "audit_writer_a".to_owned()),
            ("owned-b".to_owned(), "audit_writer_b".to_owned()),
        ]
    );
    let report = guardrails_audit::verify::verify_postgres(
        &admin,
        &guardrails_audit::verify::PgVerifyOptions::new()
            .key(key())
            .chain("owned-a"),
    )
    .await
    .unwrap();
    assert_eq!(report.records(), 4, "two batches and the stop record");
}
