//! The app's audit trail (guardrails-audit).
//!
//! - Every request is recorded by an [`AuditLayer`] placed outermost (see
//!   [`crate::app::audited_router`]), so it also sees the guards' rejections.
//! - The trail is a hash-chained JSON-lines file at `audit.path`
//!   (`SAAS_AUDIT__PATH`, default `var/audit.jsonl`), HMAC-SHA-256 when
//!   `audit.hmac_key` is set, plain SHA-256 otherwise; checkpoints go to
//!   `<path>.checkpoints`. To change the key, stop the app, set the new one
//!   and the old one as `audit.previous_hmac_key`
//!   (`SAAS_AUDIT__PREVIOUS_HMAC_KEY`) and start it once: the trail goes on
//!   under the new key from an `audit.key_changed` record. Then remove the
//!   previous key at once: left configured, it lets whoever holds the old
//!   key (and can rewrite the trail and its checkpoints) have a forged tail
//!   changed again at the next start, and a start after a completed change
//!   refuses it.
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
//! - Both the migration connection and the sink speak TLS with rustls (the
//!   aws-lc-rs provider) through guardrails-audit's
//!   [`rustls_connector`] (feature `postgres-rustls`; see [`postgres_tls`]).
//!   The server certificate and host name are always verified — there is no
//!   option to skip that — against Mozilla's roots (webpki-roots) plus the
//!   CA certificates of `audit.postgres_ca_file`
//!   (`SAAS_AUDIT__POSTGRES_CA_FILE`, PEM; a managed database's private CA).
//!   TLS is always used over TCP: a server without TLS is refused (so
//!   `require` here means what libpq calls `verify-full`), and `prefer`, the
//!   default, is taken as `require` ([`require_tls`]), so nobody on the
//!   network path can strip it. Only `sslmode=disable` (for a local
//!   development server without TLS) or a Unix socket connects in the clear.
//!   In staging and production a database that is not local must be reached
//!   with an explicit `sslmode=require` (see [`crate::settings`]).
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
//! `cargo run -p guardrails-audit --features cli -- verify var/audit.jsonl [--key-file F]`
//! (which checks `var/audit.jsonl.checkpoints`, beside it),
//! the database with
//! `GUARDRAILS_AUDIT_POSTGRES_URL=… cargo run -p guardrails-audit --features cli,postgres-rustls -- verify --postgres [--key-file F] [--postgres-ca-file F]`.

use std::path::Path;
use std::time::Duration;

use axum::http::Method;
use guardrails_audit::sink::SinkError;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::sink::postgres::{
    MakeRustlsConnect, MigrationReport, PgError, PostgresSink, TlsSetupError, connection_config,
    migrate, require_tls, rustls_connector,
};
use guardrails_audit::{
    AuditGuard, AuditLayer, AuditPipeline, Auditor, DeliveryMode, Observer, RoutePolicy,
};

use crate::settings::AuditSettings;

/// How long a strict request waits for its durable attempt record.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long shutdown waits for the audit trail to be flushed.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`open`] waits for the migration connection to the database
/// (TCP, TLS and authentication): an unreachable host stops the start-up
/// with an error instead of holding it for the system's TCP timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The audit trail could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The file cannot be opened or continued.
    Sink(SinkError),
    /// The writer thread could not start.
    Writer(std::io::Error),
    /// The database cannot be reached (the error names the host, never the
    /// URL).
    Connect {
        /// The host.
        host: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The database did not complete the connection (TCP, TLS and
    /// authentication) within [`CONNECT_TIMEOUT`].
    ConnectTimeout {
        /// The host.
        host: String,
        /// How long it was given.
        after: Duration,
    },
    /// `audit.postgres_url` is not a PostgreSQL connection string
    /// ([`PgError::InvalidConfig`]), or the migrations or the sink failed.
    Postgres(PgError),
    /// The TLS connector cannot be built: `audit.postgres_ca_file` cannot
    /// be read or holds no valid PEM certificate
    /// ([`TlsSetupError::CaFile`]), or the TLS configuration is unusable.
    Tls(TlsSetupError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sink(e) => write!(f, "audit.path: {e}"),
            Self::Writer(e) => write!(f, "audit writer: {e}"),
            Self::Connect { host, source } => {
                write!(f, "audit.postgres_url: cannot connect to {host}: {source}")?;
                // The driver's message is generic ("error performing TLS
                // handshake"); the why is in its causes (a certificate
                // error, a refused connection, the server's message),
                // which never hold the connection string.
                let mut cause = std::error::Error::source(source);
                while let Some(e) = cause {
                    write!(f, ": {e}")?;
                    cause = e.source();
                }
                Ok(())
            }
            Self::ConnectTimeout { host, after } => write!(
                f,
                "audit.postgres_url: cannot connect to {host}: no answer within {after:?}"
            ),
            Self::Postgres(e) => write!(f, "audit.postgres_url: {e}"),
            Self::Tls(TlsSetupError::CaFile { path, problem }) => {
                write!(f, "audit.postgres_ca_file: {}: {problem}", path.display())
            }
            Self::Tls(e) => write!(f, "audit.postgres_url: {e}"),
        }
    }
}

