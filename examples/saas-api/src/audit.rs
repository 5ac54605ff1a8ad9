//! The app's audit trail (guardrails-audit).
//!
//! - Every request is recorded by an [`AuditLayer`] placed outermost (see
//!   [`crate::app::audited_router`]), so it also sees the guards' rejections.
//! - The trail is a hash-chained JSON-lines file at `audit.path`
//!   (`SAAS_AUDIT__PATH`, default `var/audit.jsonl`), HMAC-SHA-256 when
//!   `audit.hmac_key` is set, plain SHA-256 otherwise; checkpoints go to
//!   `<path>.checkpoints`.
//! - `DELETE` routes are `Strict` (fail-closed): a durable attempt record is
//!   written before the handler runs, else the request is answered 503 and
//!   nothing is deleted. Other routes are best effort.
//! - `DELETE /v1/tenants/{tenant}/invoices/{id}` also records the
//!   `invoice.delete` domain event (see [`crate::invoices::delete`]).
//! - On shutdown [`shutdown`] flushes every accepted event and closes the
//!   file with a final record and checkpoint.
//!
//! Verify the file with
//! `cargo run -p guardrails-audit --features cli -- verify var/audit.jsonl --checkpoints var/audit.jsonl.checkpoints [--key-file F]`.

use std::time::Duration;

use axum::http::Method;
use guardrails_audit::sink::SinkError;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{
    AuditGuard, AuditLayer, AuditPipeline, Auditor, DeliveryMode, Observer, RoutePolicy,
};

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
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sink(e) => write!(f, "audit.path: {e}"),
            Self::Writer(e) => write!(f, "audit writer: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Opens the audit file (recovering from a crash of a previous run) and
/// starts the writer.
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
    let instance =
        std::env::var("HOSTNAME").unwrap_or_else(|_| format!("pid-{}", std::process::id()));
    let (auditor, guard) = AuditPipeline::builder()
        .observer(Observer::new(
            "saas-api",
            env!("CARGO_PKG_VERSION"),
            instance,
        ))
        .spawn(sink)
        .map_err(StartError::Writer)?;
    Ok((auditor, guard))
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
