//! The audit layer's cost per request, in instructions, for callgrind.
//!
//! Serves `GET /healthz` (or the protected invoice list) of the saas-api
//! router in process, without sockets, `N` times on a single-threaded runtime:
//! `app::audited_router` (best effort, SHA-256 JSON-lines file with an fsync
//! per batch, as the app runs it), `audited-none` (the same with every route
//! at audit level `None`: the layer without events) or `app::router` (no
//! audit).
//!
//! ```text
//! cargo build --release -p guardrails-benches --example audit-request-path
//! valgrind --tool=callgrind --separate-threads=yes \
//!     target/release/examples/audit-request-path audited 20000 [public|protected] valgrind
//! target/release/examples/audit-request-path audited 200000
//! ```
//!
//! The main thread's instruction count is the request path (router, guards,
//! handler, and with `audited` the audit layer); the thread named
//! `guardrails-audit-writer` is the writer (canonical JSON, SHA-256, write).
//! The difference of the main threads' counts between `audited` and `plain`
//! runs, divided by `N`, is the audit layer's request-path cost; see
//! `benches/README.md`. Every 1000 requests the loop waits for the writer
//! to take the queued events. Without the last argument `valgrind`, the
//! program prints the CPU time per request of the main thread and of the
//! writer thread (Linux `schedstat`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use guardrails_audit::AuditPipeline;
use guardrails_audit::sink::file::JsonLinesSink;
use http_body_util::BodyExt;
use tower::ServiceExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next();
    let (audited, events) = match mode.as_deref() {
        Some("audited") => (true, true),
        Some("audited-none") => (true, false),
        Some("plain") => (false, false),
        _ => {
            eprintln!(
                "usage: audit-request-path audited|audited-none|plain [N] [public|protected] [valgrind]"
            );
            std::process::exit(2);
        }
    };
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let protected = args.next().as_deref() == Some("protected");
    let valgrind = args.next().as_deref() == Some("valgrind");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let (start, end) = runtime.block_on(async {
        let store = saas_api::invoices::Store::default();
        let auth = saas_api::auth::development_layer().expect("development auth layer");
        let (router, pipeline) = if audited {
            let sink = JsonLinesSink::builder(dir.path().join("audit.jsonl"))
                .open()
                .expect("audit file");
            let (auditor, guard) = AuditPipeline::builder().spawn(sink).expect("writer");
            let mut layer = saas_api::audit::layer(auditor.clone());
            if !events {
                layer = layer.default_level(guardrails_audit::Level::None);
            }
            (
                saas_api::app::router_with_audit_layer(store, layer, auth),
                Some((auditor, guard)),
            )
        } else {
            (saas_api::app::router(store, auth), None)
        };
        // As `axum::serve` does: handlers become routes once, not per request.
        let router = router.with_state::<()>(());
        let token = saas_api::auth::development_token(&saas_api::auth::TokenArgs {
            sub: "alice".into(),
            tenant: "acme".into(),
            scope: "invoices:read".into(),
            roles: Vec::new(),
            ttl: 3600,
        })
        .expect("token");
        let bearer = format!("Bearer {token}");
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let start = thread_cpu_ns();
        for i in 0..n {
            if i % 1000 == 999
                && let Some((auditor, _)) = &pipeline
            {
                // Batches of about a thousand events, as under a load of
                // 70 000 requests/s with the writer's 10 ms linger; and the
                // queue never fills (in process, requests come faster than
                // one writer thread takes them, and valgrind runs one
                // thread at a time).
                auditor.flush().await.expect("flush");
            }
            let mut request = if protected {
                http::Request::get("/v1/tenants/acme/invoices")
                    .header("authorization", bearer.as_str())
                    .body(Body::empty())
            } else {
                http::Request::get("/healthz").body(Body::empty())
            }
            .expect("request");
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = router.clone().oneshot(request).await.expect("response");
            assert_eq!(response.status(), 200);
            std::hint::black_box(response.into_body().collect().await.expect("body"));
        }
        if let Some((auditor, _)) = &pipeline {
            auditor.flush().await.expect("flush");
        }
        let end = thread_cpu_ns();
        if let Some((_, guard)) = pipeline {
            let report = guard.shutdown(Duration::from_secs(60)).await;
            assert!(report.is_complete(), "{report:?}");
            assert_eq!(report.dropped, 0, "no event dropped");
            let expected = if events { n } else { 0 };
            assert_eq!(report.written, expected, "one event per request, or none");
        }
        (start, end)
    });
    if !valgrind {
        let (main, writer) = (end.0 - start.0, end.1 - start.1);
        println!(
            "{} {}: main thread {:.0} ns/request, writer thread {:.0} ns/request",
            mode.as_deref().unwrap_or_default(),
            if protected { "protected" } else { "public" },
            main as f64 / n as f64,
            writer as f64 / n as f64
        );
    }
}

/// CPU nanoseconds of this (main) thread and of the audit writer thread,
/// from `/proc/self/task/*/schedstat` (zeros where it does not exist).
fn thread_cpu_ns() -> (u64, u64) {
    let run_time = |path: std::path::PathBuf| -> u64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let main = run_time("/proc/thread-self/schedstat".into());
    let mut writer = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.starts_with("guardrails-audi") {
                writer += run_time(task.path().join("schedstat"));
            }
        }
    }
    (main, writer)
}
