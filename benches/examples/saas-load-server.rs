//! The saas-api server for load runs, with the audit trail on or off.
//!
//! ```text
//! cargo build --release -p guardrails-benches --example saas-load-server
//! SAAS_SERVER__ADDR=127.0.0.1:0 SAAS_AUDIT__PATH=/tmp/a.jsonl \
//!     target/release/examples/saas-load-server audited|plain
//! ```
//!
//! `audited` starts exactly what the `saas-api` binary serves: configuration
//! from the `SAAS_*` environment (development by default), the Prometheus
//! recorder, the audit trail of `saas_api::audit::start` (best effort, DELETE
//! strict, SHA-256 JSON-lines file with an fsync per batch, or HMAC with
//! `SAAS_AUDIT__HMAC_KEY`), authentication, and `app::audited_router`. `plain`
//! serves `app::router`, the same routes and guards without the audit layer
//! and writer. The app itself has no switch to turn auditing off; this
//! program exists only for `benches/load/audit.sh`.
//!
//! Prints `listening on http://ADDR` on stderr, and stops on Ctrl-C or
//! `SIGTERM` (flushing the audit trail).

use std::process::ExitCode;

use saas_api::settings::{self, Settings};
use saas_api::{app, metrics, server};

fn main() -> ExitCode {
    let audited = match std::env::args().nth(1).as_deref() {
        Some("audited") => true,
        Some("plain") => false,
        _ => {
            eprintln!("usage: saas-load-server audited|plain");
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
    runtime.block_on(serve(audited))
}

async fn serve(audited: bool) -> ExitCode {
    let (settings, _, _, _) = match Settings::load() {
        Ok(loaded) => loaded.into_parts(),
        Err(error) => {
            settings::report_invalid(&error, false);
            return ExitCode::FAILURE;
        }
    };
    metrics::install();
    let audit = if audited {
        match saas_api::audit::start(&settings.audit) {
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
            if audited { "audited" } else { "plain" }
        ),
        Err(error) => {
            eprintln!("saas-load-server: listening, address unknown: {error}");
            return ExitCode::FAILURE;
        }
    }
    let store = saas_api::invoices::Store::default();
    let (router, guard) = match audit {
        Some((auditor, guard)) => (app::audited_router(store, auditor, auth), Some(guard)),
        None => (app::router(store, auth), None),
    };
    let served = server::serve(listener, router).await;
    let flushed = match guard {
        Some(guard) => saas_api::audit::shutdown(guard).await,
        None => true,
    };
    match served {
        Ok(()) if flushed => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("saas-load-server: server failed: {error}");
            ExitCode::FAILURE
        }
    }
}
