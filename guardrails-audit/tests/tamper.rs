//! Each kind of damage is detected and named with the first bad seq.

mod common;

use std::path::{Path, PathBuf};

use common::{checkpoints_of, key, read_lines, write_lines, write_trail};
use guardrails_audit::chain::ChainHasher;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{DamageKind, VerifyOptions, verify};
use secrecy::SecretString;
use serde_json::Value;

async fn trail(hmac: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, hmac.then(key), 20, 5).await;
    (dir, path)
}

fn options(hmac: bool, path: &Path) -> VerifyOptions {
    let o = VerifyOptions::new().checkpoints(checkpoints_of(path));
    if hmac { o.key(key()) } else { o }
}

fn damage(path: &Path, options: &VerifyOptions) -> (DamageKind, Option<u64>) {
    let error = verify(path, options).expect_err("damage must be detected");
    let d = error
        .damage()
        .unwrap_or_else(|| panic!("not a damage: {error}"));
    (d.kind, d.seq)
}

/// Re-hashes a record with plain SHA-256, as an attacker without a key can.
fn rehash(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    v["chain"].as_object_mut().unwrap().remove("hash");
    let hash = ChainHasher::sha256().hash_record(&v).unwrap();
    v["chain"]["hash"] = Value::from(hash);
    String::from_utf8(guardrails_audit::jcs::to_vec(&v).unwrap()).unwrap()
}

#[tokio::test]
async fn intact_trail_verifies() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let report = verify(&path, &options(hmac, &path)).unwrap();
        assert_eq!(report.records, 21);
        assert_eq!(report.first_seq, Some(0));
        assert_eq!(report.last_seq, Some(20));
        assert!(report.cleanly_stopped);
        assert!(report.checkpoints_checked >= 4);
        assert_eq!(report.recoveries, 0);
        // A plain trail's checkpoints are unsigned: the report says so.
        let unsigned = if hmac { 0 } else { report.checkpoints_checked };
        assert_eq!(report.unsigned_checkpoints, unsigned);
    }
}

#[tokio::test]
async fn modified_record() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let mut lines = read_lines(&path);
        lines[3] = lines[3].replace("inv_3", "inv_X");
        write_lines(&path, &lines);
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Modified, Some(3))
        );
    }
}

#[tokio::test]
async fn modified_and_rehashed_record_is_caught_by_the_link_or_the_key() {
    // SHA-256: the attacker recomputes record 3's hash; record 4's link breaks.
    let (_dir, path) = trail(false).await;
    let mut lines = read_lines(&path);
    lines[3] = rehash(&lines[3].replace("inv_3", "inv_X"));
    write_lines(&path, &lines);
    assert_eq!(
        damage(&path, &options(false, &path)),
        (DamageKind::Modified, Some(3))
    );

    // HMAC: a SHA-256 recomputation does not verify at all.
    let (_dir, path) = trail(true).await;
    let mut lines = read_lines(&path);
    lines[3] = rehash(&lines[3].replace("inv_3", "inv_X"));
    write_lines(&path, &lines);
    assert_eq!(
        damage(&path, &options(true, &path)),
        (DamageKind::Modified, Some(3))
    );
}

#[tokio::test]
async fn duplicated_key_is_modification() {
    // `{"action":"admin.grant","action":"http.request",...}` parses (last
    // key wins in serde_json and Python) to the hashed record, but a reader
    // that keeps the first key sees another action: lines must be canonical.
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let mut lines = read_lines(&path);
        assert!(lines[3].starts_with("{\"action\":"));
        lines[3] = lines[3].replacen('{', "{\"action\":\"admin.grant\",", 1);
        write_lines(&path, &lines);
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Modified, Some(3))
        );
    }
}

#[tokio::test]
async fn keyless_rewrite_of_a_keyed_trail_is_caught() {
    // An attacker without the key rewrites record 3 and everything after it
    // as plain SHA-256 records, each linked to the previous one: every hash
    // is correct for the `alg` the record claims. The record's own `alg`
    // must not choose the check. (Checkpoints left out: the chain alone must
    // catch it.)
    let (_dir, path) = trail(true).await;
    let mut lines = read_lines(&path);
    let mut prev: String = serde_json::from_str::<Value>(&lines[2]).unwrap()["chain"]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    for line in &mut lines[3..] {
        let mut v: Value = serde_json::from_str(&line.replace("inv_3", "inv_X")).unwrap();
        v["chain"]["alg"] = Value::from("sha256");
        v["chain"]["prev"] = Value::from(prev.as_str());
        *line = rehash(&v.to_string());
        prev = serde_json::from_str::<Value>(line).unwrap()["chain"]["hash"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    write_lines(&path, &lines);
    let keyed = VerifyOptions::new().key(key());
    assert_eq!(damage(&path, &keyed), (DamageKind::Modified, Some(3)));

    // The whole trail rewritten keyless: a key was given, nothing is keyed.
    let mut prev = guardrails_audit::chain::ZERO_HASH.to_owned();
    for line in &mut lines {
        let mut v: Value = serde_json::from_str(line).unwrap();
        v["chain"]["alg"] = Value::from("sha256");
        v["chain"]["prev"] = Value::from(prev.as_str());
        *line = rehash(&v.to_string());
        prev = serde_json::from_str::<Value>(line).unwrap()["chain"]["hash"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    write_lines(&path, &lines);
    assert_eq!(damage(&path, &keyed), (DamageKind::WrongKey, Some(0)));
    // Without a key the forged trail is self-consistent: that is what plain
    // SHA-256 promises, and why keyed trails must be verified with the key.
    assert!(verify(&path, &VerifyOptions::new()).is_ok());
}

#[tokio::test]
async fn inserted_record() {
    for hmac in [false, true] {
        // A replayed copy of a genuine record.
        let (_dir, path) = trail(hmac).await;
        let mut lines = read_lines(&path);
        let copy = lines[6].clone();
        lines.insert(9, copy);
        write_lines(&path, &lines);
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Inserted, Some(6))
        );
    }
    // A forged record taking seq 7's place, linked and hashed correctly
    // (possible with SHA-256 only): the genuine seq 7 follows it.
    let (_dir, path) = trail(false).await;
    let mut lines = read_lines(&path);
    let forged = rehash(&lines[7].replace("inv_7", "inv_forged"));
    lines.insert(7, forged);
    write_lines(&path, &lines);
    assert_eq!(
        damage(&path, &options(false, &path)),
        (DamageKind::Inserted, Some(7))
    );
}

#[tokio::test]
async fn deleted_record() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let mut lines = read_lines(&path);
        lines.remove(5);
        lines.remove(5);
        write_lines(&path, &lines);
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Deleted, Some(5))
        );
    }
}

