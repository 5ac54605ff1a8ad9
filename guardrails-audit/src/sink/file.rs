//! The JSON-lines file sink: append-only, hash-chained, rotated, checkpointed.
//!
//! # Format
//!
//! One record per line, each the RFC 8785 canonical JSON of an
//! [`AuditEvent`] plus a `chain` member (see
//! [`crate::chain`] for the exact hash definition). `seq` starts at 0 and grows
//! by one per record across restarts and rotations; `prev` is the previous
//! record's `hash`.
//!
//! # Durability
//!
//! Each batch is written with one `write` and, unless disabled with
//! [`JsonLinesBuilder::fsync`], made durable with one `fdatasync` before the
//! pipeline acknowledges any event of the batch (group commit).
//!
//! Once a batch is durable, the whole 64 KiB blocks below the end of the
//! file are dropped from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`
//! on Linux, Android and FreeBSD): the trail is not read again by its writer,
//! and a busy trail would otherwise push the application's own cached files
//! out. Without `fsync` the records are synced only before each checkpoint
//! (a checkpoint never names a record that is not on disk) and when the sink
//! closes; their pages are left to the kernel's writeback until then, and
//! blocking and strict events fail with
//! [`DeliveryError::NotDurable`](crate::DeliveryError::NotDurable).
//!
//! One writer per file: two processes appending to the same file would
//! interleave two continuations of one chain, which [`verify`](crate::verify())
//! reports as inserted records. Give every instance its own file (or use a
//! database sink for many instances).
//!
//! # Crash recovery
//!
//! At open the sink reads the end of the file. A last line without its
//! newline (a write torn by a crash) is kept as evidence: the sink ends it with
//! a newline and appends an `audit.recovered` record whose details give the
//! torn length (`torn_bytes`), its SHA-256 (`torn_sha256`) and the last intact
//! `last_seq`; the recovered record links to the last intact record, so the
//! chain stays verifiable. A file that ends without the `audit.stopped` record
//! of a clean shutdown also gets an `audit.recovered` record (`torn_bytes: 0`):
//! a crash is recorded as a crash, and is not mistaken for tampering. A last
//! line that lacks only its newline, being exactly the canonical next record
//! of the chain, is a whole record: it is ended and kept, and the recovery
//! record says `torn_bytes: 0`. A batch whose write or sync fails (a full
//! disk, a file size limit, an I/O error) is cut back out of the file, so
//! the trail holds all of a batch or none of it and the pipeline's
//! `audit.dropped` count is exactly the events missing; when the cut fails
//! too, the sink performs the recovery above before the next batch. A recovery cut by a crash in turn is
//! completed at the next open: its record is kept if it is whole; otherwise
//! its cut write, never acknowledged, is removed and the recovery redone,
//! so one recovery record follows the torn line.
//!
//! What a crash cannot do is remove records a checkpoint names: a
//! checkpoint is written only once they are on disk. So before it writes
//! anything, the sink reads the end of the checkpoint file: its newest
//! checkpoint must be signed as this sink signs, verify with its key (or,
//! for the start that changes the key, the previous key), and
//! not name an older record than the checkpoint before it (else
//! [`SinkError::Incompatible`](super::SinkError): a changed key, a forgery,
//! an old checkpoint replayed), and it refuses
//! to open with [`SinkError::BehindCheckpoints`](super::SinkError) when the
//! file holds no record while checkpoints exist (deleted or emptied), holds
//! another chain (replaced), ends before the checkpointed record, or holds
//! another record at its seq. A restart then neither records the loss as a
//! crash nor starts a new chain over it; [`verify`](crate::verify()) names
//! the damage. To start a new trail on purpose, move the old trail's
//! checkpoint file aside with it.
//!
//! The checkpoint file is recovered the same way: a checkpoint line cut by a
//! crash is ended before the next checkpoint, and
//! [`verify`](crate::verify()) counts it in
//! [`VerifyReport::cut_checkpoints`](crate::VerifyReport::cut_checkpoints).
//!
//! # Rotation
//!
//! When the file reaches [`JsonLinesBuilder::rotate_bytes`] or is older than
//! [`JsonLinesBuilder::rotate_interval`], it is renamed to
//! `<name>.<first seq, 20 digits>` and a new file is started at the same path;
//! the chain continues (same id, next seq, `prev` = the last hash of the
//! previous file), and a `rotation` checkpoint names the last record of the
//! old file, written once the rename has succeeded (after a crash in
//! between, by the next open; after a failed write, before the next
//! checkpoint). When the rename fails, the sink writes on to the file it has
//! open and tries again a second later; rotation never costs a batch.
//!
//! # Changing the key
//!
//! A chain key is changed without starting a new trail: open the sink once
//! with the new key and the old one as [`JsonLinesBuilder::previous_key`]
//! (the trail must end in a clean stop). The chain goes on (same id, next
//! seq) from an `audit.key_changed` record ([`ACTION_KEY_CHANGED`], naming
//! both keys by [`key_id`](crate::chain::key_id), and the seq its file
//! started at, `file_first_seq`), the first hashed with the new key; its
//! `prev`, the old key's last hash, pins every record before it, and
//! `file_first_seq` the head of its file. Then remove the previous key from the configuration at once
//! (a later start refuses it while the trail is under the new key).
//! [`verify`](crate::verify()) takes the old key as
//! [`VerifyOptions::previous_key`](crate::VerifyOptions::previous_key),
//! follows the change forward only, requires the trail to end under the
//! key given, and accepts no checkpoint signed with a retired key for
//! anything chained after it was retired.
//!
//! What this protects against whoever keeps the retired key: records after
//! the change cannot be forged with it, cutting the trail back to the
//! change to forge a tail under the old key is found (the trail then ends
//! under the old key), and so is a checkpoint forged with it. What it
//! cannot: while the previous key is still configured, someone who holds
//! the retired key and can rewrite the trail and the checkpoint file (with
//! checkpoints signed with the chain key: forge them; otherwise: cut them
//! back) can make the next start take a forged tail for a trail still to
//! change, and change it. Keep the checkpoint file off the host, or signed
//! with Ed25519, and the previous key configured for the change's start
//! only. The PostgreSQL sink does not change keys within a chain: give it a
//! new chain id.
//!
//! # Checkpoints
//!
//! Every N records, every T seconds (if anything was written), at rotation,
//! after recovery and at shutdown, the sink appends a checkpoint to a separate
//! file (`<name>.checkpoints` by default), one JSON object per line:
//!
//! ```json
//! {"schema":"guardrails.audit.checkpoint/1","chain_id":"…","seq":41,"hash":"<record 41's hash>",
//!  "time":"…Z","reason":"count|interval|rotation|recovery|key_change|shutdown",
//!  "sig_alg":"hmac-sha256","sig":"<hex HMAC-SHA-256 of the JCS of this object without sig>"}
//! ```
//!
//! Checkpoints are signed with the checkpoint key (by default the chain key);
//! without any key they carry `"sig_alg":"none"` and still let
//! [`verify`](crate::verify()) detect truncation, but not a rewrite of the
//! checkpoint file itself. With an Ed25519 key
//! ([`JsonLinesBuilder::checkpoint_signing_key`]) they carry
//! `"sig_alg":"ed25519"` and `sig` is the hex of the 64-byte Ed25519
//! signature of the same bytes: they verify with the public key
//! ([`crate::signing`]), so whoever verifies (and whoever knows the chain
//! key) cannot sign a checkpoint that hides a cut. Keep the checkpoint file on another medium (or ship
//! it off the host) for the strongest guarantee.
//!
//! ```no_run
//! use guardrails_audit::sink::file::JsonLinesSink;
//! use secrecy::SecretString;
//! use std::time::Duration;
//!
//! let sink = JsonLinesSink::builder("var/audit.jsonl")
//!     .hmac_key(SecretString::from("a long random key from your secret store"))
//!     .rotate_bytes(64 * 1024 * 1024)
//!     .checkpoint_every(1000, Duration::from_secs(60))
//!     .open()?;
//! # Ok::<(), guardrails_audit::sink::SinkError>(())
//! ```

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::page_cache::Released;
use super::{AuditSink, SinkError, SinkFuture, WriteReceipt};
use crate::chain::{ChainHasher, ZERO_HASH};
use crate::event::{AuditEvent, Category, Outcome, format_time};
use crate::jcs::{self, NotCanonical};
use crate::signing::{CheckpointSigner, Ed25519SigningKey};

/// The schema of checkpoint records.
pub const CHECKPOINT_SCHEMA: &str = "guardrails.audit.checkpoint/1";

