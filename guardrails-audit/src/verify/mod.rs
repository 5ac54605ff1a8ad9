//! Verification of an audit trail: a JSON-lines file, or (feature
//! `postgres`) the chains stored in PostgreSQL.
//!
//! [`verify`] recomputes every record's hash, follows the chain (`seq` +1 per
//! record, `prev` = the previous `hash`), checks the checkpoints, and either
//! returns a [`VerifyReport`] or names the first damage: its [`DamageKind`],
//! the first bad `seq`, and its [`Location`] (the file and line, or the
//! database chain and row).
//!
//! The same checks run over any ordered source of records, one record at a
//! time: the lines of a file and its rotated predecessors, or the rows of a
//! database chain in `seq` order (`verify_postgres`, which also checks that
//! each row's columns agree with its stored record).
//!
//! | kind | what it means |
//! |---|---|
//! | [`DamageKind::Modified`] | a record's content or its link no longer matches its hash (or a checkpoint); a record that verifies only with a key the trail had changed away from; a line that is not exactly its record's (or its checkpoint's) canonical form (whitespace, escapes, duplicate keys, or converted line endings added) |
//! | [`DamageKind::Inserted`] | a record that does not belong to the chain at that position (forged, duplicated); a checkpoint that names an older record than the one before it, or another chain than the ones before it (copied in) |
//! | [`DamageKind::Deleted`] | records are missing: `seq` jumps forward and the missing record is nowhere |
//! | [`DamageKind::Reordered`] | the missing record appears later: records were moved |
//! | [`DamageKind::Truncated`] | a checkpoint names a record beyond the end of the trail; a trail starts mid-chain without a rotation checkpoint linking it (a count, interval or shutdown checkpoint does not: files start only after rotations); a checkpoint is of a chain the trail does not hold (the trail was emptied, or replaced by another chain); with [`VerifyOptions::include_rotated`], the oldest file does not start the chain (unless [`VerifyOptions::allow_pruned`]) |
//! | [`DamageKind::WrongKey`] | no record (or checkpoint) verifies with the given key: the key is wrong, or everything was rewritten; the trail's key changes (`audit.key_changed`) to a key not given, or was another before a change and that key was not given ([`VerifyOptions::previous_key`]) |
//! | [`DamageKind::Malformed`] | a line that is not a chained record, and not a crash's torn line that an `audit.recovered` record accounts for |
//!
//! A crash is not damage: a torn line followed by the `audit.recovered` record
//! that names its length and SHA-256 is accepted and counted in
//! [`VerifyReport::recoveries`], and a torn last line (the writer crashed and
//! has not restarted yet) is reported in [`VerifyReport::torn_tail`]. A
//! checkpoint line cut the same way is counted in
//! [`VerifyReport::cut_checkpoints`].
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
//! [--checkpoints F | --no-checkpoints] [--checkpoint-key-file F] [--rotated [--pruned]]`
//! wraps this function. Unlike [`VerifyOptions::new`], which checks no
//! checkpoints unless told, it checks `<FILE>.checkpoints` (the sink's
//! default) when that exists, and warns when no checkpoint file is checked.
//! It exits with `0` when the trail is whole, `1` when it is
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

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Take};
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::Value;

use crate::chain::ChainAlg;
use crate::signing::{CheckpointVerifier, Ed25519VerifyingKey};

pub(crate) mod check;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(feature = "postgres")]
pub use postgres::{PgVerifyOptions, PgVerifyReport, verify_postgres};

use check::{ChainInput, Checkpoint, Entry, Hashers, TrailEnds, check_chain, parse_record};

/// What to verify with; `Debug` never shows keys.
#[derive(Default, Clone)]
#[must_use]
pub struct VerifyOptions {
    key: Option<SecretString>,
    previous_keys: Vec<SecretString>,
    checkpoint_key: Option<SecretString>,
    checkpoint_public_key: Option<Ed25519VerifyingKey>,
    checkpoints: Option<PathBuf>,
    include_rotated: bool,
    allow_pruned: bool,
}