#[tokio::test]
async fn reordered_records() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let mut lines = read_lines(&path);
        lines.swap(8, 9);
        write_lines(&path, &lines);
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Reordered, Some(8))
        );
    }
}

#[tokio::test]
async fn truncated_against_checkpoint() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let mut lines = read_lines(&path);
        lines.truncate(12);
        write_lines(&path, &lines);
        // Without checkpoints a clean cut is invisible in the chain itself…
        let no_checkpoints = if hmac {
            VerifyOptions::new().key(key())
        } else {
            VerifyOptions::new()
        };
        assert!(verify(&path, &no_checkpoints).is_ok());
        // …the checkpoint names the missing records.
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Truncated, Some(12))
        );
    }
}

#[tokio::test]
async fn truncated_head_is_detected_with_checkpoints() {
    let (_dir, path) = trail(true).await;
    let lines = read_lines(&path);
    write_lines(&path, &lines[6..]);
    // Records 0..=5 are gone: the first missing seq is 0.
    assert_eq!(
        damage(&path, &options(true, &path)),
        (DamageKind::Truncated, Some(0))
    );
}

#[tokio::test]
async fn converted_line_endings_are_modification_not_a_wrong_key() {
    // A trail copied through a tool that writes CRLF: every record still
    // hashes right, so the key is not what is wrong; the bytes changed.
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        for file in [path.clone(), checkpoints_of(&path)] {
            let text = std::fs::read_to_string(&file).unwrap();
            std::fs::write(&file, text.replace('\n', "\r\n")).unwrap();
        }
        let error = verify(&path, &options(hmac, &path)).unwrap_err();
        let d = error.damage().unwrap_or_else(|| panic!("{error}"));
        assert_eq!((d.kind, d.seq), (DamageKind::Modified, Some(0)));
        assert!(d.detail.contains("ends in a carriage return"), "{error}");
    }
}

#[tokio::test]
async fn wrong_key() {
    let (_dir, path) = trail(true).await;
    let wrong = VerifyOptions::new().key(SecretString::from("not the key"));
    assert_eq!(damage(&path, &wrong), (DamageKind::WrongKey, Some(0)));
    // The right chain key but a wrong checkpoint key.
    let wrong_cp = options(true, &path).checkpoint_key(SecretString::from("not the key"));
    assert_eq!(damage(&path, &wrong_cp).0, DamageKind::WrongKey);
    // No key at all for a keyed chain.
    assert!(matches!(
        verify(&path, &VerifyOptions::new()),
        Err(guardrails_audit::VerifyError::KeyRequired)
    ));
}

#[tokio::test]
async fn rewritten_checkpoint_file_is_detected() {
    let (_dir, path) = trail(true).await;
    let cp = checkpoints_of(&path);
    let mut lines = read_lines(&cp);
    lines[0] = lines[0].replace("\"count\"", "\"interval\"");
    write_lines(&cp, &lines);
    assert_eq!(damage(&path, &options(true, &path)).0, DamageKind::WrongKey);
}

#[tokio::test]
async fn malformed_line() {
    let (_dir, path) = trail(false).await;
    let mut lines = read_lines(&path);
    lines.insert(4, "{\"not\": \"a record\"}".to_owned());
    write_lines(&path, &lines);
    assert_eq!(
        damage(&path, &options(false, &path)),
        (DamageKind::Malformed, Some(4))
    );
}