/// The action of the record written at a clean shutdown.
pub const ACTION_STOPPED: &str = "audit.stopped";
/// The action of the record written after a crash or a failed write.
pub const ACTION_RECOVERED: &str = "audit.recovered";
/// The action of the record that changes the chain key
/// ([`JsonLinesBuilder::previous_key`]): the first hashed with the new key.
pub const ACTION_KEY_CHANGED: &str = "audit.key_changed";

/// How much of the end of a file is read at open to find the last record,
/// at first; doubled until the window holds the last line whole.
const TAIL_WINDOW: u64 = 1 << 20;

/// How long rotation rests after a failed rename.
const ROTATION_RETRY: Duration = Duration::from_secs(1);

/// The largest window: a last line longer than this is refused.
const MAX_TAIL_WINDOW: u64 = 256 << 20;

/// Configuration of a [`JsonLinesSink`]; `Debug` never shows keys.
#[must_use]
pub struct JsonLinesBuilder {
    path: PathBuf,
    key: Option<SecretString>,
    previous_key: Option<SecretString>,
    checkpoint_key: Option<SecretString>,
    checkpoint_signing_key: Option<Ed25519SigningKey>,
    checkpoint_path: Option<PathBuf>,
    checkpoint_every_events: u64,
    checkpoint_every: Duration,
    fsync: bool,
    rotate_bytes: Option<u64>,
    rotate_interval: Option<Duration>,
}

impl fmt::Debug for JsonLinesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesBuilder")
            .field("path", &self.path)
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field(
                "previous_key",
                &self.previous_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "checkpoint_key",
                &self.checkpoint_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("checkpoint_signing_key", &self.checkpoint_signing_key)
            .field("checkpoint_path", &self.checkpoint_path)
            .field("checkpoint_every_events", &self.checkpoint_every_events)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("fsync", &self.fsync)
            .field("rotate_bytes", &self.rotate_bytes)
            .field("rotate_interval", &self.rotate_interval)
            .finish()
    }
}

impl JsonLinesBuilder {
    /// Chains with HMAC-SHA-256 under `key` instead of plain SHA-256.
    pub fn hmac_key(mut self, key: SecretString) -> Self {
        self.key = Some(key);
        self
    }

    /// Chains with HMAC-SHA-256 when `key` is given.
    pub fn maybe_hmac_key(mut self, key: Option<SecretString>) -> Self {
        self.key = key;
        self
    }

    /// [`previous_key`](Self::previous_key) when `key` is given.
    pub fn maybe_previous_key(mut self, key: Option<SecretString>) -> Self {
        self.previous_key = key;
        self
    }

    /// The key the trail was chained with until now, when
    /// [`hmac_key`](Self::hmac_key) is a new one: a key rotation.
    ///
    /// When the trail's last record verifies with this key and not with the
    /// new one, and is the `audit.stopped` record of a clean stop that the
    /// newest checkpoint names (else [`SinkError::Incompatible`]: start once
    /// with the old key as the key, which recovers the trail, and verify
    /// it), the sink goes on under the new key: its first record,
    /// `audit.key_changed` ([`ACTION_KEY_CHANGED`], details
    /// `previous_key_id` and `key_id`, see
    /// [`key_id`](crate::chain::key_id)), is hashed with the new key and
    /// linked to the old key's last record, and a `key_change` checkpoint
    /// follows, signed as the sink now signs. A crash after the change
    /// record is recovered at the next start, still with the previous key;
    /// one that cut the change record before it was whole is a crash of the
    /// old writer (see above).
    ///
    /// It is for one start: once the trail is under the new key (past the
    /// change record and its recovery), a previous key is refused before
    /// anything is written ([`SinkError::Incompatible`]). Remove it right
    /// after the change's start: left configured, it would let whoever
    /// holds the retired key (and can rewrite the trail and the checkpoint
    /// file) have a tail forged with it taken for a trail still to change.
    /// See the [module documentation](self#changing-the-key) for what the
    /// change protects.
    ///
    /// Verify such a trail with both keys
    /// ([`VerifyOptions::previous_key`](crate::VerifyOptions::previous_key)).
    /// A plain SHA-256 trail cannot move to a key this way, nor a keyed one
    /// back to none: start a new trail.
    ///
    /// ```no_run
    /// use guardrails_audit::sink::file::JsonLinesSink;
    /// use secrecy::SecretString;
    ///
    /// let sink = JsonLinesSink::builder("var/audit.jsonl")
    ///     .hmac_key(SecretString::from(std::env::var("AUDIT_KEY")?))
    ///     .previous_key(SecretString::from(std::env::var("AUDIT_PREVIOUS_KEY")?))
    ///     .open()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn previous_key(mut self, key: SecretString) -> Self {
        self.previous_key = Some(key);
        self
    }

    /// Signs checkpoints with this key (default: the chain key).
    pub fn checkpoint_key(mut self, key: SecretString) -> Self {
        self.checkpoint_key = Some(key);
        self
    }

    /// Signs checkpoints with this Ed25519 key instead of an HMAC key, so
    /// that they verify with its public half, which cannot sign
    /// ([`VerifyOptions::checkpoint_public_key`](crate::VerifyOptions::checkpoint_public_key)).
    pub fn checkpoint_signing_key(mut self, key: Ed25519SigningKey) -> Self {
        self.checkpoint_signing_key = Some(key);
        self
    }

    /// Where checkpoints go (default: `<path>.checkpoints`).
    pub fn checkpoint_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint_path = Some(path.into());
        self
    }

    /// A checkpoint every `events` records and every `interval` (when
    /// anything was written). Defaults: 1000 records, 60 seconds.
    pub fn checkpoint_every(mut self, events: u64, interval: Duration) -> Self {
        self.checkpoint_every_events = events.max(1);
        self.checkpoint_every = interval;
        self
    }

    /// Whether each batch is `fsync`ed before it is acknowledged (default
    /// `true`). Without it the sink reports its batches as not durable, so
    /// `Blocking` and `Strict` events fail with
    /// [`DeliveryError::NotDurable`](crate::DeliveryError::NotDurable);
    /// best-effort events are written and synced before each checkpoint.
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Rotates when the file reaches `bytes`.
    pub fn rotate_bytes(mut self, bytes: u64) -> Self {
        self.rotate_bytes = Some(bytes.max(1));
        self
    }

    /// Rotates when the file's first record is older than `interval`
    /// (across restarts: the age is read from the file at open).
    pub fn rotate_interval(mut self, interval: Duration) -> Self {
        self.rotate_interval = Some(interval);
        self
    }

    /// Opens (or creates, with its parent directories) the file, recovering
    /// from a crash of a previous writer.
    ///
    /// # Errors
    ///
    /// [`SinkError::Io`] when the file cannot be opened, read or written;
    /// [`SinkError::WrongKey`] when the file's last record does not verify
    /// with the configured key (and no previous key is given that it
    /// verifies with); [`SinkError::Incompatible`] when it is chained with
    /// another algorithm, or is no chain record.
    pub fn open(self) -> Result<JsonLinesSink, SinkError> {
        if crate::chain::too_short(self.key.as_ref()) {
            return Err(SinkError::ShortKey("chain"));
        }
        if crate::chain::too_short(self.checkpoint_key.as_ref()) {
            return Err(SinkError::ShortKey("checkpoint"));
        }
        if crate::chain::too_short(self.previous_key.as_ref()) {
            return Err(SinkError::ShortKey("previous chain"));
        }
        if self.previous_key.is_some() && self.key.is_none() {
            return Err(SinkError::Incompatible(
                "a previous key without a key: a keyed chain cannot go on unkeyed",
            ));
        }
        // Checkpoints signed with the chain key change key with it.
        let previous = self.previous_key.as_ref().map(|key| {
            let chain_signed =
                self.checkpoint_key.is_none() && self.checkpoint_signing_key.is_none();
            Box::new(PreviousKey {
                hasher: ChainHasher::hmac(key),
                signer: chain_signed.then(|| CheckpointSigner::Hmac(ChainHasher::hmac(key))),
                key_id: crate::chain::key_id(key),
            })
        });
        let key_id = self.key.as_ref().map(crate::chain::key_id);
        let hasher = ChainHasher::new(self.key.as_ref());
        let signer = checkpoint_signer(
            self.checkpoint_signing_key,
            self.checkpoint_key.as_ref().or(self.key.as_ref()),
        );
        let checkpoint_path = self.checkpoint_path.clone().unwrap_or_else(|| {
            let mut p = self.path.clone().into_os_string();
            p.push(".checkpoints");
            PathBuf::from(p)
        });
        create_dirs_durably(&self.path)?;
        create_dirs_durably(&checkpoint_path)?;
        let mut checkpoints =
            open_append(&checkpoint_path).map_err(SinkError::io("open checkpoints"))?;
        // A new file's entry is durable before anything in it is relied on.
        sync_parent(&checkpoint_path)?;
        // A checkpoint line cut by a crash or a failed write is ended before
        // the next one, which would otherwise be appended to it.
        let checkpoint_torn = ends_torn(&mut checkpoints)?;
        let mut sink = JsonLinesSink {
            file: None,
            path: self.path,
            hasher,
            signer,
            checkpoints,
            checkpoint_every_events: self.checkpoint_every_events,
            checkpoint_every: self.checkpoint_every,
            fsync: self.fsync,
            rotate_bytes: self.rotate_bytes,
            rotate_interval: self.rotate_interval,
            chain_id: String::new(),
            next_seq: 0,
            last_hash: ZERO_HASH.to_owned(),
            file_first_seq: 0,
            file_len: 0,
            released: Released::default(),
            opened_at: Instant::now(),
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            needs_recovery: false,
            rotation_retry_at: None,
            rotation_checkpoint_due: Vec::new(),
            checkpoint_torn,
            buf: Vec::with_capacity(64 * 1024),
            previous,
            key_id,
        };
        match sink.open_file() {
            Ok(()) => sink.previous = None,
            Err(SinkError::WrongKey) if sink.previous.is_some() => {
                if sink.end_torn_key_change()? {
                    sink.open_file()?;
                    sink.previous = None;
                } else {
                    sink.change_key()?;
                }
            }
            Err(error) => return Err(error),
        }
        Ok(sink)
    }
}

