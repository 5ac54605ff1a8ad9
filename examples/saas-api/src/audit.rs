//! The app's audit trail (guardrails-audit).
//!
//! - Every request is recorded by an [`AuditLayer`] placed outermost (see
//!   [`crate::app::audited_router`]), so it also sees the guards' rejections.
//! - The trail is a hash-chained JSON-lines file at `audit.path`
//!   (`SAAS_AUDIT__PATH`, default `var/audit.jsonl`), HMAC-SHA-256 when
//!   `audit.hmac_key` is set, plain SHA-256 otherwise; checkpoints go to
//!   `<path>.checkpoints`.
//! - With `audit.postgres_url` (`SAAS_AUDIT__POSTGRES_URL`, or better
//!   `SAAS_AUDIT__POSTGRES_URL_FILE`: a secret) the trail goes to PostgreSQL
//!   instead, for deployments of several instances: [`open`] applies the
//!   schema migrations (idempotent; the role needs to own the tables, or run
//!   `migrate` once as the owner and give the app the writer role of
//!   `guardrails-audit/migrations/writer_role.sql`), then each process
//!   appends to its own chain: a fresh chain id per start, or
//!   `audit.chain_id` (`SAAS_AUDIT__CHAIN_ID`) to continue one chain across
//!   restarts. The HMAC key applies the same way. The database must be
//!   reachable at start-up; later outages are retried by the sink, and
//!   strict (`DELETE`) requests fail closed with 503 meanwhile.
//!
//! # Why the invoices stay in memory
//!
//! With the invoices in the same database, `DELETE` could record its audit
//! event with `record_in` (the outbox) in the transaction that deletes the
//! invoice, making "deleted" and "audited" one fact. This example keeps its
//! in-memory invoice store instead (it has no persistence at all, and
//! several instances would not share invoices anyway), so there is no
//! business transaction to join: `DELETE` stays `Strict` on both sinks — the
//! attempt record is committed before the handler runs, or the request gets
//! 503 and nothing is deleted — and the completion record follows. An app
//! whose data lives in PostgreSQL should use `record_in` for its domain
//! events instead.
//! - `DELETE` routes are `Strict` (fail-closed): a durable attempt record is
//!   written before the handler runs, else the request is answered 503 and
//!   nothing is deleted. Other routes are best effort.
//! - `DELETE /v1/tenants/{tenant}/invoices/{id}` also records the
//!   `invoice.delete` domain event (see [`crate::invoices::delete`]).
//! - On shutdown [`shutdown`] flushes every accepted event and closes the
//!   file with a final record and checkpoint.
//!
//! Verify the file with
//! `cargo run -p guardrails-audit --features cli -- verify var/audit.jsonl --checkpoints var/audit.jsonl.checkpoints [--key-file F]`,
//! the database with
//! `GUARDRAILS_AUDIT_POSTGRES_URL=… cargo run -p guardrails-audit --features cli,postgres -- verify --postgres [--key-file F]`.

use std::time::Duration;

use axum::http::Method;
use guardrails_audit::sink::SinkError;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::sink::postgres::{PgError, PostgresSink, migrate};
use guardrails_audit::{
    AuditGuard, AuditLayer, AuditPipeline, Auditor, DeliveryMode, Observer, RoutePolicy,
};
use secrecy::{ExposeSecret, SecretString};

use crate::settings::AuditSettings;

