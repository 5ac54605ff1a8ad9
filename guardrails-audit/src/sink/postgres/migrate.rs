//! Versioned schema migrations; see [`migrate`].

use tokio_postgres::Client;

use super::PgError;

/// A migration shipped with this crate.
#[derive(Clone, Copy, Debug)]
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. A shipped migration is never edited: changes
/// come as the next version.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "audit_trail",
        sql: include_str!("../../../migrations/0001_audit_trail.sql"),
    },
    Migration {
        version: 2,
        name: "outbox_record_size",
        sql: include_str!("../../../migrations/0002_outbox_record_size.sql"),
    },
    Migration {
        version: 3,
        name: "chain_owners",
        sql: include_str!("../../../migrations/0003_chain_owners.sql"),
    },
];

/// The schema version this crate writes.
pub const SCHEMA_VERSION: i32 = 3;

/// The advisory lock key that serializes concurrent `migrate` calls
/// (`'guardrai'` as a big-endian integer).
const LOCK_KEY: i64 = 0x6775_6172_6472_6169;

const CREATE_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS guardrails_audit_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// What [`migrate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The versions applied by this call, in order (empty when the schema
    /// was already current).
    pub applied: Vec<i32>,
    /// The schema version after the call.
    pub version: i32,
}

/// Creates or upgrades the audit schema in the connected database.
///
/// Creates `guardrails_audit_migrations (version, name, applied_at)` when
/// missing, then applies each migration of this crate that is not recorded
/// there, each in its own transaction that holds a transaction-level
/// advisory lock (so concurrent callers, several instances starting at once,
/// apply each migration once). Running it again is a no-op. Run it as the
/// owner of the schema, not as the writer role (see the
/// [module documentation](super)).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let (mut client, connection) =
///     tokio_postgres::connect("host=127.0.0.1 user=audit_owner dbname=app", tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// let report = guardrails_audit::sink::postgres::migrate(&mut client).await?;
/// println!("audit schema at version {}", report.version);
/// # Ok(()) }
/// ```
///
/// # Upgrades
///
/// A binary that runs `migrate` at start (as the saas-api example does)
/// cannot start against a database migrated by a newer version
/// ([`PgError::NewerSchema`]): during a rolling upgrade, or to be able to
/// roll back, run `migrate` of the new version as a deploy step of its own
/// and keep it out of the older binaries' start. Sinks that are already
/// running are not affected: they do not read the schema version. Version
/// 2 (a size limit on `audit_outbox`, which version 1's `record_in` already
/// enforced) and version 3 (the role that registered each chain, filled in
/// by a trigger) are compatible with version 1 code. A migration that
/// cannot take its lock within a few seconds fails (`lock_timeout`) and
/// changes nothing: run it again.
///
/// # Errors
///
/// [`PgError::Database`] when a statement fails (the failed migration is
/// rolled back); [`PgError::NewerSchema`] when the database records a
/// version newer than this crate knows (an older binary must not write into
/// a newer schema).
pub async fn migrate(client: &mut Client) -> Result<MigrationReport, PgError> {
    let mut report = MigrationReport::default();
    for migration in MIGRATIONS {
        let tx = client
            .transaction()
            .await
            .map_err(PgError::db("begin migration"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(PgError::db("lock migrations"))?;
        tx.batch_execute(CREATE_VERSIONS)
            .await
            .map_err(PgError::db("create migrations table"))?;
        let current: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM guardrails_audit_migrations",
                &[],
            )
            .await
            .map_err(PgError::db("read schema version"))?
            .get(0);
        if current > SCHEMA_VERSION {
            return Err(PgError::NewerSchema {
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        report.version = current;
        if current >= migration.version {
            tx.commit().await.map_err(PgError::db("commit migration"))?;
            continue;
        }
        tx.batch_execute(migration.sql)
            .await
            .map_err(PgError::db("apply migration"))?;
        tx.execute(
            "INSERT INTO guardrails_audit_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(PgError::db("record migration"))?;
        tx.commit().await.map_err(PgError::db("commit migration"))?;
        tracing::info!(
            target: "audit",
            version = migration.version,
            name = migration.name,
            "audit schema migration applied"
        );
        report.applied.push(migration.version);
        report.version = migration.version;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1);
            assert!(!m.sql.trim().is_empty());
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn the_outbox_constraint_says_what_record_in_checks() {
        let limit = super::super::MAX_OUTBOX_RECORD_BYTES.to_string();
        assert!(
            MIGRATIONS[1].sql.contains(&format!("<= {limit}")),
            "the constraint of 0002 and MAX_OUTBOX_RECORD_BYTES differ"
        );
    }
}