/// The key a trail was chained with before the sink's
/// ([`JsonLinesBuilder::previous_key`]).
struct PreviousKey {
    hasher: ChainHasher,
    /// Its checkpoint signer, when checkpoints are signed with the chain key.
    signer: Option<CheckpointSigner>,
    key_id: String,
}

/// Why a trail is refused when a previous key is still configured though
/// the key change is done.
const PREVIOUS_KEY_LEFT: &str = "the trail is already under the new key: remove the previous key from \
     the configuration (left there, it would let whoever holds the retired key have a tail forged \
     with it taken for a trail still to change, and continued)";

/// Why a key change is refused when the trail under the previous key did
/// not end cleanly.
const UNCLEAN_BEFORE_CHANGE: &str = "the key is not changed: the trail under the previous key does \
     not end in an audit.stopped record named by its newest checkpoint (its writer crashed, or \
     records were added after it); start once with the previous key as the key (the sink \
     recovers the trail), verify it, then change the key";

/// The JSON-lines sink; see the [module documentation](self).
pub struct JsonLinesSink {
    file: Option<File>,
    path: PathBuf,
    hasher: ChainHasher,
    signer: Option<CheckpointSigner>,
    checkpoints: File,
    checkpoint_every_events: u64,
    checkpoint_every: Duration,
    fsync: bool,
    rotate_bytes: Option<u64>,
    rotate_interval: Option<Duration>,
    chain_id: String,
    next_seq: u64,
    last_hash: String,
    file_first_seq: u64,
    file_len: u64,
    released: Released,
    opened_at: Instant,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    needs_recovery: bool,
    /// After a failed rename, when rotation may be tried again.
    rotation_retry_at: Option<Instant>,
    /// The `rotation` checkpoints not written yet (their write failed), in
    /// chain order: the seq and hash of each rotated file's last record.
    /// They go before any later checkpoint, so checkpoints never go back.
    rotation_checkpoint_due: Vec<(u64, String)>,
    /// The checkpoint file ends in a cut line: the next checkpoint starts on
    /// a line of its own.
    checkpoint_torn: bool,
    buf: Vec<u8>,
    /// The key before the sink's, while it may still be the trail's.
    previous: Option<Box<PreviousKey>>,
    /// The id of the chain key, for the record of a key change.
    key_id: Option<String>,
}

impl fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSink")
            .field("path", &self.path)
            .field("alg", &self.hasher.alg())
            .field("chain_id", &self.chain_id)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// What the end of an existing file says.
struct Tail {
    last: Option<Value>,
    /// The bytes after the last record that are not a record.
    torn: Vec<u8>,
    /// `torn` is already followed by a newline: an earlier recovery ended
    /// it and was cut before its record was whole.
    torn_ended: bool,
    /// That cut recovery write (after `torn`'s newline); empty otherwise.
    interrupted: Vec<u8>,
    first_seq: Option<u64>,
    /// The first record's time: the file's age, for time rotation.
    first_time: Option<OffsetDateTime>,
    len: u64,
}

impl JsonLinesSink {
    /// Configures a sink writing to `path`.
    pub fn builder(path: impl Into<PathBuf>) -> JsonLinesBuilder {
        JsonLinesBuilder {
            path: path.into(),
            key: None,
            previous_key: None,
            checkpoint_key: None,
            checkpoint_signing_key: None,
            checkpoint_path: None,
            checkpoint_every_events: 1000,
            checkpoint_every: Duration::from_secs(60),
            fsync: true,
            rotate_bytes: None,
            rotate_interval: None,
        }
    }

    /// The active file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash of the last record written.
    pub fn head_hash(&self) -> &str {
        &self.last_hash
    }

    /// Opens the trail under its previous key, as its last writer would
    /// have (recovering a crash), then goes on under the sink's key: an
    /// `audit.key_changed` record, hashed with the new key, and a
    /// `key_change` checkpoint.
    fn change_key(&mut self) -> Result<(), SinkError> {
        if !self.stopped_cleanly_under_previous_key()? {
            return Err(SinkError::Incompatible(UNCLEAN_BEFORE_CHANGE));
        }
        let Some(previous) = self.previous.take() else {
            return Ok(());
        };
        let PreviousKey {
            hasher,
            signer,
            key_id: previous_key_id,
        } = *previous;
        let key = std::mem::replace(&mut self.hasher, hasher);
        // (Checkpoints signed otherwise than with the chain key keep their
        // signer.)
        let checkpoint_signer = signer.map(|signer| self.signer.replace(signer));
        let opened = self.open_file();
        self.hasher = key;
        if let Some(signer) = checkpoint_signer {
            self.signer = signer;
        }
        opened?;
        let mut event =
            AuditEvent::new(ACTION_KEY_CHANGED, Category::System).with_outcome(Outcome::Success);
        event.details.insert(
            "previous_key_id".into(),
            Value::from(previous_key_id.as_str()),
        );
        event.details.insert(
            "key_id".into(),
            self.key_id.clone().map_or(Value::Null, Value::from),
        );
        // Where the file it is written to starts, pinned by the new key: the
        // records of the old key before it in this file cannot be cut with
        // a checkpoint forged with the old key.
        event
            .details
            .insert("file_first_seq".into(), Value::from(self.file_first_seq));
        self.write_one(&event, false)?;
        self.checkpoint("key_change")?;
        tracing::warn!(
            target: "audit",
            previous_key_id,
            key_id = self.key_id.as_deref(),
            "audit chain key changed"
        );
        Ok(())
    }

    /// Whether the trail under the previous key ends cleanly: its last
    /// record an `audit.stopped` (no torn line after it) that its newest
    /// checkpoint names, read before anything is written. A key change
    /// goes on from nothing else: after a crash, or records added past the
    /// newest checkpoint, whoever holds the retired key could have written
    /// them.
    fn stopped_cleanly_under_previous_key(&mut self) -> Result<bool, SinkError> {
        let Some(previous) = self.previous.as_ref() else {
            return Ok(false);
        };
        let mut file = File::open(&self.path).map_err(SinkError::io("open"))?;
        let tail = read_tail(&mut file)?;
        let Some(last) = tail.last.filter(|_| tail.torn.is_empty()) else {
            return Ok(false);
        };
        let (Some(seq), Some(hash)) = (
            last.pointer("/chain/seq").and_then(Value::as_u64),
            last.pointer("/chain/hash").and_then(Value::as_str),
        ) else {
            return Ok(false);
        };
        if last.get("action").and_then(Value::as_str) != Some(ACTION_STOPPED)
            || !previous
                .hasher
                .hash_record(&last)
                .is_ok_and(|computed| crate::chain::same_hash(&computed, hash))
        {
            return Ok(false);
        }
        let signer = previous.signer.as_ref().or(self.signer.as_ref());
        let newest = newest_checkpoint(&mut self.checkpoints, signer, None)?;
        Ok(newest.is_some_and(|cp| cp.seq == seq && crate::chain::same_hash(&cp.hash, hash)))
    }

