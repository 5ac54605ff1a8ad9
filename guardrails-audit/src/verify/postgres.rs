//! Verification of the chains stored in PostgreSQL (feature `postgres`).
//!
//! [`verify_postgres`] checks one chain, or every chain, of the crate's
//! PostgreSQL schema (`migrations/0001_audit_trail.sql`), with the same
//! checks and the same [`DamageKind`]s as a file:
//!
//! - the rows of a chain are read in `(seq, id)` order, in keyset pages (a
//!   bounded amount of memory for the records whatever the size of the
//!   table; a chain's checkpoints, a few hundred bytes each, are read
//!   whole), and each row's
//!   `record` (the whole record as `jsonb`) is hashed again: the record is
//!   parsed into a JSON value and hashed in its RFC 8785 canonical form, as
//!   the sink hashed it;
//! - the row's columns must agree with its record: `seq`, `prev`, `hash`,
//!   `id`, `time` and every queryable event column (`action`, `tenant`,
//!   `actor`, `status`, …). A column edited without the record (which no
//!   hash covers, and which is what queries read) is [`DamageKind::Modified`];
//!   a row whose `seq` column was swapped with another's is
//!   [`DamageKind::Reordered`];
//! - a chain starts at seq 0: missing first rows are
//!   [`DamageKind::Truncated`] at seq 0;
//! - the chain's signed checkpoints (`audit_checkpoints`, in the file sink's
//!   checkpoint format) must match the records they name, and a checkpoint
//!   naming a seq beyond the last row means the end was cut:
//!   [`DamageKind::Truncated`] — also for a registered chain with no rows
//!   left at all;
//! - in the all-chains mode, rows of a chain that is not registered in
//!   `audit_chains` are [`DamageKind::Inserted`];
//! - every row of a chain up to its last record is read and checked: rows
//!   that the `(seq, id)` order would hide from a reader paging through it
//!   (a second row with the same `seq` and `id`, possible once the owner
//!   drops the `UNIQUE` constraint) are [`DamageKind::Inserted`], found by
//!   counting the chain's rows against the rows read; so are rows with a
//!   negative `seq` or none, and rows without a chain id (constraints the
//!   owner dropped);
//! - with [`PgVerifyOptions::checkpoints`], the chains are also checked
//!   against checkpoints kept off the database (a copy of
//!   `audit_checkpoints`, or the `--checkpoints-out` of an earlier
//!   `guardrails-audit export --chain`): the table owner can remove the
//!   newest records of a chain *and* the checkpoints that name them, or a
//!   whole chain with its registration, which only such a copy reveals
//!   ([`DamageKind::Truncated`]).
//!
//! The damage names the chain and the first bad seq in its
//! [`Location`]: the row (by its `seq` column), the checkpoint (by its id),
//! or the chain as a whole.
//!
//! A key ([`PgVerifyOptions::key`]) is needed for `hmac-sha256` chains; when
//! a key is given, every chain verified must be keyed (a plain `sha256` chain
//! is then reported as [`DamageKind::WrongKey`], since anyone could have
//! rewritten it).
//!
//! ```no_run
//! use guardrails_audit::verify::postgres::{PgVerifyOptions, verify_postgres};
//! use secrecy::SecretString;
//!
//! # async fn run(client: tokio_postgres::Client) -> Result<(), guardrails_audit::VerifyError> {
//! let options = PgVerifyOptions::new().key(SecretString::from("the chain key"));
//! let report = verify_postgres(&client, &options).await?;
//! for chain in &report.chains {
//!     println!("{:?}: {} records", chain.chain_id, chain.records);
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use super::check::{
    self, ChainInput, Checkpoint, Entry, Hashers, TrailEnds, check_chain, parse_record,
};
use super::{Damage, DamageKind, Location, VerifyError, VerifyReport};
use crate::chain::{ChainAlg, ChainHasher};
use crate::signing::{CheckpointVerifier, Ed25519VerifyingKey};
use crate::sink::postgres::{ColumnValues, PgError, TEXT_COLUMNS, TimeText};

/// Rows read per page.
const PAGE_ROWS: i64 = 2000;

/// Pages buffered between the reader and the checker.
const PAGES_IN_FLIGHT: usize = 2;

