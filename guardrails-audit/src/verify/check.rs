//! The chain checks, over any ordered source of parsed records.
//!
//! A source (the lines of the files of a trail, the rows of one chain in a
//! database) turns each stored record into an [`Entry`] and labels it with
//! its position (`A`: a file and line, a row). [`check_chain`] consumes the
//! entries in order, one at a time; it only looks further ahead when it has
//! found damage and must tell its kind (is the missing record somewhere
//! later? does any record verify with this key?), and then stops. Checkpoints
//! are parsed first ([`parse_checkpoint`]) so that the chain pass keeps only
//! the hashes they name, and judged after it ([`check_checkpoints`]).

use std::collections::{HashMap, HashSet};
use std::iter::Peekable;

use secrecy::SecretString;
use serde_json::Value;

use super::{Damage, DamageKind, Location, VerifyError, VerifyReport};
use crate::chain::{ChainAlg, ChainHasher, ZERO_HASH, same_hash};
use crate::signing::{CheckpointVerifier, ED25519};
use crate::sink::file::{ACTION_KEY_CHANGED, ACTION_RECOVERED, ACTION_STOPPED, CHECKPOINT_SCHEMA};

/// One stored item of a trail.
pub(crate) enum Entry {
    /// A chained record.
    Record(Rec),
    /// Something that is not a chained record (`len` bytes whose SHA-256 is
    /// `sha256`, lower-case hex; `complete`: followed by a line end, or a
    /// database row).
    Garbage {
        len: u64,
        sha256: String,
        complete: bool,
    },
}

/// A parsed chained record.
pub(crate) struct Rec {
    pub(crate) alg: ChainAlg,
    pub(crate) seq: u64,
    pub(crate) id: String,
    pub(crate) prev: String,
    pub(crate) stored: String,
    /// The recomputed hash matches.
    pub(crate) hash_ok: bool,
    pub(crate) action: String,
    pub(crate) torn_bytes: Option<u64>,
    /// The SHA-256 of those bytes, which a recovery record names.
    pub(crate) torn_sha256: Option<String>,
    /// What the place the record is stored at says differently from the
    /// record itself (a database column edited without the record, a line
    /// that is not exactly the record's canonical form).
    pub(crate) mismatch: Option<String>,
    /// It says `hmac-sha256` and no key was given: unchecked. Only a
    /// trail that is keyed then needs the key; in a plain one the record
    /// is damage.
    pub(crate) needs_key: bool,
    /// Which key verifies the record: its place among the keys given, oldest
    /// first (`None`: none does). A trail moves to a later key only at an
    /// `audit.key_changed` record, and never back.
    pub(crate) key_epoch: Option<usize>,
    /// An `audit.key_changed` record naming a key that is none of those
    /// given.
    pub(crate) to_key_not_given: bool,
    /// An `audit.key_changed` record's `details.file_first_seq`: where the
    /// file it was written to started, pinned by the new key.
    pub(crate) file_first_seq: Option<u64>,
}

/// The chain hashers: plain SHA-256 and, with a key, HMAC-SHA-256.
pub(crate) struct Hashers {
    pub(crate) sha: ChainHasher,
    pub(crate) hmac: Option<ChainHasher>,
    /// The keys the trail was chained with before `hmac`, oldest first.
    pub(crate) previous: Vec<ChainHasher>,
    /// The ids of the keys given ([`crate::chain::key_id`]), where a trail
    /// may change its key (files): `None` elsewhere.
    pub(crate) ids: Option<Vec<String>>,
}

impl Hashers {
    /// Plain SHA-256, and HMAC-SHA-256 with `key` and the keys before it.
    pub(crate) fn new(key: Option<&SecretString>, previous: &[SecretString]) -> Self {
        Self {
            sha: ChainHasher::sha256(),
            hmac: key.map(ChainHasher::hmac),
            previous: previous.iter().map(ChainHasher::hmac).collect(),
            ids: Some(
                previous
                    .iter()
                    .chain(key)
                    .map(crate::chain::key_id)
                    .collect(),
            ),
        }
    }
}