    /// Ends a key change record cut by a crash right before its newline:
    /// the bytes after the previous key's last record are exactly the
    /// canonical `audit.key_changed` record that follows it, hashed with the
    /// new key. Returns whether it did (the trail is then under the new key).
    fn end_torn_key_change(&mut self) -> Result<bool, SinkError> {
        let mut file = open_append(&self.path).map_err(SinkError::io("open"))?;
        let tail = read_tail(&mut file)?;
        let (Some(last), false) = (tail.last, tail.torn.is_empty() || tail.torn_ended) else {
            return Ok(false);
        };
        let Ok(record) = serde_json::from_slice::<Value>(&tail.torn) else {
            return Ok(false);
        };
        let at = |value: &Value, pointer: &str| value.pointer(pointer).cloned();
        let next_seq = last
            .pointer("/chain/seq")
            .and_then(Value::as_u64)
            .and_then(|seq| seq.checked_add(1));
        let whole = record.get("action").and_then(Value::as_str) == Some(ACTION_KEY_CHANGED)
            && jcs::to_vec(&record).is_ok_and(|bytes| bytes == tail.torn)
            && record.pointer("/chain/seq").and_then(Value::as_u64) == next_seq
            && at(&record, "/chain/prev").is_some()
            && at(&record, "/chain/prev") == at(&last, "/chain/hash")
            && at(&record, "/chain/id") == at(&last, "/chain/id")
            && record
                .pointer("/chain/hash")
                .and_then(Value::as_str)
                .is_some_and(|stored| {
                    self.hasher
                        .hash_record(&record)
                        .is_ok_and(|computed| crate::chain::same_hash(stored, &computed))
                });
        if !whole {
            return Ok(false);
        }
        file.write_all(b"\n").map_err(SinkError::io("write"))?;
        file.sync_data().map_err(SinkError::io("fsync"))?;
        Ok(true)
    }

    /// Opens the active file and recovers from whatever the last writer left.
    fn open_file(&mut self) -> Result<(), SinkError> {
        // The first open of this sink (a reopen after a failed write knows
        // its chain already).
        let first_open = self.chain_id.is_empty();
        self.file = None;
        let mut file = open_append(&self.path).map_err(SinkError::io("open"))?;
        // The file may be new: its entry must be durable before the first
        // record in it is acknowledged.
        sync_parent(&self.path)?;
        let tail = read_tail(&mut file)?;
        self.file_len = tail.len;
        // From the start: reading the tail cached its last pages, and pages
        // another writer left dirty are only written back, never lost.
        self.released = Released::default();
        // A file's age is its first record's, not this process's: a service
        // restarted more often than its rotation interval still rotates.
        self.opened_at = started_at(tail.first_time, self.rotate_interval);
        let mut torn = tail.torn;
        let mut last = tail.last;
        let mut after_rotation = false;
        if last.is_none() && self.chain_id.is_empty() {
            // An empty active file next to rotated ones: the writer stopped
            // (crashed) right after a rotation. Continue the rotated chain.
            if let Some(previous) = crate::verify::rotated_files(&self.path)
                .ok()
                .and_then(|files| files.last().cloned())
            {
                let mut previous = File::open(&previous).map_err(SinkError::io("open rotated"))?;
                last = read_tail(&mut previous)?.last;
                after_rotation = last.is_some();
            }
        }
        let mut stopped = match &last {
            Some(last) => self.continue_from(last)?,
            None if self.chain_id.is_empty() => {
                // A new chain (a torn first line keeps its evidence too);
                // its id is drawn below, unless the torn line is its first
                // record, whole.
                self.next_seq = 0;
                self.last_hash = ZERO_HASH.to_owned();
                true
            }
            None => {
                // Reopened after a failed write, nothing readable: continue.
                true
            }
        };
        // The rotated file's last record, for its rotation checkpoint.
        let rotation_end = after_rotation.then(|| (self.next_seq - 1, self.last_hash.clone()));
        self.file = Some(file);
        let mut first_seq = tail.first_seq;
        // The bytes after the last line end: after an interrupted recovery
        // (its torn line already ended), that recovery's cut write; else the
        // torn bytes. When they are the whole next record (a write cut right
        // before its newline, or the recovery record accounting for the
        // torn line), it is ended and kept; a cut recovery write that is not
        // whole (the sink's own, never acknowledged) is removed, and the
        // recovery is done again below.
        let mut torn_ended = tail.torn_ended;
        let cut = if torn_ended { &tail.interrupted } else { &torn };
        let whole = self.whole_next_record(cut)?;
        let mut newest_checkpoint = None;
        if first_open {
            // Before anything is written: a trail that lost checkpointed
            // records is not continued, nor its loss recorded as a crash.
            let (chain_id, next_seq, last_hash) = match whole.as_ref().map(|r| r.get("chain")) {
                Some(Some(chain)) => (
                    chain.get("id").and_then(Value::as_str).unwrap_or(""),
                    chain
                        .get("seq")
                        .and_then(Value::as_u64)
                        .map_or(0, |s| s + 1),
                    chain.get("hash").and_then(Value::as_str).unwrap_or(""),
                ),
                _ => (
                    self.chain_id.as_str(),
                    self.next_seq,
                    self.last_hash.as_str(),
                ),
            };
            newest_checkpoint = check_checkpointed(
                &mut self.checkpoints,
                self.signer.as_ref(),
                self.previous.as_ref().and_then(|p| p.signer.as_ref()),
                chain_id,
                next_seq,
                last_hash,
            )?;
            // A previous key configured though the trail is under the new
            // key already: only the change's own start may have it (the
            // change record last, after a crash, or the change's checkpoint
            // not yet written); any later start is refused, before anything
            // is written.
            let change_last = whole
                .as_ref()
                .or(last.as_ref())
                .and_then(|record| record.get("action"))
                .and_then(Value::as_str)
                == Some(ACTION_KEY_CHANGED);
            let by_previous = newest_checkpoint.as_ref().is_some_and(|cp| cp.by_previous);
            if self.previous.is_some() && next_seq > 0 && !change_last && !by_previous {
                return Err(SinkError::Incompatible(PREVIOUS_KEY_LEFT));
            }
        }
        let newest_checkpoint = newest_checkpoint.map(|cp| (cp.seq, cp.rotation));
        if let Some(record) = whole {
            self.write_durably(b"\n", true)?;
            self.continue_from(&record)?;
            first_seq = first_seq.or(record.pointer("/chain/seq").and_then(Value::as_u64));
            last = Some(record);
            torn.clear();
            torn_ended = false;
            // Not a clean stop, whatever the record: its write was cut.
            stopped = false;
        } else if torn_ended && !tail.interrupted.is_empty() {
            let keep = tail.len - tail.interrupted.len() as u64;
            if let Some(file) = &self.file {
                file.set_len(keep).map_err(SinkError::io("truncate"))?;
                file.sync_data().map_err(SinkError::io("fsync"))?;
            }
            self.file_len = keep;
        }
        if self.chain_id.is_empty() {
            self.chain_id = uuid::Uuid::now_v7().to_string();
        }
        self.file_first_seq = first_seq.unwrap_or(self.next_seq);
        if first_open && rotation_end.is_none() {
            self.write_lost_rotation(newest_checkpoint)?;
        }
        if let Some((seq, hash)) = rotation_end {
            // The writer may have died between the rename and the rotation
            // checkpoint: write it (again) before anything else.
            self.write_checkpoint(seq, &hash, "rotation")?;
        }
        let crashed = !torn.is_empty() || after_rotation || !stopped;
        if crashed {
            let last_seq = last
                .as_ref()
                .and_then(|l| l.pointer("/chain/seq"))
                .cloned()
                .unwrap_or(Value::Null);
            let mut event = AuditEvent::new(ACTION_RECOVERED, Category::System)
                .with_outcome(Outcome::Success)
                .with_reason(if torn.is_empty() {
                    "unclean_shutdown"
                } else {
                    "torn_write"
                });
            event
                .details
                .insert("torn_bytes".into(), Value::from(torn.len() as u64));
            event.details.insert(
                "torn_sha256".into(),
                if torn.is_empty() {
                    Value::Null
                } else {
                    Value::String(hex::encode(Sha256::digest(&torn)))
                },
            );
            event.details.insert("last_seq".into(), last_seq);
            self.write_one(&event, !torn.is_empty() && !torn_ended)?;
            self.checkpoint("recovery")?;
            tracing::warn!(
                target: "audit",
                torn_bytes = torn.len(),
                "audit file recovered after an unclean shutdown"
            );
        }
        Ok(())
    }

