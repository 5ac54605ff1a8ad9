//! Reading the audit trail back from PostgreSQL (feature `postgres`): the
//! queries an admin page runs, and whole chains for export.
//!
//! [`AuditQuery`] filters by tenant, actor, action, request id and a time
//! range, and pages by `(time, id, chain_id, seq)`: each [`Page`] carries
//! the [`Cursor`] of the next one, so that every matching record is returned
//! exactly once, in that order, however many are appended meanwhile. The
//! chain position completes the order because event ids are not unique (an
//! application may record the same event twice). Every value is a bind
//! parameter; the SQL is made of fixed fragments only, and each filter
//! combination uses one of the schema's indexes (tenant and time, actor and
//! time, time) for the `(time, id)` part of the order. A page holds 1 to
//! [`MAX_LIMIT`] records.
//!
//! [`read_chain`] and [`read_checkpoints`] read every row of one chain in
//! `(seq, id)` order and its checkpoints, as the `guardrails-audit export
//! --chain` command does to write a file that the file verifier checks: a
//! row that should not be there (a second row at a seq, a negative seq) is
//! exported too, and reported by the verifier.
//!
//! ```no_run
//! use guardrails_audit::query::AuditQuery;
//! use time::{Duration, OffsetDateTime};
//!
//! # async fn run(client: tokio_postgres::Client) -> Result<(), guardrails_audit::query::QueryError> {
//! let mut query = AuditQuery::new()
//!     .tenant("acme")
//!     .action("invoice.delete")
//!     .since(OffsetDateTime::now_utc() - Duration::days(7))
//!     .limit(100);
//! loop {
//!     let page = query.fetch(&client).await?;
//!     for event in &page.records {
//!         println!("{} {} {:?}", event.time, event.action, event.actor);
//!     }
//!     match page.next {
//!         Some(cursor) => query = query.after(cursor),
//!         None => break,
//!     }
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::sink::postgres::PgError;

/// The largest page.
pub const MAX_LIMIT: u32 = 1000;

/// The page size when none is set.
pub const DEFAULT_LIMIT: u32 = 100;

/// A query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The page size is outside `1..=MAX_LIMIT`.
    #[error("the page size must be between 1 and {MAX_LIMIT}, not {limit}")]
    InvalidLimit {
        /// The size asked for.
        limit: u32,
    },
    /// The database query failed. Its `Display` and `Debug` show the
    /// server's message and SQLSTATE, never a connection parameter nor the
    /// `DETAIL` (which may quote row values).
    #[error(transparent)]
    Database(PgError),
    /// A stored record is not JSON (cannot happen with `jsonb`).
    #[error("a stored audit record is not JSON: {0}")]
    Record(#[from] serde_json::Error),
}

impl From<tokio_postgres::Error> for QueryError {
    fn from(driver: tokio_postgres::Error) -> Self {
        Self::Database(PgError::db("query")(driver))
    }
}

/// The position after which the next page starts: the `(time, id,
/// chain_id, seq)` of the last record of a page (chain ids compared byte by
/// byte, as the `"C"` collation does).
///
/// Its text form (`Display`, `FromStr`) is URL-safe (ASCII letters, digits,
/// `_` and `-`), for an admin page's "next" link; treat it as opaque. It is
/// `<time in microseconds since the epoch>_<id, 32 hex digits>_<chain id,
/// hex of its UTF-8>_<seq>`. The two-part cursors of earlier versions
/// (`<time>_<id>`) are refused ([`InvalidCursor`]): they cannot tell where
/// among the records of one event id a page ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    time: OffsetDateTime,
    id: Uuid,
    chain_id: String,
    seq: i64,
}

impl Cursor {
    /// The cursor after the record with this time, id and chain position.
    pub fn new(time: OffsetDateTime, id: Uuid, chain_id: impl Into<String>, seq: i64) -> Self {
        Self {
            time,
            id,
            chain_id: chain_id.into(),
            seq,
        }
    }

    /// The time of the last record of the page.
    pub fn time(&self) -> OffsetDateTime {
        self.time
    }

    /// The id of the last record of the page.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The chain of the last record of the page.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The seq of the last record of the page.
    pub fn seq(&self) -> i64 {
        self.seq
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.time.unix_timestamp_nanos() / 1000;
        write!(
            f,
            "{micros}_{}_{}_{}",
            self.id.simple(),
            hex::encode(&self.chain_id),
            self.seq
        )
    }
}

