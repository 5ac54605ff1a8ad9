//! Verification of a JSON-lines audit trail.
//!
//! [`verify`] recomputes every record's hash, follows the chain (`seq` +1 per
//! record, `prev` = the previous `hash`), checks the checkpoints, and either
//! returns a [`VerifyReport`] or names the first damage: its [`DamageKind`],
//! the first bad `seq`, the file and the line.
//!
//! | kind | what it means |
//! |---|---|
//! | [`DamageKind::Modified`] | a record's content or its link no longer matches its hash (or a checkpoint) |
//! | [`DamageKind::Inserted`] | a record that does not belong to the chain at that position (forged, duplicated) |
//! | [`DamageKind::Deleted`] | records are missing: `seq` jumps forward and the missing record is nowhere |
//! | [`DamageKind::Reordered`] | the missing record appears later: records were moved |
//! | [`DamageKind::Truncated`] | a checkpoint names a record beyond the end of the trail, or a trail that starts mid-chain without the rotation checkpoint linking it |
//! | [`DamageKind::WrongKey`] | no record (or checkpoint) verifies with the given key: the key is wrong, or everything was rewritten |
//! | [`DamageKind::Malformed`] | a line that is not a chained record, and not a crash's torn line that an `audit.recovered` record accounts for |
//!
//! A crash is not damage: a torn line followed by the `audit.recovered` record
//! that names its length is accepted and counted in
//! [`VerifyReport::recoveries`], and a torn last line (the writer crashed and
//! has not restarted yet) is reported in [`VerifyReport::torn_tail`].
//!
//! What verification can prove depends on the mode: with plain SHA-256 anyone
//! can recompute hashes, so a rewrite of the records after the last checkpoint
//! is only detected through a signed checkpoint; with HMAC-SHA-256 no record
//! can be forged without the key. Records appended after the last checkpoint
//! and then removed cannot be detected by any means but an external copy.
//!
//! # Command line
//!
//! With the `cli` feature, `guardrails-audit verify <FILE> [--key-file F]
//! [--checkpoints F] [--checkpoint-key-file F] [--rotated]` wraps this
//! function. It exits with `0` when the trail is whole, `1` when it is
//! damaged (printing `damage=<kind> seq=<seq>`), and `2` when it cannot
//! verify (unreadable file or key, a keyed chain without `--key-file`).
//!
//! ```no_run
//! use guardrails_audit::{verify, VerifyOptions};
//! use secrecy::SecretString;
//!
//! let options = VerifyOptions::new()
//!     .key(SecretString::from("the chain key"))
//!     .checkpoints("var/audit.jsonl.checkpoints");
//! match verify("var/audit.jsonl", &options) {
//!     Ok(report) => println!("{} records intact, last seq {:?}", report.records, report.last_seq),
//!     Err(error) => eprintln!("{error}"),
//! }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::Value;

use crate::chain::{ChainAlg, ChainHasher, ZERO_HASH, same_hash};
use crate::sink::file::{ACTION_RECOVERED, CHECKPOINT_SCHEMA};

/// What to verify with; `Debug` never shows keys.
#[derive(Default, Clone)]
#[must_use]
pub struct VerifyOptions {
    key: Option<SecretString>,
    checkpoint_key: Option<SecretString>,
    checkpoints: Option<PathBuf>,
    include_rotated: bool,
}

impl fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field(
                "checkpoint_key",
                &self.checkpoint_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("checkpoints", &self.checkpoints)
            .field("include_rotated", &self.include_rotated)
            .finish()
    }
}

impl VerifyOptions {
    /// No key, no checkpoints, only the named file.
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

    /// The checkpoint file to check the trail against.
    pub fn checkpoints(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoints = Some(path.into());
        self
    }

    /// Also verify the rotated files (`<name>.<20 digits>`) before the named
    /// one, as one chain.
    pub fn include_rotated(mut self, include: bool) -> Self {
        self.include_rotated = include;
        self
    }
}

/// A whole trail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The files verified, in chain order.
    pub files: Vec<PathBuf>,
    /// Records verified.
    pub records: u64,
    /// The chain id.
    pub chain_id: Option<String>,
    /// The algorithm.
    pub alg: Option<ChainAlg>,
    /// The first and last seq verified.
    pub first_seq: Option<u64>,
    /// The last seq verified.
    pub last_seq: Option<u64>,
    /// The hash of the last record.
    pub head_hash: Option<String>,
    /// `audit.recovered` records (crashes and failed writes recovered).
    pub recoveries: u64,
    /// The last line is torn and not yet recovered (the writer crashed and
    /// has not reopened the file).
    pub torn_tail: bool,
    /// Checkpoints that matched the trail.
    pub checkpoints_checked: u64,
    /// Whether the trail ended with the `audit.stopped` record of a clean
    /// shutdown (otherwise the writer is running, or crashed).
    pub cleanly_stopped: bool,
}