#[tokio::test]
async fn torn_line_is_a_crash_not_tampering() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        // A crash mid-write leaves half a line.
        let lines = read_lines(&path);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(&lines[2].as_bytes()[..50]);
        std::fs::write(&path, &text).unwrap();
        let report = verify(&path, &options(hmac, &path)).unwrap();
        assert!(report.torn_tail);

        // Reopening recovers: the torn bytes stay, a recovery record follows.
        let mut builder = JsonLinesSink::builder(&path);
        if hmac {
            builder = builder.hmac_key(key());
        }
        let mut sink = builder.open().unwrap();
        use guardrails_audit::sink::AuditSink;
        sink.write_batch(&common::awkward_events(3)).await.unwrap();
        sink.close().await.unwrap();
        let report = verify(&path, &options(hmac, &path)).unwrap();
        assert_eq!(report.recoveries, 1);
        assert!(!report.torn_tail);
        assert_eq!(report.records, 21 + 1 + 3 + 1);
        let recovered: Vec<Value> = read_lines(&path)
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["action"] == "audit.recovered")
            .collect();
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0]["details"]["torn_bytes"], 50);
        assert_eq!(recovered[0]["details"]["last_seq"], 20);
        assert_eq!(recovered[0]["reason"], "torn_write");

        // But garbage that no recovery record accounts for is damage.
        let mut lines = read_lines(&path);
        let torn_at = lines
            .iter()
            .position(|l| serde_json::from_str::<Value>(l).is_err())
            .unwrap();
        let original = lines[torn_at].clone();
        lines[torn_at].push('x');
        write_lines(&path, &lines);
        assert_eq!(
            damage(&path, &options(hmac, &path)).0,
            DamageKind::Malformed
        );
        // Nor do other bytes of the same length: the record names their
        // SHA-256 too.
        lines[torn_at] = original.replacen('"', "'", 1);
        assert_eq!(lines[torn_at].len(), original.len());
        write_lines(&path, &lines);
        assert_eq!(
            damage(&path, &options(hmac, &path)).0,
            DamageKind::Malformed
        );
        // A recovery record that is not exactly its canonical form is
        // itself the damage, not the torn line it accounts for.
        lines[torn_at] = original;
        let recovery = &mut lines[torn_at + 1];
        assert!(recovery.contains("audit.recovered"));
        let seq = serde_json::from_str::<Value>(recovery).unwrap()["chain"]["seq"].as_u64();
        recovery.push(' ');
        write_lines(&path, &lines);
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Modified, seq)
        );
    }
}

#[tokio::test]
async fn reopening_with_another_key_is_refused() {
    let (_dir, path) = trail(true).await;
    let error = JsonLinesSink::builder(&path)
        .hmac_key(SecretString::from("another key, 16 bytes or more"))
        .open()
        .unwrap_err();
    assert!(error.to_string().contains("does not verify"), "{error}");
    assert!(!error.to_string().contains("another key"));
    let error = JsonLinesSink::builder(&path).open().unwrap_err();
    assert!(error.to_string().contains("another algorithm"), "{error}");
}

#[tokio::test]
async fn rotation_links_files_and_verifies_as_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .rotate_bytes(4000)
        .open()
        .unwrap();
    use guardrails_audit::sink::AuditSink;
    for batch in common::awkward_events(30).chunks(3) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
    let rotated: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("audit.jsonl.0")
        })
        .collect();
    assert!(rotated.len() >= 2, "{} rotated files", rotated.len());
    let all = options(true, &path).include_rotated(true);
    let report = verify(&path, &all).unwrap();
    assert_eq!(report.first_seq, Some(0));
    assert_eq!(report.last_seq, Some(30));
    // The active file alone verifies too: a rotation checkpoint links its head.
    let report = verify(&path, &options(true, &path)).unwrap();
    assert!(report.first_seq.unwrap() > 0);
    // Removing a middle rotated file breaks the chain.
    let mut names: Vec<_> = rotated.iter().map(|e| e.path()).collect();
    names.sort();
    std::fs::remove_file(&names[1]).unwrap();
    assert_eq!(damage(&path, &all).0, DamageKind::Deleted);
}

/// A keyed trail at `path` that wrote 5 events (seqs 0..=4), then rotated
/// by time on its maintenance tick, which leaves an empty active file; the
/// sink is returned still open.
async fn rotated_by_time(path: &Path) -> JsonLinesSink {
    use guardrails_audit::sink::AuditSink;
    let mut sink = JsonLinesSink::builder(path)
        .hmac_key(key())
        .rotate_interval(std::time::Duration::from_millis(1))
        .open()
        .unwrap();
    sink.write_batch(&common::awkward_events(5)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    sink.tick().await.unwrap();
    sink
}

#[tokio::test]
async fn crash_right_after_a_rotation_continues_the_rotated_chain() {
    use guardrails_audit::sink::AuditSink;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // Time-based rotation on the maintenance tick leaves an empty active file…
    let sink = rotated_by_time(&path).await;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    // The empty active file alone verifies: its records are all rotated.
    let report = verify(&path, &options(true, &path)).unwrap();
    assert_eq!(report.records, 0);
    // …and the writer dies before writing to it, even before its rotation
    // checkpoint was written.
    drop(sink);
    let cp_path = checkpoints_of(&path);
    let kept: Vec<String> = read_lines(&cp_path)
        .into_iter()
        .filter(|l| !l.contains("\"reason\":\"rotation\""))
        .collect();
    write_lines(&cp_path, &kept);
    let mut sink = common::reopen_keyed(&path);
    assert_eq!(
        sink.next_seq(),
        6,
        "the chain continues from the rotated file"
    );
    sink.write_batch(&common::awkward_events(2)).await.unwrap();
    sink.close().await.unwrap();
    let all = options(true, &path).include_rotated(true);
    let report = verify(&path, &all).unwrap();
    assert_eq!(report.first_seq, Some(0));
    assert_eq!(report.recoveries, 1);
    assert!(report.cleanly_stopped);
    // The reopen wrote the rotation checkpoint: the active file alone links.
    let report = verify(&path, &options(true, &path)).unwrap();
    assert_eq!(report.first_seq, Some(5));
}

#[tokio::test]
async fn time_based_checkpoints() {
    use guardrails_audit::sink::AuditSink;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path)
        .checkpoint_every(1_000_000, std::time::Duration::from_millis(1))
        .open()
        .unwrap();
    sink.write_batch(&common::awkward_events(3)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    sink.tick().await.unwrap();
    let checkpoints = read_lines(&checkpoints_of(&path));
    assert_eq!(checkpoints.len(), 1);
    let cp: Value = serde_json::from_str(&checkpoints[0]).unwrap();
    assert_eq!(cp["reason"], "interval");
    assert_eq!(cp["seq"], 2);
    assert_eq!(cp["sig_alg"], "none");
    // Nothing new written: no new checkpoint.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    sink.tick().await.unwrap();
    assert_eq!(read_lines(&checkpoints_of(&path)).len(), 1);
}

/// The seq and reason of every checkpoint of `path`'s trail.
fn checkpoint_list(path: &Path) -> Vec<(u64, String)> {
    read_lines(&checkpoints_of(path))
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn head_cut_right_after_a_count_checkpoint_is_truncation() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let (seq, reason) = checkpoint_list(&path).remove(0);
        assert_eq!(reason, "count");
        // The trail now starts right after a checkpoint, as a rotated file
        // does; but only a rotation ends a file.
        let lines = read_lines(&path);
        write_lines(&path, &lines[usize::try_from(seq).unwrap() + 1..]);
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Truncated, Some(0))
        );
    }
}