impl fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field(
                "previous_keys",
                &format_args!("[{} REDACTED]", self.previous_keys.len()),
            )
            .field(
                "checkpoint_key",
                &self.checkpoint_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("checkpoint_public_key", &self.checkpoint_public_key)
            .field("checkpoints", &self.checkpoints)
            .field("include_rotated", &self.include_rotated)
            .field("allow_pruned", &self.allow_pruned)
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

    /// A key the trail was chained with before [`key`](Self::key): call it
    /// once per earlier key, oldest first. The trail may start under any of
    /// them and move to a later one only at an `audit.key_changed` record,
    /// which the sink writes when its key changes
    /// ([`JsonLinesBuilder::previous_key`](crate::sink::file::JsonLinesBuilder::previous_key)),
    /// hashed with the new key; never back. Checkpoints verify with any of
    /// them when no [`checkpoint_key`](Self::checkpoint_key) is given. With
    /// earlier keys given, the trail must end under [`key`](Self::key): one
    /// that ends under an earlier key is [`DamageKind::Truncated`] (its
    /// change was cut off, with what followed). To verify a file from
    /// before a change on its own, give its key as the key.
    ///
    /// Whoever holds a retired key cannot rewrite the records chained under
    /// it up to the change (the change record, hashed with the new key,
    /// pins the last of them), nor add records after the change, nor cut
    /// the trail back to the change and forge a tail under the old key. A
    /// checkpoint signed with a retired key vouches for nothing chained
    /// after it was retired (it may not name such a record, link the start
    /// of a file under a later key, stand for a file rotated under a later
    /// key, nor follow a checkpoint signed with a later key). With write
    /// access to the trail and the checkpoint file, they can make a start
    /// whose sink still has the previous key configured take a forged tail
    /// for a trail still to change (see
    /// [`JsonLinesBuilder::previous_key`](crate::sink::file::JsonLinesBuilder::previous_key)).
    pub fn previous_key(mut self, key: SecretString) -> Self {
        self.previous_keys.push(key);
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

    /// The public key of the Ed25519 key that signs the checkpoints
    /// ([`JsonLinesBuilder::checkpoint_signing_key`](crate::sink::file::JsonLinesBuilder::checkpoint_signing_key)).
    /// With it, HMAC-signed and unsigned checkpoints are damage.
    pub fn checkpoint_public_key(mut self, key: Ed25519VerifyingKey) -> Self {
        self.checkpoint_public_key = Some(key);
        self
    }

    /// The checkpoint keys: the checkpoint key, else the chain key, and the
    /// Ed25519 public key.
    fn checkpoint_verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier::from_keys(
            self.checkpoint_key.as_ref(),
            self.key.as_ref(),
            &self.previous_keys,
            self.checkpoint_public_key,
        )
    }

    /// Also verify the rotated files (`<name>.<20 digits>`) before the named
    /// one, as one chain. The oldest file must then start the chain (seq 0):
    /// a trail whose first files are missing is [`DamageKind::Truncated`],
    /// unless [`allow_pruned`](Self::allow_pruned) says they were removed on
    /// purpose. A rotation while the trail is read does not change the
    /// verdict: the trail is verified as it was when the active file was
    /// opened.
    pub fn include_rotated(mut self, include: bool) -> Self {
        self.include_rotated = include;
        self
    }

    /// With [`include_rotated`](Self::include_rotated): the oldest rotated
    /// files may have been removed on purpose (a retention policy), so the
    /// trail may start mid-chain; with checkpoints its first record must
    /// still link to the `rotation` checkpoint of the file before it. Off
    /// by default: without it, a missing head is damage.
    pub fn allow_pruned(mut self, allow: bool) -> Self {
        self.allow_pruned = allow;
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
    /// `audit.key_changed` records: where the trail moved to a later key
    /// ([`VerifyOptions::previous_key`]).
    pub key_changes: u64,
    /// The last line is torn and not yet recovered (the writer crashed and
    /// has not reopened the file).
    pub torn_tail: bool,
    /// Checkpoints that matched the trail.
    pub checkpoints_checked: u64,
    /// The active file did not exist (with
    /// [`include_rotated`](VerifyOptions::include_rotated) only, where it
    /// is read as empty, as right after a rotation's rename): the trail is
    /// its rotated files. Deleted, its records are missing unless a
    /// checkpoint names one of them.
    pub active_missing: bool,
    /// Checkpoints that are not signed (`sig_alg` `none`, written by a sink
    /// without a key), accepted because no checkpoint key was given. They
    /// show accidental truncation, but prove nothing against someone who
    /// can rewrite both the trail and the checkpoint file.
    pub unsigned_checkpoints: u64,
    /// Lines of the checkpoint file that are not JSON: checkpoint writes
    /// cut by a crash or a failed write (the writer ends such a line before
    /// its next checkpoint). They state nothing; a line that is JSON but not
    /// a valid, signed checkpoint is damage.
    pub cut_checkpoints: u64,
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

/// Where damage was found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A line of a file (line `0` for verdicts of the checkpoint file about
    /// the trail as a whole).
    Line {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: u64,
    },
    /// A row of a database chain, by the value of its `seq` column.
    Row {
        /// The chain.
        chain_id: String,
        /// The row's `seq` column (which may differ from the record's own).
        seq: u64,
    },
    /// A stored checkpoint of a database chain, by its row id.
    Checkpoint {
        /// The chain.
        chain_id: String,
        /// The checkpoint row's `id`.
        id: i64,
    },
    /// A database chain as a whole (records missing at an end).
    Chain {
        /// The chain.
        chain_id: String,
    },
}

impl Location {
    /// The file, for damage found in a file.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Line { file, .. } => Some(file),
            _ => None,
        }
    }

    /// The chain id, for damage found in a database.
    pub fn chain_id(&self) -> Option<&str> {
        match self {
            Self::Row { chain_id, .. }
            | Self::Checkpoint { chain_id, .. }
            | Self::Chain { chain_id } => Some(chain_id),
            Self::Line { .. } => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line { file, line } => write!(f, "{}, line {line}", file.display()),
            Self::Row { chain_id, seq } => write!(f, "chain {chain_id:?}, row with seq {seq}"),
            Self::Checkpoint { chain_id, id } => {
                write!(f, "chain {chain_id:?}, checkpoint {id}")
            }
            Self::Chain { chain_id } => write!(f, "chain {chain_id:?}"),
        }
    }
}