/// The kind of damage; see the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DamageKind {
    /// Content or link changed.
    Modified,
    /// A record that does not belong.
    Inserted,
    /// Records missing.
    Deleted,
    /// Records moved.
    Reordered,
    /// The trail ends before a checkpoint.
    Truncated,
    /// Nothing verifies with the key.
    WrongKey,
    /// A line that is not a record.
    Malformed,
}

impl DamageKind {
    /// `modified`, `inserted`, `deleted`, `reordered`, `truncated`,
    /// `wrong_key` or `malformed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Modified => "modified",
            Self::Inserted => "inserted",
            Self::Deleted => "deleted",
            Self::Reordered => "reordered",
            Self::Truncated => "truncated",
            Self::WrongKey => "wrong_key",
            Self::Malformed => "malformed",
        }
    }
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first damage found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// What kind.
    pub kind: DamageKind,
    /// The first bad seq, when known.
    pub seq: Option<u64>,
    /// The file.
    pub file: PathBuf,
    /// The 1-based line in the file (0 for the checkpoint file's verdicts).
    pub line: u64,
    /// What exactly did not match.
    pub detail: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at seq ", self.kind)?;
        match self.seq {
            Some(seq) => write!(f, "{seq}")?,
            None => f.write_str("?")?,
        }
        write!(
            f,
            " ({}, line {}): {}",
            self.file.display(),
            self.line,
            self.detail
        )
    }
}

/// Verification could not complete, or found damage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The chain is keyed (`hmac-sha256`) and no key was given.
    #[error("the chain is hmac-sha256: a key is needed to verify it")]
    KeyRequired,
    /// The trail is damaged.
    #[error("audit trail damaged: {0}")]
    Damaged(Damage),
}

impl VerifyError {
    /// The damage, if that is the error.
    pub fn damage(&self) -> Option<&Damage> {
        match self {
            Self::Damaged(d) => Some(d),
            _ => None,
        }
    }
}

enum Entry {
    Record(Rec),
    Garbage { len: u64, complete: bool },
}

struct Rec {
    alg: ChainAlg,
    seq: u64,
    id: String,
    prev: String,
    stored: String,
    hash_ok: bool,
    action: String,
    torn_bytes: Option<u64>,
}

struct Located {
    entry: Entry,
    file: usize,
    line: u64,
}

/// The rotated files of `path` (`<name>.<20 digits>`), oldest first.
pub(crate) fn rotated_files(path: &Path) -> Result<Vec<PathBuf>, VerifyError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let entries = std::fs::read_dir(&dir).map_err(|source| VerifyError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file_name = e.file_name();
            let n = file_name.to_str()?;
            let suffix = n.strip_prefix(&prefix)?;
            (suffix.len() == 20 && suffix.bytes().all(|b| b.is_ascii_digit()))
                .then(|| suffix.parse().ok().map(|seq: u64| (seq, e.path())))
                .flatten()
        })
        .collect();
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

struct Hashers {
    sha: ChainHasher,
    hmac: Option<ChainHasher>,
}

fn parse_record(line: &[u8], hashers: &Hashers) -> Result<Option<Rec>, VerifyError> {
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return Ok(None);
    };
    let Some(chain) = value.get("chain").and_then(Value::as_object) else {
        return Ok(None);
    };
    let text = |k: &str| chain.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(alg), Some(id), Some(prev), Some(stored), Some(seq)) = (
        text("alg"),
        text("id"),
        text("prev"),
        text("hash"),
        chain.get("seq").and_then(Value::as_u64),
    ) else {
        return Ok(None);
    };
    let (alg, hasher) = match ChainAlg::parse(&alg) {
        Some(ChainAlg::Sha256) => (ChainAlg::Sha256, &hashers.sha),
        Some(ChainAlg::HmacSha256) => (
            ChainAlg::HmacSha256,
            hashers.hmac.as_ref().ok_or(VerifyError::KeyRequired)?,
        ),
        None => return Ok(None),
    };
    // The sink writes every line as the canonical form of its record, so
    // the bytes must be exactly that: a record that only parses to the
    // hashed value (a duplicated key that another parser reads differently,
    // added whitespace or escapes) is modified.
    let hash_ok = hasher
        .hash_record(&value)
        .is_ok_and(|computed| same_hash(&computed, &stored))
        && crate::jcs::to_vec(&value).is_ok_and(|canonical| canonical == line);
    Ok(Some(Rec {
        alg,
        seq,
        id,
        prev,
        stored,
        hash_ok,
        action: value
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        torn_bytes: value.pointer("/details/torn_bytes").and_then(Value::as_u64),
    }))
}