/// A cursor's text form was not one.
#[derive(Debug, thiserror::Error)]
#[error("not an audit query cursor")]
#[non_exhaustive]
pub struct InvalidCursor;

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('_');
        let (Some(micros), Some(id), Some(chain_id), Some(seq), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(InvalidCursor);
        };
        let micros: i128 = micros.parse().map_err(|_| InvalidCursor)?;
        let time = micros
            .checked_mul(1000)
            .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
            .ok_or(InvalidCursor)?;
        let id = Uuid::try_parse(id).map_err(|_| InvalidCursor)?;
        let chain_id = hex::decode(chain_id)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|chain_id| !chain_id.is_empty())
            .ok_or(InvalidCursor)?;
        let seq = seq.parse().map_err(|_| InvalidCursor)?;
        Ok(Self {
            time,
            id,
            chain_id,
            seq,
        })
    }
}

/// A stored audit record: its queryable columns and the whole record as it
/// was hashed (with `chain`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredEvent {
    /// The chain the record belongs to.
    pub chain_id: String,
    /// Its position in the chain, as stored. The schema refuses a negative
    /// one, unless the table's owner dropped that check: such a row is
    /// returned as it is, never as another seq (its `record` holds the seq
    /// that was hashed, which the verifiers read).
    pub seq: i64,
    /// The event id.
    pub id: Uuid,
    /// When it happened.
    pub time: OffsetDateTime,
    /// The action (`http.request`, `invoice.delete`…).
    pub action: String,
    /// The category.
    pub category: String,
    /// The outcome.
    pub outcome: String,
    /// The outcome's reason code.
    pub reason: Option<String>,
    /// The actor's subject.
    pub actor: Option<String>,
    /// The actor's tenant.
    pub tenant: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// The HTTP status.
    pub status: Option<i32>,
    /// The whole record.
    pub record: Value,
}

const COLUMNS: &str = "chain_id, seq, id, time, action, category, outcome, reason, actor, \
                       tenant, request_id, status, record::text";

impl StoredEvent {
    fn from_row(row: &Row) -> Result<Self, QueryError> {
        let record: String = row.try_get(12)?;
        Ok(Self {
            chain_id: row.try_get(0)?,
            seq: row.try_get(1)?,
            id: row.try_get(2)?,
            time: row.try_get(3)?,
            action: row.try_get(4)?,
            category: row.try_get(5)?,
            outcome: row.try_get(6)?,
            reason: row.try_get(7)?,
            actor: row.try_get(8)?,
            tenant: row.try_get(9)?,
            request_id: row.try_get(10)?,
            status: row.try_get(11)?,
            record: serde_json::from_str(&record)?,
        })
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The records, in `(time, id, chain_id, seq)` order.
    pub records: Vec<StoredEvent>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A filtered, paginated query; see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct AuditQuery {
    tenant: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    request_id: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    after: Option<Cursor>,
    limit: u32,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditQuery {
    /// Every record, [`DEFAULT_LIMIT`] per page.
    pub fn new() -> Self {
        Self {
            tenant: None,
            actor: None,
            action: None,
            request_id: None,
            since: None,
            until: None,
            after: None,
            limit: DEFAULT_LIMIT,
        }
    }

    /// Only the records of this tenant (the actor's tenant), given as the
    /// `Principal` has it: compared in the form the auditor records it
    /// (controls and a `\x` escaped, see [`crate::event::sanitize`]).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(crate::event::actor_as_recorded(tenant.into()));
        self
    }

    /// Only the records of this actor (the subject), given as the
    /// `Principal` has it: compared in the form the auditor records it.
    pub fn actor(mut self, subject: impl Into<String>) -> Self {
        self.actor = Some(crate::event::actor_as_recorded(subject.into()));
        self
    }

    /// Only the records of this action.
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    /// Only the records of this request.
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Only the records at or after this time.
    pub fn since(mut self, time: OffsetDateTime) -> Self {
        self.since = Some(time);
        self
    }

    /// Only the records before this time.
    pub fn until(mut self, time: OffsetDateTime) -> Self {
        self.until = Some(time);
        self
    }

    /// The page after this cursor (from [`Page::next`]).
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// The page size, `1..=`[`MAX_LIMIT`] ([`fetch`](Self::fetch) refuses
    /// others).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// The SQL and its parameters: fixed fragments, numbered placeholders.
    fn sql(&self) -> (String, Vec<&(dyn ToSql + Sync)>) {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE true");
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let filters: [(&str, Option<&(dyn ToSql + Sync)>); 6] = [
            (" AND tenant = ?", self.tenant.as_ref().map(|v| v as _)),
            (" AND actor = ?", self.actor.as_ref().map(|v| v as _)),
            (" AND action = ?", self.action.as_ref().map(|v| v as _)),
            (
                " AND request_id = ?",
                self.request_id.as_ref().map(|v| v as _),
            ),
            (" AND time >= ?", self.since.as_ref().map(|v| v as _)),
            (" AND time < ?", self.until.as_ref().map(|v| v as _)),
        ];
        for (fragment, value) in filters {
            if let Some(value) = value {
                push(&mut sql, &mut params, fragment, value);
            }
        }
        if let Some(after) = &self.after {
            // The indexes answer `(time, id) >=`; the whole order then
            // decides among the records that share the last (time, id).
            push(&mut sql, &mut params, " AND (time, id) >= (?", &after.time);
            push(&mut sql, &mut params, ", ?)", &after.id);
            let (time, id) = (params.len() - 1, params.len());
            let fragment =
                format!(" AND (time, id, chain_id COLLATE \"C\", seq) > (${time}, ${id}, ?");
            push(&mut sql, &mut params, &fragment, &after.chain_id);
            push(&mut sql, &mut params, ", ?)", &after.seq);
        }
        sql.push_str(" ORDER BY time, id, chain_id COLLATE \"C\", seq LIMIT ");
        // One more than a page, to know whether another page follows.
        sql.push_str(&(i64::from(self.limit) + 1).to_string());
        (sql, params)
    }

    /// Runs the query: one page.
    ///
    /// # Errors
    ///
    /// [`QueryError::InvalidLimit`] for a page size outside
    /// `1..=`[`MAX_LIMIT`], [`QueryError::Database`] when the query fails.
    pub async fn fetch(&self, client: &Client) -> Result<Page, QueryError> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(QueryError::InvalidLimit { limit: self.limit });
        }
        let (sql, params) = self.sql();
        let rows = client.query(&sql, &params).await?;
        let (records, more) = page_of(&rows, self.limit)?;
        let next = if more {
            records
                .last()
                .map(|e| Cursor::new(e.time, e.id, e.chain_id.clone(), e.seq))
        } else {
            None
        };
        Ok(Page { records, next })
    }
}