#[tokio::test]
async fn emptied_trail_is_truncation() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        std::fs::write(&path, "").unwrap();
        // Without checkpoints an empty file is an empty trail…
        let no_checkpoints = if hmac {
            VerifyOptions::new().key(key())
        } else {
            VerifyOptions::new()
        };
        assert_eq!(verify(&path, &no_checkpoints).unwrap().records, 0);
        // …but the checkpoints name records it no longer holds.
        assert_eq!(
            damage(&path, &options(hmac, &path)),
            (DamageKind::Truncated, Some(0))
        );
    }
}

/// Replaces the trail at `path` with another whole chain made with the
/// same key (every record verifies); returns the other trail's directory.
async fn replace_with_another_chain(path: &Path, hmac: bool) -> tempfile::TempDir {
    let other_dir = tempfile::tempdir().unwrap();
    let other = other_dir.path().join("audit.jsonl");
    write_trail(&other, hmac.then(key), 20, 5).await;
    std::fs::copy(&other, path).unwrap();
    other_dir
}

#[tokio::test]
async fn trail_replaced_by_another_chain_is_truncation() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let _other = replace_with_another_chain(&path, hmac).await;
        let (kind, seq) = damage(&path, &options(hmac, &path));
        assert_eq!((kind, seq), (DamageKind::Truncated, Some(0)));
        let error = verify(&path, &options(hmac, &path)).unwrap_err();
        assert!(error.to_string().contains("replaced"), "{error}");
    }
}

#[tokio::test]
async fn a_write_cut_just_before_its_line_end_keeps_the_record() {
    use guardrails_audit::sink::AuditSink;
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        // The last record (`audit.stopped`, seq 20) lost only its line end.
        let mut text = std::fs::read(&path).unwrap();
        assert_eq!(text.pop(), Some(b'\n'));
        std::fs::write(&path, &text).unwrap();
        let no_checkpoints = if hmac {
            VerifyOptions::new().key(key())
        } else {
            VerifyOptions::new()
        };
        assert!(verify(&path, &no_checkpoints).unwrap().torn_tail);

        let mut builder = JsonLinesSink::builder(&path);
        if hmac {
            builder = builder.hmac_key(key());
        }
        let mut sink = builder.open().unwrap();
        // The record is whole: the chain continues after it.
        assert_eq!(sink.next_seq(), 22);
        sink.write_batch(&common::awkward_events(3)).await.unwrap();
        sink.close().await.unwrap();
        let report = verify(&path, &options(hmac, &path)).unwrap();
        assert_eq!(report.records, 21 + 1 + 3 + 1);
        assert_eq!(report.recoveries, 1);
        assert!(report.cleanly_stopped);
        let recovered: Value = read_lines(&path)
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|v| v["action"] == "audit.recovered")
            .unwrap();
        assert_eq!(recovered["chain"]["seq"], 21);
        assert_eq!(recovered["details"]["last_seq"], 20);
        assert_eq!(recovered["details"]["torn_bytes"], 0);
        assert_eq!(recovered["reason"], "unclean_shutdown");
    }
}

#[tokio::test]
async fn a_cut_checkpoint_line_is_ended_and_ignored() {
    use guardrails_audit::sink::AuditSink;
    let (_dir, path) = trail(true).await;
    // A checkpoint write cut by a crash.
    let cp_path = checkpoints_of(&path);
    let lines = read_lines(&cp_path);
    let mut text = std::fs::read(&cp_path).unwrap();
    text.extend_from_slice(&lines[0].as_bytes()[..40]);
    std::fs::write(&cp_path, &text).unwrap();

    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .checkpoint_every(5, std::time::Duration::from_secs(3600))
        .open()
        .unwrap();
    sink.write_batch(&common::awkward_events(7)).await.unwrap();
    sink.close().await.unwrap();
    // The next checkpoints start on lines of their own…
    let after = read_lines(&cp_path);
    assert_eq!(after[lines.len()].len(), 40);
    for line in &after[lines.len() + 1..] {
        serde_json::from_str::<Value>(line).unwrap();
    }
    // …and the trail verifies against them, the cut line counted.
    let report = verify(&path, &options(true, &path)).unwrap();
    assert_eq!(report.cut_checkpoints, 1);
    // Seqs 0..=20, then 7 events and `audit.stopped`.
    assert_eq!(report.last_seq, Some(20 + 7 + 1));
    assert!(report.checkpoints_checked > u64::try_from(lines.len()).unwrap());
}