/// Parses a record; `Ok(None)` when `value` is not a chained record.
///
/// `canonical`: the stored bytes, which must be exactly the canonical form
/// of the record (files); `None` where the store keeps a parsed value
/// (jsonb), which is then hashed as parsed.
pub(crate) fn parse_record(
    value: &Value,
    canonical: Option<&[u8]>,
    hashers: &Hashers,
) -> Result<Option<Rec>, VerifyError> {
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
        Some(ChainAlg::Sha256) => (ChainAlg::Sha256, Some(&hashers.sha)),
        Some(ChainAlg::HmacSha256) => (ChainAlg::HmacSha256, hashers.hmac.as_ref()),
        None => return Ok(None),
    };
    let verifies = |hasher: &ChainHasher| {
        hasher
            .hash_record(value)
            .is_ok_and(|computed| same_hash(&computed, &stored))
    };
    // The key's place among the keys, oldest first (the current key last):
    // tried newest first, as most of a trail is under its latest key.
    let key_epoch = match hasher {
        None => None,
        Some(hasher) if verifies(hasher) => Some(hashers.previous.len()),
        Some(_) if alg == ChainAlg::HmacSha256 => hashers.previous.iter().rposition(verifies),
        Some(_) => None,
    };
    let hash_ok = key_epoch.is_some();
    // The file sink writes every line as the canonical form of its record,
    // so the bytes must be exactly that: a record that only parses to the
    // hashed value (a duplicated key that another parser reads differently,
    // added whitespace or escapes) is modified. Its hash still matches, so
    // the key is not what is wrong (a trail whose line endings were all
    // converted is not a `wrong_key`).
    let mismatch = canonical
        .filter(|line| crate::jcs::to_vec(value).ok().as_deref() != Some(*line))
        .map(|line| {
            if line.ends_with(b"\r") {
                "the line ends in a carriage return (were the file's line endings converted?)"
            } else {
                "the line is not the canonical form of its record (whitespace, escapes or \
                 duplicate keys were added)"
            }
            .to_owned()
        });
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
        torn_sha256: value
            .pointer("/details/torn_sha256")
            .and_then(Value::as_str)
            .map(str::to_owned),
        mismatch,
        needs_key: hasher.is_none(),
        key_epoch,
        // A key change to a key none of the given ones is: the key was not
        // given (rather than the record modified).
        file_first_seq: (value.get("action").and_then(Value::as_str) == Some(ACTION_KEY_CHANGED))
            .then(|| {
                value
                    .pointer("/details/file_first_seq")
                    .and_then(Value::as_u64)
            })
            .flatten(),
        to_key_not_given: hashers.ids.as_ref().is_some_and(|ids| {
            value.get("action").and_then(Value::as_str) == Some(ACTION_KEY_CHANGED)
                && value
                    .pointer("/details/key_id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| !ids.iter().any(|given| given == id))
        }),
    }))
}

/// What the source knows about the chain before reading it.
pub(crate) struct ChainInput<'a> {
    /// The algorithm every record must use: HMAC-SHA-256 when a key is
    /// given, the registered one of a database chain, otherwise that of the
    /// first record. A record's own `alg` is not trusted: without this,
    /// anyone could append or rewrite records of a keyed trail as plain
    /// SHA-256 records, which need no key.
    pub(crate) alg: Option<ChainAlg>,
    /// Whether a key was given (a trail of another algorithm is then a
    /// wrong key rather than a rewrite, when its first record shows it).
    pub(crate) key_given: bool,
    /// The chain every record must belong to, when the source knows it.
    pub(crate) chain_id: Option<&'a str>,
    /// The chain starts at seq 0 in this source (no rotation): a first
    /// record with a higher seq means the head was cut.
    pub(crate) starts_at_zero: bool,
    /// The seqs whose hashes the checkpoints need.
    pub(crate) keep: &'a HashSet<u64>,
    /// The oldest files may have been removed on purpose
    /// ([`VerifyOptions::allow_pruned`](super::VerifyOptions::allow_pruned)).
    pub(crate) head_may_be_pruned: bool,
    /// The key the trail must end under (its place among the keys given,
    /// oldest first), when earlier keys were given: a trail that ends under
    /// an earlier one lost its change to the given key.
    pub(crate) final_key_epoch: Option<usize>,
}

