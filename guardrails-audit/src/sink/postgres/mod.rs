//! The PostgreSQL sink: one tamper-evident audit trail for many instances
//! (feature `postgres`).
//!
//! - [`migrate`] creates and upgrades the schema (explicit, versioned,
//!   idempotent).
//! - [`PostgresSink`] writes the pipeline's batches into `audit_events`, in
//!   the same hash-chain format as the JSON-lines file, with group commit,
//!   retries and signed checkpoints.
//! - [`record_in`] records an event inside the application's own
//!   transaction (the outbox); the sink moves committed outbox rows into its
//!   chain.
//!
//! ```no_run
//! use guardrails_audit::sink::postgres::{PostgresSink, migrate};
//! use guardrails_audit::{AuditLayer, AuditPipeline};
//! use secrecy::SecretString;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Once per deployment, as the schema owner:
//! let (mut owner, connection) =
//!     tokio_postgres::connect("host=127.0.0.1 user=audit_owner dbname=app", tokio_postgres::NoTls).await?;
//! tokio::spawn(connection);
//! migrate(&mut owner).await?;
//!
//! // In every instance, as the writer role:
//! let url = SecretString::from(std::env::var("AUDIT_DATABASE_URL")?);
//! let sink = PostgresSink::builder(url)
//!     .hmac_key(SecretString::from(std::env::var("AUDIT_HMAC_KEY")?))
//!     .open()
//!     .await?;
//! let (auditor, guard) = AuditPipeline::builder().spawn(sink)?;
//! let layer = AuditLayer::new(auditor);
//! // ... serve with the layer, then:
//! guard.shutdown(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```
//!
//! # Schema
//!
//! `migrations/0001_audit_trail.sql`, `0002_outbox_record_size.sql` and
//! `0003_chain_owners.sql`
//! (schema version [`SCHEMA_VERSION`]), applied by [`migrate`] and recorded
//! in `guardrails_audit_migrations`:
//!
//! - `audit_chains (chain_id, alg, created_at, instance, registered_by)`:
//!   every chain, so a chain whose records were all removed is still known,
//!   with the role that registered it;
//! - `audit_events`: the chain columns `chain_id`, `seq`, `prev`, `hash`
//!   (`UNIQUE (chain_id, seq)`), the event's columns for queries (`id`,
//!   `time`, `action`, `category`, `outcome`, `reason`, `actor`, `tenant`,
//!   `auth_method`, `target_type`, `target_id`, `source_ip`, `request_id`,
//!   `method`, `route`, `status`, `duration_us`) and `record`, the whole
//!   record as `jsonb`: exactly the record that was hashed, with
//!   `chain.hash`. Indexes by tenant and time, actor and time, time, and
//!   request id;
//! - `audit_checkpoints`: signed checkpoints, each `record` the same object
//!   as a line of the file sink's checkpoint file;
//! - `audit_outbox`: events recorded with [`record_in`], waiting for a sink;
//!   a row longer than [`MAX_OUTBOX_RECORD_BYTES`] is refused by the
//!   database (the `audit_outbox_record_size` constraint, version 2).
//!
//! # Chains: one per writer
//!
//! Each sink appends to its own chain, so writers never wait on each other:
//! by default a fresh UUIDv7 chain id every time a sink is built (a restarted
//! instance starts a new chain; `audit_chains` lists them all). With
//! [`PostgresSinkBuilder::chain_id`] an instance continues its chain across
//! restarts: the sink reads the chain's head (the last record, which must
//! verify with its key) and goes on from there. It first reads the chain's
//! newest checkpoint, which must verify with its checkpoint key and agree
//! with its row, and refuses with [`PgError::BehindCheckpoints`] a chain
//! that no longer holds the record that checkpoint names (its `hash`
//! column compared): records removed while their checkpoints remain are
//! not written over (a crash never does that: a checkpoint commits with
//! the records it names). This is a check at start, not verification: an
//! owner who also removes the checkpoints above a cut, or rewrites a
//! record's content, is found by [`verify_postgres`](crate::verify::postgres::verify_postgres):
//! a rewrite by the chain's hashes, a cut above removed checkpoints only
//! against checkpoints kept off the database
//! ([`PgVerifyOptions::checkpoints`](crate::verify::postgres::PgVerifyOptions::checkpoints), below). Never run two writers with
//! the same chain id at once: their inserts collide on `(chain_id, seq)`; the
//! sink detects it (a record at its seq with another hash), logs an error,
//! counts `guardrails_audit_postgres_chain_conflicts_total` and retries after
//! the other writer's record, so nothing is lost, but the two writers then
//! serialize on one chain.
//!
//! # Delivery and idempotency
//!
//! Each batch is one transaction holding one `COPY audit_events … FROM
//! STDIN (FORMAT binary)` (prepared once per connection; rows stream to the
//! server in chunks while the next events are chained and encoded), plus
//! the outbox rows it relays and a checkpoint when one is due. A record at a
//! seq the chain already holds makes the server refuse the whole `COPY`;
//! the sink rolls back, reads the chain's head again and retries. The pipeline acknowledges a batch only
//! after `COMMIT` returned; with `synchronous_commit` on (the server's
//! default, checked at connect) a committed batch is on the server's disk,
//! and the receipt says `durable: true`.
//!
//! When anything fails (connection lost, server restarting, a timeout) the
//! sink drops the connection and retries the same batch with exponential
//! backoff for at most [`PostgresSinkBuilder::retry_for`] (2 s by default):
//! it reconnects, re-reads the chain head and first looks at the seq of the
//! batch's first record: if a commit reached the server but its
//! acknowledgement was lost, a record with exactly that record's hash is
//! there (encoding is deterministic), and the batch is acknowledged as it
//! is; otherwise
//! it is chained again from the head (the same seqs) and inserted. The
//! `UNIQUE (chain_id, seq)` constraint refuses a second record at a seq, so
//! a seq is never reused for other content. So a database restart neither loses nor duplicates an
//! acknowledged event. When the retries are exhausted the batch fails, and
//! the pipeline does what its mode says:
//!
//! | mode | with PostgreSQL |
//! |---|---|
//! | `BestEffort` | the request never waits; events of a failed batch are counted (`guardrails_audit_dropped_total{reason="sink_error"}`) and an in-band `audit.dropped {reason: "sink_error", count}` record is written as soon as the database accepts writes again |
//! | `Blocking` | the response waits for the commit; a failed batch (after the retries) answers 500 |
//! | `Strict` | the attempt record is committed before the handler runs; if it cannot be (after the retries), 503 and the handler does not run |
//!
//! A batch reported failed may in rare cases exist after all (the commit
//! reached the server, then the server stayed unreachable until the retries
//! were spent): the failure is then over-reported, never hidden.
//!
//! # What the table owner can still do
//!
//! The writer role (below) can only `INSERT` and `SELECT`; `UPDATE`,
//! `DELETE` and `TRUNCATE` are not granted, and `BEFORE UPDATE OR DELETE`
//! row triggers and `BEFORE TRUNCATE` statement triggers refuse them even for
//! a role that has the privilege. The owner of the tables, and any
//! superuser, can still drop the triggers, rewrite rows, or drop the tables:
//! a database cannot protect data from its own administrators. That is why
//! the records stay hash-chained (HMAC with a key the database never sees
//! makes a rewrite detectable even for the owner) and why checkpoints exist:
//! signed checkpoints make truncation and wholesale rewrites detectable up
//! to the last checkpoint. Checkpoints in the database are the owner's to
//! remove too: against an owner, truncation (and a chain removed whole) is
//! found only against a copy kept elsewhere. Have a job copy the rows
//! added to `audit_checkpoints` since its last run off the database (one
//! `record` per line, appended), for example, as a role that may read it,
//! with `N` the highest `id` it copied before:
//!
//! ```text
//! echo "SELECT record::text FROM audit_checkpoints WHERE id > N ORDER BY id" \
//!   | psql "$AUDIT_READER_URL" -At >> /elsewhere/audit.checkpoints
//! ```
//!
//! (a checkpoint copied twice is checked once, but a job that appends
//! every row each time makes the file, and the time to verify it, grow
//! with every run), and verify with
//! [`PgVerifyOptions::checkpoints`](crate::verify::postgres::PgVerifyOptions::checkpoints)
//! (`guardrails-audit verify --postgres --checkpoints /elsewhere/audit.checkpoints`).
//!
//! # The writer role
//!
//! Run [`migrate`] as the schema owner, then grant the writer only what it
//! needs (`migrations/writer_role.sql`):
//!
//! ```sql
//! CREATE ROLE audit_writer LOGIN PASSWORD '...';
//! GRANT SELECT, INSERT ON audit_chains, audit_events, audit_checkpoints TO audit_writer;
//! GRANT SELECT, INSERT, DELETE ON audit_outbox TO audit_writer;
//! GRANT UPDATE (created_at) ON audit_outbox TO audit_writer; -- row locks only (a trigger refuses updates)
//! -- an application that only records through the outbox:
//! GRANT INSERT ON audit_outbox TO app_role;
//! ```
//!
//! One writer role for every instance means each may `INSERT` into any
//! chain. An instance that turns hostile (or whoever has its login) cannot
//! change or hide another chain's records, but it can append a record at
//! another chain's next seq. Without the chain key, that record does not
//! verify: the chain's sink refuses its head and stops writing (its batches
//! fail as the delivery mode says), and `verify_postgres` names the row.
//! With the chain key, which instances that share one key all hold, it can
//! append a record that verifies, and the chain's sink goes on after it:
//! instances that share a key can write in each other's name. Where
//! instances do not trust each other, give each its own login role (with
//! the grants above) and apply `migrations/chain_owners.sql` as the owner
//! after [`migrate`]: each chain then takes rows only from the role that
//! registered it (`audit_chains.registered_by`, schema version 3), and an
//! unregistered chain id from none, checked once per insert statement
//! (row-level security does not apply to the sink's `COPY`). It costs about
//! 5 to 10 % of the sink's throughput, which is why [`migrate`] does not
//! apply it. It does not stop a hostile instance from stalling another's
//! insert (an uncommitted row at its next seq holds the unique index) or
//! from deleting outbox rows; the file says more, and how to give chains
//! registered before version 3 an owner. A row inserted into `audit_outbox`
//! by hand (`app_role` can) is never taken for one of the library's own
//! records: actions starting with `audit.` are rejected.
//!
//! # The outbox
//!
//! [`record_in`] inserts the event (redacted, as the pipeline would) into
//! `audit_outbox` through the caller's client or transaction: the event
//! exists if and only if the caller's transaction commits — the only way to
//! make "the change happened" and "the audit record exists" one fact.
//! Before every batch and at every tick, a sink takes committed outbox rows
//! (`SELECT … ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED`), chains them,
//! inserts them into `audit_events` and deletes them from the outbox, in
//! the same transaction: each row moves exactly once, and several sinks
//! relay concurrently without waiting on each other. An outbox row that is
//! not an audit record (written by hand) is replaced by an
//! `audit.outbox_rejected` record keeping its text, never silently dropped;
//! so is a record whose columns would not say what it says (a time with
//! more than microseconds, a `status` beyond `int4`), which verification
//! would report as modified. A record longer than
//! [`MAX_OUTBOX_RECORD_BYTES`] is refused by [`record_in`]; such a row
//! written by other means is replaced, unread, by a rejection naming its id
//! and sizes. One transaction relays at most 1 MiB of records (and at most
//! [`PostgresSinkBuilder::outbox_relay`] rows); the rest wait for the next.
//! Outbox events get their chain position when relayed, so their `seq`
//! order is relay order; their `time` is when they were recorded.
//!
//! # U+0000
//!
//! Neither `jsonb` nor `text` can hold the character U+0000. An event whose
//! strings (fields, detail keys or values) contain it is stored with each
//! U+0000 replaced by U+FFFD (the replacement character) **before** it is
//! hashed, so the stored record verifies as stored; events without U+0000
//! are not touched (a cheap scan of the canonical bytes decides). The same
//! event in a JSON-lines file keeps its U+0000 (as `\u0000`).
//!
//! # TLS
//!
//! By default the sink connects without TLS (`tokio_postgres::NoTls`): fine
//! on loopback, a Unix socket, or a private network you trust. Elsewhere,
//! pass a `tokio_postgres` TLS connector to [`PostgresSinkBuilder::tls`]
//! and put `sslmode=require` in the connection string, so that a server
//! without TLS is refused rather than used in plain text (without a
//! connector, `sslmode=require` makes every connection fail).
//!
//! With the feature `postgres-rustls`, `rustls_connector` builds one:
//! `tokio-postgres-rustls` with rustls on aws-lc-rs, the server certificate
//! and host name always verified against Mozilla's roots (webpki-roots)
//! plus an optional PEM CA file (a managed database's private CA); there is
//! no option to skip verification. Use the same connector for [`migrate`]'s
//! connection and the sink. Any other connector works too
//! (`postgres-native-tls`, your own rustls configuration): the `postgres`
//! feature alone picks no TLS stack.
//!
//! # Metrics and tracing
//!
//! Besides the pipeline's metrics (with `sink="postgres"`):
//! `guardrails_audit_postgres_connects_total{result="ok"|"error"}`,
//! `guardrails_audit_postgres_retries_total`,
//! `guardrails_audit_postgres_recovered_batches_total` (batches found
//! committed after a lost acknowledgement),
//! `guardrails_audit_postgres_chain_conflicts_total` and
//! `guardrails_audit_postgres_outbox_relayed_total`. Warnings and errors go
//! to target `audit` with the chain id; the connection string never appears
//! in a log, an error or `Debug` output.

