//! The query API against a real server: filters, and pagination that
//! returns every matching record exactly once in `(time, id)` order.
#![cfg(feature = "postgres")]

mod common;

use std::collections::HashSet;

use common::pg::PgServer;
use guardrails_audit::query::{AuditQuery, Cursor, MAX_LIMIT, QueryError, read_chain};
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::postgres::{PostgresSink, migrate};
use guardrails_audit::{Actor, AuditEvent, Category};
use secrecy::SecretString;
use time::OffsetDateTime;
use tokio_postgres::Client;
use uuid::Uuid;

macro_rules! server {
    () => {
        match PgServer::start().await {
            Some(server) => server,
            None => return,
        }
    };
}

fn event(i: u64) -> AuditEvent {
    let tenant = ["acme", "globex", "initech"][(i % 3) as usize];
    let action = if i.is_multiple_of(4) {
        "invoice.delete"
    } else {
        "http.request"
    };
    AuditEvent::new(action, Category::DataWrite)
        .with_actor(Actor {
            subject: Some(format!("user-{}", i % 5)),
            tenant: Some(tenant.to_owned()),
            auth_method: Some("jwt"),
        })
        .with_detail("i", i)
}

/// Three writers (chains) interleaved, `n` events each.
async fn populate(pg: &PgServer, n: u64) -> Client {
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    let mut sinks = Vec::new();
    for _ in 0..3 {
        sinks.push(
            PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
                .open()
                .await
                .unwrap(),
        );
    }
    for round in 0..(n / 10) {
        for (w, sink) in sinks.iter_mut().enumerate() {
            let batch: Vec<_> = (0..10)
                .map(|k| event(round * 30 + w as u64 * 10 + k))
                .collect();
            sink.write_batch(&batch).await.unwrap();
        }
    }
    for sink in &mut sinks {
        sink.close().await.unwrap();
    }
    admin
}

