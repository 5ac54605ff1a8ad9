//! The `saas-api` binary: `cargo run -p saas-api`.

use std::process::ExitCode;

use clap::Parser;
use saas_api::cli::{Cli, Command};
use saas_api::settings::{self, Settings};
use saas_api::{app, metrics, server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    // Fail fast, before listening: every problem, with its key and source.
    let json = matches!(cli.command, Some(Command::Config { json: true }));
    let (settings, _, explain, warnings) = match Settings::load() {
        Ok(loaded) => loaded.into_parts(),
        Err(error) => {
            settings::report_invalid(&error, json);
            return ExitCode::FAILURE;
        }
    };

    match cli.command {
        None => serve(settings).await,
        Some(Command::Config { json }) => {
            settings::print_config(&explain, &warnings, json);
            ExitCode::SUCCESS
        }
        Some(Command::Token(args)) => match saas_api::auth::issue_token(&settings, &args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("saas-api token: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(settings: Settings) -> ExitCode {
    metrics::install();
    // The audit trail opens before the server listens: no request unaudited.
    let (auditor, audit_guard) = match saas_api::audit::open(&settings.audit).await {
        Ok(pair) => pair,
        Err(error) => {
            tracing::error!(%error, "cannot start the audit trail");
            return ExitCode::FAILURE;
        }
    };
    // Token verification is set up before listening: a bad issuer or key
    // setting stops the start-up. With a JWKS URL, the first fetch starts
    // now in the background; requests that arrive before it ends wait for it.
    let auth = match saas_api::auth::layer(&settings) {
        Ok(auth) => auth,
        Err(error) => {
            tracing::error!(%error, "cannot set up authentication");
            return ExitCode::FAILURE;
        }
    };
    // Signals are caught before the app says it listens: a SIGTERM from then
    // on is a graceful stop that flushes the audit trail.
    let shutdown = match server::ShutdownSignal::install() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            tracing::error!(%error, "cannot install the shutdown signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.server.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, addr = %settings.server.addr, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening on http://{addr}"),
        Err(error) => tracing::warn!(%error, "listening, address unknown"),
    }

    let store = saas_api::invoices::Store::default();
    let cut = server::serve(
        listener,
        app::audited_router(store, auditor, auth),
        shutdown.recv(),
        server::Limits {
            max_connections: settings.server.max_connections,
            ..server::Limits::default()
        },
    )
    .await;
    // Every request is done or cancelled, and recorded: flush every accepted
    // audit event.
    let flushed = saas_api::audit::shutdown(audit_guard).await;
    if flushed && cut == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
