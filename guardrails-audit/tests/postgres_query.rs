//! The query API against a real server: filters, and pagination that
//! returns every matching record exactly once in `(time, id, chain_id, seq)`
//! order; whole chains, every row of them.
#![cfg(feature = "postgres")]

mod common;

use std::collections::HashSet;

use common::pg::{PgServer, as_owner};
use guardrails_audit::query::{
    AuditQuery, ChainCursor, Cursor, MAX_LIMIT, QueryError, StoredEvent, read_chain,
};
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::postgres::{PostgresSink, migrate};
use guardrails_audit::{Actor, AuditEvent, Category, DamageKind, VerifyError, VerifyOptions};
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

/// The order of the query API, in SQL.
const ORDER: &str = "time, id, chain_id COLLATE \"C\", seq";

/// The expected ids, straight from SQL.
async fn expected(admin: &Client, filter: &str) -> Vec<Uuid> {
    admin
        .query(
            &format!("SELECT id FROM audit_events WHERE {filter} ORDER BY {ORDER}"),
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
    let mut last: Option<(OffsetDateTime, Uuid, String, i64)> = None;
    loop {
        let page = query.fetch(admin).await.unwrap();
        pages += 1;
        for e in &page.records {
            // Strictly increasing (time, id, chain_id, seq): nothing twice,
            // nothing out of order.
            let position = (e.time, e.id, e.chain_id.clone(), e.seq);
            assert!(last.as_ref().is_none_or(|l| *l < position));
            last = Some(position);
            assert_eq!(e.record["id"].as_str().unwrap(), e.id.to_string());
            assert_eq!(e.record["chain"]["seq"].as_i64().unwrap(), e.seq);
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
        .query(
            &format!("SELECT time FROM audit_events ORDER BY {ORDER}"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (since, until) = (times[100], times[200]);
    let (ids, _) = all_pages(&admin, AuditQuery::new().since(since).until(until).limit(9)).await;
    let want: Vec<Uuid> = admin
        .query(
            &format!("SELECT id FROM audit_events WHERE time >= $1 AND time < $2 ORDER BY {ORDER}"),
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
        read_chain(&admin, "x", None, 0).await,
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
    // One chain in seq order, paged by (seq, id).
    let chain: String = admin
        .query_one(
            "SELECT chain_id FROM audit_chains ORDER BY chain_id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let first = read_chain(&admin, &chain, None, 4).await.unwrap();
    assert_eq!(first.records.len(), 4);
    let rest = read_chain(&admin, &chain, first.next, MAX_LIMIT)
        .await
        .unwrap();
    assert_eq!(rest.next, None);
    let seqs: Vec<i64> = first
        .records
        .iter()
        .chain(&rest.records)
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (0..11).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_event_recorded_twice_is_returned_twice_across_page_boundaries() {
    // Event ids are not unique: the same event twice in one chain (two
    // seqs) and once in another (same seq, another chain) share their
    // (time, id). A page that ends between them must not hide the others.
    let pg = server!();
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    let same = event(1);
    for (chain, batch) in [
        ("twice-a", vec![same.clone(), event(2), same.clone()]),
        ("twice-b", vec![same.clone()]),
    ] {
        let mut sink = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
            .chain_id(chain)
            .open()
            .await
            .unwrap();
        sink.write_batch(&batch).await.unwrap();
        sink.close().await.unwrap();
    }
    // 4 events and 2 stop records.
    let all = expected(&admin, "true").await;
    assert_eq!(all.len(), 6);
    assert_eq!(all.iter().filter(|id| **id == same.id()).count(), 3);
    for limit in 1..=7 {
        let (ids, _) = all_pages(&admin, AuditQuery::new().limit(limit)).await;
        assert_eq!(ids, all, "limit {limit}");
        let (ids, _) = all_pages(&admin, AuditQuery::new().tenant("globex").limit(limit)).await;
        assert_eq!(ids, vec![same.id(); 3], "limit {limit}");
    }
}

/// Every row of `chain` through `read_chain`, `limit` per page.
async fn read_whole_chain(admin: &Client, chain: &str, limit: u32) -> Vec<StoredEvent> {
    let mut rows = Vec::new();
    let mut after: Option<ChainCursor> = None;
    loop {
        let page = read_chain(admin, chain, after, limit).await.unwrap();
        assert!(page.records.len() <= limit as usize);
        rows.extend(page.records);
        match page.next {
            Some(cursor) => after = Some(cursor),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn read_chain_returns_every_row_the_owner_slipped_in() {
    // The table's owner dropped the unique (chain_id, seq) and the seq check,
    // then added a second row at seq 3 and a row at seq -2. An export reads
    // them all, whichever page boundary falls between the two at seq 3, and
    // the file verifier reports them.
    let pg = server!();
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    let mut sink = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
        .chain_id("export")
        .open()
        .await
        .unwrap();
    sink.write_batch(&(0..8).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
    sink.close().await.unwrap();
    admin
        .batch_execute(
            "ALTER TABLE audit_events DROP CONSTRAINT audit_events_chain_seq; \
             ALTER TABLE audit_events DROP CONSTRAINT audit_events_seq_check",
        )
        .await
        .unwrap();
    let copy = |seq: &str, id: &str, from_seq: i64| {
        format!(
            "INSERT INTO audit_events (chain_id, seq, prev, hash, id, time, action, category, \
               outcome, reason, actor, tenant, auth_method, target_type, target_id, source_ip, \
               request_id, method, route, status, duration_us, record) \
             SELECT chain_id, {seq}, prev, hash, '{id}', time, action, category, outcome, \
               reason, actor, tenant, auth_method, target_type, target_id, source_ip, \
               request_id, method, route, status, duration_us, \
               jsonb_set(jsonb_set(record, '{{id}}', '\"{id}\"'), '{{chain,seq}}', '{seq}') \
             FROM audit_events WHERE chain_id = $1 AND seq = {from_seq}"
        )
    };
    // After the genuine seq 3 in (seq, id) order.
    as_owner(
        &admin,
        &copy("3", "ffffffff-ffff-7fff-bfff-ffffffffffff", 3),
        "export",
    )
    .await;
    as_owner(
        &admin,
        &copy("-2", "00000000-0000-7000-8000-000000000000", 0),
        "export",
    )
    .await;
    // 8 events, the stop record and the two slipped in.
    let want: Vec<(i64, Uuid)> = admin
        .query(
            "SELECT seq, id FROM audit_events WHERE chain_id = $1 ORDER BY seq, id",
            &[&"export"],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(want.len(), 11);
    assert_eq!(want[0].0, -2);
    assert_eq!((want[4].0, want[5].0), (3, 3));
    for limit in 1..=12 {
        let rows = read_whole_chain(&admin, "export", limit).await;
        let got: Vec<(i64, Uuid)> = rows.iter().map(|e| (e.seq, e.id)).collect();
        assert_eq!(got, want, "limit {limit}");
        for e in &rows {
            // Each row as stored, never another seq.
            assert_eq!(e.record["chain"]["seq"].as_i64(), Some(e.seq));
        }
    }

    // As the CLI's export writes them: the verifier reports the rows.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    let write = |rows: &[StoredEvent]| {
        let mut text = Vec::new();
        for e in rows {
            text.extend(guardrails_audit::jcs::to_vec(&e.record).unwrap());
            text.push(b'\n');
        }
        std::fs::write(&path, text).unwrap();
        match guardrails_audit::verify(&path, &VerifyOptions::new()) {
            Err(VerifyError::Damaged(damage)) => damage,
            other => panic!("{other:?}"),
        }
    };
    let rows = read_whole_chain(&admin, "export", 4).await;
    // The row at seq -2 is not a record of the format (its seq is not one).
    assert_eq!(write(&rows).kind, DamageKind::Malformed);
    // Without it, the second row at seq 3 (another id under the same hash).
    let damage = write(&rows[1..]);
    assert_eq!((damage.kind, damage.seq), (DamageKind::Modified, Some(3)));
}