/// What the checkpoints need from the chain pass.
#[derive(Default)]
pub(crate) struct ChainState {
    /// The hashes of the records whose seqs were asked for.
    pub(crate) hashes: HashMap<u64, String>,
    /// The `prev` of the first record, when the trail starts mid-chain.
    pub(crate) start_prev: Option<String>,
    /// The key of each record whose seq was asked for (see
    /// [`Checkpoint::key_epoch`]).
    pub(crate) epochs: HashMap<u64, usize>,
    /// The key of the first record.
    pub(crate) start_epoch: Option<usize>,
    /// The key it must end under ([`ChainInput::final_key_epoch`]).
    pub(crate) final_epoch: Option<usize>,
}

fn damage_at(kind: DamageKind, seq: Option<u64>, location: Location, detail: &str) -> VerifyError {
    VerifyError::Damaged(Damage {
        kind,
        seq,
        location,
        detail: detail.to_owned(),
    })
}

/// Whether any record verifies: none does (and there is one) means the key
/// is wrong, or everything was rewritten. Consumes what it reads.
fn wrong_key<A, I, F>(
    first: Option<(u64, Location)>,
    rest: &mut I,
    locate: &F,
) -> Option<VerifyError>
where
    I: Iterator<Item = (Entry, A)>,
    F: Fn(&A) -> Location,
{
    let mut first = first;
    for (entry, at) in rest {
        if let Entry::Record(rec) = entry {
            if rec.hash_ok {
                // The trail's first key was changed for one that was given.
                let (seq, location) = first.filter(|_| rec.action == ACTION_KEY_CHANGED)?;
                return Some(damage_at(
                    DamageKind::WrongKey,
                    Some(seq),
                    location,
                    &format!(
                        "the records before the key change at seq {} verify with none of the keys \
                         given: give the trail's earlier key as a previous key (or they were \
                         rewritten)",
                        rec.seq
                    ),
                ));
            }
            if first.is_none() {
                first = Some((rec.seq, locate(&at)));
            }
        }
    }
    let (seq, location) = first?;
    Some(damage_at(
        DamageKind::WrongKey,
        Some(seq),
        location,
        "no record verifies with this key",
    ))
}

