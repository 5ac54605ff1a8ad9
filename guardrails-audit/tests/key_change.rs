//! Changing the chain key of a JSON-lines trail: the sink goes on in the
//! same chain under the new key from an `audit.key_changed` record (once,
//! from a clean stop), and `verify` (the library and the CLI) follows the
//! change forward only and requires the trail to end under the key given,
//! so whoever keeps a retired key can neither add records after the change
//! nor cut the trail back to it.

mod common;

use std::path::Path;
#[cfg(feature = "cli")]
use std::process::Command;

use common::{awkward_events, checkpoints_of, key, read_lines, write_lines, write_trail};
use guardrails_audit::chain::{ChainHasher, ZERO_HASH, key_id};
use guardrails_audit::sink::file::{ACTION_KEY_CHANGED, JsonLinesSink};
use guardrails_audit::sink::{AuditSink, SinkError};
use guardrails_audit::{DamageKind, VerifyOptions, verify};
use secrecy::SecretString;
use serde_json::Value;

fn new_key() -> SecretString {
    SecretString::from("the-rotated-chain-key-fedcba9876543210")
}

/// Writes `n` events under `key` (with `previous`), rotating files at 4 KiB
/// and checkpointing every 5 records, and closes the sink.
async fn session(path: &Path, key: SecretString, previous: Option<SecretString>, n: usize) {
    let mut builder = JsonLinesSink::builder(path)
        .hmac_key(key)
        .rotate_bytes(4096)
        .checkpoint_every(5, std::time::Duration::from_secs(3600));
    if let Some(previous) = previous {
        builder = builder.previous_key(previous);
    }
    let mut sink = builder.open().unwrap();
    for batch in awkward_events(n).chunks(4) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
}

/// The sink under the old key alone.
fn under_old_key(path: &Path) -> Result<JsonLinesSink, SinkError> {
    JsonLinesSink::builder(path).hmac_key(key()).open()
}

/// The sink under the new key alone.
fn under_new_key(path: &Path) -> Result<JsonLinesSink, SinkError> {
    JsonLinesSink::builder(path).hmac_key(new_key()).open()
}

/// The sink of the start that changes the key: the new key, and the old
/// one as the previous key.
fn changing_key(path: &Path) -> Result<JsonLinesSink, SinkError> {
    JsonLinesSink::builder(path)
        .hmac_key(new_key())
        .previous_key(key())
        .open()
}

fn both_keys(path: &Path) -> VerifyOptions {
    VerifyOptions::new()
        .key(new_key())
        .previous_key(key())
        .checkpoints(checkpoints_of(path))
        .include_rotated(true)
}

/// A sink at `path` under `key` (after `previous`), its checkpoints signed
/// with [`common::ed25519_key`].
fn ed25519_signed(
    path: &Path,
    key: SecretString,
    previous: Option<SecretString>,
) -> guardrails_audit::sink::file::JsonLinesBuilder {
    JsonLinesSink::builder(path)
        .hmac_key(key)
        .maybe_previous_key(previous)
        .checkpoint_signing_key(common::ed25519_key())
}

/// Both keys and the checkpoints, the active file alone.
fn both_keys_alone(path: &Path) -> VerifyOptions {
    VerifyOptions::new()
        .key(new_key())
        .previous_key(key())
        .checkpoints(checkpoints_of(path))
}

/// The line of the trail's `audit.key_changed` record.
fn change_line(lines: &[String]) -> usize {
    lines
        .iter()
        .position(|l| l.contains(ACTION_KEY_CHANGED))
        .unwrap()
}

/// Every record of the trail, rotated files first.
fn records(path: &Path) -> Vec<Value> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with("audit.jsonl.") && !name.ends_with(".checkpoints") {
            files.push(p);
        }
    }
    files.sort();
    files.push(path.to_path_buf());
    files
        .iter()
        .flat_map(|f| read_lines(f))
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect()
}

/// A record chained after `prev` at `seq`, hashed with `key`.
fn forged(template: &Value, action: &str, seq: u64, prev: &str, key: &SecretString) -> String {
    let mut record = template.clone();
    record["action"] = Value::from(action);
    record["chain"]["seq"] = Value::from(seq);
    record["chain"]["prev"] = Value::from(prev);
    record["chain"].as_object_mut().unwrap().remove("hash");
    let hash = ChainHasher::hmac(key).hash_record(&record).unwrap();
    record["chain"]["hash"] = Value::from(hash);
    String::from_utf8(guardrails_audit::jcs::to_vec(&record).unwrap()).unwrap()
}