#[tokio::test]
async fn a_last_record_longer_than_the_read_window_reopens() {
    use guardrails_audit::sink::AuditSink;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path).open().unwrap();
    sink.write_batch(&common::awkward_events(2)).await.unwrap();
    // A domain event with a 3 MiB detail, then the writer dies.
    let big =
        guardrails_audit::AuditEvent::new("report.export", guardrails_audit::Category::DataRead)
            .with_detail("summary", "x".repeat(3 << 20));
    sink.write_batch(&[big]).await.unwrap();
    drop(sink);
    let mut sink = JsonLinesSink::builder(&path).open().unwrap();
    assert_eq!(
        sink.next_seq(),
        4,
        "continues after the long record (and the recovery)"
    );
    sink.write_batch(&common::awkward_events(1)).await.unwrap();
    sink.close().await.unwrap();
    let report = verify(&path, &options(false, &path)).unwrap();
    assert_eq!(report.recoveries, 1);
    assert_eq!(report.last_seq, Some(5));
}

#[tokio::test]
async fn a_torn_first_line_after_a_rotation_verifies_in_the_file_alone() {
    use guardrails_audit::sink::AuditSink;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = rotated_by_time(&path).await;
    // The first write to the new file is cut by a crash.
    drop(sink);
    std::fs::write(&path, br#"{"action":"http.requ"#).unwrap();
    let mut sink = common::reopen_keyed(&path);
    sink.write_batch(&common::awkward_events(2)).await.unwrap();
    sink.close().await.unwrap();
    // The active file alone: its recovery record is linked by the rotation
    // checkpoint, not taken for a broken start.
    let report = verify(&path, &options(true, &path)).unwrap();
    assert_eq!(report.recoveries, 1);
    assert_eq!(report.first_seq, Some(5));
    let all = verify(&path, &options(true, &path).include_rotated(true)).unwrap();
    assert_eq!(all.first_seq, Some(0));
    assert_eq!(all.recoveries, 1);
}

#[tokio::test]
async fn a_failed_rename_keeps_writing_to_the_open_file_and_rotates_later() {
    use guardrails_audit::sink::AuditSink;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .rotate_bytes(2000)
        .open()
        .unwrap();
    // The rotated name is taken by a directory: the rename fails.
    let blocker = dir.path().join(format!("audit.jsonl.{:020}", 0));
    std::fs::create_dir_all(blocker.join("inside")).unwrap();
    for batch in common::awkward_events(12).chunks(3) {
        sink.write_batch(batch).await.unwrap();
    }
    // Every batch went to the active file; no crash was recorded, and no
    // rotation checkpoint names a rotation that did not happen.
    let report = verify(&path, &options(true, &path)).unwrap();
    assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(11)));
    assert_eq!(report.recoveries, 0);
    let rotations = |path: &Path| {
        checkpoint_list(path)
            .into_iter()
            .filter(|(_, reason)| reason == "rotation")
            .count()
    };
    assert_eq!(rotations(&path), 0);
    // Once the name is free (and the retry pause is over), it rotates.
    std::fs::remove_dir_all(&blocker).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sink.write_batch(&common::awkward_events(2)).await.unwrap();
    sink.close().await.unwrap();
    assert!(std::fs::metadata(&blocker).unwrap().is_file());
    let all = verify(&path, &options(true, &path).include_rotated(true)).unwrap();
    assert_eq!((all.first_seq, all.recoveries), (Some(0), 0));
    assert!(all.cleanly_stopped);
    assert_eq!(rotations(&path), 1);
}

/// A crash during the recovery of a torn line: the next writer completes
/// that recovery instead of refusing the file, whatever point the cut
/// recovery write reached.
#[tokio::test]
async fn a_recovery_cut_by_a_crash_is_completed_at_the_next_open() {
    use guardrails_audit::sink::AuditSink;
    // The sink's own recovery write for a torn line, to cut at some point.
    let (_dir, path) = trail(true).await;
    let mut text = std::fs::read(&path).unwrap();
    let clean = text.len();
    const TORN: &[u8] = br#"{"action":"http.request","act"#;
    text.extend_from_slice(TORN);
    std::fs::write(&path, &text).unwrap();
    common::reopen_keyed(&path).close().await.unwrap();
    let recovered = std::fs::read(&path).unwrap();
    // "\n" + the recovery record + "\n", right after the torn bytes (then
    // the `audit.stopped` record of the close).
    let recovery_write = recovered[text.len()..].to_vec();
    let record_len = recovery_write[1..]
        .iter()
        .position(|b| *b == b'\n')
        .unwrap();

    for cut in [1, 20, 1 + record_len] {
        let (_dir, path) = trail(true).await;
        let mut cut_text = std::fs::read(&path).unwrap();
        assert_eq!(cut_text.len(), clean);
        cut_text.extend_from_slice(&text[clean..]);
        cut_text.extend_from_slice(&recovery_write[..cut]);
        std::fs::write(&path, &cut_text).unwrap();
        let mut sink = common::reopen_keyed(&path);
        sink.write_batch(&common::awkward_events(2)).await.unwrap();
        sink.close().await.unwrap();
        let report = verify(&path, &options(true, &path))
            .unwrap_or_else(|e| panic!("cut after {cut} bytes: {e}"));
        assert!(report.recoveries >= 1, "cut after {cut} bytes");
        assert!(report.cleanly_stopped);
        let torn_records: Vec<Value> = read_lines(&path)
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["reason"] == "torn_write")
            .collect();
        assert_eq!(torn_records.len(), 1, "cut after {cut} bytes");
        assert_eq!(torn_records[0]["details"]["torn_bytes"], TORN.len());
    }
}