/// Checks one chain, in order; fills `report` and returns what the
/// checkpoints need, or the first damage.
pub(crate) fn check_chain<A, I, F>(
    entries: I,
    input: &ChainInput<'_>,
    report: &mut VerifyReport,
    locate: F,
) -> Result<ChainState, VerifyError>
where
    I: Iterator<Item = (Entry, A)>,
    F: Fn(&A) -> Location,
{
    let mut entries: Peekable<I> = entries.peekable();
    let mut state = ChainState::default();
    let mut expected: Option<u64> = None;
    let mut last_hash = String::new();
    let mut trail_alg = input.alg;
    let mut key_epoch: Option<usize> = None;
    let mut last_at: Option<A> = None;
    if let Some(id) = input.chain_id {
        report.chain_id = Some(id.to_owned());
    }
    while let Some((entry, at)) = entries.next() {
        let rec = match entry {
            Entry::Garbage {
                len,
                sha256,
                complete,
            } => {
                if !complete && entries.peek().is_none() {
                    report.torn_tail = true;
                    continue;
                }
                // The recovery record that follows names these very bytes
                // (length and SHA-256) and continues the chain; at the start
                // of what is verified (a rotated file's first line), the
                // checkpoints link it. A recovery record whose line is not
                // canonical still accounts for the torn line: its own check
                // below names it, as the damaged record.
                let recovered = entries.peek().is_some_and(|(next, _)| {
                    matches!(next, Entry::Record(r)
                        if r.action == ACTION_RECOVERED && r.hash_ok && r.torn_bytes == Some(len)
                            && r.torn_sha256.as_deref().is_some_and(|h| same_hash(h, &sha256))
                            && expected.is_none_or(|e| r.seq == e)
                            && (expected.is_none() || r.prev == last_hash))
                });
                // A keyed trail verified without its key: say so, rather
                // than judge a line no key was there to check.
                let keyed_next = entries
                    .peek()
                    .is_some_and(|(next, _)| matches!(next, Entry::Record(r) if r.needs_key));
                if report.records == 0 && trail_alg.is_none() && keyed_next {
                    return Err(VerifyError::KeyRequired);
                }
                if recovered {
                    continue;
                }
                if report.records == 0
                    && let Some(error) = wrong_key(None, &mut entries, &locate)
                {
                    return Err(error);
                }
                return Err(damage_at(
                    DamageKind::Malformed,
                    expected,
                    locate(&at),
                    "a line that is not a chained record and no recovery record accounts for it",
                ));
            }
            Entry::Record(rec) => rec,
        };
        let damage = |kind, seq, detail: &str| damage_at(kind, seq, locate(&at), detail);
        match trail_alg {
            Some(alg) if alg != rec.alg => {
                let (kind, detail) = if report.records == 0 && input.key_given {
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
                return Err(damage(kind, Some(rec.seq), detail));
            }
            Some(_) => {}
            None => trail_alg = Some(rec.alg),
        }
        // A keyed trail (its first record, or its registration, says so).
        if rec.needs_key {
            return Err(VerifyError::KeyRequired);
        }
        if report.alg.is_none() {
            report.alg = Some(rec.alg);
        }
        if !rec.hash_ok {
            if report.records == 0
                && let Some(error) = wrong_key(Some((rec.seq, locate(&at))), &mut entries, &locate)
            {
                return Err(error);
            }
            if rec.to_key_not_given {
                return Err(damage(
                    DamageKind::WrongKey,
                    Some(rec.seq),
                    "the trail's key changes here, to a key not given: give the new key, and \
                     the earlier ones as previous keys (or the record was forged)",
                ));
            }
            return Err(damage(
                DamageKind::Modified,
                Some(rec.seq),
                "the record does not match its hash",
            ));
        }
        match &report.chain_id {
            Some(id) if *id != rec.id => {
                return Err(damage(
                    DamageKind::Inserted,
                    Some(rec.seq),
                    "the record belongs to another chain",
                ));
            }
            Some(_) => {}
            None => report.chain_id = Some(rec.id.clone()),
        }
        let mut later = |seq: u64| {
            entries.by_ref().find_map(|(e, _)| match e {
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
                        "the first record of the chain does not start from the zero hash",
                    ));
                }
                if rec.seq > 0 {
                    if input.starts_at_zero {
                        return Err(damage(
                            DamageKind::Truncated,
                            Some(0),
                            &format!(
                                "the chain starts at seq {}: its first records are missing",
                                rec.seq
                            ),
                        ));
                    }
                    state.start_prev = Some(rec.prev.clone());
                }
                report.first_seq = Some(rec.seq);
            }
            Some(exp) if rec.seq == exp => {
                if rec.prev != last_hash {
                    if later(exp).is_some() {
                        return Err(damage(
                            DamageKind::Inserted,
                            Some(exp),
                            "a record with this seq that does not link to the previous one; the genuine one follows",
                        ));
                    }
                    // This record is intact; the previous one was rewritten
                    // (its hash recomputed) or replaced.
                    return Err(damage(
                        DamageKind::Modified,
                        Some(exp - 1),
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
                            "the record with this seq appears later in the trail",
                        ));
                    }
                    return Err(damage(
                        DamageKind::Inserted,
                        Some(rec.seq),
                        "a record that does not belong at this position",
                    ));
                }
                return Err(damage(
                    DamageKind::Deleted,
                    Some(exp),
                    &format!("{} record(s) missing before seq {}", rec.seq - exp, rec.seq),
                ));
            }
            Some(_) => {
                return Err(damage(
                    DamageKind::Inserted,
                    Some(rec.seq),
                    "a seq that was already used (duplicated or forged record)",
                ));
            }
        }
        if let Some(mismatch) = &rec.mismatch {
            return Err(damage(DamageKind::Modified, Some(rec.seq), mismatch));
        }
        // The key: the same as the record before, or a later one given from
        // an `audit.key_changed` record on (whose hash under the new key
        // pins the old key's records). Never back: whoever still holds a
        // retired key cannot chain records past the change with it.
        match (key_epoch, rec.key_epoch) {
            (Some(current), Some(epoch)) if epoch == current => {}
            (Some(current), Some(epoch)) if epoch > current && rec.action == ACTION_KEY_CHANGED => {
                key_epoch = Some(epoch);
                report.key_changes += 1;
                // The file the change was written to started there: records
                // of the old key cut from its head (a checkpoint forged with
                // the old key linking what is left) are missing.
                if let (Some(pinned), Some(first)) = (rec.file_first_seq, report.first_seq)
                    && pinned < first
                    && !input.head_may_be_pruned
                {
                    return Err(damage(
                        DamageKind::Truncated,
                        Some(pinned),
                        &format!(
                            "the key change record says its file started at seq {pinned}, but the \
                             trail starts at seq {first}: records before it were cut"
                        ),
                    ));
                }
            }
            (None, epoch) => key_epoch = epoch,
            (Some(_), _) => {
                return Err(damage(
                    DamageKind::Modified,
                    Some(rec.seq),
                    "the record verifies only with another key than the trail's at this point \
                     (a trail moves to a later key at an audit.key_changed record, never back)",
                ));
            }
        }
        if rec.action == ACTION_RECOVERED {
            report.recoveries += 1;
        }
        report.cleanly_stopped = rec.action == ACTION_STOPPED;
        expected = Some(rec.seq + 1);
        if input.keep.contains(&rec.seq) {
            state.hashes.insert(rec.seq, rec.stored.clone());
            if let Some(epoch) = key_epoch {
                state.epochs.insert(rec.seq, epoch);
            }
        }
        if report.records == 0 {
            state.start_epoch = key_epoch;
        }
        last_hash = rec.stored;
        report.records += 1;
        report.last_seq = Some(rec.seq);
        last_at = Some(at);
    }
    if let (Some(required), Some(epoch), Some(at)) = (input.final_key_epoch, key_epoch, &last_at)
        && epoch < required
    {
        return Err(damage_at(
            DamageKind::Truncated,
            report.last_seq.map(|seq| seq + 1),
            locate(at),
            "the trail ends under an earlier key than the one given: its change to that key \
             (audit.key_changed) and what followed were cut (or the key given is not yet the \
             trail's: give its current key as the key)",
        ));
    }
    state.final_epoch = input.final_key_epoch;
    report.head_hash = (!last_hash.is_empty()).then_some(last_hash);
    Ok(state)
}