    /// Writes the rotation checkpoint of the last rotated file when no
    /// checkpoint names its last record yet (`newest`: the newest
    /// checkpoint's seq): its write failed and was still due when the last
    /// writer stopped or crashed. Without it the active file alone would not
    /// link to the file before it. (An empty active file is the caller's
    /// `rotation_end`.)
    fn write_lost_rotation(&mut self, newest: Option<(u64, bool)>) -> Result<(), SinkError> {
        let Some(previous) = crate::verify::rotated_files(&self.path)
            .ok()
            .and_then(|files| files.last().cloned())
        else {
            return Ok(());
        };
        // It ends right before the active file starts: done when the newest
        // checkpoint is later, or that record's rotation checkpoint (another
        // checkpoint of that record, such as a key change's, does not link
        // the next file).
        let end = self.file_first_seq.saturating_sub(1);
        if newest.is_some_and(|(newest, rotation)| end < newest || end == newest && rotation) {
            return Ok(());
        }
        let mut rotated = File::open(&previous).map_err(SinkError::io("open rotated"))?;
        let Some(last) = read_tail(&mut rotated)?.last else {
            return Ok(());
        };
        let (Some(seq), Some(hash)) = (
            last.pointer("/chain/seq").and_then(Value::as_u64),
            last.pointer("/chain/hash").and_then(Value::as_str),
        ) else {
            return Ok(());
        };
        let links = seq + 1 == self.file_first_seq
            && self
                .hasher
                .hash_record(&last)
                .is_ok_and(|computed| crate::chain::same_hash(&computed, hash));
        if links && newest.is_none_or(|(newest, _)| seq >= newest) {
            let hash = hash.to_owned();
            self.write_checkpoint(seq, &hash, "rotation")?;
        }
        Ok(())
    }

    /// The record in `torn` (the bytes after the last line end) when they
    /// are exactly the canonical next record of this chain (of a new chain:
    /// its first), which a write cut right before the line end leaves.
    ///
    /// # Errors
    ///
    /// [`SinkError::WrongKey`] when they are that record but do not
    /// verify with this sink's algorithm and key: the file is another key's,
    /// and is refused rather than continued.
    fn whole_next_record(&self, torn: &[u8]) -> Result<Option<Value>, SinkError> {
        let Ok(record) = serde_json::from_slice::<Value>(torn) else {
            return Ok(None);
        };
        let Some(chain) = record.get("chain") else {
            return Ok(None);
        };
        let links = chain.get("seq").and_then(Value::as_u64) == Some(self.next_seq)
            && chain.get("prev").and_then(Value::as_str) == Some(self.last_hash.as_str())
            && (self.chain_id.is_empty()
                || chain.get("id").and_then(Value::as_str) == Some(self.chain_id.as_str()));
        let canonical = jcs::to_vec(&record).is_ok_and(|bytes| bytes == torn);
        if !(links && canonical) {
            return Ok(None);
        }
        // Checked before the file is touched (`continue_from` checks again).
        let verifies = chain.get("alg").and_then(Value::as_str) == Some(self.hasher.alg().as_str())
            && self.hasher.hash_record(&record).is_ok_and(|computed| {
                chain
                    .get("hash")
                    .and_then(Value::as_str)
                    .is_some_and(|stored| crate::chain::same_hash(stored, &computed))
            });
        if !verifies {
            return Err(SinkError::WrongKey);
        }
        Ok(Some(record))
    }

    /// Continues the chain after `last`, which must verify with this
    /// sink's algorithm and key; returns whether it is the record of a clean
    /// shutdown.
    fn continue_from(&mut self, last: &Value) -> Result<bool, SinkError> {
        let chain = last
            .get("chain")
            .and_then(Value::as_object)
            .ok_or(SinkError::Incompatible(
                "the last line is not a chained audit record",
            ))?;
        let alg = chain.get("alg").and_then(Value::as_str);
        if alg != Some(self.hasher.alg().as_str()) {
            return Err(SinkError::Incompatible(
                "the file is chained with another algorithm",
            ));
        }
        let stored = chain.get("hash").and_then(Value::as_str).unwrap_or("");
        let computed = self.hasher.hash_record(last)?;
        if !crate::chain::same_hash(stored, &computed) {
            return Err(SinkError::WrongKey);
        }
        let (Some(id), Some(seq)) = (
            chain.get("id").and_then(Value::as_str),
            chain.get("seq").and_then(Value::as_u64),
        ) else {
            return Err(SinkError::Incompatible(
                "the last record has no chain id or seq",
            ));
        };
        if seq >= crate::event::MAX_SAFE_INTEGER.unsigned_abs() {
            // Past 2^53 - 1 a seq is not an integer every JSON reader keeps
            // exactly, and the canonical form refuses it: the chain is full.
            return Err(SinkError::Incompatible(
                "the chain's seq is at its end (2^53 - 1): start a new trail",
            ));
        }
        self.chain_id = id.to_owned();
        self.next_seq = seq + 1;
        self.last_hash = computed;
        Ok(last.get("action").and_then(Value::as_str) == Some(ACTION_STOPPED))
    }

    /// Appends the canonical line of `event` (with the next seq) to `buf`.
    fn encode(&mut self, buf: &mut Vec<u8>, event: &AuditEvent) -> Result<(), SinkError> {
        let hash = encode_record(
            &self.hasher,
            &self.chain_id,
            self.next_seq,
            &self.last_hash,
            buf,
            event,
        )?;
        buf.push(b'\n');
        self.next_seq += 1;
        self.last_hash.clear();
        self.last_hash.extend(hash.iter().map(|b| char::from(*b)));
        Ok(())
    }