mod encode;

pub(crate) use encode::{ColumnValues, TEXT_COLUMNS, TimeText};
mod migrate;
mod outbox;
mod sink;
#[cfg(feature = "postgres-rustls")]
mod tls;

pub use migrate::{MigrationReport, SCHEMA_VERSION, migrate};
pub use outbox::{MAX_OUTBOX_RECORD_BYTES, record_in, record_in_with};
pub use sink::{ACTION_OUTBOX_REJECTED, PostgresSink, PostgresSinkBuilder};
#[cfg(feature = "postgres-rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-rustls")))]
pub use tls::{CaFileProblem, MakeRustlsConnect, TlsSetupError, rustls_connector};

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use crate::jcs::NotCanonical;
use crate::sink::SinkError;

/// Parses a PostgreSQL connection string, a URL
/// (`postgresql://user@host/db?sslmode=require`) or key/value pairs
/// (`host=db user=audit sslmode=require`), the way the sink and the CLI do.
///
/// # Errors
///
/// [`PgError::InvalidConfig`], which never repeats the string (it usually
/// holds a password): it does not parse, or it asks for libpq's
/// `sslmode=verify-ca` or `verify-full`, which `tokio-postgres` does not
/// know. With a verifying connector such as `rustls_connector` (feature
/// `postgres-rustls`), `sslmode=require` is what libpq calls `verify-full`:
/// TLS, the certificate chain and the host name checked.
///
/// ```
/// use guardrails_audit::sink::postgres::connection_config;
/// use secrecy::SecretString;
///
/// let config = connection_config(&SecretString::from(
///     "postgresql://audit:pw@db.internal/app?sslmode=require",
/// ))
/// .unwrap();
/// assert_eq!(config.get_dbname(), Some("app"));
///
/// let error = connection_config(&SecretString::from(
///     "postgresql://audit:pw@db.internal/app?sslmode=verify-full",
/// ))
/// .unwrap_err();
/// assert!(error.to_string().contains("sslmode=require"));
/// assert!(!error.to_string().contains("pw"));
/// ```
pub fn connection_config(conn: &SecretString) -> Result<tokio_postgres::Config, PgError> {
    let conn = conn.expose_secret();
    tokio_postgres::Config::from_str(conn).map_err(|_| {
        PgError::InvalidConfig(if asks_for_libpq_verify(conn) {
            "sslmode=verify-ca and sslmode=verify-full are libpq's, which tokio-postgres does not \
             take: use sslmode=require, which with a TLS connector that verifies certificates \
             (this crate's rustls_connector, the CLI's) checks the certificate chain and the \
             host name, as libpq's verify-full does (the string may have other errors too)"
        } else {
            "the connection string does not parse"
        })
    })
}