/// What is not this sink's trail is refused and left as it is, not
/// continued or repaired.
#[tokio::test]
async fn foreign_or_other_key_content_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let other_key = SecretString::from("another key, 16 bytes or more");
    // Text files: a complete non-JSON last line is no cut recovery.
    for text in ["a\n", "a\nb", "not json\n{\"x\":1"] {
        std::fs::write(&path, text).unwrap();
        let error = JsonLinesSink::builder(&path).open().unwrap_err();
        assert!(error.to_string().contains("not JSON"), "{text:?}: {error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
    // The first record of another key's chain, cut just before its newline.
    let (_other_dir, other) = trail(true).await;
    let first = read_lines(&other).remove(0);
    std::fs::write(&path, &first).unwrap();
    let error = JsonLinesSink::builder(&path)
        .hmac_key(other_key)
        .open()
        .unwrap_err();
    assert!(error.to_string().contains("does not verify"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
}

/// Opens the trail at `path` as a restarted writer would, and returns why
/// it refused.
fn refused_at_open(path: &Path, hmac: bool) -> String {
    let builder = JsonLinesSink::builder(path);
    let builder = if hmac {
        builder.hmac_key(key())
    } else {
        builder
    };
    match builder.open() {
        Ok(_) => panic!("the sink continued a trail that lost checkpointed records"),
        Err(error) => {
            assert!(
                matches!(
                    error,
                    guardrails_audit::sink::SinkError::BehindCheckpoints(_)
                ),
                "{error}"
            );
            error.to_string()
        }
    }
}

#[tokio::test]
async fn a_deleted_trail_is_not_restarted_over_its_checkpoints() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let checkpoints = std::fs::read(checkpoints_of(&path)).unwrap();
        std::fs::remove_file(&path).unwrap();
        // A restart would start a new chain and hide the deleted one.
        let error = refused_at_open(&path, hmac);
        assert!(error.contains("deleted or emptied"), "{error}");
        assert!(error.contains("up to seq 20"), "{error}");
        // Nothing was written: not the trail, not the checkpoints.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(std::fs::read(checkpoints_of(&path)).unwrap(), checkpoints);
        // Moving the checkpoint file aside starts a new trail.
        std::fs::rename(checkpoints_of(&path), path.with_extension("old")).unwrap();
        let builder = JsonLinesSink::builder(&path);
        let builder = if hmac {
            builder.hmac_key(key())
        } else {
            builder
        };
        builder.open().unwrap();
    }
}

#[tokio::test]
async fn a_trail_replaced_by_another_chain_is_not_continued() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let _other = replace_with_another_chain(&path, hmac).await;
        let before = std::fs::read(&path).unwrap();
        let error = refused_at_open(&path, hmac);
        assert!(error.contains("it was replaced"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}

/// Checkpointed records replaced by a line that is not JSON look like a
/// crash's torn line; the checkpoints show they were durable, so the sink
/// refuses to record their loss as a crash.
#[tokio::test]
async fn removed_checkpointed_records_are_not_recovered_as_a_crash() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let mut lines = read_lines(&path);
        // seq 19 and the `audit.stopped` record (seq 20), both checkpointed.
        lines.truncate(lines.len() - 2);
        lines.push("GARBAGE".to_owned());
        write_lines(&path, &lines);
        let before = std::fs::read(&path).unwrap();
        let error = refused_at_open(&path, hmac);
        assert!(
            error.contains("names seq 20, but the file ends at seq 18"),
            "{error}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "nothing was recorded"
        );

        // The same cut without the garbage line.
        lines.pop();
        write_lines(&path, &lines);
        let error = refused_at_open(&path, hmac);
        assert!(error.contains("durable records were removed"), "{error}");
    }
}

/// A crash never trips the check: what a torn write loses was never
/// checkpointed.
#[tokio::test]
async fn a_crash_after_a_checkpoint_still_recovers() {
    let (_dir, path) = trail(true).await;
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(br#"{"action":"http.req"#);
    std::fs::write(&path, &text).unwrap();
    let sink = common::reopen_keyed(&path);
    drop(sink);
    let report = verify(&path, &options(true, &path)).unwrap();
    assert_eq!(report.recoveries, 1);
}

/// A trail replaced by another chain made with the same key, with the
/// other chain's newest (genuine, signed) checkpoint appended so that the
/// newest checkpoint names the trail's chain.
#[tokio::test]
async fn another_trails_checkpoint_appended_does_not_hide_a_replacement() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let other_dir = tempfile::tempdir().unwrap();
        let other = other_dir.path().join("audit.jsonl");
        write_trail(&other, hmac.then(key), 3, 5).await;
        std::fs::copy(&other, &path).unwrap();
        let mut checkpoints = read_lines(&checkpoints_of(&path));
        checkpoints.push(read_lines(&checkpoints_of(&other)).pop().unwrap());
        write_lines(&checkpoints_of(&path), &checkpoints);
        let error = verify(&path, &options(hmac, &path)).unwrap_err();
        assert_eq!(
            error.damage().map(|d| (d.kind, d.seq)),
            Some((DamageKind::Truncated, Some(0))),
            "{error}"
        );
        assert!(error.to_string().contains("was replaced"), "{error}");
    }
}