    /// Chains, appends and syncs one record of the sink's own (a recovery,
    /// a key change, the stop), after a newline that ends a torn line when
    /// `end_torn_line`.
    fn write_one(&mut self, event: &AuditEvent, end_torn_line: bool) -> Result<(), SinkError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if end_torn_line {
            buf.push(b'\n');
        }
        let result = self
            .encode(&mut buf, event)
            .and_then(|()| self.write_durably(&buf, true));
        self.buf = buf;
        result
    }

    fn write_durably(&mut self, data: &[u8], sync: bool) -> Result<(), SinkError> {
        let file = self
            .file
            .as_mut()
            .ok_or(SinkError::Unavailable("audit file is not open"))?;
        file.write_all(data).map_err(SinkError::io("write"))?;
        self.file_len += data.len() as u64;
        if sync {
            file.sync_data().map_err(SinkError::io("fsync"))?;
            self.released.advance(file, self.file_len);
        }
        Ok(())
    }

    /// Cuts the file back to `len`, the end of the last batch written, and
    /// syncs the cut, after a failed write (a full disk, a file size limit,
    /// an I/O error): the trail then holds all of a batch or none of it, so
    /// the events the pipeline reports lost (`audit.dropped`) are exactly
    /// those missing, and no record of a request that was refused (503 in
    /// strict mode) stays behind. Returns whether the file is back at `len`.
    /// Cuts nothing unless the file is between `len` and `len + written`
    /// bytes long: anything else (a length this sink did not write) is left
    /// to the recovery at the next batch.
    fn cut_back(&mut self, len: u64, written: u64) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        match file.metadata() {
            Ok(meta) if (len..=len + written).contains(&meta.len()) => {}
            _ => return false,
        }
        if let Err(error) = file.set_len(len).and_then(|()| file.sync_data()) {
            tracing::error!(target: "audit", %error, "could not remove a failed batch from the audit file");
            return false;
        }
        self.file_len = len;
        true
    }

    /// Appends a signed checkpoint of the current head.
    fn checkpoint(&mut self, reason: &'static str) -> Result<(), SinkError> {
        if self.next_seq == 0 {
            return Ok(());
        }
        // Without an fsync per batch the records are synced here: a
        // checkpoint must never be durable before the records it names.
        if !self.fsync
            && let Some(file) = &self.file
        {
            file.sync_data().map_err(SinkError::io("fsync"))?;
        }
        // Rotation checkpoints that failed come first: each names the end
        // of a rotated file, which nothing else links.
        self.write_due_rotations()?;
        let hash = self.last_hash.clone();
        self.write_checkpoint(self.next_seq - 1, &hash, reason)
    }

    /// Writes the rotation checkpoints still due, oldest first; stops at the
    /// first that fails (it and the later ones stay due).
    fn write_due_rotations(&mut self) -> Result<(), SinkError> {
        while let Some((seq, hash)) = self.rotation_checkpoint_due.first().cloned() {
            self.write_checkpoint(seq, &hash, "rotation")?;
            self.rotation_checkpoint_due.remove(0);
        }
        Ok(())
    }

    /// Appends and syncs a signed checkpoint of record `seq` (`hash`).
    fn write_checkpoint(
        &mut self,
        seq: u64,
        hash: &str,
        reason: &'static str,
    ) -> Result<(), SinkError> {
        let mut line = checkpoint_line(self.signer.as_ref(), &self.chain_id, seq, hash, reason)?;
        if self.checkpoint_torn {
            line.insert(0, b'\n');
        }
        // Until this line is whole, the file may end in part of it.
        self.checkpoint_torn = true;
        self.checkpoints
            .write_all(&line)
            .map_err(SinkError::io("write checkpoint"))?;
        self.checkpoint_torn = false;
        self.checkpoints
            .sync_data()
            .map_err(SinkError::io("fsync checkpoint"))?;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    fn rotation_due(&self) -> bool {
        if self.next_seq == self.file_first_seq {
            return false; // nothing in this file yet
        }
        if self.rotation_retry_at.is_some_and(|at| Instant::now() < at) {
            return false; // the last rename failed a moment ago
        }
        self.rotate_bytes.is_some_and(|max| self.file_len >= max)
            || self
                .rotate_interval
                .is_some_and(|every| self.opened_at.elapsed() >= every)
    }

    /// Rotates the active file. When the rename fails, the file stays open
    /// and in use, and rotation is not tried again for a second; when the
    /// new file cannot be opened, the active path is reopened (continuing
    /// the chain) before the next batch.
    fn rotate(&mut self) -> Result<(), SinkError> {
        // Without an fsync per batch, the file's records are synced before
        // its rotation checkpoint can name them.
        if !self.fsync
            && let Some(file) = &self.file
        {
            file.sync_data().map_err(SinkError::io("fsync"))?;
        }
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(format!(".{:020}", self.file_first_seq));
        if let Err(error) = fs::rename(&self.path, &rotated) {
            self.rotation_retry_at = Some(Instant::now() + ROTATION_RETRY);
            return Err(SinkError::io("rotate")(error));
        }
        self.rotation_retry_at = None;
        // The `rotation` checkpoint names the rotated file's last record,
        // once it is rotated: a failed rename leaves none behind (one would
        // let a trail start after it). If it cannot be written now, the next
        // checkpoint (or rotation) writes it first; after a crash here, the
        // next open.
        self.rotation_checkpoint_due
            .push((self.next_seq - 1, self.last_hash.clone()));
        let checkpointed = self.write_due_rotations();
        if let Some(file) = self.file.take() {
            // Complete: nothing appends to its last block any more.
            self.released.finish(&file);
        }
        let opened = self.open_rotated();
        if opened.is_err() {
            self.needs_recovery = true;
        }
        checkpointed.and(opened)
    }

    /// Opens the new active file after a rotation.
    fn open_rotated(&mut self) -> Result<(), SinkError> {
        let file = open_append(&self.path).map_err(SinkError::io("open"))?;
        // Make the rename and the new file's entry durable (before any
        // record in it is acknowledged).
        sync_parent(&self.path)?;
        self.file = Some(file);
        self.file_len = 0;
        self.released = Released::default();
        self.file_first_seq = self.next_seq;
        self.opened_at = Instant::now();
        Ok(())
    }

    fn write_events(&mut self, batch: &[AuditEvent]) -> Result<WriteReceipt, SinkError> {
        if self.needs_recovery {
            self.open_file()?;
            self.needs_recovery = false;
        }
        if self.rotation_due()
            && let Err(error) = self.rotate()
        {
            // Rotation is upkeep: the batch is written all the same, to the
            // file still open or, after a failed open, to the reopened path.
            tracing::error!(target: "audit", %error, "audit file rotation failed");
            if self.needs_recovery {
                self.open_file()?;
                self.needs_recovery = false;
            }
        }
        let (seq_before, hash_before, len_before) =
            (self.next_seq, self.last_hash.clone(), self.file_len);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut result = batch
            .iter()
            .try_for_each(|event| self.encode(&mut buf, event));
        let attempted = result.is_ok();
        if attempted {
            result = self.write_durably(&buf, self.fsync);
        }
        let buf_len = buf.len() as u64;
        if buf.capacity() <= 4 << 20 {
            self.buf = buf;
        }
        if let Err(error) = result {
            self.next_seq = seq_before;
            self.last_hash = hash_before;
            // The file may hold part of the batch: take it back out, or,
            // when that fails too, recover before the next batch.
            if attempted {
                self.needs_recovery = !self.cut_back(len_before, buf_len);
            }
            return Err(error);
        }
        self.since_checkpoint += batch.len() as u64;
        if self.since_checkpoint >= self.checkpoint_every_events
            && let Err(error) = self.checkpoint("count")
        {
            // The batch itself is written (and synced): reporting it as
            // failed would answer 500/503 for records that exist. The
            // checkpoint is retried after the next batch and at the next
            // tick, where a failure counts as a sink error.
            tracing::error!(target: "audit", %error, "audit checkpoint failed");
        }
        Ok(WriteReceipt {
            first_seq: Some(seq_before),
            durable: self.fsync,
        })
    }

    fn maintain(&mut self) -> Result<(), SinkError> {
        if self.since_checkpoint > 0 && self.last_checkpoint.elapsed() >= self.checkpoint_every {
            self.checkpoint("interval")?;
        }
        if !self.needs_recovery && self.rotation_due() {
            self.rotate()?;
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<(), SinkError> {
        if self.needs_recovery {
            self.open_file()?;
            self.needs_recovery = false;
        }
        let event =
            AuditEvent::new(ACTION_STOPPED, Category::System).with_outcome(Outcome::Success);
        if let Err(error) = self.write_one(&event, false) {
            // Part of the record may be in the file: whoever opens it next
            // (or this sink, if it is written to again) recovers it.
            self.needs_recovery = true;
            return Err(error);
        }
        self.checkpoint("shutdown")?;
        if let Some(file) = &self.file {
            self.released.finish(file);
        }
        Ok(())
    }
}

/// Appends the canonical record of `event` with the chain member
/// (`alg`, `id`, `seq`, `prev` and the computed `hash`) to `buf`, without a
/// line end, and returns the hash (lower-case hex). Shared by every chained
/// sink, so that a record has the same bytes in a file and in a database.
pub(crate) fn encode_record(
    hasher: &ChainHasher,
    chain_id: &str,
    seq: u64,
    prev: &str,
    buf: &mut Vec<u8>,
    event: &AuditEvent,
) -> Result<[u8; 64], NotCanonical> {
    /// `"hash":"<64 hex digits>",`
    const MEMBER: usize = 8 + 64 + 2;
    let start = buf.len();
    let mut splice_at = 0;
    let alg = hasher.alg().as_str();
    let mut chain = |out: &mut Vec<u8>| {
        out.extend_from_slice(b"\"chain\":{\"alg\":");
        jcs::write_str(out, alg);
        out.push(b',');
        splice_at = out.len();
        out.extend_from_slice(b"\"id\":");
        jcs::write_str(out, chain_id);
        out.extend_from_slice(b",\"prev\":");
        jcs::write_str(out, prev);
        out.extend_from_slice(b",\"seq\":");
        jcs::write_u64(out, seq);
        out.push(b'}');
    };
    if let Err(error) = event.write_canonical(buf, Some(&mut chain)) {
        buf.truncate(start);
        return Err(error);
    }
    // Hash the record without `chain.hash`, then insert the member in place
    // (it sorts between `alg` and `id`).
    let hash = hasher.digest_hex_array(&buf[start..]);
    let end = buf.len();
    buf.resize(end + MEMBER, 0);
    buf.copy_within(splice_at..end, splice_at + MEMBER);
    let member = &mut buf[splice_at..splice_at + MEMBER];
    member[..8].copy_from_slice(b"\"hash\":\"");
    member[8..72].copy_from_slice(&hash);
    member[72..].copy_from_slice(b"\",");
    Ok(hash)
}

/// What signs checkpoints: the Ed25519 key when there is one, else the
/// HMAC key, else nothing (unsigned checkpoints).
pub(crate) fn checkpoint_signer(
    ed25519: Option<Ed25519SigningKey>,
    hmac: Option<&SecretString>,
) -> Option<CheckpointSigner> {
    match (ed25519, hmac) {
        (Some(key), _) => Some(CheckpointSigner::Ed25519(key)),
        (None, Some(key)) => Some(CheckpointSigner::Hmac(ChainHasher::hmac(key))),
        (None, None) => None,
    }
}

/// A signed checkpoint line.
pub(crate) fn checkpoint_line(
    signer: Option<&CheckpointSigner>,
    chain_id: &str,
    seq: u64,
    hash: &str,
    reason: &str,
) -> Result<Vec<u8>, NotCanonical> {
    let mut map = Map::new();
    map.insert("schema".into(), Value::from(CHECKPOINT_SCHEMA));
    map.insert("chain_id".into(), Value::from(chain_id));
    map.insert("seq".into(), Value::from(seq));
    map.insert("hash".into(), Value::from(hash));
    map.insert(
        "time".into(),
        Value::String(format_time(OffsetDateTime::now_utc())),
    );
    map.insert("reason".into(), Value::from(reason));
    map.insert(
        "sig_alg".into(),
        Value::from(signer.map_or("none", CheckpointSigner::alg)),
    );
    let unsigned = jcs::to_vec(&Value::Object(map.clone()))?;
    let sig = signer.map_or(Value::Null, |s| Value::String(s.sign_hex(&unsigned)));
    map.insert("sig".into(), sig);
    let mut line = jcs::to_vec(&Value::Object(map))?;
    line.push(b'\n');
    Ok(line)
}

/// Opens `path` to append (and read back), creating it readable and
/// writable by its owner only (Unix: mode 0600, before the umask): a trail
/// names people, addresses and what they did.
fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).read(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The directory that holds `path`.
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes the entries of `path`'s directory durable (a file created or
/// renamed in it). Not every platform can open a directory; where it opens,
/// its sync must succeed.
fn sync_parent(path: &Path) -> Result<(), SinkError> {
    if let Ok(dir) = File::open(parent_of(path)) {
        dir.sync_all().map_err(SinkError::io("fsync directory"))?;
    }
    Ok(())
}

/// Creates the directories up to `path`'s, and makes each new one's entry
/// durable in its parent: a power loss must not take a new trail's
/// directory, and the acknowledged records in it, away.
fn create_dirs_durably(path: &Path) -> Result<(), SinkError> {
    let dir = parent_of(path);
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(SinkError::io("create directory"))?;
    // From the outermost new directory in: each one's parent records it.
    for new in missing.iter().rev() {
        sync_parent(new)?;
    }
    Ok(())
}

/// How much of the checkpoint file is read at a time, from its end, when
/// the sink opens.
const CHECKPOINT_BLOCK: u64 = 64 << 10;

/// The most of the checkpoint file's end read when the sink opens: the sink
/// writes nothing there but checkpoints and the rare cut line.
const MAX_CHECKPOINT_WINDOW: u64 = 64 << 20;

/// A checkpoint this sink wrote: the record it names.
pub(crate) struct OwnCheckpoint {
    pub(crate) seq: u64,
    pub(crate) chain_id: String,
    pub(crate) hash: String,
    /// Verified only with the previous chain key's signer (a file sink
    /// right after a key change).
    pub(crate) by_previous: bool,
    /// Its reason is `rotation`: it links the start of the next file.
    pub(crate) rotation: bool,
}

/// Why a stored checkpoint is not one this sink wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForeignCheckpoint {
    /// Signed another way (HMAC, Ed25519, none) than the sink signs.
    SignedAnotherWay,
    /// Signed this way, but it does not verify with the sink's key.
    DoesNotVerify,
}

/// Checks that `value`, a checkpoint (its schema already checked), is
/// signed the way `signer` signs and verifies with its key: a sink writes
/// no other, so another is a change of key or a forgery.
pub(crate) fn own_checkpoint(
    value: Value,
    signer: Option<&CheckpointSigner>,
) -> Result<OwnCheckpoint, ForeignCheckpoint> {
    let ours = signer.map_or("none", CheckpointSigner::alg);
    if value.get("sig_alg").and_then(Value::as_str) != Some(ours) {
        return Err(ForeignCheckpoint::SignedAnotherWay);
    }
    let verifier = signer.map(CheckpointSigner::verifier).unwrap_or_default();
    let location = crate::verify::Location::Line {
        file: PathBuf::new(),
        line: 0,
    };
    match crate::verify::check::parse_checkpoint(Some(value), &verifier, location, String::new()) {
        Ok(crate::verify::check::Checkpoint {
            seq: Some(seq),
            chain_id: Some(chain_id),
            hash: Some(hash),
            reason,
            ..
        }) => Ok(OwnCheckpoint {
            seq,
            chain_id,
            hash,
            by_previous: false,
            rotation: reason.as_deref() == Some("rotation"),
        }),
        _ => Err(ForeignCheckpoint::DoesNotVerify),
    }
}

/// Reads the newest checkpoint of `checkpoints` (`None` when it holds
/// none), from its end, a block at a time, keeping no more than a line.
///
/// The newest checkpoint must be its canonical form, signed the way this
/// sink signs (HMAC, Ed25519, none) and verify with its key: the sink never
/// writes another,
/// so another is a change of key (move the file aside) or a forgery. The
/// checkpoint before it (past copies of it) must not name a later record:
/// checkpoints only move forward, so an older one replayed at the end is
/// refused too. At most [`MAX_CHECKPOINT_WINDOW`] bytes are read.
fn newest_checkpoint(
    checkpoints: &mut File,
    signer: Option<&CheckpointSigner>,
    previous: Option<&CheckpointSigner>,
) -> Result<Option<OwnCheckpoint>, SinkError> {
    let len = checkpoints.metadata().map_err(SinkError::io("stat"))?.len();
    let mut newest: Option<OwnCheckpoint> = None;
    // Judges one line, newest first; `true` when the scan is done.
    let mut judge = |line: &[u8]| -> Result<bool, SinkError> {
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            return Ok(false); // a cut line, or not a checkpoint
        };
        if value.get("schema").and_then(Value::as_str) != Some(CHECKPOINT_SCHEMA) {
            return Ok(false);
        }
        let seq = value.get("seq").and_then(Value::as_u64);
        if let Some(newest) = &newest {
            return match seq {
                Some(seq) if seq == newest.seq => Ok(false),
                Some(seq) if seq > newest.seq => Err(SinkError::Incompatible(
                    "the newest checkpoint names an older record than the one before it: \
                     an old checkpoint was copied to the end of the file",
                )),
                _ => Ok(true),
            };
        }
        // Written as the canonical form of its object, as `verify` checks:
        // an edited line (a duplicated key another parser reads otherwise)
        // is not the sink's own.
        if jcs::to_vec(&value).ok().as_deref() != Some(line) {
            return Err(SinkError::Incompatible(
                "the newest checkpoint line is not the canonical form of its checkpoint: it \
                 was edited (or the file's line endings were converted)",
            ));
        }
        // Right after a key change, the newest checkpoint may still be the
        // previous key's.
        let own = own_checkpoint(value.clone(), signer).or_else(|foreign| match previous {
            Some(previous) => own_checkpoint(value, Some(previous))
                .map(|own| OwnCheckpoint {
                    by_previous: true,
                    ..own
                })
                .map_err(|_| foreign),
            None => Err(foreign),
        });
        newest = Some(own.map_err(|foreign| {
            SinkError::Incompatible(match foreign {
                ForeignCheckpoint::SignedAnotherWay => {
                    "the checkpoint file is signed another way (HMAC, Ed25519 or none) than \
                     this sink signs; to change it, move the checkpoint file aside (and keep \
                     it to verify the records it names)"
                }
                ForeignCheckpoint::DoesNotVerify => {
                    "the newest checkpoint does not verify with this sink's checkpoint key: the \
                     key changed (give the previous chain key, or move the checkpoint file \
                     aside and keep it to verify the records it names) or the line was forged"
                }
            })
        })?);
        Ok(false)
    };
    // `carry`: the start of the line whose end was read already.
    let mut carry: Vec<u8> = Vec::new();
    let mut pos = len;
    loop {
        if pos == 0 {
            judge(&carry)?;
            break;
        }
        if len - pos >= MAX_CHECKPOINT_WINDOW {
            return Err(SinkError::Incompatible(
                "the checkpoint file's last 64 MiB end in no checkpoint (or repeat one)",
            ));
        }
        let size = CHECKPOINT_BLOCK.min(pos);
        pos -= size;
        checkpoints
            .seek(SeekFrom::Start(pos))
            .map_err(SinkError::io("seek"))?;
        let mut block = Vec::with_capacity(usize::try_from(size).unwrap_or(0) + carry.len());
        Read::take(&mut *checkpoints, size)
            .read_to_end(&mut block)
            .map_err(SinkError::io("read checkpoints"))?;
        block.extend_from_slice(&carry);
        let Some(first_end) = block.iter().position(|b| *b == b'\n') else {
            carry = block;
            continue;
        };
        let mut finished = false;
        for line in block[first_end + 1..].split(|b| *b == b'\n').rev() {
            if judge(line)? {
                finished = true;
                break;
            }
        }
        if finished {
            break;
        }
        block.truncate(first_end);
        carry = block;
    }
    Ok(newest)
}