/// Turns the default `sslmode=prefer` into `require` for a connection made
/// with a TLS connector: with `prefer`, an active attacker on the network
/// path can answer that the server has no TLS, and the client goes on in
/// the clear (handing over a cleartext password when asked for one, and
/// taking forged replies, a forged `COMMIT` among them). The sink does this
/// when given a connector ([`PostgresSinkBuilder::tls`]); so does the CLI
/// built with `postgres-rustls`. Left as it is: an explicit
/// `sslmode=disable`, and a configuration whose hosts are all Unix sockets
/// (where PostgreSQL offers no TLS). An explicit `sslmode=prefer` is
/// upgraded too: to connect without TLS, say `disable`.
///
/// ```
/// use guardrails_audit::sink::postgres::{connection_config, require_tls};
/// use secrecy::SecretString;
/// use tokio_postgres::config::SslMode;
///
/// let mut config = connection_config(&SecretString::from("host=db.internal user=audit")).unwrap();
/// require_tls(&mut config);
/// assert_eq!(config.get_ssl_mode(), SslMode::Require);
/// ```
pub fn require_tls(config: &mut tokio_postgres::Config) {
    let all_unix = {
        #[cfg(unix)]
        {
            let hosts = config.get_hosts();
            !hosts.is_empty()
                && hosts
                    .iter()
                    .all(|host| matches!(host, tokio_postgres::config::Host::Unix(_)))
        }
        #[cfg(not(unix))]
        {
            false
        }
    };
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Prefer && !all_unix {
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
}

/// Whether `conn` sets `sslmode` to `verify-ca` or `verify-full`: as a URL
/// query parameter (percent-encoded or not) or a key/value pair (spaces
/// around `=`, the value quoted or not).
fn asks_for_libpq_verify(conn: &str) -> bool {
    let ends_value = |c: char| c.is_whitespace() || matches!(c, '&' | '\'' | '#');
    conn.match_indices("sslmode").any(|(at, key)| {
        let before = conn[..at].chars().next_back();
        if !before.is_none_or(|c| c.is_whitespace() || matches!(c, '?' | '&')) {
            return false;
        }
        let rest = conn[at + key.len()..].trim_start();
        let Some(value) = rest.strip_prefix('=') else {
            return false;
        };
        let value = value.trim_start();
        let value = value.strip_prefix('\'').unwrap_or(value);
        let value = value.split(ends_value).next().unwrap_or_default();
        // A URL may encode the hyphen (`verify%2Dfull`).
        let value = value.replace("%2D", "-").replace("%2d", "-");
        matches!(value.as_str(), "verify-ca" | "verify-full")
    })
}

/// A PostgreSQL operation of the audit trail failed.
///
/// No variant holds or prints the connection string. Neither `Display`,
/// `Debug` nor the [`source`](std::error::Error::source) chain shows the
/// server's `DETAIL` or `HINT` (a constraint violation's `DETAIL` quotes the
/// row, i.e. audit data), so an error report that walks the chain (`{:#}`
/// in `anyhow`, `tracing`'s error values) stays free of audit data. The
/// driver's error itself, `DETAIL` included, is the public `driver` field of
/// [`PgError::Database`], for code that asks for it explicitly.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The configuration is invalid (the message never repeats the
    /// connection string).
    #[error("invalid PostgreSQL audit configuration: {0}")]
    InvalidConfig(&'static str),
    /// The server refused or failed a statement, or the connection broke.
    #[error("PostgreSQL audit {operation} failed: {}", describe(driver))]
    Database {
        /// What was being done (`connect`, `insert events`, `commit`…).
        operation: &'static str,
        /// The driver's error. Not the error's `source`: its `Display`
        /// quotes the server's `DETAIL`, which may hold row values. The
        /// message above already names the server's message, SQLSTATE, or
        /// the I/O cause.
        driver: tokio_postgres::Error,
    },
    /// An operation took longer than the configured I/O timeout.
    #[error("PostgreSQL audit {operation} timed out")]
    Timeout {
        /// What was being done.
        operation: &'static str,
    },
    /// The database records a schema version newer than this crate knows.
    #[error("the audit schema is at version {found}, newer than version {known} of this crate")]
    NewerSchema {
        /// The version recorded in the database.
        found: i32,
        /// The newest version this crate knows.
        known: i32,
    },
    /// The stored chain cannot be continued by this sink (another
    /// algorithm, another key, a damaged last record).
    #[error("the audit chain cannot be continued: {0}")]
    Incompatible(&'static str),
    /// The chain does not hold the records its newest checkpoint names:
    /// rows were removed or rewritten after they were committed (only the
    /// tables' owner can, past the triggers). A crash never does that (a
    /// checkpoint commits with the records it names), so the sink refuses to
    /// write over the gap, where its new records would take the removed
    /// ones' seqs.
    #[error(
        "the audit chain does not hold its checkpointed records ({0}); restore them from a \
         backup, or write a new chain (another chain id) and keep this one as evidence"
    )]
    BehindCheckpoints(String),
    /// Another writer appended a different record at this seq of the chain.
    #[error("another writer appended record {seq} of this audit chain")]
    ChainConflict {
        /// The contested seq.
        seq: u64,
    },
    /// A record has no canonical form.
    #[error(transparent)]
    NotCanonical(#[from] NotCanonical),
    /// [`record_in`] refused an event: its record is longer than
    /// [`MAX_OUTBOX_RECORD_BYTES`]. Nothing was inserted.
    #[error("the audit record is {size} bytes, more than the outbox takes ({max})")]
    OutboxRecordTooLarge {
        /// The record's length in bytes (as far as it was measured: its
        /// canonical JSON when that is already too long, otherwise its text
        /// as the server writes it).
        size: usize,
        /// [`MAX_OUTBOX_RECORD_BYTES`].
        max: usize,
    },
    /// [`record_in`] refused an event whose action is in the library's own
    /// namespace ([`RESERVED_ACTION_PREFIX`](crate::event::RESERVED_ACTION_PREFIX),
    /// `audit.`). Nothing was inserted.
    #[error("audit actions starting with `audit.` are the library's own")]
    ReservedAction,
    /// The sink has no connection (closed).
    #[error("the PostgreSQL audit sink is closed")]
    Closed,
}

impl std::fmt::Debug for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidConfig(why) => f.debug_tuple("InvalidConfig").field(why).finish(),
            Self::Database { operation, driver } => f
                .debug_struct("Database")
                .field("operation", operation)
                .field("driver", &describe(driver))
                .finish(),
            Self::Timeout { operation } => f
                .debug_struct("Timeout")
                .field("operation", operation)
                .finish(),
            Self::NewerSchema { found, known } => f
                .debug_struct("NewerSchema")
                .field("found", found)
                .field("known", known)
                .finish(),
            Self::Incompatible(why) => f.debug_tuple("Incompatible").field(why).finish(),
            Self::BehindCheckpoints(why) => f.debug_tuple("BehindCheckpoints").field(why).finish(),
            Self::ChainConflict { seq } => {
                f.debug_struct("ChainConflict").field("seq", seq).finish()
            }
            Self::NotCanonical(e) => f.debug_tuple("NotCanonical").field(e).finish(),
            Self::OutboxRecordTooLarge { size, max } => f
                .debug_struct("OutboxRecordTooLarge")
                .field("size", size)
                .field("max", max)
                .finish(),
            Self::ReservedAction => f.write_str("ReservedAction"),
            Self::Closed => f.write_str("Closed"),
        }
    }
}

