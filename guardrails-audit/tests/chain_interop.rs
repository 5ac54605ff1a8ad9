//! The chain format, checked by an implementation this workspace did not
//! write: Python's standard `hashlib`/`hmac` and the PyPI `rfc8785` package
//! (installed by `.ci/setup-external`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{KEY, awkward_events, checkpoints_of, key, python_with_rfc8785, write_trail};
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use secrecy::SecretString;

const CHECK: &str = r#"
import hashlib, hmac, json, sys
import rfc8785

path, key, checkpoints = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
# With a previous key: the trail is under it until its audit.key_changed
# record, which is the first hashed with the new key.
keys = [k.encode() for k in sys.argv[4:]] + [key]
key_id = lambda k: hmac.new(k, b"guardrails.audit key id", "sha256").hexdigest()[:16]
active, changes = 0, 0
prev, count = "0" * 64, 0
with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
        line = raw.rstrip(b"\n")
        record = json.loads(line)
        # Every line is itself canonical JSON (RFC 8785).
        assert rfc8785.dumps(record) == line, f"line {n} is not canonical"
        if record["action"] == "audit.key_changed":
            assert record["details"]["previous_key_id"] == key_id(keys[active])
            active, changes = active + 1, changes + 1
            assert record["details"]["key_id"] == key_id(keys[active])
        chain = record["chain"]
        stored = chain.pop("hash")
        data = rfc8785.dumps(record)
        if chain["alg"] == "sha256":
            digest = hashlib.sha256(data).hexdigest()
        else:
            assert chain["alg"] == "hmac-sha256"
            digest = hmac.new(keys[active], data, "sha256").hexdigest()
        assert digest == stored, f"line {n}: hash mismatch"
        assert chain["prev"] == prev, f"line {n}: broken link"
        assert chain["seq"] == count, f"line {n}: seq"
        prev, count = stored, count + 1
checked = 0
with open(checkpoints, "rb") as f:
    for raw in f:
        cp = json.loads(raw)
        sig = cp.pop("sig")
        if cp["sig_alg"] == "hmac-sha256":
            signed = rfc8785.dumps(cp)
            assert any(hmac.new(k, signed, "sha256").hexdigest() == sig for k in keys), "checkpoint signature"
        else:
            assert cp["sig_alg"] == "none" and sig is None
        checked += 1
assert active == len(keys) - 1, "a previous key was never changed from"
print(count, checked, changes)
"#;

/// The checker's output (`<records> <checkpoints> <key changes>`) for the
/// trail at `path`, under `key` after `previous` keys.
fn run_check(python: &str, path: &Path, key: &str, previous: &[&str]) -> String {
    let script = path.with_file_name("check.py");
    std::fs::write(&script, CHECK).unwrap();
    let output = Command::new(python)
        .arg(&script)
        .arg(path)
        .arg(key)
        .arg(checkpoints_of(path))
        .args(previous)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "independent check failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn check(hmac: bool) {
    let Some(python) = python_with_rfc8785() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, hmac.then(key), 40, 10).await;
    let stdout = run_check(&python, &path, KEY, &[]);
    // 40 events + the audit.stopped record; checkpoints every 10 + shutdown.
    let mut numbers = stdout.split_whitespace();
    assert_eq!(numbers.next(), Some("41"));
    let checkpoints: u32 = numbers.next().unwrap().parse().unwrap();
    assert!(checkpoints >= 4, "{checkpoints} checkpoints");
}

#[tokio::test]
async fn sha256_chain_recomputed_by_python_rfc8785() {
    check(false).await;
}

#[tokio::test]
async fn hmac_chain_recomputed_by_python_rfc8785() {
    check(true).await;
}

/// A trail whose key changed: the records before the `audit.key_changed`
/// record under the old key, that record and the ones after under the new
/// one, and both keys named by their ids as `chain::key_id` says.
#[tokio::test]
async fn a_key_change_recomputed_by_python_rfc8785() {
    const NEW_KEY: &str = "the-rotated-chain-key-fedcba9876543210";
    let Some(python) = python_with_rfc8785() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 20, 10).await;
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(SecretString::from(NEW_KEY))
        .previous_key(key())
        .checkpoint_every(10, std::time::Duration::from_secs(3600))
        .open()
        .unwrap();
    sink.write_batch(&awkward_events(10)).await.unwrap();
    sink.close().await.unwrap();
    let stdout = run_check(&python, &path, NEW_KEY, &[KEY]);
    // 20 events, audit.stopped, audit.key_changed, 10 events, audit.stopped.
    let numbers: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(numbers[0], "33", "{stdout}");
    assert_eq!(numbers[2], "1", "{stdout}");
}