/// The expected ids, straight from SQL.
async fn expected(admin: &Client, filter: &str) -> Vec<Uuid> {
    admin
        .query(
            &format!("SELECT id FROM audit_events WHERE {filter} ORDER BY time, id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn all_pages(admin: &Client, query: AuditQuery) -> (Vec<Uuid>, usize) {
    let mut query = query;
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut last: Option<(OffsetDateTime, Uuid)> = None;
    loop {
        let page = query.fetch(admin).await.unwrap();
        pages += 1;
        for e in &page.records {
            // Strictly increasing (time, id): nothing twice, nothing out of order.
            assert!(last.is_none_or(|l| l < (e.time, e.id)));
            last = Some((e.time, e.id));
            assert_eq!(e.record["id"].as_str().unwrap(), e.id.to_string());
            assert_eq!(e.record["chain"]["seq"].as_u64().unwrap(), e.seq);
            ids.push(e.id);
        }
        match page.next {
            Some(cursor) => {
                // The cursor survives its text form (an admin page's link).
                let cursor: Cursor = cursor.to_string().parse().unwrap();
                query = query.after(cursor);
            }
            None => break,
        }
    }
    (ids, pages)
}

#[tokio::test]
async fn pagination_returns_every_match_once_in_order() {
    let pg = server!();
    let admin = populate(&pg, 100).await;
    // 300 events and 3 stop records.
    let all = expected(&admin, "true").await;
    assert_eq!(all.len(), 303);
    let (ids, pages) = all_pages(&admin, AuditQuery::new().limit(7)).await;
    assert_eq!(ids, all);
    assert_eq!(pages, 303_usize.div_ceil(7));
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());

    let cases = [
        (AuditQuery::new().tenant("acme"), "tenant = 'acme'"),
        (
            AuditQuery::new().tenant("globex").action("invoice.delete"),
            "tenant = 'globex' AND action = 'invoice.delete'",
        ),
        (AuditQuery::new().actor("user-3"), "actor = 'user-3'"),
        (
            AuditQuery::new().actor("user-1").tenant("initech"),
            "actor = 'user-1' AND tenant = 'initech'",
        ),
        (
            AuditQuery::new().tenant("no such tenant"),
            "tenant = 'no such tenant'",
        ),
    ];
    for (query, filter) in cases {
        let want = expected(&admin, filter).await;
        for limit in [1, 13, MAX_LIMIT] {
            let (ids, _) = all_pages(&admin, query.clone().limit(limit)).await;
            assert_eq!(ids, want, "{filter}, limit {limit}");
        }
    }

    // A time window: [since, until) of the middle third.
    let times: Vec<OffsetDateTime> = admin
        .query("SELECT time FROM audit_events ORDER BY time, id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (since, until) = (times[100], times[200]);
    let (ids, _) = all_pages(&admin, AuditQuery::new().since(since).until(until).limit(9)).await;
    let want: Vec<Uuid> = admin
        .query(
            "SELECT id FROM audit_events WHERE time >= $1 AND time < $2 ORDER BY time, id",
            &[&since, &until],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids, want);
}

#[tokio::test]
async fn appends_during_paging_are_not_returned_twice() {
    let pg = server!();
    let admin = populate(&pg, 30).await;
    let mut query = AuditQuery::new().limit(10);
    let mut seen = Vec::new();
    let mut sink = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
        .open()
        .await
        .unwrap();
    loop {
        let page = query.fetch(&admin).await.unwrap();
        seen.extend(page.records.iter().map(|e| e.id));
        // New events arrive between pages; they come later in (time, id).
        sink.write_batch(&[event(1000)]).await.unwrap();
        match page.next {
            Some(cursor) => query = query.after(cursor),
            None => break,
        }
        if seen.len() > 500 {
            break;
        }
    }
    sink.close().await.unwrap();
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    assert!(seen.len() >= 93, "{}", seen.len());
}

#[tokio::test]
async fn actors_are_found_by_the_text_of_their_principal() {
    let pg = server!();
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    let sink = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
        .open()
        .await
        .unwrap();
    let (auditor, guard) = guardrails_audit::AuditPipeline::builder()
        .spawn(sink)
        .unwrap();
    // The auditor records these escaped (`CORP\x5Cxavier`, `ac\x85me`).
    let actor = Actor {
        subject: Some("CORP\\xavier".into()),
        tenant: Some("ac\u{85}me".into()),
        auth_method: Some("jwt"),
    };
    auditor
        .record_durable(AuditEvent::new("t.x", Category::DataRead).with_actor(actor))
        .await
        .unwrap();
    assert!(
        guard
            .shutdown(std::time::Duration::from_secs(10))
            .await
            .is_complete()
    );
    for query in [
        AuditQuery::new().actor("CORP\\xavier"),
        AuditQuery::new().tenant("ac\u{85}me"),
    ] {
        let page = query.fetch(&admin).await.unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].actor.as_deref(), Some("CORP\\x5Cxavier"));
        assert_eq!(page.records[0].tenant.as_deref(), Some("ac\\x85me"));
    }
}

#[tokio::test]
async fn limits_and_values_are_checked() {
    let pg = server!();
    let admin = populate(&pg, 10).await;
    for limit in [0, MAX_LIMIT + 1] {
        assert!(matches!(
            AuditQuery::new().limit(limit).fetch(&admin).await,
            Err(QueryError::InvalidLimit { .. })
        ));
    }
    assert!(matches!(
        read_chain(&admin, "x", 0, 0).await,
        Err(QueryError::InvalidLimit { .. })
    ));
    // A value is data, never SQL.
    let page = AuditQuery::new()
        .tenant("acme' OR '1'='1")
        .fetch(&admin)
        .await
        .unwrap();
    assert!(page.records.is_empty());
    let n: i64 = admin
        .query_one("SELECT count(*) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 33);
    // One chain in seq order, paged by seq.
    let chain: String = admin
        .query_one(
            "SELECT chain_id FROM audit_chains ORDER BY chain_id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let first = read_chain(&admin, &chain, 0, 4).await.unwrap();
    let rest = read_chain(&admin, &chain, 4, MAX_LIMIT).await.unwrap();
    let seqs: Vec<u64> = first.iter().chain(&rest).map(|e| e.seq).collect();
    assert_eq!(seqs, (0..11).collect::<Vec<_>>());
}