/// Verifies the trail at `path`; see the [module documentation](self).
///
/// # Errors
///
/// [`VerifyError::Damaged`] naming the first damage,
/// [`VerifyError::KeyRequired`] for a keyed chain without a key, and
/// [`VerifyError::Io`] when a file cannot be read.
pub fn verify(
    path: impl AsRef<Path>,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let path = path.as_ref();
    let mut files = if options.include_rotated {
        rotated_files(path)?
    } else {
        Vec::new()
    };
    files.push(path.to_path_buf());
    let hashers = Hashers {
        sha: ChainHasher::sha256(),
        hmac: options.key.as_ref().map(ChainHasher::hmac),
    };

    let mut entries = Vec::new();
    for (file_index, file) in files.iter().enumerate() {
        let data = std::fs::read(file).map_err(|source| VerifyError::Io {
            path: file.clone(),
            source,
        })?;
        let ends_complete = data.last() == Some(&b'\n');
        let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        if ends_complete || data.is_empty() {
            lines.pop();
        }
        let count = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            let complete = ends_complete || i + 1 < count;
            let entry = match parse_record(line, &hashers)? {
                Some(rec) if complete => Entry::Record(rec),
                _ => Entry::Garbage {
                    len: line.len() as u64,
                    complete,
                },
            };
            entries.push(Located {
                entry,
                file: file_index,
                line: i as u64 + 1,
            });
        }
    }

    let damage = |kind, seq, at: &Located, detail: &str| {
        VerifyError::Damaged(Damage {
            kind,
            seq,
            file: files[at.file].clone(),
            line: at.line,
            detail: detail.to_owned(),
        })
    };

    let records: Vec<&Rec> = entries
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Record(r) => Some(r),
            Entry::Garbage { .. } => None,
        })
        .collect();
    // A keyed chain where nothing verifies: the key is wrong (or all rewritten).
    if !records.is_empty() && records.iter().all(|r| !r.hash_ok) {
        let first = entries
            .iter()
            .find(|e| matches!(e.entry, Entry::Record(_)))
            .ok_or(VerifyError::KeyRequired)?;
        return Err(damage(
            DamageKind::WrongKey,
            records.first().map(|r| r.seq),
            first,
            "no record verifies with this key",
        ));
    }

    let mut report = VerifyReport {
        files: files.clone(),
        ..VerifyReport::default()
    };
    let mut hashes: HashMap<u64, String> = HashMap::new();
    let mut expected: Option<u64> = None;
    let mut last_hash = String::new();
    let mut start_prev: Option<String> = None;
    // One algorithm for the whole trail: HMAC-SHA-256 when a key is given,
    // otherwise that of the first record. A record's own `alg` is not
    // trusted: without this, anyone could append or rewrite records of a
    // keyed trail as plain SHA-256 records, which need no key.
    let mut trail_alg = options.key.as_ref().map(|_| ChainAlg::HmacSha256);
    for (i, at) in entries.iter().enumerate() {
        let rec = match &at.entry {
            Entry::Garbage { len, complete } => {
                if !complete && i + 1 == entries.len() {
                    report.torn_tail = true;
                    continue;
                }
                let recovered = entries.get(i + 1).is_some_and(|next| {
                    matches!(&next.entry, Entry::Record(r)
                        if r.action == ACTION_RECOVERED && r.hash_ok && r.torn_bytes == Some(*len)
                            && Some(r.seq) == expected.or(Some(0)) && (expected.is_none() || r.prev == last_hash))
                });
                if recovered {
                    continue;
                }
                return Err(damage(
                    DamageKind::Malformed,
                    expected,
                    at,
                    "a line that is not a chained record and no recovery record accounts for it",
                ));
            }
            Entry::Record(rec) => rec,
        };
        match trail_alg {
            Some(alg) if alg != rec.alg => {
                let (kind, detail) = if report.records == 0 {
                    (
                        DamageKind::WrongKey,
                        "a key was given, but the trail is not keyed (plain sha256)",
                    )
                } else {
                    (
                        DamageKind::Modified,
                        "the record is chained with another algorithm than the trail (a keyless rewrite of a keyed trail)",
                    )
                };
                return Err(damage(kind, Some(rec.seq), at, detail));
            }
            Some(_) => {}
            None => trail_alg = Some(rec.alg),
        }
        if !rec.hash_ok {
            return Err(damage(
                DamageKind::Modified,
                Some(rec.seq),
                at,
                "the record does not match its hash",
            ));
        }
        match &report.chain_id {
            Some(id) if *id != rec.id => {
                return Err(damage(
                    DamageKind::Inserted,
                    Some(rec.seq),
                    at,
                    "the record belongs to another chain",
                ));
            }
            Some(_) => {}
            None => report.chain_id = Some(rec.id.clone()),
        }
        let later = |seq: u64| {
            entries[i + 1..].iter().find_map(|e| match &e.entry {
                Entry::Record(r) if r.seq == seq && r.id == rec.id => Some(r),
                _ => None,
            })
        };
        match expected {
            None => {
                if rec.seq == 0 && rec.prev != ZERO_HASH {
                    return Err(damage(
                        DamageKind::Modified,
                        Some(0),
                        at,
                        "the first record of the chain does not start from the zero hash",
                    ));
                }
                if rec.seq > 0 {
                    start_prev = Some(rec.prev.clone());
                }
                report.first_seq = Some(rec.seq);
            }
            Some(exp) if rec.seq == exp => {
                if rec.prev != last_hash {
                    if later(exp).is_some() {
                        return Err(damage(
                            DamageKind::Inserted,
                            Some(exp),
                            at,
                            "a record with this seq that does not link to the previous one; the genuine one follows",
                        ));
                    }
                    // This record is intact; the previous one was rewritten
                    // (its hash recomputed) or replaced.
                    return Err(damage(
                        DamageKind::Modified,
                        Some(exp - 1),
                        at,
                        &format!(
                            "seq {exp} does not link to seq {}: that record was rewritten or replaced",
                            exp - 1
                        ),
                    ));
                }
            }
            Some(exp) if rec.seq > exp => {
                if let Some(missing) = later(exp) {
                    if rec.prev == missing.stored {
                        return Err(damage(
                            DamageKind::Reordered,
                            Some(exp),
                            at,
                            "the record with this seq appears later in the trail",
                        ));
                    }
                    return Err(damage(
                        DamageKind::Inserted,
                        Some(rec.seq),
                        at,
                        "a record that does not belong at this position",
                    ));
                }
                return Err(damage(
                    DamageKind::Deleted,
                    Some(exp),
                    at,
                    &format!("{} record(s) missing before seq {}", rec.seq - exp, rec.seq),
                ));
            }
            Some(_) => {
                return Err(damage(
                    DamageKind::Inserted,
                    Some(rec.seq),
                    at,
                    "a seq that was already used (duplicated or forged record)",
                ));
            }
        }
        if rec.action == ACTION_RECOVERED {
            report.recoveries += 1;
        }
        report.cleanly_stopped = rec.action == crate::sink::file::ACTION_STOPPED;
        expected = Some(rec.seq + 1);
        last_hash.clone_from(&rec.stored);
        hashes.insert(rec.seq, rec.stored.clone());
        report.records += 1;
        report.last_seq = Some(rec.seq);
    }
    report.head_hash = (!last_hash.is_empty()).then_some(last_hash);
    report.alg = detect_alg(&files, &entries);

    if let Some(cp_path) = &options.checkpoints {
        check_checkpoints(
            cp_path,
            options,
            &files,
            &hashes,
            start_prev.as_deref(),
            &mut report,
        )?;
    }
    Ok(report)
}

