//! guardrails-audit with the PostgreSQL sink: sustained events/s into the
//! database, and the request-path enqueue cost in best-effort mode.
//!
//! Needs a server: `GUARDRAILS_BENCH_POSTGRES_URL` (a role that may create
//! tables in its database). Without it the bench prints why and skips;
//! `benches/load/postgres.sh` starts a throwaway cluster and runs it.
//!
//! - `audit_postgres_throughput`: `ROUNDS` rounds (env
//!   `AUDIT_PG_ROUNDS`, default 5), alternating, of `EVENTS` events (env
//!   `AUDIT_PG_EVENTS`, default 50 000):
//!   - *pipeline*: `Auditor::record` (best effort) into an `AuditPipeline`
//!     with a `PostgresSink` (SHA-256 chain; one transaction and one commit
//!     per batch, batches up to 4096), timed until `shutdown` returns, i.e.
//!     every event committed;
//!   - *raw insert*: the same events, encoded before the clock starts (no
//!     hashing, no chain), inserted by one multi-row `INSERT … SELECT FROM
//!     unnest(…)` per 4096 rows, each in its own transaction, into a copy of
//!     `audit_events` with the same indexes and CHECKs (no triggers);
//!   - *raw copy*: the same pre-encoded rows through one binary `COPY … FROM
//!     STDIN` per 4096 rows (what the sink sends, without the chain), each in
//!     its own transaction, into the same table.
//!
//!   All with `synchronous_commit = on` (checked). The median rate of each
//!   and the medians of the per-round ratios (pipeline to raw insert,
//!   pipeline to raw copy) are printed.
//! - `audit_postgres_enqueue` (criterion): `Auditor::record` with the
//!   PostgreSQL sink behind the queue, in bursts of 256 with the queue
//!   drained between bursts (untimed), against a raw
//!   `tokio::sync::mpsc::try_send` of the same boxed event to a parked
//!   receiver.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use guardrails_audit::sink::postgres::{PostgresSink, migrate};
use guardrails_audit::{AuditEvent, AuditPipeline, Auditor};
use secrecy::SecretString;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls};

use common::request_event;

const URL_VAR: &str = "GUARDRAILS_BENCH_POSTGRES_URL";
const BATCH: usize = 4096;
const BURST: u64 = 256;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("{URL_VAR}: cannot connect: {e}"));
    tokio::spawn(connection);
    client
}

/// The pipeline with a PostgreSQL sink.
fn pipeline(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    capacity: usize,
) -> (Auditor, guardrails_audit::AuditGuard) {
    let sink = runtime
        .block_on(
            PostgresSink::builder(SecretString::from(url.to_owned()))
                .instance("bench")
                .open(),
        )
        .unwrap();
    AuditPipeline::builder()
        .capacity(capacity)
        .max_batch(BATCH)
        .spawn(sink)
        .unwrap()
}

/// Records `events` events best effort, never letting the queue overflow,
/// and returns the time until every one is committed.
fn run_pipeline(runtime: &tokio::runtime::Runtime, url: &str, events: u64) -> Duration {
    const CAPACITY: usize = 1 << 16;
    let (auditor, guard) = pipeline(runtime, url, CAPACITY);
    let batch: Vec<AuditEvent> = (0..events).map(request_event).collect();
    let started = Instant::now();
    for event in batch {
        while auditor.stats().pending >= (CAPACITY - 1) as u64 {
            std::thread::sleep(Duration::from_micros(100));
        }
        auditor.record(event).unwrap();
    }
    let report = runtime.block_on(guard.shutdown(Duration::from_secs(300)));
    let elapsed = started.elapsed();
    assert!(report.is_complete(), "{report:?}");
    let stats = auditor.stats();
    assert_eq!(stats.dropped_full + stats.failed, 0, "{stats:?}");
    elapsed
}

/// The raw rows of `events` events, encoded up front: every column as text
/// (for the `unnest` insert), and the uuid and timestamptz columns also
/// typed (for the binary `COPY`; `U` is the event's own id type).
struct RawRows<U, T> {
    columns: Vec<Vec<Option<String>>>,
    seq: Vec<i64>,
    status: Vec<Option<i32>>,
    duration: Vec<Option<i64>>,
    id: Vec<U>,
    time: Vec<T>,
}

/// A binary `timestamptz`: microseconds since 2000-01-01 UTC.
#[derive(Debug)]
struct PgTimestamp(i64);

impl ToSql for PgTimestamp {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0.to_be_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    to_sql_checked!();
}

/// JSON text as a binary `jsonb` value (version 1, then the text).
#[derive(Debug)]
struct JsonbText<'a>(&'a str);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

const TEXT_COLUMNS: &str = "prev, hash, id, time, action, category, outcome, reason, actor, tenant, \
     auth_method, target_type, target_id, source_ip, request_id, method, route, record";

