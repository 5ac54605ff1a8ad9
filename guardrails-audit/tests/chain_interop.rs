//! The chain format, checked by an implementation this workspace did not
//! write: Python's standard `hashlib`/`hmac` and the PyPI `rfc8785` package
//! (installed by `.ci/setup-external`).

mod common;

use std::process::Command;

use common::{KEY, checkpoints_of, key, python_with_rfc8785, write_trail};

const CHECK: &str = r#"
import hashlib, hmac, json, sys
import rfc8785

path, key, checkpoints = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
prev, count = "0" * 64, 0
with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
        line = raw.rstrip(b"\n")
        record = json.loads(line)
        # Every line is itself canonical JSON (RFC 8785).
        assert rfc8785.dumps(record) == line, f"line {n} is not canonical"
        chain = record["chain"]
        stored = chain.pop("hash")
        data = rfc8785.dumps(record)
        if chain["alg"] == "sha256":
            digest = hashlib.sha256(data).hexdigest()
        else:
            assert chain["alg"] == "hmac-sha256"
            digest = hmac.new(key, data, "sha256").hexdigest()
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
            assert hmac.new(key, rfc8785.dumps(cp), "sha256").hexdigest() == sig, "checkpoint signature"
        else:
            assert cp["sig_alg"] == "none" and sig is None
        checked += 1
print(count, checked)
"#;

async fn check(hmac: bool) {
    let Some(python) = python_with_rfc8785() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, hmac.then(key), 40, 10).await;
    let script = dir.path().join("check.py");
    std::fs::write(&script, CHECK).unwrap();
    let output = Command::new(python)
        .arg(&script)
        .arg(&path)
        .arg(KEY)
        .arg(checkpoints_of(&path))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "independent check failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
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