/// Refuses a trail (`chain_id`, empty when it holds no record, ending right
/// before `next_seq` with `last_hash`) that does not hold the record its
/// newest checkpoint names ([`newest_checkpoint`]); returns that checkpoint.
fn check_checkpointed(
    checkpoints: &mut File,
    signer: Option<&CheckpointSigner>,
    previous: Option<&CheckpointSigner>,
    chain_id: &str,
    next_seq: u64,
    last_hash: &str,
) -> Result<Option<OwnCheckpoint>, SinkError> {
    let newest = newest_checkpoint(checkpoints, signer, previous)?;
    let Some(OwnCheckpoint {
        seq: cp_seq,
        chain_id: ref cp_chain,
        hash: ref cp_hash,
        ..
    }) = newest
    else {
        return Ok(None);
    };
    let problem = if chain_id.is_empty() {
        format!(
            "it holds no record, but its checkpoints name chain {} up to seq {cp_seq}: \
             it was deleted or emptied",
            shown_id(cp_chain)
        )
    } else if cp_chain != chain_id {
        format!(
            "it holds chain {}, but its checkpoints name chain {}: it was replaced",
            shown_id(chain_id),
            shown_id(cp_chain)
        )
    } else if cp_seq >= next_seq {
        format!(
            "a checkpoint names seq {cp_seq}, but the file ends {}: durable records were removed",
            match next_seq.checked_sub(1) {
                Some(last) => format!("at seq {last}"),
                None => "before seq 0".to_owned(),
            }
        )
    } else if cp_seq + 1 == next_seq && !crate::chain::same_hash(cp_hash, last_hash) {
        format!("the record at seq {cp_seq} is not the one its checkpoint names")
    } else {
        return Ok(newest);
    };
    Err(SinkError::BehindCheckpoints(problem))
}

