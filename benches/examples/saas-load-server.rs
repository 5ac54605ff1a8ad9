//! The saas-api server for load runs, with the audit trail on or off.
//!
//! ```text
//! cargo build --release -p guardrails-benches --example saas-load-server
//! SAAS_SERVER__ADDR=127.0.0.1:0 SAAS_AUDIT__PATH=/tmp/a.jsonl \
//!     target/release/examples/saas-load-server audited|plain
//! target/release/examples/saas-load-server audited-none|audited-null
//! target/release/examples/saas-load-server inline|thread NANOSECONDS
//! ```
//!
//! `audited` starts exactly what the `saas-api` binary serves: configuration
//! from the `SAAS_*` environment (development by default), the Prometheus
//! recorder, the audit trail of `saas_api::audit::start` (best effort, DELETE
//! strict, SHA-256 JSON-lines file with an fsync per batch, or HMAC with
//! `SAAS_AUDIT__HMAC_KEY`), authentication, and `app::audited_router`. `plain`
//! serves `app::router`, the same routes and guards without the audit layer
//! and writer. The app itself has no switch to turn auditing off; this
//! program exists only for the load scripts in `benches/load/`.
//!
//! Two modes take `audited` apart: `audited-none` is `audited` with every
//! route at audit level `None` (the layer and an idle writer, no event), and
//! `audited-null` builds and queues every event like `audited`, but its
//! writer discards them (no canonical JSON, hash or file).
//!
//! `inline` and `thread` calibrate the load run: what any added CPU work
//! costs in requests/s on this machine, whatever the work is. `inline N`
//! serves `app::router` behind one more layer that spins the CPU for N ns
//! of every request on the worker (`inline 0` is the layer alone).
//! `thread N` instead sends a 64-byte message per request (`try_send`, as
//! best-effort auditing does) to a thread of its own that takes them in
//! batches, spins N ns per message and then rests 10 ms (the audit
//! writer's longest linger). `benches/load/calibrate.sh` compares them.
//!
//! Prints `listening on http://ADDR` on stderr, and stops on Ctrl-C or
//! `SIGTERM` (flushing the audit trail).

use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "../benches/common/mod.rs"]
mod common;

use saas_api::settings::{self, Settings};
use saas_api::{app, metrics, server};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mode = match (
        args.next().as_deref(),
        args.next().map(|n| n.parse::<u64>()),
    ) {
        (Some("audited"), None) => Mode::Audited,
        (Some("audited-none"), None) => Mode::AuditedNone,
        (Some("audited-null"), None) => Mode::AuditedNull,
        (Some("plain"), None) => Mode::Plain,
        (Some("inline"), Some(Ok(nanos))) => Mode::Inline(Spin::calibrate(nanos)),
        (Some("thread"), Some(Ok(nanos))) => Mode::Thread(Spin::calibrate(nanos)),
        _ => {
            eprintln!(
                "usage: saas-load-server \
                 plain|audited|audited-none|audited-null|inline NANOSECONDS|thread NANOSECONDS"
            );
            return ExitCode::from(2);
        }
    };
    // The app's runtime: `#[tokio::main]`, one worker per core.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("saas-load-server: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(mode))
}

/// What the server adds to `app::router`.
#[derive(Clone, Copy)]
enum Mode {
    Plain,
    Audited,
    AuditedNone,
    AuditedNull,
    Inline(Spin),
    Thread(Spin),
}

/// A fixed amount of CPU work: a loop count calibrated once at start-up,
/// so that time the thread spends preempted is not counted as work.
#[derive(Clone, Copy)]
struct Spin {
    rounds: u64,
}

impl Spin {
    fn calibrate(nanos: u64) -> Self {
        const PROBE: u64 = 20_000_000;
        // The fastest of a few probes: the least disturbed by other work.
        let fastest = (0..5)
            .map(|_| {
                let started = Instant::now();
                Self { rounds: PROBE }.run();
                started.elapsed()
            })
            .min()
            .unwrap_or(Duration::from_secs(1));
        let per_round = fastest.as_nanos().max(1) as f64 / PROBE as f64;
        Self {
            rounds: (nanos as f64 / per_round) as u64,
        }
    }