#[tokio::test]
async fn a_changed_key_goes_on_in_the_same_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    session(&path, key(), None, 20).await;
    // A sink with the new key alone refuses the trail, and says why.
    let refused = under_new_key(&path);
    let Err(error @ SinkError::WrongKey) = refused else {
        panic!("opened under another key: {:?}", refused.err());
    };
    assert!(error.to_string().contains("previous"), "{error}");

    session(&path, new_key(), Some(key()), 10).await;
    let all = records(&path);
    let changes: Vec<&Value> = all
        .iter()
        .filter(|r| r["action"] == ACTION_KEY_CHANGED)
        .collect();
    assert_eq!(changes.len(), 1, "{all:#?}");
    let change = changes[0];
    assert_eq!(
        change["details"]["previous_key_id"],
        key_id(&key()).as_str()
    );
    assert_eq!(change["details"]["key_id"], key_id(&new_key()).as_str());
    // One chain: the change links to the old key's last record.
    let at = all
        .iter()
        .position(|r| r["action"] == ACTION_KEY_CHANGED)
        .unwrap();
    assert_eq!(change["chain"]["id"], all[0]["chain"]["id"]);
    assert_eq!(change["chain"]["prev"], all[at - 1]["chain"]["hash"]);
    assert_eq!(all[at - 1]["action"], "audit.stopped");

    let report = verify(&path, &both_keys(&path)).unwrap();
    assert_eq!(report.key_changes, 1);
    assert_eq!(report.records, all.len() as u64);
    assert!(report.checkpoints_checked > 2, "{report:?}");
    assert!(report.files.len() > 1, "no rotation: {report:?}");

    // The previous key is for one start: left configured, it is refused
    // (and nothing written); without it, the trail goes on.
    let before = std::fs::read(&path).unwrap();
    let left = JsonLinesSink::builder(&path)
        .hmac_key(new_key())
        .previous_key(key())
        .rotate_bytes(4096)
        .open();
    let Err(SinkError::Incompatible(why)) = left else {
        panic!("a previous key left configured was accepted");
    };
    assert!(why.contains("remove the previous key"), "{why}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    session(&path, new_key(), None, 3).await;
    let report = verify(&path, &both_keys(&path)).unwrap();
    assert_eq!(report.key_changes, 1);

    // Either key alone says which is missing.
    let old_only = verify(
        &path,
        &VerifyOptions::new().key(key()).include_rotated(true),
    );
    let damage = old_only.unwrap_err();
    let damage = damage.damage().unwrap();
    assert_eq!(damage.kind, DamageKind::WrongKey);
    assert_eq!(damage.seq, change["chain"]["seq"].as_u64());
    assert!(damage.detail.contains("key changes here"), "{damage}");
    let new_only = verify(
        &path,
        &VerifyOptions::new().key(new_key()).include_rotated(true),
    );
    let damage = new_only.unwrap_err();
    let damage = damage.damage().unwrap();
    assert_eq!(damage.kind, DamageKind::WrongKey);
    assert_eq!(damage.seq, Some(0));
    assert!(damage.detail.contains("previous key"), "{damage}");
}