impl PgError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |driver| Self::Database { operation, driver }
    }

    /// Whether retrying (after reconnecting) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Database { .. }
                | Self::Timeout { .. }
                | Self::ChainConflict { .. }
                | Self::Closed
        )
    }

    /// The server's SQLSTATE code, for a [`PgError::Database`] error that
    /// the server reported.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Database { driver, .. } => {
                driver.code().map(tokio_postgres::error::SqlState::code)
            }
            _ => None,
        }
    }

    /// What went wrong, without the operation that the `Display` form
    /// starts with: for a [`PgError::Database`] error the server's message
    /// and SQLSTATE, or the driver's message and its causes (never the
    /// server's `DETAIL`); otherwise the `Display` form.
    ///
    /// ```
    /// use guardrails_audit::sink::postgres::PgError;
    ///
    /// let error = PgError::InvalidConfig("no host");
    /// assert_eq!(error.reason(), error.to_string());
    /// ```
    pub fn reason(&self) -> String {
        match self {
            Self::Database { driver, .. } => describe(driver),
            other => other.to_string(),
        }
    }
}

/// The driver's error with the server's message and SQLSTATE, without its
/// `DETAIL` (which may quote row values).
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        // Not the server's: the driver's own message and its causes (I/O,
        // TLS: "error performing TLS handshake" says why only there).
        None => {
            let mut text = error.to_string();
            let mut cause = std::error::Error::source(error);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            text
        }
    }
}