// The messages above carry their causes (the driver's error chain
// included), so no `source()`: a reporter walking it would repeat them.
impl std::error::Error for StartError {}

/// The TLS connector to the audit database: guardrails-audit's
/// [`rustls_connector`] (rustls with the aws-lc-rs provider, TLS 1.2 and 1.3,
/// trusting Mozilla's roots and the PEM certificates in `ca_file`).
/// Certificates and host names are always verified.
///
/// # Errors
///
/// [`StartError::Tls`] when `ca_file` cannot be read, is not PEM or holds no
/// usable certificate, or when the provider offers no safe protocol version.
pub fn postgres_tls(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, StartError> {
    rustls_connector(ca_file).map_err(StartError::Tls)
}

/// Opens the configured trail: PostgreSQL when `audit.postgres_url` is set
/// (after applying the migrations), else the file; starts the writer.
///
/// # Errors
///
/// [`StartError`] when the database cannot be reached (within
/// [`CONNECT_TIMEOUT`]) or migrated, or the file cannot be opened or
/// continued.
pub async fn open(settings: &AuditSettings) -> Result<(Auditor, AuditGuard), StartError> {
    let Some(url) = &settings.postgres_url else {
        return start(settings);
    };
    let mut config = connection_config(url).map_err(StartError::Postgres)?;
    // As the sink does with its TLS connector: no fall-back to the clear.
    require_tls(&mut config);
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "the default host".to_owned(),
    };
    let tls = postgres_tls(settings.postgres_ca_file.as_deref())?;
    let report = migrate_schema(&config, host, tls.clone(), CONNECT_TIMEOUT).await?;
    if !report.applied.is_empty() {
        tracing::info!(applied = ?report.applied, "audit schema migrated");
    }
    let mut builder = PostgresSink::builder(url.clone())
        .maybe_hmac_key(settings.hmac_key.clone())
        .instance(instance())
        .tls(tls);
    if let Some(chain_id) = &settings.chain_id {
        builder = builder.chain_id(chain_id.clone());
    }
    let sink = builder.open().await.map_err(StartError::Postgres)?;
    let tls = match config.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => "disabled",
        tokio_postgres::config::SslMode::Require => "required",
        _ => "preferred",
    };
    tracing::info!(chain_id = sink.chain_id(), tls, "audit trail in PostgreSQL");
    spawn(sink)
}

/// Applies the migrations on a connection of their own, closed before
/// returning; the connection must be up within `connect_timeout`.
async fn migrate_schema(
    config: &tokio_postgres::Config,
    host: String,
    tls: MakeRustlsConnect,
    connect_timeout: Duration,
) -> Result<MigrationReport, StartError> {
    let (mut client, connection) =
        match tokio::time::timeout(connect_timeout, config.connect(tls)).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(source)) => return Err(StartError::Connect { host, source }),
            Err(_) => {
                return Err(StartError::ConnectTimeout {
                    host,
                    after: connect_timeout,
                });
            }
        };
    let driver = tokio::spawn(connection);
    let migrated = migrate(&mut client).await.map_err(StartError::Postgres);
    drop(client);
    let _ = driver.await;
    migrated
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
        .maybe_previous_key(settings.previous_hmac_key.clone())
        .open()
        .map_err(StartError::Sink)?;
    spawn(sink)
}

/// The audit layer of the app: metadata for every request, best effort;
/// the `DELETE` route strict, with a [`DELIVERY_TIMEOUT`].
pub fn layer(auditor: Auditor) -> AuditLayer {
    AuditLayer::new(auditor)
        // The route, not the method alone: a `DELETE` of any path would make
        // the trail write durably (and the pipeline wait) for anyone who
        // asks.
        .policy(
            RoutePolicy::new()
                .method(Method::DELETE)
                .route("/v1/tenants/{tenant}/invoices/{id}")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts the connection and never answers: the start-up
    /// gives up after the connect timeout with an error naming the setting
    /// and the host, never the password.
    #[tokio::test]
    async fn a_silent_database_stops_the_start_up() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let config: tokio_postgres::Config =
            format!("host=127.0.0.1 port={port} user=app password=hunter2-pw sslmode=disable")
                .parse()
                .unwrap();
        let tls = postgres_tls(None).unwrap();
        let timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let error = migrate_schema(&config, "127.0.0.1".into(), tls, timeout)
            .await
            .err()
            .unwrap();
        assert!(started.elapsed() >= timeout);
        assert!(
            matches!(&error, StartError::ConnectTimeout { host, .. } if host == "127.0.0.1"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "audit.postgres_url: cannot connect to 127.0.0.1: no answer within 300ms"
        );
        assert!(!format!("{error:?}").contains("hunter2"));
        silent.abort();
    }

    /// The library checks CA files (its own tests cover every problem);
    /// the app's message names its setting, the file and the problem.
    #[test]
    fn a_bad_ca_file_is_named_with_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = postgres_tls(Some(&missing)).err().unwrap();
        assert!(
            error.to_string().starts_with(&format!(
                "audit.postgres_ca_file: {}: not a readable PEM file",
                missing.display()
            )),
            "{error}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = postgres_tls(Some(&empty)).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "audit.postgres_ca_file: {}: holds no PEM certificate",
                empty.display()
            )
        );
    }
}