/// The first damage found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// What kind.
    pub kind: DamageKind,
    /// The first bad seq, when known.
    pub seq: Option<u64>,
    /// Where: a file and line, or a database chain and row.
    pub location: Location,
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
        write!(f, " ({}): {}", self.location, self.detail)
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
    /// A checkpoint is signed with Ed25519, and no public key was given.
    #[error("the checkpoints are signed with Ed25519: their public key is needed to verify them")]
    PublicKeyRequired,
    /// The trail is damaged.
    #[error("audit trail damaged: {0}")]
    Damaged(Damage),
    /// The requested database chain has neither a registration nor records.
    #[error("no chain {chain_id:?} in the database")]
    UnknownChain {
        /// The chain id asked for.
        chain_id: String,
    },
    /// A database query failed. Its `Display` and `Debug` show the
    /// operation, the server's message and SQLSTATE, never a connection
    /// parameter nor the `DETAIL` (which may quote row values).
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Database(crate::sink::postgres::PgError),
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

/// Opens the trail at `path`: returns its files, oldest first, and the
/// opened active file, which is the last of them (`None`: with `rotated`,
/// the active file does not exist, as between a rotation's rename and the
/// creation of the new file; it is then verified as empty).
///
/// A writer may rotate while the trail is read. The active file is opened
/// first and the rotated files listed after: a file rotated before the open
/// is in the list, and one rotated after it is the opened file itself (a
/// handle follows its file through a rename), found in the list by its
/// device and inode. The list is then cut after it: rotated files newer
/// than it were written after the open, and so is the new active file; the
/// checkpoints, read before the open, name none of their records. Without
/// inodes (not Unix), a rotation in that moment makes the opened file
/// appear twice, reported as inserted records.
///
/// The active file is read up to its length at the open: a writer appending
/// meanwhile cannot make the end of what is read move (a batch copied in
/// while it is read would otherwise show its first part as one line and
/// the rest as another). A write in progress at the open is a torn tail,
/// as after a crash.
fn open_trail(
    path: &Path,
    rotated: bool,
) -> Result<(Vec<PathBuf>, Option<Take<File>>), VerifyError> {
    let io = |source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (active, missing) = match File::open(path) {
        Ok(file) => (Some(file), None),
        Err(error) if rotated && error.kind() == std::io::ErrorKind::NotFound => {
            (None, Some(error))
        }
        Err(error) => return Err(io(error)),
    };
    let mut files = if rotated {
        rotated_files(path)?
    } else {
        Vec::new()
    };
    if let Some(error) = missing
        && files.is_empty()
    {
        return Err(io(error));
    }
    let opened = active
        .as_ref()
        .and_then(|file| file.metadata().ok())
        .and_then(|meta| file_identity(&meta));
    let renamed = opened.and_then(|opened| {
        files.iter().position(|file| {
            std::fs::metadata(file)
                .ok()
                .and_then(|meta| file_identity(&meta))
                == Some(opened)
        })
    });
    match renamed {
        Some(position) => files.truncate(position + 1),
        None => files.push(path.to_path_buf()),
    }
    let active = match active {
        Some(file) => {
            let len = file.metadata().map_err(io)?.len();
            Some(file.take(len))
        }
        None => None,
    };
    Ok((files, active))
}