/// A keyed trail of 30 events rotated every 4000 bytes (four or five
/// files), with a checkpoint every 2 records.
async fn write_rotated_trail(path: &Path) {
    use guardrails_audit::sink::AuditSink;
    let mut sink = JsonLinesSink::builder(path)
        .hmac_key(key())
        .rotate_bytes(4000)
        .checkpoint_every(2, std::time::Duration::from_secs(3600))
        .open()
        .unwrap();
    for batch in common::awkward_events(30).chunks(3) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
}

/// An emptied active file with an old rotation checkpoint copied to the end
/// of the checkpoint file, to look like a file just rotated.
#[tokio::test]
async fn an_old_rotation_checkpoint_replayed_does_not_hide_an_emptied_trail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_rotated_trail(&path).await;
    std::fs::write(&path, "").unwrap();
    assert_eq!(
        damage(&path, &options(true, &path)).0,
        DamageKind::Truncated
    );
    let mut checkpoints = read_lines(&checkpoints_of(&path));
    let rotation = checkpoints
        .iter()
        .find(|l| l.contains("\"reason\":\"rotation\""))
        .unwrap()
        .clone();
    checkpoints.push(rotation);
    write_lines(&checkpoints_of(&path), &checkpoints);
    let error = verify(&path, &options(true, &path)).unwrap_err();
    let d = error.damage().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(d.kind, DamageKind::Inserted, "{error}");
    assert!(error.to_string().contains("only move forward"), "{error}");
}

/// With every rotated file included, the oldest must start the chain; a
/// retention policy that removes old files says so with `allow_pruned`.
#[tokio::test]
async fn a_missing_oldest_rotated_file_is_truncation_unless_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_rotated_trail(&path).await;
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("audit.jsonl.0"))
        .collect();
    rotated.sort();
    std::fs::remove_file(&rotated[0]).unwrap();
    let all = options(true, &path).include_rotated(true);
    assert_eq!(damage(&path, &all), (DamageKind::Truncated, Some(0)));
    let pruned = verify(&path, &all.clone().allow_pruned(true)).unwrap();
    assert!(pruned.first_seq.unwrap() > 0);
    // Pruning still needs the rest to link: a middle file removed is not.
    assert!(rotated.len() >= 3, "{rotated:?}");
    std::fs::remove_file(&rotated[2]).unwrap();
    assert_eq!(
        damage(&path, &all.allow_pruned(true)).0,
        DamageKind::Deleted
    );
}

/// New trail, checkpoint and rotated files are the owner's alone, whatever
/// the umask lets through.
#[cfg(unix)]
#[tokio::test]
async fn new_files_are_readable_by_their_owner_only() {
    use guardrails_audit::sink::AuditSink;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new").join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path)
        .rotate_bytes(4000)
        .open()
        .unwrap();
    for batch in common::awkward_events(12).chunks(3) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
    let files: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

/// A record that claims HMAC in a plain SHA-256 trail is damage, not a
/// reason to ask for a key the trail never had.
#[tokio::test]
async fn an_hmac_record_in_a_plain_trail_is_damage() {
    let (_dir, path) = trail(false).await;
    let mut lines = read_lines(&path);
    let mut forged: Value = serde_json::from_str(&lines[7]).unwrap();
    forged["chain"]["alg"] = "hmac-sha256".into();
    lines[7] = String::from_utf8(guardrails_audit::jcs::to_vec(&forged).unwrap()).unwrap();
    write_lines(&path, &lines);
    assert_eq!(
        damage(&path, &options(false, &path)),
        (DamageKind::Modified, Some(7))
    );
    // A keyed trail still asks for its key.
    let (_dir, keyed) = trail(true).await;
    assert!(matches!(
        verify(&keyed, &VerifyOptions::new()),
        Err(guardrails_audit::VerifyError::KeyRequired)
    ));
}

/// The open check is not fooled by padding the checkpoint file past the
/// first window read, nor by a replayed older checkpoint at its end.
#[tokio::test]
async fn padding_or_replaying_checkpoints_does_not_hide_a_cut_from_the_sink() {
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let lines = read_lines(&path);
        write_lines(&path, &lines[..lines.len() - 5]);
        let cp_path = checkpoints_of(&path);
        let genuine = read_lines(&cp_path);
        // An older genuine line replayed at the end, once or in copies
        // filling more than the first block read.
        for copies in [1, 1000] {
            let mut replayed = genuine.clone();
            replayed.extend(std::iter::repeat_n(genuine[0].clone(), copies));
            write_lines(&cp_path, &replayed);
            let Err(error) = JsonLinesSink::builder(&path)
                .maybe_hmac_key(hmac.then(key))
                .open()
            else {
                panic!("{copies} replayed line(s) hid the cut");
            };
            assert!(error.to_string().contains("copied to the end"), "{error}");
        }
        // 100 KiB of empty lines after the real ones.
        let mut padded = genuine.join("\n").into_bytes();
        padded.extend(std::iter::repeat_n(b'\n', 100 << 10));
        std::fs::write(&cp_path, padded).unwrap();
        let error = refused_at_open(&path, hmac);
        assert!(error.contains("names seq 20"), "{error}");
    }
}