fn raw_rows(events: u64, round: usize) -> RawRows<impl ToSql + Sync + use<>, PgTimestamp> {
    let mut columns = vec![Vec::new(); 18];
    let mut seq = Vec::new();
    let mut id = Vec::new();
    let mut time = Vec::new();
    // Microseconds since 2000-01-01, PostgreSQL's timestamp epoch.
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
        - 946_684_800_000_000;
    let mut status = Vec::new();
    let mut duration = Vec::new();
    let zeros = "0".repeat(64);
    for i in 0..events {
        let event = request_event(i);
        id.push(event.id());
        time.push(PgTimestamp(now_micros + i as i64));
        let json = event.to_json();
        let text = |p: &str| json.pointer(p).and_then(|v| v.as_str()).map(str::to_owned);
        let values = [
            Some(zeros.clone()),
            Some(zeros.clone()),
            text("/id"),
            text("/time"),
            text("/action"),
            text("/category"),
            text("/outcome"),
            text("/reason"),
            text("/actor/subject"),
            text("/actor/tenant"),
            text("/actor/auth_method"),
            text("/target/type"),
            text("/target/id"),
            text("/source/ip"),
            text("/request/id"),
            text("/request/method"),
            text("/request/route"),
            Some(json.to_string()),
        ];
        for (column, value) in columns.iter_mut().zip(values) {
            column.push(value);
        }
        seq.push((round as i64) << 32 | i as i64);
        status.push(Some(200));
        duration.push(Some(187));
    }
    RawRows {
        columns,
        seq,
        status,
        duration,
        id,
        time,
    }
}

async fn run_raw<U, T>(client: &mut Client, rows: &RawRows<U, T>) -> Duration {
    let insert = client
        .prepare(&format!(
            "INSERT INTO bench_raw_events (chain_id, seq, {TEXT_COLUMNS}, status, duration_us) \
             SELECT 'raw', s, prev, hash, id::uuid, time::timestamptz, action, category, outcome, \
                    reason, actor, tenant, auth_method, target_type, target_id, source_ip, \
                    request_id, method, route, record::jsonb, st, du \
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                         $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], \
                         $18::text[], $19::text[], $20::int[], $21::bigint[]) \
                  AS t(s, prev, hash, id, time, action, category, outcome, reason, actor, tenant, \
                       auth_method, target_type, target_id, source_ip, request_id, method, route, \
                       record, st, du)"
        ))
        .await
        .unwrap();
    let started = Instant::now();
    let n = rows.seq.len();
    let mut from = 0;
    while from < n {
        let to = (from + BATCH).min(n);
        let cols: Vec<&[Option<String>]> = rows.columns.iter().map(|c| &c[from..to]).collect();
        let seq = &rows.seq[from..to];
        let status = &rows.status[from..to];
        let duration = &rows.duration[from..to];
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&seq];
        for c in &cols {
            params.push(c);
        }
        params.push(&status);
        params.push(&duration);
        let tx = client.transaction().await.unwrap();
        tx.execute(&insert, &params).await.unwrap();
        tx.commit().await.unwrap();
        from = to;
    }
    started.elapsed()
}