/// How long a strict request waits for its durable attempt record.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long shutdown waits for the audit trail to be flushed.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The audit trail could not be started.
#[derive(Debug)]
pub enum StartError {
    /// The file cannot be opened or continued.
    Sink(SinkError),
    /// The writer thread could not start.
    Writer(std::io::Error),
    /// `audit.postgres_url` is not a PostgreSQL connection string.
    PostgresUrl,
    /// The database cannot be reached (the error names the host, never the
    /// URL).
    Connect {
        /// The host.
        host: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The migrations or the sink failed.
    Postgres(PgError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sink(e) => write!(f, "audit.path: {e}"),
            Self::Writer(e) => write!(f, "audit writer: {e}"),
            Self::PostgresUrl => {
                f.write_str("audit.postgres_url: not a PostgreSQL connection string")
            }
            Self::Connect { host, source } => {
                write!(f, "audit.postgres_url: cannot connect to {host}: {source}")
            }
            Self::Postgres(e) => write!(f, "audit.postgres_url: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Opens the configured trail: PostgreSQL when `audit.postgres_url` is set
/// (after applying the migrations), else the file; starts the writer.
///
/// # Errors
///
/// [`StartError`] when the database cannot be reached or migrated, or the
/// file cannot be opened or continued.
pub async fn open(settings: &AuditSettings) -> Result<(Auditor, AuditGuard), StartError> {
    let Some(url) = &settings.postgres_url else {
        return start(settings);
    };
    let config: tokio_postgres::Config = url
        .expose_secret()
        .parse()
        .map_err(|_| StartError::PostgresUrl)?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "the default host".to_owned(),
    };
    let (mut client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|source| StartError::Connect { host, source })?;
    let driver = tokio::spawn(connection);
    let migrated = migrate(&mut client).await.map_err(StartError::Postgres);
    drop(client);
    let _ = driver.await;
    let report = migrated?;
    if !report.applied.is_empty() {
        tracing::info!(applied = ?report.applied, "audit schema migrated");
    }
    let mut builder = PostgresSink::builder(SecretString::from(url.expose_secret().to_owned()))
        .maybe_hmac_key(settings.hmac_key.clone())
        .instance(instance());
    if let Some(chain_id) = &settings.chain_id {
        builder = builder.chain_id(chain_id.clone());
    }
    let sink = builder.open().await.map_err(StartError::Postgres)?;
    tracing::info!(chain_id = sink.chain_id(), "audit trail in PostgreSQL");
    spawn(sink)
}

fn instance() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| format!("pid-{}", std::process::id()))
}

fn spawn<S: guardrails_audit::sink::AuditSink>(
    sink: S,
) -> Result<(Auditor, AuditGuard), StartError> {
    AuditPipeline::builder()
        .observer(Observer::new(
            "saas-api",
            env!("CARGO_PKG_VERSION"),
            instance(),
        ))
        .spawn(sink)
        .map_err(StartError::Writer)
}

/// Opens the audit file at `audit.path` (recovering from a crash of a
/// previous run) and starts the writer; see [`open`] for the configured
/// destination.
///
/// # Errors
///
/// [`StartError`] when the file cannot be opened or continued (for example
/// with another HMAC key than the one it was written with).
pub fn start(settings: &AuditSettings) -> Result<(Auditor, AuditGuard), StartError> {
    let sink = JsonLinesSink::builder(&settings.path)
        .maybe_hmac_key(settings.hmac_key.clone())
        .open()
        .map_err(StartError::Sink)?;
    spawn(sink)
}

/// The audit layer of the app: metadata for every request, best effort;
/// `DELETE` routes strict, with a [`DELIVERY_TIMEOUT`].
pub fn layer(auditor: Auditor) -> AuditLayer {
    AuditLayer::new(auditor)
        .policy(
            RoutePolicy::new()
                .method(Method::DELETE)
                .mode(DeliveryMode::Strict),
        )
        // A stuck disk fails strict requests closed (503) instead of
        // holding them.
        .delivery_timeout(DELIVERY_TIMEOUT)
}

/// Flushes and closes the trail; returns whether nothing was lost.
pub async fn shutdown(guard: AuditGuard) -> bool {
    let report = guard.shutdown(SHUTDOWN_TIMEOUT).await;
    if report.is_complete() {
        tracing::info!(written = report.written, "audit trail flushed");
        true
    } else {
        tracing::error!(
            written = report.written,
            failed = report.failed,
            dropped = report.dropped,
            unflushed = report.unflushed,
            timed_out = report.timed_out,
            "audit trail not completely flushed"
        );
        false
    }
}