/// Whoever kept the retired key can neither add records after the change
/// nor switch the trail back to it, and a rewrite of the records under it
/// is found at the change, whose hash under the new key pins them.
#[tokio::test]
async fn a_retired_key_cannot_extend_or_rewrite_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 6, 1000).await;
    session_plain(&path, 4).await;
    let genuine = read_lines(&path);
    verify(&path, &both_keys_alone(&path)).unwrap();
    let last: Value = serde_json::from_str(genuine.last().unwrap()).unwrap();
    let next = last["chain"]["seq"].as_u64().unwrap() + 1;
    let head = last["chain"]["hash"].as_str().unwrap();

    // A record appended with the old key, and a change back to it.
    for action in ["test.event", ACTION_KEY_CHANGED] {
        let mut lines = genuine.clone();
        lines.push(forged(&last, action, next, head, &key()));
        write_lines(&path, &lines);
        let damage = verify(&path, &both_keys_alone(&path)).unwrap_err();
        let damage = damage.damage().unwrap().clone();
        assert_eq!(damage.kind, DamageKind::Modified, "{action}: {damage}");
        assert_eq!(damage.seq, Some(next), "{action}: {damage}");
        assert!(damage.detail.contains("never back"), "{damage}");
    }

    // A record under the old key rewritten, and the old key's part of the
    // chain hashed again after it.
    let mut lines = genuine;
    let change = change_line(&lines);
    let mut prev = ZERO_HASH.to_owned();
    for (seq, line) in lines.iter_mut().enumerate().take(change) {
        let mut record: Value = serde_json::from_str(line).unwrap();
        if seq == 2 {
            record["details"]["i"] = Value::from(999);
        }
        let action = record["action"].as_str().unwrap().to_owned();
        *line = forged(&record, &action, seq as u64, &prev, &key());
        let rewritten: Value = serde_json::from_str(line).unwrap();
        prev = rewritten["chain"]["hash"].as_str().unwrap().to_owned();
    }
    write_lines(&path, &lines);
    let damage = verify(&path, &both_keys_alone(&path)).unwrap_err();
    let damage = damage.damage().unwrap();
    assert_eq!(damage.kind, DamageKind::Modified, "{damage}");
    assert_eq!(damage.seq, Some(change as u64 - 1), "{damage}");
}

/// `n` records under the new key, its previous key configured.
async fn session_plain(path: &Path, n: usize) {
    let mut sink = JsonLinesSink::builder(path)
        .hmac_key(new_key())
        .previous_key(key())
        .open()
        .unwrap();
    sink.write_batch(&awkward_events(n)).await.unwrap();
    sink.close().await.unwrap();
}

/// A crash right after the change record, before its checkpoint: the next
/// open finds the trail under the new key and the newest checkpoint under
/// the old one, and recovers.
#[tokio::test]
async fn a_crash_right_after_the_change_recovers_under_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 6, 1000).await;
    let old_checkpoints = read_lines(&checkpoints_of(&path));
    // Opened (the change written), then gone without a word: a crash.
    let sink = changing_key(&path).unwrap();
    drop(sink);
    // Back to the state of the crash: the change record last, its
    // checkpoint never written.
    let lines = read_lines(&path);
    let change = change_line(&lines);
    write_lines(&path, &lines[..=change]);
    write_lines(&checkpoints_of(&path), &old_checkpoints);

    session_plain(&path, 2).await;
    let report = verify(&path, &both_keys_alone(&path)).unwrap();
    assert_eq!(report.key_changes, 1);
    assert_eq!(report.recoveries, 1);
    assert!(report.cleanly_stopped);
}

#[test]
fn a_previous_key_needs_a_key_and_enough_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let unkeyed = JsonLinesSink::builder(&path).previous_key(key()).open();
    assert!(
        matches!(unkeyed, Err(SinkError::Incompatible(_))),
        "{unkeyed:?}"
    );
    let short = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .previous_key(SecretString::from("short"))
        .open();
    let Err(error @ SinkError::ShortKey(_)) = short else {
        panic!("a short previous key was accepted");
    };
    assert_eq!(
        error.to_string(),
        "the audit previous chain key is shorter than 16 bytes"
    );
    assert!(!path.exists(), "created the trail");
}

