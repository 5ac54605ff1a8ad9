//! The transactional outbox: [`record_in`].

use tokio_postgres::GenericClient;

use super::PgError;
use super::encode::{has_nul, without_nul};
use crate::event::{AuditEvent, Redactor};

/// The largest outbox record, in bytes: 64 KiB, both as text as PostgreSQL
/// writes it (`record::text`: the canonical JSON record with a space after
/// every `:` and `,`, numbers written out in full) and as stored `jsonb`
/// (`pg_column_size`: about the text's size, up to four times it for
/// arrays of small numbers).
///
/// An event of the layer takes from about 600 bytes to a few KiB (its user
/// agent and path are cut at [`MAX_USER_AGENT_CHARS`](crate::event::MAX_USER_AGENT_CHARS)
/// and [`MAX_PATH_CHARS`](crate::event::MAX_PATH_CHARS) characters); the
/// rest is for the application's details. [`record_in`] refuses a larger
/// event, and a sink turns a larger row, written into `audit_outbox` by
/// other means, into an `audit.outbox_rejected` record (reason
/// `too_large`, with the row's id and sizes) without reading it: a sink
/// relays outbox rows in the transaction and under the I/O timeout of a
/// pipeline batch, which a huge row must not make fail again and again.
pub const MAX_OUTBOX_RECORD_BYTES: usize = 64 * 1024;

/// The most stored `jsonb` one transaction measures, and the most text it
/// relays: the relay shares the transaction and the I/O timeout of a
/// pipeline batch. The first row always fits; the rows beyond wait for the
/// next transaction.
pub(super) const OUTBOX_RELAY_BYTES: usize = 1 << 20;

/// Inserts the record (`$1`) unless its text or its `jsonb` is longer than
/// `$2` bytes, and returns the longer of the two: the sizes the sink's
/// relay measures.
const INSERT_OUTBOX: &str = "WITH r AS (SELECT $1::text::jsonb AS record), \
     m AS (SELECT record, greatest(octet_length(record::text), pg_column_size(record)) AS size \
           FROM r), \
     i AS (INSERT INTO audit_outbox (record) SELECT record FROM m WHERE size <= $2) \
     SELECT size FROM m";

/// An outbox row as the sink's relay measures it before reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Measured {
    pub(super) id: i64,
    /// The size of its stored `jsonb` (`pg_column_size`, compressed or
    /// not), which costs nothing to learn.
    pub(super) stored: usize,
    /// The length of its text (`octet_length(record::text)`, a conversion
    /// on the server): measured only when `stored` is not too large, for
    /// rows within [`OUTBOX_RELAY_BYTES`] of stored `jsonb`.
    pub(super) text: Option<usize>,
}

impl Measured {
    /// Whether the record is small enough to be read.
    pub(super) fn fits(&self) -> bool {
        self.stored <= MAX_OUTBOX_RECORD_BYTES
            && self
                .text
                .is_some_and(|text| text <= MAX_OUTBOX_RECORD_BYTES)
    }
}

/// The rows one transaction relays, in id order: those too large (rejected
/// unread, at no cost), and those that fit while [`OUTBOX_RELAY_BYTES`] of
/// text last. It stops at the first row that does not fit in what is left
/// or was not measured: that row and the ones after it wait.
pub(super) fn relay_plan(measured: impl IntoIterator<Item = Measured>) -> Vec<Measured> {
    let mut left = OUTBOX_RELAY_BYTES;
    let mut plan = Vec::new();
    for row in measured {
        match row.text {
            Some(text) if row.fits() => {
                if text > left {
                    break;
                }
                left -= text;
            }
            // Not measured: beyond what this transaction measures.
            None if row.stored <= MAX_OUTBOX_RECORD_BYTES => break,
            // Too large.
            _ => {}
        }
        plan.push(row);
    }
    plan
}

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
/// [`PgError::OutboxRecordTooLarge`] when the event's record is longer than
/// [`MAX_OUTBOX_RECORD_BYTES`], and [`PgError::ReservedAction`] for an
/// action in the library's own `audit.` namespace: nothing is inserted, and
/// the caller's transaction goes on (no statement failed). [`PgError::Database`] when
/// the insert fails (the caller's transaction is then aborted, as for any
/// failed statement); [`PgError::NotCanonical`] never happens for events
/// built with this crate's API.
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
    if event.has_reserved_action() {
        return Err(PgError::ReservedAction);
    }
    let mut event = crate::event::prepare(redactor, event.clone());
    if has_nul(&event) {
        event = without_nul(&event);
    }
    let mut record = Vec::with_capacity(1024);
    event.write_canonical(&mut record, None)?;
    let too_large = |size| PgError::OutboxRecordTooLarge {
        size,
        max: MAX_OUTBOX_RECORD_BYTES,
    };
    // The server's text is at least as long as the canonical JSON (the same
    // escapes, more spaces and digits): a record already too long is not
    // sent at all.
    if record.len() > MAX_OUTBOX_RECORD_BYTES {
        return Err(too_large(record.len()));
    }
    let record = String::from_utf8_lossy(&record);
    let max = i32::try_from(MAX_OUTBOX_RECORD_BYTES).unwrap_or(i32::MAX);
    let size: i32 = client
        .query_one(INSERT_OUTBOX, &[&record.as_ref(), &max])
        .await
        .map_err(PgError::db("insert into outbox"))?
        .get(0);
    if size > max {
        return Err(too_large(usize::try_from(size).unwrap_or(usize::MAX)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_takes_rows_in_order_within_its_budget() {
        const MAX: usize = MAX_OUTBOX_RECORD_BYTES;
        let row = |id, stored, text| Measured { id, stored, text };
        let ids = |rows: &[Measured]| {
            relay_plan(rows.iter().copied())
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        // Rows too large (stored, or as text) are taken, to be rejected,
        // and cost nothing.
        let large = [
            row(1, 10, Some(10)),
            row(2, MAX + 1, None),
            row(3, MAX, Some(MAX + 1)),
            row(4, 10, Some(10)),
        ];
        assert_eq!(ids(&large), [1, 2, 3, 4]);
        assert!(!large[1].fits() && !large[2].fits() && large[3].fits());
        // Text up to the budget; the row that does not fit waits, and all
        // after it (a too large one included), so the relay keeps id order.
        let medium: Vec<Measured> = (0..40)
            .map(|id| row(id, MAX / 2, Some(MAX)))
            .chain([row(40, MAX + 1, None)])
            .collect();
        assert_eq!(ids(&medium), (0..16).collect::<Vec<_>>());
        // A row that was not measured waits too.
        let unmeasured = [
            row(1, 10, Some(10)),
            row(2, 10, None),
            row(3, MAX + 1, None),
        ];
        assert_eq!(ids(&unmeasured), [1]);
        assert_eq!(ids(&[]), [0_i64; 0]);
    }
}