/// A checkpoint whose signature verified.
pub(crate) struct Checkpoint {
    /// Where it is stored.
    pub(crate) location: Location,
    /// How to name it in a detail (`checkpoint line 3`, `checkpoint 17`).
    pub(crate) name: String,
    pub(crate) chain_id: Option<String>,
    pub(crate) seq: Option<u64>,
    pub(crate) hash: Option<String>,
    /// Why it was written: `rotation` (the only kind a trail may start
    /// after), `count`, `interval`, `shutdown`.
    pub(crate) reason: Option<String>,
    /// `sig_alg` is `none`: accepted only because no checkpoint key was
    /// given, and proof of nothing against whoever can rewrite it.
    pub(crate) unsigned: bool,
    /// Which chain key signed it (its place among the keys given, oldest
    /// first), when checkpoints are signed with chain keys and earlier
    /// ones were given: a retired key vouches for nothing after it.
    pub(crate) key_epoch: Option<usize>,
}

/// Checks a checkpoint object's form and signature. `signer`: the
/// checkpoint key, if any.
///
/// # Errors
///
/// Damage at `location`, or [`VerifyError::KeyRequired`] for a signed
/// checkpoint without a key.
pub(crate) fn parse_checkpoint(
    value: Option<Value>,
    verifier: &CheckpointVerifier,
    location: Location,
    name: String,
) -> Result<Checkpoint, VerifyError> {
    let malformed = |seq, detail: &str, location: Location| {
        damage_at(DamageKind::Malformed, seq, location, detail)
    };
    let Some(Value::Object(mut cp)) = value else {
        return Err(malformed(None, "not a checkpoint", location));
    };
    if cp.get("schema").and_then(Value::as_str) != Some(CHECKPOINT_SCHEMA) {
        return Err(malformed(None, "not a checkpoint", location));
    }
    let seq = cp.get("seq").and_then(Value::as_u64);
    let sig_alg = cp
        .get("sig_alg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let sig = cp.remove("sig");
    let sig = sig.as_ref().and_then(Value::as_str).unwrap_or("");
    let unsigned = if sig_alg == "none" {
        Vec::new()
    } else {
        let Ok(unsigned) = crate::jcs::to_vec(&Value::Object(cp.clone())) else {
            return Err(malformed(seq, "not canonical", location));
        };
        unsigned
    };
    let mut key_epoch = None;
    let verifies = match (sig_alg.as_str(), &verifier.hmac, &verifier.ed25519) {
        ("none", None, None) => true,
        ("none", ..) => {
            return Err(damage_at(
                DamageKind::Modified,
                seq,
                location,
                "an unsigned checkpoint in a keyed trail",
            ));
        }
        // Ed25519 checkpoints are expected: an HMAC one was not written by
        // the holder of the private key (the chain key may be known to
        // verifiers of the trail).
        ("hmac-sha256", _, Some(_)) => {
            return Err(damage_at(
                DamageKind::Modified,
                seq,
                location,
                "an HMAC checkpoint where Ed25519 ones are expected",
            ));
        }
        ("hmac-sha256", Some(_), None) => {
            key_epoch = verifier.hmac_epoch(&unsigned, sig);
            key_epoch.is_some()
        }
        ("hmac-sha256", None, None) => return Err(VerifyError::KeyRequired),
        (ED25519, _, Some(public)) => public.verifies(&unsigned, sig),
        (ED25519, _, None) => return Err(VerifyError::PublicKeyRequired),
        _ => return Err(malformed(seq, "unknown signature algorithm", location)),
    };
    if !verifies {
        return Err(damage_at(
            DamageKind::WrongKey,
            seq,
            location,
            "the checkpoint signature does not verify with this key",
        ));
    }
    Ok(Checkpoint {
        location,
        name,
        chain_id: cp
            .get("chain_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        seq,
        hash: cp.get("hash").and_then(Value::as_str).map(str::to_owned),
        reason: cp.get("reason").and_then(Value::as_str).map(str::to_owned),
        unsigned: sig_alg == "none",
        // Only where checkpoints are signed with the chain keys, of which
        // earlier ones were given.
        key_epoch: key_epoch.filter(|_| !verifier.previous_hmac.is_empty()),
    })
}

/// The seqs whose hashes the checkpoints name.
pub(crate) fn wanted_seqs(checkpoints: &[Result<Checkpoint, VerifyError>]) -> HashSet<u64> {
    checkpoints
        .iter()
        .filter_map(|cp| cp.as_ref().ok()?.seq)
        .collect()
}

/// Where checkpoint verdicts about the trail itself are reported.
pub(crate) struct TrailEnds {
    /// The end of the trail (missing records after the last one).
    pub(crate) end: Location,
    /// The start of the trail (a first record that does not link).
    pub(crate) start: Location,
    /// What is verified is the whole trail, from its first record (all its
    /// rotated files, all its rows): holding no record is then never "just
    /// rotated".
    pub(crate) whole: bool,
}

/// Judges the trail against its checkpoints, in their order; a checkpoint
/// that failed to parse is reported when its turn comes.
pub(crate) fn check_checkpoints(
    checkpoints: Vec<Result<Checkpoint, VerifyError>>,
    state: &ChainState,
    ends: &TrailEnds,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    let start_prev = state.start_prev.as_deref();
    let mut linked_start = start_prev.is_none();
    let mut below_start: Option<u64> = None;
    // The newest checkpoint: its chain, whether it is a rotation's, its name.
    let mut latest: Option<(Option<String>, bool, String)> = None;
    // The newest seq named so far, and by which checkpoint.
    let mut highest: Option<(u64, String)> = None;
    // The latest chain key a checkpoint was signed with so far, and the
    // newest checkpoint's.
    let mut latest_key: Option<usize> = None;
    let mut newest_key: Option<usize> = None;
    for cp in checkpoints {
        let cp = cp?;
        // The sink signs with the key of the moment, and keys only move
        // forward: a checkpoint signed with a key retired before one that
        // signed a checkpoint before it was not written by the sink.
        if let Some(epoch) = cp.key_epoch {
            if latest_key.is_some_and(|latest| epoch < latest) {
                return Err(damage_at(
                    DamageKind::Inserted,
                    cp.seq,
                    cp.location,
                    &format!(
                        "{} is signed with a key retired before the key of a checkpoint before it",
                        cp.name
                    ),
                ));
            }
            latest_key = Some(epoch);
        }
        newest_key = cp.key_epoch;
        if cp.unsigned {
            report.unsigned_checkpoints += 1;
        }
        // One trail, one chain: a checkpoint of another chain means the
        // trail was replaced, or checkpoints of another trail were added to
        // hide that (every one of them verifies with a shared key). A trail
        // that holds no record yet is judged by the newest one, below.
        if let (Some(trail), Some(chain)) = (report.chain_id.as_deref(), cp.chain_id.as_deref())
            && trail != chain
        {
            return Err(damage_at(
                DamageKind::Truncated,
                Some(0),
                ends.end.clone(),
                &format!(
                    "{} is of chain {chain:?} but the trail holds chain {trail:?}: the trail \
                     was replaced, or another trail's checkpoints were added",
                    cp.name
                ),
            ));
        }
        if cp.chain_id.is_none() {
            return Err(damage_at(
                DamageKind::Malformed,
                cp.seq,
                cp.location,
                "no chain id",
            ));
        }
        if let Some((previous, _, _)) = &latest
            && *previous != cp.chain_id
        {
            return Err(damage_at(
                DamageKind::Inserted,
                cp.seq,
                cp.location,
                &format!(
                    "{} is of another chain than the checkpoints before it",
                    cp.name
                ),
            ));
        }
        latest = Some((
            cp.chain_id.clone(),
            cp.reason.as_deref() == Some("rotation"),
            cp.name.clone(),
        ));
        let (Some(seq), Some(hash)) = (cp.seq, cp.hash.as_deref()) else {
            return Err(damage_at(
                DamageKind::Malformed,
                None,
                cp.location,
                "no seq or hash",
            ));
        };
        // The sink writes checkpoints in chain order (a rotation's may be
        // written twice): one naming an older record than the one before it
        // was copied there, e.g. to make an emptied trail look just rotated.
        if let Some((newest, by)) = &highest
            && seq < *newest
        {
            return Err(damage_at(
                DamageKind::Inserted,
                Some(seq),
                cp.location,
                &format!(
                    "{} names seq {seq}, older than seq {newest} of {by} before it: \
                     checkpoints only move forward",
                    cp.name
                ),
            ));
        }
        highest = Some((seq, cp.name.clone()));
        if report.chain_id.is_none() {
            continue;
        }
        let first = report.first_seq.unwrap_or(0);
        // A retired key vouches for nothing chained after it was retired.
        let retired = |epoch: usize| cp.key_epoch.is_some_and(|signed| signed < epoch);
        match state.hashes.get(&seq) {
            Some(_) if state.epochs.get(&seq).is_some_and(|epoch| retired(*epoch)) => {
                return Err(damage_at(
                    DamageKind::Modified,
                    Some(seq),
                    cp.location,
                    &format!(
                        "{} is signed with a key retired before the record it names",
                        cp.name
                    ),
                ));
            }
            Some(stored) if same_hash(stored, hash) => report.checkpoints_checked += 1,
            Some(_) => {
                return Err(damage_at(
                    DamageKind::Modified,
                    Some(seq),
                    ends.end.clone(),
                    &format!("the record differs from the one {} signed", cp.name),
                ));
            }
            None if report.last_seq.is_none_or(|last| seq > last) => {
                let missing = report.last_seq.map_or(0, |l| l + 1);
                return Err(damage_at(
                    DamageKind::Truncated,
                    Some(missing),
                    ends.end.clone(),
                    &format!("{} names seq {seq}, but the trail ends before it", cp.name),
                ));
            }
            // Only a rotation ends a file: a trail that starts right after
            // any other checkpoint lost its head.
            None if seq < first && cp.reason.as_deref() == Some("rotation") => {
                if seq + 1 == first {
                    // Linking a start under a later key than its own (no
                    // file starts with a key change: it follows the old
                    // key's last record in the same file).
                    if state.start_epoch.is_some_and(retired) {
                        return Err(damage_at(
                            DamageKind::Truncated,
                            Some(first),
                            ends.start.clone(),
                            &format!(
                                "{} links the trail's start but is signed with a key retired \
                                 before it",
                                cp.name
                            ),
                        ));
                    }
                    if start_prev.is_some_and(|p| same_hash(p, hash)) {
                        linked_start = true;
                        report.checkpoints_checked += 1;
                    } else {
                        return Err(damage_at(
                            DamageKind::Modified,
                            Some(first),
                            ends.start.clone(),
                            "the first record does not link to the rotation checkpoint",
                        ));
                    }
                } else {
                    below_start = Some(below_start.map_or(seq, |b: u64| b.max(seq)));
                }
            }
            None => {}
        }
    }
    // A trail emptied, or replaced by another chain (made with the same
    // key), is not whole: the newest checkpoint names the chain it must hold.
    // Only a file just rotated (its records are all in the rotated one) may
    // hold none yet.
    // (A file just rotated under a later key than the newest checkpoint's
    // was not rotated by the sink: it signs with the key of the moment.)
    let current_rotation = state
        .final_epoch
        .is_none_or(|current| newest_key.is_none_or(|key| key >= current));
    if let Some((Some(chain), rotation, name)) = latest
        && report.chain_id.as_deref() != Some(chain.as_str())
        && !(rotation && current_rotation && report.chain_id.is_none() && !ends.whole)
    {
        let holds = match report.chain_id.as_deref() {
            Some(other) => format!("chain {other:?}"),
            None => "no record".to_owned(),
        };
        return Err(damage_at(
            DamageKind::Truncated,
            Some(0),
            ends.end.clone(),
            &format!(
                "{name}, the newest, is of chain {chain:?} but the trail holds {holds}: \
                 the trail was emptied or replaced"
            ),
        ));
    }
    if !linked_start {
        let from = below_start.map_or(0, |b| b + 1);
        return Err(damage_at(
            DamageKind::Truncated,
            Some(from),
            ends.start.clone(),
            &format!(
                "the trail starts at seq {} but no rotation checkpoint links it: records from seq {from} are missing",
                report.first_seq.unwrap_or(0)
            ),
        ));
    }
    Ok(())
}