/// A file's device and inode.
#[cfg(unix)]
fn file_identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

/// A file's device and inode: unknown here.
#[cfg(not(unix))]
fn file_identity(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
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
    match verify_once(path, options) {
        // A writer that rotated between the read of the checkpoints and the
        // open of the active file (its rotation checkpoint, written after
        // the rename, not yet read) makes a whole trail look cut. A cut
        // trail stays cut: read it all again once to tell.
        Err(VerifyError::Damaged(damage))
            if damage.kind == DamageKind::Truncated && options.checkpoints.is_some() =>
        {
            verify_once(path, options)
        }
        result => result,
    }
}

fn verify_once(path: &Path, options: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    // The checkpoints are read first, before any file of the trail: a
    // checkpoint is written only once the records it names are durable, so
    // every record a checkpoint read now names is in the files read after
    // it, even while the writer appends (a checkpoint read after the trail
    // could name records written since, and the trail would look
    // truncated). They are also read before the chain pass so that it keeps
    // only the hashes they name; their errors are reported after the chain's.
    let checkpoints = options
        .checkpoints
        .as_deref()
        .map(|cp_path| read_checkpoint_file(cp_path, options));
    let (files, active) = open_trail(path, options.include_rotated)?;
    let hashers = Hashers::new(options.key.as_ref(), &options.previous_keys);

    let keep = match &checkpoints {
        Some(Ok((cps, _))) => check::wanted_seqs(cps),
        _ => HashSet::new(),
    };
    let input = ChainInput {
        alg: options.key.as_ref().map(|_| ChainAlg::HmacSha256),
        key_given: options.key.is_some(),
        chain_id: None,
        // All the files of the trail: its head must be there, unless
        // pruned on purpose. The named file alone may start mid-chain (after
        // a rotation), linked to a rotation checkpoint when there are any.
        starts_at_zero: options.include_rotated && !options.allow_pruned,
        keep: &keep,
        final_key_epoch: (!options.previous_keys.is_empty()).then_some(options.previous_keys.len()),
        head_may_be_pruned: options.include_rotated && options.allow_pruned,
    };
    let mut report = VerifyReport {
        files: files.clone(),
        active_missing: active.is_none(),
        ..VerifyReport::default()
    };
    // The files are read line by line as the chain pass goes (a trail of
    // many gigabytes verifies in the memory of one line and the hashes the
    // checkpoints need). A file that cannot be read ends the lines; the
    // error then replaces whatever the pass concluded from the lines before
    // it.
    let mut lines = TrailLines {
        files: &files,
        active,
        next_file: 0,
        reader: None,
        line: 0,
        buf: Vec::new(),
        hashers: &hashers,
        error: None,
    };
    let state = check_chain(lines.by_ref(), &input, &mut report, |&(file, line)| {
        Location::Line {
            file: files[file].clone(),
            line,
        }
    });
    if let Some(error) = lines.error {
        return Err(error);
    }
    let state = state?;

    if let Some(checkpoints) = checkpoints {
        let ends = TrailEnds {
            end: Location::Line {
                file: files.last().cloned().unwrap_or_default(),
                line: 0,
            },
            start: Location::Line {
                file: files.first().cloned().unwrap_or_default(),
                line: 1,
            },
            whole: input.starts_at_zero,
        };
        let (checkpoints, cut) = checkpoints?;
        report.cut_checkpoints = cut;
        check::check_checkpoints(checkpoints, &state, &ends, &mut report)?;
    }
    Ok(report)
}