    fn run(self) {
        let mut x = 0u64;
        for i in 0..self.rounds {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
    }
}

/// `router` behind a layer that spins on the worker, or that hands a
/// message per request to a thread that spins for it.
fn calibrated(router: axum::Router, mode: Mode) -> axum::Router {
    use axum::extract::Request;
    use axum::middleware::{Next, from_fn};
    match mode {
        Mode::Plain | Mode::Audited | Mode::AuditedNone | Mode::AuditedNull => router,
        Mode::Inline(spin) => router.layer(from_fn(move |req: Request, next: Next| async move {
            spin.run();
            next.run(req).await
        })),
        Mode::Thread(spin) => {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<[u64; 8]>(65_536);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the calibration thread's runtime");
                runtime.block_on(async move {
                    let mut batch = Vec::with_capacity(4096);
                    while rx.recv_many(&mut batch, 4096).await > 0 {
                        for message in batch.drain(..) {
                            std::hint::black_box(message);
                            spin.run();
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
            });
            router.layer(from_fn(move |req: Request, next: Next| {
                let _ = tx.try_send([0; 8]);
                next.run(req)
            }))
        }
    }
}

async fn serve(mode: Mode) -> ExitCode {
    let audited = matches!(mode, Mode::Audited | Mode::AuditedNone | Mode::AuditedNull);
    let (settings, _, _, _) = match Settings::load() {
        Ok(loaded) => loaded.into_parts(),
        Err(error) => {
            settings::report_invalid(&error, false);
            return ExitCode::FAILURE;
        }
    };
    metrics::install();
    let audit = if audited {
        let started = if matches!(mode, Mode::AuditedNull) {
            null_pipeline()
        } else {
            saas_api::audit::start(&settings.audit).map_err(|e| e.to_string())
        };
        match started {
            Ok(pair) => Some(pair),
            Err(error) => {
                eprintln!("saas-load-server: cannot start the audit trail: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let auth = match saas_api::auth::layer(&settings) {
        Ok(auth) => auth,
        Err(error) => {
            eprintln!("saas-load-server: cannot set up authentication: {error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = match server::ShutdownSignal::install() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            eprintln!("saas-load-server: cannot install the signal handlers: {error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.server.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("saas-load-server: cannot listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!(
            "listening on http://{addr} ({})",
            match mode {
                Mode::Plain => "plain",
                Mode::Audited => "audited",
                Mode::AuditedNone => "audited-none",
                Mode::AuditedNull => "audited-null",
                Mode::Inline(_) => "inline",
                Mode::Thread(_) => "thread",
            }
        ),
        Err(error) => {
            eprintln!("saas-load-server: listening, address unknown: {error}");
            return ExitCode::FAILURE;
        }
    }
    let store = saas_api::invoices::Store::default();
    let (router, guard) = match audit {
        Some((auditor, guard)) => {
            let mut layer = saas_api::audit::layer(auditor);
            if matches!(mode, Mode::AuditedNone) {
                layer = layer.default_level(guardrails_audit::Level::None);
            }
            (
                app::router_with_audit_layer(store, layer, auth),
                Some(guard),
            )
        }
        None => (calibrated(app::router(store, auth), mode), None),
    };
    let cut = server::serve(listener, router, shutdown.recv(), server::Limits::default()).await;
    let flushed = match guard {
        Some(guard) => saas_api::audit::shutdown(guard).await,
        None => true,
    };
    if flushed && cut == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The app's pipeline with a sink that discards every batch.
fn null_pipeline() -> Result<(guardrails_audit::Auditor, guardrails_audit::AuditGuard), String> {
    guardrails_audit::AuditPipeline::builder()
        .observer(guardrails_audit::Observer::new(
            "saas-api",
            "load",
            format!("pid-{}", std::process::id()),
        ))
        .spawn(common::NullSink)
        .map_err(|e| e.to_string())
}