fn detect_alg(files: &[PathBuf], entries: &[Located]) -> Option<ChainAlg> {
    // Read the alg of the first record again (cheap: first line only).
    let first = entries
        .iter()
        .find(|e| matches!(e.entry, Entry::Record(_)))?;
    let data = std::fs::read(&files[first.file]).ok()?;
    let line = data
        .split(|b| *b == b'\n')
        .nth(usize::try_from(first.line).ok()?.checked_sub(1)?)?;
    let value: Value = serde_json::from_slice(line).ok()?;
    ChainAlg::parse(value.pointer("/chain/alg")?.as_str()?)
}

fn check_checkpoints(
    cp_path: &Path,
    options: &VerifyOptions,
    files: &[PathBuf],
    hashes: &HashMap<u64, String>,
    start_prev: Option<&str>,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    let data = std::fs::read(cp_path).map_err(|source| VerifyError::Io {
        path: cp_path.to_path_buf(),
        source,
    })?;
    let signer = options
        .checkpoint_key
        .as_ref()
        .or(options.key.as_ref())
        .map(ChainHasher::hmac);
    let last_file = files.last().cloned().unwrap_or_default();
    let cp_damage = |kind, seq, line: u64, detail: &str| {
        VerifyError::Damaged(Damage {
            kind,
            seq,
            file: cp_path.to_path_buf(),
            line,
            detail: detail.to_owned(),
        })
    };
    let mut linked_start = start_prev.is_none();
    let mut below_start: Option<u64> = None;
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let line_no = i as u64 + 1;
        if line.is_empty() {
            continue;
        }
        let Ok(Value::Object(mut cp)) = serde_json::from_slice::<Value>(line) else {
            return Err(cp_damage(
                DamageKind::Malformed,
                None,
                line_no,
                "not a checkpoint",
            ));
        };
        if cp.get("schema").and_then(Value::as_str) != Some(CHECKPOINT_SCHEMA) {
            return Err(cp_damage(
                DamageKind::Malformed,
                None,
                line_no,
                "not a checkpoint",
            ));
        }
        let seq = cp.get("seq").and_then(Value::as_u64);
        let sig_alg = cp
            .get("sig_alg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let sig = cp.remove("sig");
        match (sig_alg.as_str(), &signer) {
            ("none", None) => {}
            ("none", Some(_)) => {
                return Err(cp_damage(
                    DamageKind::Modified,
                    seq,
                    line_no,
                    "an unsigned checkpoint in a keyed trail",
                ));
            }
            ("hmac-sha256", Some(signer)) => {
                let unsigned = crate::jcs::to_vec(&Value::Object(cp.clone()))
                    .map_err(|_| cp_damage(DamageKind::Malformed, seq, line_no, "not canonical"))?;
                let expected = signer.digest_hex(&unsigned);
                if !sig
                    .as_ref()
                    .and_then(Value::as_str)
                    .is_some_and(|s| same_hash(s, &expected))
                {
                    return Err(cp_damage(
                        DamageKind::WrongKey,
                        seq,
                        line_no,
                        "the checkpoint signature does not verify with this key",
                    ));
                }
            }
            ("hmac-sha256", None) => return Err(VerifyError::KeyRequired),
            _ => {
                return Err(cp_damage(
                    DamageKind::Malformed,
                    seq,
                    line_no,
                    "unknown signature algorithm",
                ));
            }
        }
        if cp.get("chain_id").and_then(Value::as_str) != report.chain_id.as_deref() {
            continue;
        }
        let (Some(seq), Some(hash)) = (seq, cp.get("hash").and_then(Value::as_str)) else {
            return Err(cp_damage(
                DamageKind::Malformed,
                None,
                line_no,
                "no seq or hash",
            ));
        };
        let first = report.first_seq.unwrap_or(0);
        match hashes.get(&seq) {
            Some(stored) if same_hash(stored, hash) => report.checkpoints_checked += 1,
            Some(_) => {
                return Err(VerifyError::Damaged(Damage {
                    kind: DamageKind::Modified,
                    seq: Some(seq),
                    file: last_file,
                    line: 0,
                    detail: format!(
                        "the record differs from the one checkpoint line {line_no} signed"
                    ),
                }));
            }
            None if report.last_seq.is_none_or(|last| seq > last) => {
                let missing = report.last_seq.map_or(0, |l| l + 1);
                return Err(VerifyError::Damaged(Damage {
                    kind: DamageKind::Truncated,
                    seq: Some(missing),
                    file: last_file,
                    line: 0,
                    detail: format!(
                        "checkpoint line {line_no} names seq {seq}, but the trail ends before it"
                    ),
                }));
            }
            None if seq < first => {
                if seq + 1 == first {
                    if start_prev.is_some_and(|p| same_hash(p, hash)) {
                        linked_start = true;
                        report.checkpoints_checked += 1;
                    } else {
                        return Err(VerifyError::Damaged(Damage {
                            kind: DamageKind::Modified,
                            seq: Some(first),
                            file: files.first().cloned().unwrap_or_default(),
                            line: 1,
                            detail: "the first record does not link to the rotation checkpoint"
                                .into(),
                        }));
                    }
                } else {
                    below_start = Some(below_start.map_or(seq, |b: u64| b.max(seq)));
                }
            }
            None => {}
        }
    }
    if !linked_start {
        let from = below_start.map_or(0, |b| b + 1);
        return Err(VerifyError::Damaged(Damage {
            kind: DamageKind::Truncated,
            seq: Some(from),
            file: files.first().cloned().unwrap_or_default(),
            line: 1,
            detail: format!(
                "the trail starts at seq {} but no rotation checkpoint links it: records from seq {from} are missing",
                report.first_seq.unwrap_or(0)
            ),
        }));
    }
    Ok(())
}