/// One checkpoint file, one way of signing: a sink that would sign
/// otherwise (HMAC to Ed25519, or back) refuses to open, rather than leave a
/// file no single key verifies.
#[tokio::test]
async fn changing_how_checkpoints_are_signed_is_refused() {
    let ed25519 = common::ed25519_key();
    let (_dir, path) = trail(true).await;
    let refused = |builder: guardrails_audit::sink::file::JsonLinesBuilder| {
        let Err(error) = builder.open() else {
            panic!("a change of signer was accepted");
        };
        assert!(error.to_string().contains("signed another way"), "{error}");
    };
    refused(
        JsonLinesSink::builder(&path)
            .hmac_key(key())
            .checkpoint_signing_key(ed25519.clone()),
    );
    // Moving the checkpoint file aside starts Ed25519 checkpoints…
    std::fs::rename(
        checkpoints_of(&path),
        path.with_extension("hmac-checkpoints"),
    )
    .unwrap();
    let sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .checkpoint_signing_key(ed25519.clone())
        .open()
        .unwrap();
    use guardrails_audit::sink::AuditSink;
    let mut sink = sink;
    sink.write_batch(&common::awkward_events(2)).await.unwrap();
    sink.close().await.unwrap();
    // …and back to HMAC is refused too.
    refused(JsonLinesSink::builder(&path).hmac_key(key()));
    // Each file verifies the records it names, with its own key.
    let old = VerifyOptions::new()
        .key(key())
        .checkpoints(path.with_extension("hmac-checkpoints"));
    verify(&path, &old).unwrap();
    let new = VerifyOptions::new()
        .key(key())
        .checkpoints(checkpoints_of(&path))
        .checkpoint_public_key(ed25519.verifying_key());
    verify(&path, &new).unwrap();
}

/// Right after a rotation the active file is empty, which the file alone
/// may be; the whole trail (with its rotated files) never is.
#[tokio::test]
async fn a_whole_trail_with_every_record_deleted_is_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = rotated_by_time(&path).await;
    drop(sink);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap().path();
        if entry.to_string_lossy().contains("audit.jsonl.0") {
            std::fs::remove_file(entry).unwrap();
        }
    }
    // The active file alone: just rotated, as far as it can tell.
    assert_eq!(verify(&path, &options(true, &path)).unwrap().records, 0);
    let all = options(true, &path).include_rotated(true);
    assert_eq!(damage(&path, &all).0, DamageKind::Truncated);
}

/// The newest checkpoint must verify with the sink's checkpoint key: a
/// changed key, or a forged line, is refused at open rather than skipped.
#[tokio::test]
async fn a_newest_checkpoint_that_does_not_verify_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let first = SecretString::from("the first checkpoint key, 32 bytes long");
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .checkpoint_key(first.clone())
        .open()
        .unwrap();
    use guardrails_audit::sink::AuditSink;
    sink.write_batch(&common::awkward_events(3)).await.unwrap();
    sink.close().await.unwrap();
    let Err(error) = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .checkpoint_key(SecretString::from("another checkpoint key, 32 bytes long"))
        .open()
    else {
        panic!("a checkpoint file of another key was continued");
    };
    assert!(error.to_string().contains("does not verify"), "{error}");
    // A forged line at the end (a signature the attacker cannot make).
    let cp_path = checkpoints_of(&path);
    let mut lines = read_lines(&cp_path);
    let mut forged: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    forged["seq"] = 0.into();
    lines.push(serde_json::to_string(&forged).unwrap());
    write_lines(&cp_path, &lines);
    let Err(error) = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .checkpoint_key(first)
        .open()
    else {
        panic!("a forged newest checkpoint was skipped");
    };
    assert!(error.to_string().contains("does not verify"), "{error}");
}

/// A keyed trail whose first line is a crash's cut write (accounted for by
/// the recovery record after it) still asks for its key, rather than
/// reporting damage no key was there to check.
#[tokio::test]
async fn a_keyed_trail_starting_with_a_recovered_cut_line_asks_for_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, br#"{"action":"http.requ"#).unwrap();
    let mut sink = common::reopen_keyed(&path);
    use guardrails_audit::sink::AuditSink;
    sink.write_batch(&common::awkward_events(2)).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(
        verify(&path, &VerifyOptions::new().key(key()))
            .unwrap()
            .recoveries,
        1
    );
    assert!(matches!(
        verify(&path, &VerifyOptions::new()),
        Err(guardrails_audit::VerifyError::KeyRequired)
    ));
}

#[tokio::test]
async fn a_checkpoint_line_with_a_duplicated_key_is_modification() {
    // `{"seq":0,"chain_id":…,"seq":20,…}` parses (last key wins in
    // serde_json) to the signed checkpoint, but a reader that keeps the
    // first key sees a checkpoint of seq 0: checkpoint lines must be
    // canonical, as records are.
    for hmac in [false, true] {
        let (_dir, path) = trail(hmac).await;
        let cp = checkpoints_of(&path);
        let mut lines = read_lines(&cp);
        let last = lines.len() - 1;
        assert!(lines[last].starts_with("{\"chain_id\":"));
        lines[last] = lines[last].replacen('{', "{\"seq\":0,", 1);
        write_lines(&cp, &lines);
        let error = verify(&path, &options(hmac, &path)).expect_err("damage must be detected");
        let d = error
            .damage()
            .unwrap_or_else(|| panic!("not a damage: {error}"));
        assert_eq!((d.kind, d.seq), (DamageKind::Modified, Some(20)), "{d}");
        assert_eq!(d.location.file(), Some(cp.as_path()));
        assert!(d.detail.contains("canonical"), "{d}");
    }
}
