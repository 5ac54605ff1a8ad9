//! guardrails-audit: the request-path enqueue, the hash-chained JSON-lines
//! sink, and the example app under load with auditing on and off.
//!
//! - `audit_enqueue`: `Auditor::record` (redaction check, observer, bounded
//!   queue) against a raw `tokio::sync::mpsc::try_send` of the same boxed
//!   event; a writer drains both queues all the time.
//! - `audit_sink`: batches of 512 events written by `JsonLinesSink` (SHA-256
//!   and HMAC-SHA-256 chains, one `fdatasync` per batch) against a raw
//!   baseline that writes the same events with `serde_json` and one
//!   `fdatasync`, without a chain. Throughput is in events per second.
//! - `audit_load`: the saas-api router (`GET /healthz`) served on loopback
//!   and driven by 16 keep-alive HTTP/1.1 connections, with
//!   `app::audited_router` (best effort, SHA-256 file) against
//!   `app::router`. Besides requests per second it prints the process CPU
//!   time per request, the audit writer thread's share of it, and the
//!   context switches per request.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{AuditEvent, AuditPipeline};
use http_body_util::{BodyExt, Empty};
use secrecy::SecretString;

use common::{NullSink, request_event};

fn enqueue(c: &mut Criterion) {
    let (auditor, guard) = AuditPipeline::builder()
        .capacity(1 << 20)
        .spawn(NullSink)
        .unwrap();
    // Two baselines on the same channel type: a receiver that parks on it
    // (every send pays a wake-up) and one that polls it (no wake-ups).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Box<AuditEvent>>(1 << 20);
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
    let (poll_tx, mut poll_rx) = tokio::sync::mpsc::channel::<Box<AuditEvent>>(1 << 20);
    let poll_drain = std::thread::spawn(move || {
        loop {
            match poll_rx.try_recv() {
                Ok(event) => drop(black_box(event)),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
    });
    let mut group = c.benchmark_group("audit_enqueue");
    group.bench_function("raw mpsc try_send, parked receiver", |b| {
        b.iter_batched(
            || Box::new(request_event(1)),
            |event| tx.try_send(event).is_ok(),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("raw mpsc try_send, polling receiver", |b| {
        b.iter_batched(
            || Box::new(request_event(1)),
            |event| poll_tx.try_send(event).is_ok(),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("Auditor::record", |b| {
        b.iter_batched(
            || request_event(1),
            |event| auditor.record(event).is_ok(),
            BatchSize::SmallInput,
        );
    });
    group.finish();
    drop(tx);
    drop(poll_tx);
    let _ = drain.join();
    let _ = poll_drain.join();
    let stats = auditor.stats();
    assert_eq!(
        stats.dropped_full, 0,
        "the queue must never be full in this bench"
    );
    drop(guard);
}

/// `POSIX_FADV_DONTNEED` of a synced range, as the JSON-lines sink does.
#[cfg(target_os = "linux")]
fn drop_cached(file: &std::fs::File, offset: u64, len: u64) {
    use rustix::fs::{Advice, fadvise};
    let _ = fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        Advice::DontNeed,
    );
}

#[cfg(not(target_os = "linux"))]
fn drop_cached(_file: &std::fs::File, _offset: u64, _len: u64) {}

fn sink(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("audit_sink");
    group.sample_size(20);
    for batch in [512usize, 4096] {
        let events: Vec<AuditEvent> = (0..batch as u64).map(request_event).collect();
        group.throughput(Throughput::Elements(batch as u64));

        let raw_path = dir.path().join(format!("raw-{batch}.jsonl"));
        let mut raw = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&raw_path)
            .unwrap();
        let mut buf = Vec::with_capacity(4 << 20);
        let mut written = 0u64;
        let mut dropped = 0u64;
        group.bench_function(format!("batch {batch}: raw serde_json + fdatasync"), |b| {
            b.iter(|| {
                use std::io::Write;
                buf.clear();
                for event in &events {
                    serde_json::to_writer(&mut buf, &event.to_json()).unwrap();
                    buf.push(b'\n');
                }
                raw.write_all(&buf).unwrap();
                raw.sync_data().unwrap();
                written += buf.len() as u64;
                // Like the sink: the synced whole 64 KiB blocks leave the
                // page cache.
                let end = written - written % (64 << 10);
                if end > dropped {
                    drop_cached(&raw, dropped, end - dropped);
                    dropped = end;
                }
            });
        });

        let key = || {
            Some(SecretString::from(
                "a bench key of at least thirty-two bytes",
            ))
        };
        let mut variants = vec![
            ("sha256 chain + fdatasync", None, true),
            ("hmac-sha256 chain + fdatasync", key(), true),
        ];
        if batch == 4096 {
            variants.push(("sha256 chain, no fsync (CPU only)", None, false));
            variants.push(("hmac-sha256 chain, no fsync (CPU only)", key(), false));
        }
        for (name, key, fsync) in variants {
            let path = dir
                .path()
                .join(format!("{batch}-{}-{fsync}.jsonl", key.is_some()));
            let mut sink = JsonLinesSink::builder(&path)
                .maybe_hmac_key(key)
                .fsync(fsync)
                .checkpoint_every(1_000_000, Duration::from_secs(3600))
                .open()
                .unwrap();
            group.bench_function(format!("batch {batch}: {name}"), |b| {
                b.iter(|| runtime.block_on(sink.write_batch(&events)).unwrap());
            });
        }
    }
    group.finish();
}

/// Drives `router` on loopback with `connections` keep-alive connections;
/// returns the time for `requests` requests.
async fn drive(addr: std::net::SocketAddr, connections: usize, requests: u64) -> Duration {
    let per = requests / connections as u64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let io = hyper_util::rt::TokioIo::new(stream);
                let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(conn);
                for _ in 0..per {
                    let req = http::Request::get("/healthz")
                        .header("host", "bench")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let res = send.send_request(req).await.unwrap();
                    assert_eq!(res.status(), 200);
                    black_box(res.into_body().collect().await.unwrap());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

fn load(c: &mut Criterion) {
    const REQUESTS: u64 = 4_000;
    const CONNECTIONS: usize = 16;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("audit_load");
    group.throughput(Throughput::Elements(REQUESTS));
    group.sample_size(10);
    let mut servers = Vec::new();
    for audited in [false, true] {
        let (addr, guard) = runtime.block_on(async {
            let store = saas_api::invoices::Store::default();
            let auth = saas_api::auth::development_layer().unwrap();
            let (router, guard) = if audited {
                let sink = JsonLinesSink::builder(dir.path().join("load.jsonl"))
                    .open()
                    .unwrap();
                let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
                (
                    saas_api::app::audited_router(store, auditor, auth),
                    Some(guard),
                )
            } else {
                (saas_api::app::router(store, auth), None)
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .await
                .unwrap();
            });
            (addr, guard)
        });
        let name = if audited {
            "audited (best effort, sha256 file)"
        } else {
            "no audit"
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += runtime.block_on(drive(addr, CONNECTIONS, REQUESTS));
                }
                total
            });
        });
        servers.push((addr, guard));
    }
    group.finish();

    // The machine is shared: alternate the two servers round by round so
    // both see the same background load, and report the ratio of medians.
    // Also the process CPU time per request (client, server and writer
    // together), which background load disturbs less than wall time.
    const ROUNDS: usize = 15;
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut cpu = [0.0f64; 2];
    let mut writer_cpu = [0.0f64; 2];
    let mut switches = [0u64; 2];
    for _ in 0..ROUNDS {
        for (i, (addr, _)) in servers.iter().enumerate() {
            let before = process_cpu_seconds();
            let (writer_before, switches_before) = thread_stats();
            let elapsed = runtime.block_on(drive(*addr, CONNECTIONS, REQUESTS));
            // Let the writer finish the batches of this round.
            std::thread::sleep(Duration::from_millis(20));
            cpu[i] += process_cpu_seconds() - before;
            let (writer_after, switches_after) = thread_stats();
            writer_cpu[i] += writer_after - writer_before;
            switches[i] += switches_after.saturating_sub(switches_before);
            rates[i].push(REQUESTS as f64 / elapsed.as_secs_f64());
        }
    }
    let per_request = |c: f64| c / (ROUNDS as f64 * REQUESTS as f64) * 1e6;
    if cpu[0] > 0.0 {
        eprintln!(
            "audit_load CPU per request (client + server + writer): no audit {:.1} µs, audited {:.1} µs, ratio {:.3}",
            per_request(cpu[0]),
            per_request(cpu[1]),
            cpu[0] / cpu[1]
        );
    }
    if cpu[0] > 0.0 {
        eprintln!(
            "audit_load per request: audit writer thread CPU {:.2} µs; context switches (all threads) no audit {:.3}, audited {:.3}",
            per_request(writer_cpu[1]),
            switches[0] as f64 / (ROUNDS as f64 * REQUESTS as f64),
            switches[1] as f64 / (ROUNDS as f64 * REQUESTS as f64),
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let off = median(&mut rates[0]);
    let on = median(&mut rates[1]);
    eprintln!(
        "audit_load interleaved ({ROUNDS} rounds of {REQUESTS} requests, {CONNECTIONS} connections): \
         no audit {off:.0} req/s, audited {on:.0} req/s, ratio {:.3}",
        on / off
    );
    for (_, guard) in servers {
        if let Some(guard) = guard {
            let report = runtime.block_on(guard.shutdown(Duration::from_secs(30)));
            assert!(report.is_complete(), "{report:?}");
        }
    }
}

/// User + system CPU seconds of this process (Linux; 0 elsewhere).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses).
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

/// CPU seconds of the audit writer threads, and the context switches of all
/// threads of this process (Linux; zeros elsewhere).
fn thread_stats() -> (f64, u64) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0.0, 0);
    };
    let (mut writer, mut switches) = (0.0, 0);
    for task in tasks.flatten() {
        let path = task.path();
        if let Ok(stat) = std::fs::read_to_string(path.join("stat"))
            && stat.contains("(guardrails-audi")
            && let Some(rest) = stat.rsplit(')').next()
        {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = fields
                .get(11..13)
                .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
                .unwrap_or(0.0);
            writer += ticks / 100.0;
        }
        if let Ok(status) = std::fs::read_to_string(path.join("status")) {
            for line in status.lines() {
                if let Some(n) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    switches += n.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    (writer, switches)
}

criterion_group!(benches, enqueue, sink, load);
criterion_main!(benches);
