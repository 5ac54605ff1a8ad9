//! Changing the chain key of a JSON-lines trail: the sink goes on in the
//! same chain under the new key from an `audit.key_changed` record, and
//! `verify` (the library and the CLI) follows the change forward only, so
//! whoever keeps a retired key cannot add records after it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{awkward_events, checkpoints_of, key, read_lines, write_lines};
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

fn both_keys(path: &Path) -> VerifyOptions {
    VerifyOptions::new()
        .key(new_key())
        .previous_key(key())
        .checkpoints(checkpoints_of(path))
        .include_rotated(true)
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
    let refused = JsonLinesSink::builder(&path).hmac_key(new_key()).open();
    let Err(SinkError::Incompatible(why)) = refused else {
        panic!("opened under another key: {:?}", refused.err());
    };
    assert!(why.contains("previous"), "{why}");

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

    // A restart under the new key, the previous one still configured, or not.
    session(&path, new_key(), Some(key()), 3).await;
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
    let plain = |path: &Path| {
        VerifyOptions::new()
            .key(new_key())
            .previous_key(key())
            .checkpoints(checkpoints_of(path))
    };
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .open()
        .unwrap();
    sink.write_batch(&awkward_events(6)).await.unwrap();
    sink.close().await.unwrap();
    session_plain(&path, 4).await;
    let genuine = read_lines(&path);
    verify(&path, &plain(&path)).unwrap();
    let last: Value = serde_json::from_str(genuine.last().unwrap()).unwrap();
    let next = last["chain"]["seq"].as_u64().unwrap() + 1;
    let head = last["chain"]["hash"].as_str().unwrap();

    // A record appended with the old key, and a change back to it.
    for action in ["test.event", ACTION_KEY_CHANGED] {
        let mut lines = genuine.clone();
        lines.push(forged(&last, action, next, head, &key()));
        write_lines(&path, &lines);
        let damage = verify(&path, &plain(&path)).unwrap_err();
        let damage = damage.damage().unwrap().clone();
        assert_eq!(damage.kind, DamageKind::Modified, "{action}: {damage}");
        assert_eq!(damage.seq, Some(next), "{action}: {damage}");
        assert!(damage.detail.contains("never back"), "{damage}");
    }

    // A record under the old key rewritten, and the old key's part of the
    // chain hashed again after it.
    let mut lines = genuine;
    let change = lines
        .iter()
        .position(|l| l.contains(ACTION_KEY_CHANGED))
        .unwrap();
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
    let damage = verify(&path, &plain(&path)).unwrap_err();
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
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .open()
        .unwrap();
    sink.write_batch(&awkward_events(6)).await.unwrap();
    sink.close().await.unwrap();
    let old_checkpoints = read_lines(&checkpoints_of(&path));
    // Opened (the change written), then gone without a word: a crash.
    let sink = JsonLinesSink::builder(&path)
        .hmac_key(new_key())
        .previous_key(key())
        .open()
        .unwrap();
    drop(sink);
    // Back to the state of the crash: the change record last, its
    // checkpoint never written.
    let lines = read_lines(&path);
    let change = lines
        .iter()
        .position(|l| l.contains(ACTION_KEY_CHANGED))
        .unwrap();
    write_lines(&path, &lines[..=change]);
    write_lines(&checkpoints_of(&path), &old_checkpoints);

    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(new_key())
        .previous_key(key())
        .open()
        .unwrap();
    sink.write_batch(&awkward_events(2)).await.unwrap();
    sink.close().await.unwrap();
    let report = verify(
        &path,
        &VerifyOptions::new()
            .key(new_key())
            .previous_key(key())
            .checkpoints(checkpoints_of(&path)),
    )
    .unwrap();
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