/// The CLI: `--previous-key-file`, and the note that the key changed.
#[cfg(feature = "cli")]
#[tokio::test]
async fn the_cli_verifies_a_trail_whose_key_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    session(&path, key(), None, 8).await;
    session(&path, new_key(), Some(key()), 8).await;
    let old = dir.path().join("old.key");
    let new = dir.path().join("new.key");
    std::fs::write(&old, format!("{}\n", common::KEY)).unwrap();
    std::fs::write(&new, "the-rotated-chain-key-fedcba9876543210").unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_guardrails-audit"))
            .arg("verify")
            .arg(&path)
            .arg("--rotated")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = run(&[
        "--key-file".as_ref(),
        new.as_os_str(),
        "--previous-key-file".as_ref(),
        old.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok "), "{stdout}");
    assert!(stderr.contains("key changed 1 time"), "{stderr}");
    let (code, stdout, stderr) = run(&["--key-file".as_ref(), new.as_os_str()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with("damage=wrong_key seq=0"), "{stdout}");
    // No key file's content in any output.
    for out in [&stdout, &stderr] {
        assert!(!out.contains(common::KEY), "{out}");
        assert!(!out.contains("fedcba9876543210"), "{out}");
    }
    // A previous key without a key is refused.
    let (code, _, stderr) = run(&["--previous-key-file".as_ref(), old.as_os_str()]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn verify_options_never_show_their_keys() {
    let shown = format!(
        "{:?}",
        VerifyOptions::new().key(key()).previous_key(new_key())
    );
    assert!(shown.contains("previous_keys"), "{shown}");
    assert!(!shown.contains(common::KEY), "{shown}");
    assert!(!shown.contains("fedcba"), "{shown}");
}

/// Whoever holds the retired key and can write both files cuts the trail
/// at the change, forges a tail under the old key ending in a clean stop,
/// and replaces the checkpoints from the change on with one signed with the
/// old key: `verify`, given the current key, finds that the trail ends
/// under an earlier one.
#[tokio::test]
async fn a_trail_cut_back_to_its_old_key_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 4, 1000).await;
    let old_checkpoints = read_lines(&checkpoints_of(&path));
    session_plain(&path, 3).await;
    let lines = read_lines(&path);
    let change = change_line(&lines);
    let mut forged_lines = lines[..change].to_vec();
    let mut last: Value = serde_json::from_str(&forged_lines[change - 1]).unwrap();
    for (n, action) in ["test.event", "audit.stopped"].into_iter().enumerate() {
        let seq = change as u64 + n as u64;
        let prev = last["chain"]["hash"].as_str().unwrap().to_owned();
        let line = forged(&last, action, seq, &prev, &key());
        last = serde_json::from_str(&line).unwrap();
        forged_lines.push(line);
    }
    write_lines(&path, &forged_lines);
    // A shutdown checkpoint of the forged end, signed with the old key.
    let mut checkpoint: Value = serde_json::from_str(old_checkpoints.last().unwrap()).unwrap();
    checkpoint["seq"] = last["chain"]["seq"].clone();
    checkpoint["hash"] = last["chain"]["hash"].clone();
    checkpoint.as_object_mut().unwrap().remove("sig");
    let signed = guardrails_audit::jcs::to_vec(&checkpoint).unwrap();
    checkpoint["sig"] = Value::from(ChainHasher::hmac(&key()).digest_hex(&signed));
    let mut checkpoints = old_checkpoints;
    checkpoints
        .push(String::from_utf8(guardrails_audit::jcs::to_vec(&checkpoint).unwrap()).unwrap());
    write_lines(&checkpoints_of(&path), &checkpoints);
    // The forgery is consistent under the old key...
    verify(
        &path,
        &VerifyOptions::new()
            .key(key())
            .checkpoints(checkpoints_of(&path)),
    )
    .unwrap();
    // ... but the trail's key is the new one.
    let damage = verify(&path, &both_keys_alone(&path)).unwrap_err();
    let damage = damage.damage().unwrap();
    assert_eq!(damage.kind, DamageKind::Truncated, "{damage}");
    assert_eq!(damage.seq, Some(change as u64 + 2), "{damage}");
}

/// With checkpoints the retired key does not sign (Ed25519 here), records
/// forged with it after the change cannot be taken for a trail still to
/// change: the sink refuses to change the key of a trail that does not end
/// in the clean stop its newest checkpoint names.
#[tokio::test]
async fn a_forged_old_key_tail_is_not_changed_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let builder = |key, previous| ed25519_signed(&path, key, previous);
    let mut sink = builder(key(), None).open().unwrap();
    sink.write_batch(&awkward_events(4)).await.unwrap();
    sink.close().await.unwrap();
    let mut sink = builder(new_key(), Some(key())).open().unwrap();
    sink.write_batch(&awkward_events(2)).await.unwrap();
    sink.close().await.unwrap();
    let lines = read_lines(&path);
    let change = change_line(&lines);
    // The change and what followed replaced by more records under the old
    // key, ending in a stop; the checkpoint file left alone.
    let mut forged_lines = lines[..change].to_vec();
    let mut last: Value = serde_json::from_str(&forged_lines[change - 1]).unwrap();
    for n in 0..(lines.len() - change + 2) {
        let action = if n == lines.len() - change + 1 {
            "audit.stopped"
        } else {
            "test.event"
        };
        let prev = last["chain"]["hash"].as_str().unwrap().to_owned();
        let line = forged(&last, action, (change + n) as u64, &prev, &key());
        last = serde_json::from_str(&line).unwrap();
        forged_lines.push(line);
    }
    write_lines(&path, &forged_lines);
    let before = std::fs::read(&path).unwrap();
    let refused = builder(new_key(), Some(key())).open();
    let Err(SinkError::Incompatible(why)) = refused else {
        panic!(
            "changed the key of a forged tail again: {:?}",
            refused.err()
        );
    };
    assert!(
        why.contains("does not end in an audit.stopped record"),
        "{why}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "wrote to the trail");
}

/// A crash that cut the change record right before its newline: the next
/// start ends it and goes on under the new key.
#[tokio::test]
async fn a_change_record_cut_before_its_newline_is_ended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 4, 1000).await;
    let old_checkpoints = read_lines(&checkpoints_of(&path));
    drop(changing_key(&path).unwrap());
    let lines = read_lines(&path);
    let change = change_line(&lines);
    let text = lines[..=change].join("\n");
    assert!(!text.ends_with('\n'));
    std::fs::write(&path, text).unwrap();
    write_lines(&checkpoints_of(&path), &old_checkpoints);

    session_plain(&path, 1).await;
    let report = verify(&path, &both_keys_alone(&path)).unwrap();
    assert_eq!(report.key_changes, 1);
    assert_eq!(report.recoveries, 1);
}