/// The lines of a trail's files, oldest file first, as chain entries with
/// their (file index, line number); the last file is read from the handle
/// `open_trail` opened. Ends at the first file that cannot be read, with
/// the error in `error`.
struct TrailLines<'a> {
    files: &'a [PathBuf],
    active: Option<Take<File>>,
    next_file: usize,
    reader: Option<BufReader<Take<File>>>,
    /// The number of the line last read in the current file.
    line: u64,
    buf: Vec<u8>,
    hashers: &'a Hashers,
    error: Option<VerifyError>,
}

impl Iterator for TrailLines<'_> {
    type Item = (Entry, (usize, u64));

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.error.is_some() {
                return None;
            }
            let Some(reader) = self.reader.as_mut() else {
                let index = self.next_file;
                let path = self.files.get(index)?;
                let file = if index + 1 == self.files.len() {
                    // `None`: the active file did not exist (read as empty).
                    self.active.take()
                } else {
                    match File::open(path) {
                        // Rotated: complete, nothing appends to it.
                        Ok(file) => Some(file.take(u64::MAX)),
                        Err(source) => {
                            self.error = Some(VerifyError::Io {
                                path: path.clone(),
                                source,
                            });
                            return None;
                        }
                    }
                };
                self.next_file += 1;
                self.line = 0;
                self.reader = file.map(BufReader::new);
                continue;
            };
            self.buf.clear();
            match reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.reader = None;
                    continue;
                }
                Ok(_) => {}
                Err(source) => {
                    self.error = Some(VerifyError::Io {
                        path: self.files[self.next_file - 1].clone(),
                        source,
                    });
                    return None;
                }
            }
            self.line += 1;
            // Only the file's last line may lack its line end: a torn write.
            let complete = self.buf.last() == Some(&b'\n');
            let line = if complete {
                &self.buf[..self.buf.len() - 1]
            } else {
                &self.buf[..]
            };
            let parsed = match serde_json::from_slice::<Value>(line) {
                Ok(value) => match parse_record(&value, Some(line), self.hashers) {
                    Ok(parsed) => parsed,
                    Err(error) => {
                        self.error = Some(error);
                        return None;
                    }
                },
                Err(_) => None,
            };
            let entry = match parsed {
                Some(rec) if complete => Entry::Record(rec),
                _ => Entry::Garbage {
                    len: line.len() as u64,
                    sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(line)),
                    complete,
                },
            };
            return Some((entry, (self.next_file - 1, self.line)));
        }
    }
}

/// Reads and checks the signature of every checkpoint of a file; also
/// returns how many lines are cut writes (not JSON).
fn read_checkpoint_file(
    cp_path: &Path,
    options: &VerifyOptions,
) -> Result<(Vec<Result<Checkpoint, VerifyError>>, u64), VerifyError> {
    let data = std::fs::read(cp_path).map_err(|source| VerifyError::Io {
        path: cp_path.to_path_buf(),
        source,
    })?;
    let verifier = options.checkpoint_verifier();
    let mut cut = 0;
    let mut checkpoints = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            cut += 1;
            continue;
        };
        let line_no = i as u64 + 1;
        // The sink writes each checkpoint as the canonical form of its
        // object (`sig` among the keys in order), and its signature covers
        // only what the line parses to: a line that is not exactly that
        // form (a duplicated key that another parser reads differently,
        // added whitespace or escapes) says something else to another
        // reader, as a record's line would.
        let canonical = crate::jcs::to_vec(&value).ok().as_deref() == Some(line);
        let location = Location::Line {
            file: cp_path.to_path_buf(),
            line: line_no,
        };
        let parsed = check::parse_checkpoint(
            Some(value),
            &verifier,
            location.clone(),
            format!("checkpoint line {line_no}"),
        )
        .and_then(|cp| {
            if canonical {
                return Ok(cp);
            }
            let detail = if line.ends_with(b"\r") {
                "the checkpoint line ends in a carriage return (were the file's line endings \
                 converted?)"
            } else {
                "the checkpoint line is not the canonical form of its checkpoint (whitespace, \
                 escapes or duplicate keys were added)"
            };
            Err(VerifyError::Damaged(Damage {
                kind: DamageKind::Modified,
                seq: cp.seq,
                location,
                detail: detail.to_owned(),
            }))
        });
        checkpoints.push(parsed);
    }
    Ok((checkpoints, cut))
}