/// A chain id read from a file, for a message: escaped and bounded, so that
/// a tampered file cannot put control characters into a log line.
fn shown_id(id: &str) -> String {
    crate::event::sanitize(id, 64)
}

/// Whether `file` is not empty and does not end with a line end.
fn ends_torn(file: &mut File) -> Result<bool, SinkError> {
    let len = file.metadata().map_err(SinkError::io("stat"))?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1))
        .map_err(SinkError::io("seek"))?;
    file.read_exact(&mut last).map_err(SinkError::io("read"))?;
    Ok(last[0] != b'\n')
}

/// Reads the last complete record, the torn tail and the first record's seq.
fn read_tail(file: &mut File) -> Result<Tail, SinkError> {
    let len = file.metadata().map_err(SinkError::io("stat"))?.len();
    if len == 0 {
        return Ok(Tail {
            last: None,
            torn: Vec::new(),
            torn_ended: false,
            interrupted: Vec::new(),
            first_seq: None,
            first_time: None,
            len,
        });
    }
    // A window that starts at the file's start, or holds the lines it needs
    // whole; doubled until it does.
    let mut size = TAIL_WINDOW;
    let (last, torn, torn_ended, interrupted) = loop {
        let start = len.saturating_sub(size);
        file.seek(SeekFrom::Start(start))
            .map_err(SinkError::io("seek"))?;
        let mut window = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
        Read::take(&mut *file, len - start)
            .read_to_end(&mut window)
            .map_err(SinkError::io("read"))?;
        if let Some(found) = tail_lines(&window, start == 0)? {
            break found;
        }
        if size >= MAX_TAIL_WINDOW {
            return Err(SinkError::Incompatible(
                "the last line is longer than 256 MiB",
            ));
        }
        size *= 2;
    };
    // The first record's seq (files of a rotated chain start above 0).
    // Its line is read whole, like the last one.
    file.seek(SeekFrom::Start(0))
        .map_err(SinkError::io("seek"))?;
    let mut head = Vec::new();
    let mut reader = std::io::BufReader::new(Read::take(&mut *file, MAX_TAIL_WINDOW.min(len)));
    reader
        .read_until(b'\n', &mut head)
        .map_err(SinkError::io("read"))?;
    let first = head
        .strip_suffix(b"\n")
        .and_then(|line| serde_json::from_slice::<Value>(line).ok());
    let first_seq = first
        .as_ref()
        .and_then(|v| v.pointer("/chain/seq").and_then(Value::as_u64));
    let first_time = first
        .as_ref()
        .and_then(|v| v.get("time").and_then(Value::as_str))
        .and_then(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        });
    Ok(Tail {
        last,
        torn,
        torn_ended,
        interrupted,
        first_seq,
        first_time,
        len,
    })
}

/// The instant a file whose first record has `time` was started: now less
/// the record's age (none for a record from the future, a clock set back).
/// Where an `Instant` cannot go back that far (before the boot on some
/// systems), a file older than the rotation `interval` is made exactly that
/// old: it is still due.
fn started_at(time: Option<OffsetDateTime>, interval: Option<Duration>) -> Instant {
    let now = Instant::now();
    let age = time
        .map(|t| OffsetDateTime::now_utc() - t)
        .and_then(|age| Duration::try_from(age).ok())
        .unwrap_or_default();
    now.checked_sub(age)
        .or_else(|| {
            interval
                .filter(|i| *i <= age)
                .and_then(|i| now.checked_sub(i))
        })
        .unwrap_or(now)
}

/// What [`tail_lines`] finds: the last record, the torn bytes, whether they
/// are already ended by a newline, and the interrupted write after them.
type TailLines = (Option<Value>, Vec<u8>, bool, Vec<u8>);

/// The line of `window` that ends right before `end`, and where it starts;
/// `None` when its start is not in the window.
fn line_before(window: &[u8], end: usize, at_file_start: bool) -> Option<(usize, &[u8])> {
    let start = window[..end]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    (start > 0 || at_file_start).then(|| (start, &window[start..end]))
}

/// Reads the end of a file from `window` (its last bytes; `at_file_start`
/// when it holds the whole file). `None` when a line it needs starts before
/// the window.
///
/// Usually the last complete line is the last record, and the bytes after
/// it (if any) are torn. When the last complete line is not JSON, a recovery
/// was itself interrupted: that line is a torn line already ended by the
/// recovery's newline, the record before it is the last one, and what
/// follows is the cut recovery write.
fn tail_lines(window: &[u8], at_file_start: bool) -> Result<Option<TailLines>, SinkError> {
    let Some(newline) = window.iter().rposition(|b| *b == b'\n') else {
        return Ok(at_file_start.then(|| (None, window.to_vec(), false, Vec::new())));
    };
    let after = window[newline + 1..].to_vec();
    let Some((line_start, line)) = line_before(window, newline, at_file_start) else {
        return Ok(None);
    };
    if line.is_empty() {
        return Ok(Some((None, after, false, Vec::new())));
    }
    if let Ok(record) = serde_json::from_slice::<Value>(line) {
        return Ok(Some((Some(record), after, false, Vec::new())));
    }
    // What a recovery writes after the torn line's newline: its record,
    // which starts so (members in canonical order).
    const RECOVERY_START: &[u8] = br#"{"action":"audit.recovered","#;
    let n = after.len().min(RECOVERY_START.len());
    let cut_recovery = after[..n] == RECOVERY_START[..n];
    let not_json = SinkError::Incompatible("the last line is not JSON");
    let garbage = line.to_vec();
    if line_start == 0 {
        // Nothing before it to continue: only a cut recovery explains it.
        return if after.is_empty() || !cut_recovery {
            Err(not_json)
        } else {
            Ok(Some((None, garbage, true, after)))
        };
    }
    if !cut_recovery {
        return Err(not_json);
    }
    let Some((_, previous)) = line_before(window, line_start - 1, at_file_start) else {
        return Ok(None);
    };
    let previous = serde_json::from_slice::<Value>(previous)
        .map_err(|_| SinkError::Incompatible("the last two lines are not JSON"))?;
    Ok(Some((Some(previous), garbage, true, after)))
}

impl AuditSink for JsonLinesSink {
    fn name(&self) -> &'static str {
        "file"
    }

    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
        // File I/O is synchronous: the pipeline runs sinks on its own writer
        // thread, so it never blocks the application's runtime.
        let result = self.write_events(batch);
        Box::pin(std::future::ready(result))
    }

    fn tick(&mut self) -> SinkFuture<'_, ()> {
        let result = self.maintain();
        Box::pin(std::future::ready(result))
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        let result = self.stop();
        Box::pin(std::future::ready(result))
    }
}