/// An `audit.key_changed` line that does not verify is modified when it
/// names a key that was given; `wrong_key` is for a key not given.
#[tokio::test]
async fn a_forged_change_record_is_modified_not_a_key_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 3, 1000).await;
    let mut lines = read_lines(&path);
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let next = last["chain"]["seq"].as_u64().unwrap() + 1;
    let head = last["chain"]["hash"].as_str().unwrap().to_owned();
    let junk = SecretString::from("a key nobody was given, 32 bytes!");
    for (names, kind) in [
        (key_id(&new_key()), DamageKind::Modified),
        (key_id(&junk), DamageKind::WrongKey),
    ] {
        let mut record = last.clone();
        record["details"] = serde_json::json!({"key_id": names, "previous_key_id": key_id(&key())});
        lines.truncate(next as usize);
        lines.push(forged(&record, ACTION_KEY_CHANGED, next, &head, &junk));
        write_lines(&path, &lines);
        let damage = verify(
            &path,
            &VerifyOptions::new().key(new_key()).previous_key(key()),
        )
        .unwrap_err();
        let damage = damage.damage().unwrap();
        assert_eq!(damage.kind, kind, "{damage}");
        assert_eq!(damage.seq, Some(next), "{damage}");
    }
}

/// A checkpoint signed with `key`: `template` naming `seq` and `hash`.
fn forged_checkpoint(
    template: &str,
    seq: u64,
    hash: &str,
    reason: &str,
    key: &SecretString,
) -> String {
    let mut checkpoint: Value = serde_json::from_str(template).unwrap();
    checkpoint["seq"] = Value::from(seq);
    checkpoint["hash"] = Value::from(hash);
    checkpoint["reason"] = Value::from(reason);
    checkpoint.as_object_mut().unwrap().remove("sig");
    let signed = guardrails_audit::jcs::to_vec(&checkpoint).unwrap();
    checkpoint["sig"] = Value::from(ChainHasher::hmac(key).digest_hex(&signed));
    String::from_utf8(guardrails_audit::jcs::to_vec(&checkpoint).unwrap()).unwrap()
}