/// What to verify and with which keys; `Debug` never shows keys.
#[derive(Default, Clone)]
#[must_use]
pub struct PgVerifyOptions {
    key: Option<SecretString>,
    checkpoint_key: Option<SecretString>,
    checkpoint_public_key: Option<Ed25519VerifyingKey>,
    chain: Option<String>,
    checkpoints: Option<PathBuf>,
}

impl fmt::Debug for PgVerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgVerifyOptions")
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field(
                "checkpoint_key",
                &self.checkpoint_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("checkpoint_public_key", &self.checkpoint_public_key)
            .field("chain", &self.chain)
            .field("checkpoints", &self.checkpoints)
            .finish()
    }
}

impl PgVerifyOptions {
    /// Every chain, no key.
    pub fn new() -> Self {
        Self::default()
    }

    /// The chain key (needed for `hmac-sha256` chains; also the default
    /// checkpoint key).
    pub fn key(mut self, key: SecretString) -> Self {
        self.key = Some(key);
        self
    }

    /// The checkpoint key, when it differs from the chain key.
    pub fn checkpoint_key(mut self, key: SecretString) -> Self {
        self.checkpoint_key = Some(key);
        self
    }

    /// The public key of the Ed25519 key that signs the checkpoints. With
    /// it, HMAC-signed and unsigned checkpoints are damage.
    pub fn checkpoint_public_key(mut self, key: Ed25519VerifyingKey) -> Self {
        self.checkpoint_public_key = Some(key);
        self
    }

    /// Only this chain (by default, every registered chain, and any chain
    /// with rows but no registration).
    pub fn chain(mut self, chain_id: impl Into<String>) -> Self {
        self.chain = Some(chain_id.into());
        self
    }

    /// Also check the chains against the checkpoints in this file, kept
    /// off the database: one checkpoint per line, as `audit_checkpoints`
    /// stores them and the file sink writes them (a copy a job ships
    /// elsewhere, or the `--checkpoints-out` of `guardrails-audit export
    /// --chain`), any chains mixed, each chain's in the order they were
    /// written. Every line must verify with the checkpoint key. A chain must
    /// still hold every record they name, and a chain they name must still
    /// exist: the table owner can remove a chain's newest records together
    /// with the checkpoints in the database that name them, or a whole
    /// chain, which only a copy kept elsewhere reveals.
    pub fn checkpoints(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoints = Some(path.into());
        self
    }
}

/// Every chain verified, whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgVerifyReport {
    /// One report per chain, by chain id.
    pub chains: Vec<VerifyReport>,
}

impl PgVerifyReport {
    /// Records verified over all chains.
    pub fn records(&self) -> u64 {
        self.chains.iter().map(|c| c.records).sum()
    }
}

fn db(operation: &'static str) -> impl FnOnce(tokio_postgres::Error) -> VerifyError {
    move |driver| VerifyError::Database(PgError::db(operation)(driver))
}

