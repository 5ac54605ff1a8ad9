//! The transactional outbox: [`record_in`].

use tokio_postgres::GenericClient;

use super::PgError;
use super::encode::{has_nul, without_nul};
use crate::event::{AuditEvent, Redactor};

/// Records `event` in the application's own transaction (or on any client):
/// it becomes part of the audit trail if and only if that transaction
/// commits. Details are redacted with the default [`Redactor`] (use
/// [`record_in_with`] for another one), as the pipeline does.
///
/// The event is inserted into `audit_outbox` as its canonical JSON record;
/// a running [`PostgresSink`](super::PostgresSink) later moves committed
/// rows into its chain (see the [module documentation](super)).
///
/// ```no_run
/// use guardrails_audit::{AuditEvent, Category, Outcome};
/// use guardrails_audit::sink::postgres::record_in;
///
/// # async fn run(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let tx = client.transaction().await?;
/// tx.execute("DELETE FROM invoices WHERE tenant = $1 AND id = $2", &[&"acme", &"inv_42"]).await?;
/// record_in(
///     &tx,
///     &AuditEvent::new("invoice.delete", Category::DataWrite)
///         .with_outcome(Outcome::Success)
///         .with_target("invoice", "inv_42"),
/// )
/// .await?;
/// tx.commit().await?; // the deletion and its audit record, or neither
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`PgError::Database`] when the insert fails (the caller's transaction is
/// then aborted, as for any failed statement); [`PgError::NotCanonical`]
/// never happens for events built with this crate's API.
pub async fn record_in<C: GenericClient + Sync>(
    client: &C,
    event: &AuditEvent,
) -> Result<(), PgError> {
    record_in_with(client, event, &Redactor::default()).await
}

/// [`record_in`] with the given redaction of detail keys.
///
/// # Errors
///
/// As [`record_in`].
pub async fn record_in_with<C: GenericClient + Sync>(
    client: &C,
    event: &AuditEvent,
    redactor: &Redactor,
) -> Result<(), PgError> {
    let mut event = crate::event::prepare(redactor, event.clone());
    if has_nul(&event) {
        event = without_nul(&event);
    }
    let mut record = Vec::with_capacity(1024);
    event.write_canonical(&mut record, None)?;
    let record = String::from_utf8_lossy(&record);
    client
        .execute(
            "INSERT INTO audit_outbox (record) VALUES ($1::text::jsonb)",
            &[&record.as_ref()],
        )
        .await
        .map_err(PgError::db("insert into outbox"))?;
    Ok(())
}