/// Appends `fragment` with its `?` numbered as the next parameter.
fn push<'a>(
    sql: &mut String,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
    fragment: &str,
    value: &'a (dyn ToSql + Sync),
) {
    params.push(value);
    sql.push_str(&fragment.replace('?', &format!("${}", params.len())));
}

/// The position after which [`read_chain`] goes on: the `(seq, id)` of the
/// last record of a [`ChainPage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainCursor {
    seq: i64,
    id: Uuid,
}

impl ChainCursor {
    /// The cursor after the record of the chain with this seq and id.
    pub fn new(seq: i64, id: Uuid) -> Self {
        Self { seq, id }
    }

    /// The seq of the last record of the page.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// The id of the last record of the page.
    pub fn id(&self) -> Uuid {
        self.id
    }
}

/// One page of a chain.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ChainPage {
    /// The records, in `(seq, id)` order.
    pub records: Vec<StoredEvent>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ChainCursor>,
}

/// Up to `limit` (`1..=`[`MAX_LIMIT`]) rows of one chain, in `(seq, id)`
/// order: from the first (`after` `None`), or after a [`ChainPage::next`].
///
/// Paging through it returns every row of the chain once, including rows
/// the schema should have refused, should the table's owner have dropped
/// its constraints: a second row at a seq (next to the first, whichever
/// page boundary falls between them) and a negative seq (first). An export
/// that writes their records as they are lets the file verifier report
/// them. Two rows with the same seq and the same id are told apart by
/// nothing in this order, so a page may end between them: compare the rows
/// read with [`count_chain_rows`] through the last seq read.
///
/// # Errors
///
/// [`QueryError::InvalidLimit`], [`QueryError::Database`].
pub async fn read_chain(
    client: &Client,
    chain_id: &str,
    after: Option<ChainCursor>,
    limit: u32,
) -> Result<ChainPage, QueryError> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(QueryError::InvalidLimit { limit });
    }
    // One more than a page, to know whether another page follows.
    let rows_wanted = i64::from(limit) + 1;
    let rows = match &after {
        // No lower bound: a seq below 0 is read too.
        None => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM audit_events WHERE chain_id = $1 \
                         ORDER BY seq, id LIMIT $2"
                    ),
                    &[&chain_id, &rows_wanted],
                )
                .await?
        }
        // `seq >=` for the (chain_id, seq) index, the row comparison for
        // the rows that share the last seq.
        Some(after) => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM audit_events \
                         WHERE chain_id = $1 AND seq >= $2 AND (seq, id) > ($2, $3) \
                         ORDER BY seq, id LIMIT $4"
                    ),
                    &[&chain_id, &after.seq, &after.id, &rows_wanted],
                )
                .await?
        }
    };
    let (records, more) = page_of(&rows, limit)?;
    let next = if more {
        records.last().map(|e| ChainCursor::new(e.seq, e.id))
    } else {
        None
    };
    Ok(ChainPage { records, next })
}