/// The same rows through one `COPY … FROM STDIN (FORMAT binary)` per 4096
/// rows, each in its own transaction (what the sink does, without the
/// chain).
async fn run_raw_copy<U: ToSql + Sync, T: ToSql + Sync>(
    client: &mut Client,
    rows: &RawRows<U, T>,
    round: usize,
) -> Duration {
    let copy = client
        .prepare(&format!(
            "COPY bench_raw_events (chain_id, seq, {TEXT_COLUMNS}, status, duration_us) \
             FROM STDIN (FORMAT binary)"
        ))
        .await
        .unwrap();
    let mut types = vec![Type::TEXT, Type::INT8, Type::TEXT, Type::TEXT, Type::UUID];
    types.push(Type::TIMESTAMPTZ);
    types.extend(std::iter::repeat_n(Type::TEXT, 13));
    types.extend([Type::JSONB, Type::INT4, Type::INT8]);
    let chain = format!("raw-copy-{round}");
    let started = Instant::now();
    let n = rows.seq.len();
    let mut from = 0;
    while from < n {
        let to = (from + BATCH).min(n);
        let tx = client.transaction().await.unwrap();
        let sink = tx.copy_in::<_, bytes::Bytes>(&copy).await.unwrap();
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
        for i in from..to {
            let text: Vec<Option<&str>> = rows.columns[4..17]
                .iter()
                .map(|c| c[i].as_deref())
                .collect();
            let record = JsonbText(rows.columns[17][i].as_deref().unwrap_or("{}"));
            let mut values: Vec<&(dyn ToSql + Sync)> = vec![
                &chain,
                &rows.seq[i],
                &rows.columns[0][i],
                &rows.columns[1][i],
                &rows.id[i],
                &rows.time[i],
            ];
            for t in &text {
                values.push(t);
            }
            values.extend([
                &record as &(dyn ToSql + Sync),
                &rows.status[i],
                &rows.duration[i],
            ]);
            writer.as_mut().write(&values).await.unwrap();
        }
        writer.finish().await.unwrap();
        tx.commit().await.unwrap();
        from = to;
    }
    started.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn throughput(runtime: &tokio::runtime::Runtime, url: &str) {
    let rounds = env_number("AUDIT_PG_ROUNDS", 5) as usize;
    let events = env_number("AUDIT_PG_EVENTS", 50_000);
    let mut client = runtime.block_on(connect(url));
    runtime.block_on(async {
        migrate(&mut client).await.unwrap();
        let sync: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(sync, "on", "the bench needs synchronous_commit = on");
        client
            .batch_execute(
                "DROP TABLE IF EXISTS bench_raw_events; \
                 CREATE TABLE bench_raw_events (LIKE audit_events INCLUDING DEFAULTS \
                   INCLUDING CONSTRAINTS INCLUDING INDEXES);",
            )
            .await
            .unwrap();
    });
    let mut pipeline_rates = Vec::new();
    let mut raw_rates = Vec::new();
    let mut copy_rates = Vec::new();
    let mut ratios = Vec::new();
    let mut copy_ratios = Vec::new();
    for round in 0..rounds {
        let rows = raw_rows(events, round);
        let raw = runtime.block_on(run_raw(&mut client, &rows));
        let copied = runtime.block_on(run_raw_copy(&mut client, &rows, round));
        drop(rows);
        let piped = run_pipeline(runtime, url, events);
        let raw_rate = events as f64 / raw.as_secs_f64();
        let copy_rate = events as f64 / copied.as_secs_f64();
        let piped_rate = events as f64 / piped.as_secs_f64();
        eprintln!(
            "audit_postgres_throughput round {round}: raw insert {raw_rate:.0} events/s, \
             raw copy {copy_rate:.0} events/s, pipeline + PostgresSink {piped_rate:.0} events/s, \
             ratio to insert {:.3}, to copy {:.3}",
            piped_rate / raw_rate,
            piped_rate / copy_rate
        );
        raw_rates.push(raw_rate);
        copy_rates.push(copy_rate);
        pipeline_rates.push(piped_rate);
        ratios.push(piped_rate / raw_rate);
        copy_ratios.push(piped_rate / copy_rate);
    }
    eprintln!(
        "audit_postgres_throughput ({rounds} rounds of {events} events, synchronous_commit = on, \
         batches up to {BATCH}): median raw insert {:.0} events/s, median raw copy {:.0} \
         events/s, median pipeline {:.0} events/s, median ratio to insert {:.3}, to copy {:.3}",
        median(&mut raw_rates),
        median(&mut copy_rates),
        median(&mut pipeline_rates),
        median(&mut ratios),
        median(&mut copy_ratios)
    );
    runtime.block_on(async {
        client
            .batch_execute("DROP TABLE bench_raw_events")
            .await
            .unwrap();
    });
}

fn enqueue(c: &mut Criterion, runtime: &tokio::runtime::Runtime, url: &str) {
    const CAPACITY: usize = 1 << 16;
    let (auditor, guard) = pipeline(runtime, url, CAPACITY);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Box<AuditEvent>>(CAPACITY);
    let drain = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async move {
                while let Some(event) = rx.recv().await {
                    black_box(event);
                }
            });
    });
    let mut group = c.benchmark_group("audit_postgres_enqueue");
    // Every recorded event is written to the database: keep the measured
    // time short, so that the writer can keep up between bursts.
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(100));
    group.bench_function("raw mpsc try_send, parked receiver", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BURST);
                let events: Vec<_> = (0..n).map(|i| Box::new(request_event(i))).collect();
                let started = Instant::now();
                for event in events {
                    black_box(tx.try_send(event).is_ok());
                }
                total += started.elapsed();
                left -= n;
            }
            total
        });
    });
    group.bench_function("Auditor::record, PostgreSQL sink", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BURST);
                while auditor.stats().pending > (CAPACITY / 4) as u64 {
                    std::thread::sleep(Duration::from_micros(200));
                }
                let events: Vec<_> = (0..n).map(request_event).collect();
                let started = Instant::now();
                for event in events {
                    black_box(auditor.record(event).is_ok());
                }
                total += started.elapsed();
                left -= n;
            }
            total
        });
    });
    group.finish();
    drop(tx);
    let _ = drain.join();
    let report = runtime.block_on(guard.shutdown(Duration::from_secs(300)));
    assert!(report.is_complete(), "{report:?}");
    let stats = auditor.stats();
    assert_eq!(
        stats.dropped_full, 0,
        "the queue must never be full: {stats:?}"
    );
    eprintln!(
        "audit_postgres_enqueue: {} events recorded and committed",
        stats.written
    );
}

fn main() {
    let Ok(url) = std::env::var(URL_VAR) else {
        eprintln!(
            "audit_postgres: skipped, {URL_VAR} is not set (benches/load/postgres.sh starts a \
             throwaway PostgreSQL cluster and runs this bench against it)"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    throughput(&runtime, &url);
    let mut c = Criterion::default().configure_from_args();
    enqueue(&mut c, &runtime, &url);
    c.final_summary();
}