/// Verifies the chains in the database `client` is connected to; see the
/// [module documentation](self).
///
/// The role needs `SELECT` on `audit_chains`, `audit_events` and
/// `audit_checkpoints`. Must run inside a Tokio runtime (the hashing runs on
/// its blocking pool while the next page is read).
///
/// # Errors
///
/// [`VerifyError::Damaged`] naming the first damage (chains are verified in
/// chain id order), [`VerifyError::KeyRequired`] for a keyed chain without a
/// key, [`VerifyError::UnknownChain`] when the requested chain has neither a
/// registration nor rows, and [`VerifyError::Database`] when a query fails.
pub async fn verify_postgres(
    client: &Client,
    options: &PgVerifyOptions,
) -> Result<PgVerifyReport, VerifyError> {
    let mut kept = match &options.checkpoints {
        Some(path) => read_kept_checkpoints(path, options)?,
        None => BTreeMap::new(),
    };
    if let Some(id) = &options.chain {
        kept.retain(|chain_id, _| chain_id == id);
    }
    // A chain whose checkpoints were kept but which is gone: its rows, its
    // checkpoints and its registration removed.
    let gone = |chain_id: String| {
        VerifyError::Damaged(Damage {
            kind: DamageKind::Truncated,
            seq: Some(0),
            detail: "a chain named by the checkpoints kept off the database is gone (its \
                     records and its registration were removed)"
                .into(),
            location: Location::Chain { chain_id },
        })
    };
    let registered: Vec<(String, String)> = match &options.chain {
        Some(id) => client
            .query(
                "SELECT chain_id, alg FROM audit_chains WHERE chain_id = $1",
                &[id],
            )
            .await
            .map_err(db("read the chain"))?,
        None => client
            .query(
                "SELECT chain_id, alg FROM audit_chains ORDER BY chain_id",
                &[],
            )
            .await
            .map_err(db("list the chains"))?,
    }
    .iter()
    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
    .collect::<Result<_, tokio_postgres::Error>>()
    .map_err(db("read the chains"))?;

    // Rows of chains without a registration (the sink registers its chain
    // before its first record: these were written by something else).
    let unregistered: Vec<String> = match &options.chain {
        Some(id) if registered.is_empty() => {
            let rows = client
                .query(
                    "SELECT 1 FROM audit_events WHERE chain_id = $1 LIMIT 1",
                    &[id],
                )
                .await
                .map_err(db("read the chain"))?;
            if rows.is_empty() {
                if kept.contains_key(id) {
                    return Err(gone(id.clone()));
                }
                return Err(VerifyError::UnknownChain {
                    chain_id: id.clone(),
                });
            }
            vec![id.clone()]
        }
        Some(_) => Vec::new(),
        None => client
            .query(
                // A skip scan over the (chain_id, seq) index: one probe per chain.
                "WITH RECURSIVE c(id) AS ( \
                   (SELECT chain_id FROM audit_events ORDER BY chain_id LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT e.chain_id FROM audit_events e WHERE e.chain_id > c.id \
                           ORDER BY e.chain_id LIMIT 1) FROM c WHERE c.id IS NOT NULL) \
                 SELECT id FROM c WHERE id IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM audit_chains a WHERE a.chain_id = c.id)",
                &[],
            )
            .await
            .map_err(db("list the chains"))?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(db("list the chains"))?,
    };
    if let Some(chain_id) = unregistered.into_iter().min() {
        let first: Option<i64> = client
            .query_one(
                "SELECT min(seq) FROM audit_events WHERE chain_id = $1",
                &[&chain_id],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(db("read the chain"))?;
        return Err(VerifyError::Damaged(Damage {
            kind: DamageKind::Inserted,
            seq: first.and_then(|s| u64::try_from(s).ok()),
            detail: "records of a chain that is not registered in audit_chains".into(),
            location: Location::Chain { chain_id },
        }));
    }

    if let Some(chain_id) = kept
        .keys()
        .find(|id| !registered.iter().any(|(registered, _)| registered == *id))
    {
        return Err(gone(chain_id.clone()));
    }
    // Rows without a chain id (the owner dropped the NOT NULL constraint)
    // belong to no chain a reader pages through.
    if options.chain.is_none() {
        let orphan = client
            .query_opt(
                "SELECT seq FROM audit_events WHERE chain_id IS NULL LIMIT 1",
                &[],
            )
            .await
            .map_err(db("list the chains"))?;
        if let Some(row) = orphan {
            let seq: Option<i64> = row.try_get(0).map_err(db("list the chains"))?;
            return Err(VerifyError::Damaged(Damage {
                kind: DamageKind::Inserted,
                seq: seq.and_then(|s| u64::try_from(s).ok()),
                detail: "records without a chain id".into(),
                location: Location::Chain {
                    chain_id: String::new(),
                },
            }));
        }
    }

    let mut report = PgVerifyReport::default();
    for (chain_id, alg) in registered {
        let kept = kept.remove(&chain_id).unwrap_or_default();
        report
            .chains
            .push(verify_chain(client, options, chain_id, &alg, kept).await?);
    }
    Ok(report)
}

/// The checkpoints of [`PgVerifyOptions::checkpoints`], by chain, each
/// chain's in file order, every one of them checked.
fn read_kept_checkpoints(
    path: &Path,
    options: &PgVerifyOptions,
) -> Result<BTreeMap<String, Vec<Result<Checkpoint, VerifyError>>>, VerifyError> {
    let io = |source| VerifyError::Io {
        path: path.to_owned(),
        source,
    };
    let verifier = checkpoint_verifier(options);
    let file = std::fs::File::open(path).map_err(io)?;
    let mut by_chain: BTreeMap<String, Vec<Checkpoint>> = BTreeMap::new();
    // A line seen before (a copy appended again) is checked once.
    let mut seen = std::collections::HashSet::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() || !seen.insert(line.clone()) {
            continue;
        }
        let number = index as u64 + 1;
        let checkpoint = check::parse_checkpoint(
            serde_json::from_str(&line).ok(),
            &verifier,
            Location::Line {
                file: path.to_owned(),
                line: number,
            },
            format!("kept checkpoint line {number}"),
        )?;
        let Some(chain_id) = checkpoint.chain_id.clone() else {
            return Err(VerifyError::Damaged(Damage {
                kind: DamageKind::Malformed,
                seq: checkpoint.seq,
                location: checkpoint.location,
                detail: "no chain id".into(),
            }));
        };
        by_chain.entry(chain_id).or_default().push(checkpoint);
    }
    // A job that copies the checkpoints again and again writes the same
    // ones more than once: each is checked once, in chain order.
    Ok(by_chain
        .into_iter()
        .map(|(chain_id, mut checkpoints)| {
            let key = |c: &Checkpoint| (c.seq, c.hash.clone(), c.reason.clone());
            checkpoints.sort_by_key(key);
            checkpoints.dedup_by(|a, b| key(a) == key(b));
            (chain_id, checkpoints.into_iter().map(Ok).collect())
        })
        .collect())
}