/// The first `limit` of `rows` (read one more than a page), and whether
/// more follow.
fn page_of(rows: &[Row], limit: u32) -> Result<(Vec<StoredEvent>, bool), QueryError> {
    let limit = limit as usize;
    let records = rows
        .iter()
        .take(limit)
        .map(StoredEvent::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((records, rows.len() > limit))
}

/// How many rows the chain holds with a seq up to `through` (all of them
/// with `None`), rows without a seq included: after paging through a chain
/// with [`read_chain`], more than were read means rows that share a seq and
/// an id with a row read (possible only once the table's owner dropped its
/// `UNIQUE` constraint), which no order tells apart.
///
/// # Errors
///
/// [`QueryError::Database`].
pub async fn count_chain_rows(
    client: &Client,
    chain_id: &str,
    through: Option<i64>,
) -> Result<u64, QueryError> {
    Ok(u64::try_from(chain_rows(client, chain_id, through).await?).unwrap_or(0))
}

/// [`count_chain_rows`], with the driver's error (also for
/// `verify_postgres`).
pub(crate) async fn chain_rows(
    client: &Client,
    chain_id: &str,
    through: Option<i64>,
) -> Result<i64, tokio_postgres::Error> {
    client
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 \
               AND ($2::bigint IS NULL OR seq <= $2 OR seq IS NULL)",
            &[&chain_id, &through],
        )
        .await?
        .try_get(0)
}

/// The checkpoints of one chain, in the order they were stored, as the
/// signed objects of the checkpoint format.
///
/// # Errors
///
/// [`QueryError::Database`].
pub async fn read_checkpoints(client: &Client, chain_id: &str) -> Result<Vec<Value>, QueryError> {
    let rows = client
        .query(
            "SELECT record::text FROM audit_checkpoints WHERE chain_id = $1 ORDER BY id",
            &[&chain_id],
        )
        .await?;
    rows.iter()
        .map(|row| Ok(serde_json::from_str(row.try_get::<_, &str>(0)?)?))
        .collect()
}

/// The ids of the registered chains, in order.
///
/// # Errors
///
/// [`QueryError::Database`].
pub async fn chain_ids(client: &Client) -> Result<Vec<String>, QueryError> {
    let rows = client
        .query("SELECT chain_id FROM audit_chains ORDER BY chain_id", &[])
        .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_is_fixed_fragments_with_numbered_parameters() {
        let q = AuditQuery::new()
            .tenant("t'; DROP TABLE audit_events; --")
            .since(OffsetDateTime::UNIX_EPOCH)
            .after(Cursor::new(
                OffsetDateTime::UNIX_EPOCH,
                Uuid::nil(),
                "c'; DROP TABLE audit_events; --",
                7,
            ))
            .limit(10);
        let (sql, params) = q.sql();
        assert!(!sql.contains("DROP"), "{sql}");
        assert!(
            sql.ends_with(
                "WHERE true AND tenant = $1 AND time >= $2 AND (time, id) >= ($3, $4) \
                 AND (time, id, chain_id COLLATE \"C\", seq) > ($3, $4, $5, $6) \
                 ORDER BY time, id, chain_id COLLATE \"C\", seq LIMIT 11"
            ),
            "{sql}"
        );
        assert_eq!(params.len(), 6);
        let q = AuditQuery::new().actor("a").action("b");
        let (sql, params) = q.sql();
        assert!(
            sql.ends_with(
                "WHERE true AND actor = $1 AND action = $2 \
                 ORDER BY time, id, chain_id COLLATE \"C\", seq LIMIT 101"
            ),
            "{sql}"
        );
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn cursor_text_round_trips_and_rejects_garbage() {
        let time = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap();
        let id = Uuid::now_v7();
        for (chain_id, seq) in [("019a_ch/ain é", 42), ("x", -2), ("_", i64::MIN)] {
            let cursor = Cursor::new(time, id, chain_id, seq);
            let text = cursor.to_string();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{text}"
            );
            assert_eq!(text.parse::<Cursor>().unwrap(), cursor);
        }
        let id = id.simple();
        for bad in [
            "",
            "x",
            "1_",
            "_0",
            "1_zz",
            "a_00000000000000000000000000000000",
            // The two-part cursor of earlier versions.
            &format!("1700000000123456_{id}"),
            &format!("1700000000123456_{id}_78_"),
            &format!("1700000000123456_{id}__1"),
            &format!("1700000000123456_{id}_7_1"),
            &format!("1700000000123456_{id}_ff_1"),
            &format!("1700000000123456_{id}_78_1_"),
            &format!("1700000000123456_{id}_78_x"),
            // Microseconds whose nanoseconds overflow (a crafted URL).
            &format!("{}_{id}_78_1", i128::MAX),
            &format!("{}_{id}_78_1", i128::MIN),
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