/// Checkpoints signed with the chain key: the retired key signs nothing the
/// sink wrote after the change. A rotation checkpoint forged with it to
/// link an active file whose first records were cut, in its place among
/// the checkpoints or at their end, or to pass an emptied active file for
/// one just rotated, is damage.
#[tokio::test]
async fn checkpoints_signed_with_the_retired_key_vouch_for_nothing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    session(&path, key(), None, 12).await;
    session(&path, new_key(), Some(key()), 40).await;
    let cp_path = checkpoints_of(&path);
    let genuine_checkpoints = read_lines(&cp_path);
    let genuine = read_lines(&path);
    let first: Value = serde_json::from_str(&genuine[0]).unwrap();
    assert_ne!(
        first["chain"]["seq"], 0,
        "the active file was never rotated"
    );
    let options = both_keys_alone(&path);
    verify(&path, &options).unwrap();

    // The active file's first three records cut, and a rotation checkpoint
    // forged with the old key to link what is left.
    let kept: Value = serde_json::from_str(&genuine[3]).unwrap();
    let link = forged_checkpoint(
        &genuine_checkpoints[0],
        kept["chain"]["seq"].as_u64().unwrap() - 1,
        kept["chain"]["prev"].as_str().unwrap(),
        "rotation",
        &key(),
    );
    write_lines(&path, &genuine[3..]);
    let link_seq = kept["chain"]["seq"].as_u64().unwrap() - 1;
    let in_order = genuine_checkpoints
        .iter()
        .position(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
                > link_seq
        })
        .unwrap();
    for at in [in_order, genuine_checkpoints.len()] {
        let mut checkpoints = genuine_checkpoints.clone();
        checkpoints.insert(at, link.clone());
        write_lines(&cp_path, &checkpoints);
        let damage = verify(&path, &options).unwrap_err();
        let damage = damage.damage().unwrap().clone();
        assert!(
            matches!(damage.kind, DamageKind::Inserted | DamageKind::Truncated),
            "{at}: {damage}"
        );
    }
    // Only the checkpoints before the change, and the forged link.
    let before_change: Vec<String> = genuine_checkpoints
        .iter()
        .filter(|l| signed_with(l, &key()))
        .cloned()
        .chain([link])
        .collect();
    write_lines(&cp_path, &before_change);
    let damage = verify(&path, &options).unwrap_err();
    assert_eq!(
        damage.damage().unwrap().kind,
        DamageKind::Truncated,
        "{damage}"
    );

    // The active file emptied, and a rotation checkpoint forged with the old
    // key at the newest seq.
    let last: Value = serde_json::from_str(genuine.last().unwrap()).unwrap();
    let rotated = forged_checkpoint(
        &genuine_checkpoints[0],
        last["chain"]["seq"].as_u64().unwrap(),
        last["chain"]["hash"].as_str().unwrap(),
        "rotation",
        &key(),
    );
    std::fs::write(&path, "").unwrap();
    let mut checkpoints: Vec<String> = genuine_checkpoints
        .iter()
        .filter(|l| signed_with(l, &key()))
        .cloned()
        .collect();
    checkpoints.push(rotated);
    write_lines(&cp_path, &checkpoints);
    assert!(verify(&path, &options).is_err());
}

/// Whether the checkpoint `line` is signed with `key`.
fn signed_with(line: &str, key: &SecretString) -> bool {
    let mut checkpoint: Value = serde_json::from_str(line).unwrap();
    let sig = checkpoint.as_object_mut().unwrap().remove("sig").unwrap();
    let signed = guardrails_audit::jcs::to_vec(&checkpoint).unwrap();
    sig == ChainHasher::hmac(key).digest_hex(&signed)
}

/// With checkpoints signed otherwise (Ed25519), a crash between the change
/// record and its checkpoint is recovered at the next start, the previous
/// key still configured.
#[tokio::test]
async fn a_crash_before_the_changes_checkpoint_recovers_with_any_signer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let builder = |key, previous| ed25519_signed(&path, key, previous);
    let mut sink = builder(key(), None).open().unwrap();
    sink.write_batch(&awkward_events(3)).await.unwrap();
    sink.close().await.unwrap();
    let old_checkpoints = read_lines(&checkpoints_of(&path));
    drop(builder(new_key(), Some(key())).open().unwrap());
    let lines = read_lines(&path);
    write_lines(&path, &lines[..=change_line(&lines)]);
    write_lines(&checkpoints_of(&path), &old_checkpoints);

    let mut sink = builder(new_key(), Some(key())).open().unwrap();
    sink.write_batch(&awkward_events(1)).await.unwrap();
    sink.close().await.unwrap();
    let public = common::ed25519_key().verifying_key();
    let report = verify(
        &path,
        &VerifyOptions::new()
            .key(new_key())
            .previous_key(key())
            .checkpoint_public_key(public)
            .checkpoints(checkpoints_of(&path)),
    )
    .unwrap();
    assert_eq!((report.key_changes, report.recoveries), (1, 1));
}