fn checkpoint_verifier(options: &PgVerifyOptions) -> CheckpointVerifier {
    CheckpointVerifier::from_keys(
        options.checkpoint_key.as_ref(),
        options.key.as_ref(),
        &[],
        options.checkpoint_public_key,
    )
}

async fn verify_chain(
    client: &Client,
    options: &PgVerifyOptions,
    chain_id: String,
    alg: &str,
    kept: Vec<Result<Checkpoint, VerifyError>>,
) -> Result<VerifyReport, VerifyError> {
    let chain_damage = |kind, detail: &str| {
        VerifyError::Damaged(Damage {
            kind,
            seq: None,
            location: Location::Chain {
                chain_id: chain_id.clone(),
            },
            detail: detail.to_owned(),
        })
    };
    let alg = match (ChainAlg::parse(alg), &options.key) {
        (Some(ChainAlg::HmacSha256), None) => return Err(VerifyError::KeyRequired),
        (Some(ChainAlg::Sha256), Some(_)) => {
            return Err(chain_damage(
                DamageKind::WrongKey,
                "a key was given, but the chain is registered as not keyed (plain sha256)",
            ));
        }
        (Some(alg), _) => alg,
        (None, _) => {
            return Err(chain_damage(
                DamageKind::Malformed,
                "the chain is registered with an unknown algorithm",
            ));
        }
    };

    // Rows below seq 0 or without a seq (the owner dropped the constraints)
    // are no record of the chain: named as such before the chain is read.
    let outside = client
        .query_opt(
            "SELECT seq FROM audit_events WHERE chain_id = $1 AND (seq < 0 OR seq IS NULL) \
             LIMIT 1",
            &[&chain_id],
        )
        .await
        .map_err(db("read the chain"))?;
    if outside.is_some() {
        return Err(chain_damage(
            DamageKind::Inserted,
            "a row with a negative seq or none, which the schema refuses",
        ));
    }

    let checkpoints = read_checkpoints(client, options, &chain_id).await?;
    let mut keep = check::wanted_seqs(&checkpoints);
    keep.extend(check::wanted_seqs(&kept));

    let text_columns = TEXT_COLUMNS.map(|(column, _)| column).join(", ");
    let statement = client
        .prepare(&format!(
            "SELECT seq, prev, hash, id, time, {text_columns}, status, duration_us, record::text \
             FROM audit_events \
             WHERE chain_id = $1 AND seq >= $2 AND (seq, id) > ($2, $3) \
             ORDER BY seq, id LIMIT $4"
        ))
        .await
        .map_err(db("prepare the chain query"))?;

    // The checker runs on the blocking pool and pulls pages as it goes, so
    // that the hashing of one page overlaps the reading of the next, and it
    // can look ahead (to name damage) without the reader knowing.
    let (pages, mut incoming) = tokio::sync::mpsc::channel::<Vec<RawRow>>(PAGES_IN_FLIGHT);
    let hashers = Hashers {
        sha: ChainHasher::sha256(),
        // Without a key, a record claiming hmac-sha256 in a sha256 chain is
        // judged by its algorithm, which differs from the registered one,
        // before its hash: any hasher does for it.
        hmac: Some(options.key.as_ref().map_or_else(
            || ChainHasher::hmac_bytes(Uuid::now_v7().as_bytes()),
            ChainHasher::hmac,
        )),
        previous: Vec::new(),
        ids: None,
    };
    let key_given = options.key.is_some();
    let id = chain_id.clone();
    let checker = tokio::task::spawn_blocking(move || {
        let input = ChainInput {
            alg: Some(alg),
            key_given,
            chain_id: Some(&id),
            starts_at_zero: true,
            keep: &keep,
            final_key_epoch: None,
            head_may_be_pruned: false,
        };
        let mut report = VerifyReport::default();
        let mut page = Vec::new().into_iter();
        let entries = std::iter::from_fn(|| {
            loop {
                if let Some(row) = page.next() {
                    return Some(row);
                }
                page = incoming.blocking_recv()?.into_iter();
            }
        })
        .map(|row: RawRow| {
            let seq = row.seq;
            (row.into_entry(&hashers), seq)
        });
        let state = check_chain(entries, &input, &mut report, |&seq| Location::Row {
            chain_id: id.clone(),
            seq: u64::try_from(seq).unwrap_or(0),
        })?;
        Ok::<_, VerifyError>((report, state))
    });

    let mut after = (-1_i64, Uuid::nil());
    let mut rows_read: i64 = 0;
    let read = async {
        loop {
            let rows = client
                .query(&statement, &[&chain_id, &after.0, &after.1, &PAGE_ROWS])
                .await
                .map_err(db("read the chain"))?;
            let full = rows.len() as i64 == PAGE_ROWS;
            let page = rows
                .iter()
                .map(RawRow::from_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read the chain"))?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = (last.seq, last.id);
            rows_read += page.len() as i64;
            // The checker stopped (damage found): nothing more to read.
            if pages.send(page).await.is_err() || !full {
                return Ok(());
            }
        }
    };
    let read: Result<(), VerifyError> = read.await;
    drop(pages);
    let checked = match checker.await {
        Ok(result) => result,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    // A verdict on a chain that could not be read to its end is no verdict.
    read?;
    let (mut report, state) = checked?;
    check_all_rows_read(client, &chain_id, after.0, rows_read).await?;
    let ends = TrailEnds {
        end: Location::Chain {
            chain_id: chain_id.clone(),
        },
        start: Location::Chain { chain_id },
        whole: true,
    };
    check::check_checkpoints(checkpoints, &state, &ends, &mut report)?;
    if !kept.is_empty() {
        check::check_checkpoints(kept, &state, &ends, &mut report)?;
    }
    Ok(report)
}

/// Counts the chain's rows up to `last_seq`, the seq of the last row read
/// (a writer appends only above it): more than `rows_read` means rows the
/// keyset order hid from the reader, a second row with the `seq` and `id`
/// of another at a page boundary.
async fn check_all_rows_read(
    client: &Client,
    chain_id: &str,
    last_seq: i64,
    rows_read: i64,
) -> Result<(), VerifyError> {
    let (count, last_seq) = if rows_read == 0 {
        (0, -1)
    } else {
        (rows_read, last_seq)
    };
    let stored = crate::query::chain_rows(client, chain_id, Some(last_seq))
        .await
        .map_err(db("count the chain's rows"))?;
    if stored == count {
        return Ok(());
    }
    let twice: Option<i64> = client
        .query_opt(
            "SELECT seq FROM audit_events WHERE chain_id = $1 AND seq <= $2 \
             GROUP BY seq HAVING count(*) > 1 ORDER BY seq LIMIT 1",
            &[&chain_id, &last_seq],
        )
        .await
        .and_then(|row| row.map(|row| row.try_get(0)).transpose())
        .map_err(db("count the chain's rows"))?;
    Err(VerifyError::Damaged(Damage {
        kind: DamageKind::Inserted,
        seq: twice.and_then(|seq| u64::try_from(seq).ok()),
        location: Location::Chain {
            chain_id: chain_id.to_owned(),
        },
        detail: format!(
            "the chain holds {stored} rows up to its last record, {count} of them in order: \
             the others share a seq and id with a row read"
        ),
    }))
}

/// The checkpoints of a chain, in the order they were stored, each with its
/// signature checked and its columns compared with its record.
async fn read_checkpoints(
    client: &Client,
    options: &PgVerifyOptions,
    chain_id: &str,
) -> Result<Vec<Result<Checkpoint, VerifyError>>, VerifyError> {
    let verifier = checkpoint_verifier(options);
    let rows = client
        .query(
            "SELECT id, seq, hash, record::text FROM audit_checkpoints \
             WHERE chain_id = $1 ORDER BY id",
            &[&chain_id],
        )
        .await
        .map_err(db("read the checkpoints"))?;
    let mut checkpoints = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get(0).map_err(db("read the checkpoints"))?;
        let seq: i64 = row.try_get(1).map_err(db("read the checkpoints"))?;
        let hash: String = row.try_get(2).map_err(db("read the checkpoints"))?;
        let record: String = row.try_get(3).map_err(db("read the checkpoints"))?;
        let location = Location::Checkpoint {
            chain_id: chain_id.to_owned(),
            id,
        };
        let parsed = check::parse_checkpoint(
            serde_json::from_str(&record).ok(),
            &verifier,
            location.clone(),
            format!("checkpoint {id}"),
        )
        .and_then(|cp| {
            let agrees = cp.chain_id.as_deref() == Some(chain_id)
                && cp.seq.and_then(|s| i64::try_from(s).ok()) == Some(seq)
                && cp.hash.as_deref() == Some(hash.as_str());
            if agrees {
                Ok(cp)
            } else {
                Err(VerifyError::Damaged(Damage {
                    kind: DamageKind::Modified,
                    seq: u64::try_from(seq).ok(),
                    location,
                    detail: "the checkpoint's columns disagree with its signed record".into(),
                }))
            }
        });
        checkpoints.push(parsed);
    }
    Ok(checkpoints)
}

/// One row of `audit_events`, as read.
struct RawRow {
    seq: i64,
    prev: String,
    hash: String,
    id: Uuid,
    time: OffsetDateTime,
    /// In [`TEXT_COLUMNS`] order.
    text: [Option<String>; 13],
    status: Option<i32>,
    duration_us: Option<i64>,
    record: String,
}

impl RawRow {
    fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        let mut text: [Option<String>; 13] = Default::default();
        for (i, slot) in text.iter_mut().enumerate() {
            *slot = row.try_get(5 + i)?;
        }
        Ok(Self {
            seq: row.try_get(0)?,
            prev: row.try_get(1)?,
            hash: row.try_get(2)?,
            id: row.try_get(3)?,
            time: row.try_get(4)?,
            text,
            status: row.try_get(18)?,
            duration_us: row.try_get(19)?,
            record: row.try_get(20)?,
        })
    }

    /// Parses and hashes the record, and compares the columns with it.
    fn into_entry(self, hashers: &Hashers) -> Entry {
        let garbage = Entry::Garbage {
            len: self.record.len() as u64,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                self.record.as_bytes(),
            )),
            complete: true,
        };
        let Ok(value) = serde_json::from_str::<Value>(&self.record) else {
            return garbage;
        };
        match parse_record(&value, None, hashers) {
            Ok(Some(mut rec)) => {
                rec.mismatch = self.mismatch(&value, &rec);
                Entry::Record(rec)
            }
            // Not a chain record; a key is always given to parse_record here.
            Ok(None) | Err(_) => garbage,
        }
    }

    /// The first column that says something else than the record: the
    /// chain's columns here, the event's as the relay checks them
    /// ([`ColumnValues::first_disagreement`]), any RFC 3339 text of the
    /// column's instant taken for the time.
    fn mismatch(&self, value: &Value, rec: &check::Rec) -> Option<String> {
        let column = if u64::try_from(self.seq).ok() != Some(rec.seq) {
            Some("seq")
        } else if self.prev != rec.prev {
            Some("prev")
        } else if self.hash != rec.stored {
            Some("hash")
        } else {
            let record = value.as_object()?;
            ColumnValues {
                id: self.id,
                time: self.time,
                text: self.text.each_ref().map(Option::as_deref),
                status: self.status,
                duration_us: self.duration_us,
            }
            .first_disagreement(record, TimeText::SameInstant)
        }?;
        Some(format!(
            "the {column} column says something else than the stored record"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_never_show_keys() {
        let options = PgVerifyOptions::new()
            .key(SecretString::from("chain-key-secret"))
            .checkpoint_key(SecretString::from("cp-key-secret"))
            .chain("c1");
        let shown = format!("{options:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("[REDACTED]") && shown.contains("c1"));
    }

    #[test]
    fn report_sums_records() {
        let mut report = PgVerifyReport::default();
        for n in [3, 4] {
            report.chains.push(VerifyReport {
                records: n,
                ..VerifyReport::default()
            });
        }
        assert_eq!(report.records(), 7);
    }
}