impl From<PgError> for SinkError {
    fn from(error: PgError) -> Self {
        SinkError::Other(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_verify_modes_are_named_in_the_error() {
        for conn in [
            "postgresql://u:pw@h/db?sslmode=verify-full",
            "postgresql://u:pw@h/db?x=1&sslmode=verify-ca&y=2",
            "host=h sslmode=verify-full user=u",
            "host=h sslmode = verify-ca",
            "sslmode=verify-full",
            "host=h sslmode='verify-full' user=u",
            "host=h\u{a0}sslmode=verify-ca",
            "postgresql://u:pw@h/db?sslmode=verify-full\r\n",
            "postgresql://u:pw@h/db?sslmode=verify%2Dfull",
            "postgresql://u:pw@h:notaport/db?sslmode=verify-full",
        ] {
            let error = connection_config(&SecretString::from(conn)).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("use sslmode=require"), "{conn}: {text}");
            assert!(!text.contains("pw"), "{text}");
        }
        for conn in [
            "postgresql://u:pw@h:notaport/db",
            "host=h sslmode=verify",
            "host=h xsslmode=verify-full",
            "postgresql://u:pw@h/db?sslmode=verify-fullest",
        ] {
            let error = connection_config(&SecretString::from(conn)).unwrap_err();
            assert!(
                error
                    .to_string()
                    .ends_with("the connection string does not parse"),
                "{conn}: {error}"
            );
        }
        let config =
            connection_config(&SecretString::from("host=h sslmode=require user=u")).unwrap();
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn a_tls_connection_does_not_fall_back_to_the_clear() {
        use tokio_postgres::config::SslMode;
        let mode = |conn: &str| {
            let mut config = connection_config(&SecretString::from(conn)).unwrap();
            require_tls(&mut config);
            config.get_ssl_mode()
        };
        assert_eq!(mode("host=h user=u"), SslMode::Require);
        assert_eq!(mode("postgresql://u@h/db?sslmode=prefer"), SslMode::Require);
        assert_eq!(mode("host=h,/run/postgresql user=u"), SslMode::Require);
        assert_eq!(mode("host=h sslmode=disable user=u"), SslMode::Disable);
        assert_eq!(mode("host=h sslmode=require user=u"), SslMode::Require);
        #[cfg(unix)]
        assert_eq!(mode("host=/run/postgresql user=u"), SslMode::Prefer);
    }
}