/// An old writer that crashed: the change is refused (whoever holds the
/// old key could have written what follows the last checkpoint), and the
/// way out works: a start with the old key recovers the trail, then the
/// change goes on. A start refused for a previous key left configured
/// writes nothing, even after a crash.
#[tokio::test]
async fn an_unclean_old_trail_is_recovered_before_its_key_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = under_old_key(&path).unwrap();
    sink.write_batch(&awkward_events(3)).await.unwrap();
    drop(sink);
    let before = std::fs::read(&path).unwrap();
    let refused = changing_key(&path);
    let Err(SinkError::Incompatible(why)) = refused else {
        panic!("changed the key of a crashed trail: {:?}", refused.err());
    };
    assert!(why.contains("start once with the previous key"), "{why}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let mut sink = under_old_key(&path).unwrap();
    sink.close().await.unwrap();
    verify(
        &path,
        &VerifyOptions::new()
            .key(key())
            .checkpoints(checkpoints_of(&path)),
    )
    .unwrap();
    let mut sink = changing_key(&path).unwrap();
    sink.write_batch(&awkward_events(2)).await.unwrap();
    drop(sink);
    // Crashed under the new key; a start with the previous key still
    // configured is refused before it recovers anything.
    let before = std::fs::read(&path).unwrap();
    let left = changing_key(&path);
    assert!(
        matches!(left, Err(SinkError::Incompatible(_))),
        "{:?}",
        left.err()
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "wrote before refusing"
    );
    under_new_key(&path).unwrap().close().await.unwrap();
    let report = verify(&path, &both_keys_alone(&path)).unwrap();
    assert_eq!((report.key_changes, report.recoveries), (1, 2));
}

/// The old key's records at the head of the file the change was written
/// to, cut by whoever holds the old key, with a rotation checkpoint forged
/// with it to link what is left: the change record, hashed with the new
/// key, says where its file started.
#[tokio::test]
async fn the_old_keys_head_of_the_changed_file_cannot_be_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 12, 1000).await;
    session_plain(&path, 12).await;
    let cp_path = checkpoints_of(&path);
    let genuine_checkpoints = read_lines(&cp_path);
    let genuine = read_lines(&path);
    let change = change_line(&genuine);
    verify(&path, &both_keys_alone(&path)).unwrap();
    for cut in [change - 1, change - 3] {
        let kept: Value = serde_json::from_str(&genuine[cut]).unwrap();
        let link_seq = kept["chain"]["seq"].as_u64().unwrap() - 1;
        let link = forged_checkpoint(
            &genuine_checkpoints[0],
            link_seq,
            kept["chain"]["prev"].as_str().unwrap(),
            "rotation",
            &key(),
        );
        // Among the old key's checkpoints, in seq order.
        let mut checkpoints: Vec<String> = genuine_checkpoints
            .iter()
            .filter(|l| signed_with(l, &key()))
            .cloned()
            .collect();
        checkpoints.insert(0, link);
        checkpoints.extend(
            genuine_checkpoints
                .iter()
                .filter(|l| !signed_with(l, &key()))
                .cloned(),
        );
        write_lines(&cp_path, &checkpoints);
        write_lines(&path, &genuine[cut..]);
        let damage = verify(&path, &both_keys_alone(&path)).unwrap_err();
        let damage = damage.damage().unwrap();
        assert_eq!(damage.kind, DamageKind::Truncated, "cut {cut}: {damage}");
        assert_eq!(damage.seq, Some(0), "cut {cut}: {damage}");
    }
}

/// A rotation right after the change whose checkpoint was never written (a
/// failed write, then a crash): the next start writes it, though the
/// change's own checkpoint names the same record, so the active file alone
/// still verifies.
#[tokio::test]
async fn a_rotation_checkpoint_lost_right_after_the_change_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 6, 1000).await;
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(new_key())
        .previous_key(key())
        .rotate_bytes(1)
        .open()
        .unwrap();
    // The file is past its size: this batch goes to a new one.
    sink.write_batch(&awkward_events(1)).await.unwrap();
    drop(sink);
    let cp_path = checkpoints_of(&path);
    let mut checkpoints = read_lines(&cp_path);
    let rotation = checkpoints.pop().unwrap();
    assert!(rotation.contains("\"reason\":\"rotation\""), "{rotation}");
    assert!(
        checkpoints
            .last()
            .unwrap()
            .contains("\"reason\":\"key_change\"")
    );
    write_lines(&cp_path, &checkpoints);

    let mut sink = under_new_key(&path).unwrap();
    sink.close().await.unwrap();
    let report = verify(&path, &both_keys_alone(&path)).unwrap();
    assert_eq!(report.recoveries, 1);
    verify(&path, &both_keys(&path)).unwrap();
}
