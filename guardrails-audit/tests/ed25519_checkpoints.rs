//! Ed25519-signed checkpoints, against an implementation this workspace did
//! not write: Python's `cryptography` makes the key pair and checks every
//! signature over the `rfc8785` form of the checkpoint (both from PyPI,
//! installed by `.ci/setup-external`); the public key alone verifies the
//! trail, and cannot be used to forge a checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{checkpoints_of, key, read_lines, write_lines};
use guardrails_audit::chain::ChainHasher;
use guardrails_audit::signing::{Ed25519SigningKey, Ed25519VerifyingKey};
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{DamageKind, VerifyError, VerifyOptions, verify};
use secrecy::SecretString;

const PYTHON: &str = r#"
import json, sys
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

if sys.argv[1] == "keygen":
    key = Ed25519PrivateKey.generate()
    with open(sys.argv[2], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(sys.argv[3], "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
else:
    with open(sys.argv[3], "rb") as f:
        public = serialization.load_pem_public_key(f.read())
    checked = 0
    with open(sys.argv[2], "rb") as f:
        for raw in f:
            cp = json.loads(raw)
            sig = cp.pop("sig")
            assert cp["sig_alg"] == "ed25519", cp["sig_alg"]
            public.verify(bytes.fromhex(sig), rfc8785.dumps(cp))  # raises if bad
            checked += 1
    print(checked)
"#;

/// Runs the Python side: `keygen PRIVATE PUBLIC` or `check CHECKPOINTS PUBLIC`.
fn python(python: &str, dir: &Path, args: &[&Path]) -> String {
    let script = dir.join("ed25519.py");
    std::fs::write(&script, PYTHON).unwrap();
    let output = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

struct Keys {
    private: PathBuf,
    public: PathBuf,
}

impl Keys {
    fn signing(&self) -> Ed25519SigningKey {
        let pem = std::fs::read_to_string(&self.private).unwrap();
        Ed25519SigningKey::from_pkcs8_pem(&SecretString::from(pem)).unwrap()
    }

    fn verifying(&self) -> Ed25519VerifyingKey {
        Ed25519VerifyingKey::from_public_key_pem(&std::fs::read_to_string(&self.public).unwrap())
            .unwrap()
    }
}

/// A keyed trail of 40 events with a checkpoint every 10, signed with a key
/// pair that Python made.
async fn signed_trail(python_bin: &str, dir: &Path, name: &str) -> (PathBuf, Keys) {
    let keys = Keys {
        private: dir.join(format!("{name}.pem")),
        public: dir.join(format!("{name}.pub.pem")),
    };
    python(
        python_bin,
        dir,
        &[Path::new("keygen"), &keys.private, &keys.public],
    );
    let path = dir.join(format!("{name}.jsonl"));
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .checkpoint_signing_key(keys.signing())
        .checkpoint_every(10, std::time::Duration::from_secs(3600))
        .open()
        .unwrap();
    for batch in common::awkward_events(40).chunks(7) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
    (path, keys)
}

#[tokio::test]
async fn checkpoints_verify_with_the_public_key_and_cannot_be_forged() {
    let Some(python_bin) = common::python_with(&["rfc8785", "cryptography"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (path, keys) = signed_trail(&python_bin, dir.path(), "a").await;
    let cp_path = checkpoints_of(&path);

    // Python checks every signature.
    let checked: u32 = python(
        &python_bin,
        dir.path(),
        &[Path::new("check"), &cp_path, &keys.public],
    )
    .trim()
    .parse()
    .unwrap();
    assert!(checked >= 4, "{checked} checkpoints");

    // The public key verifies the trail; nothing else can.
    let options = VerifyOptions::new()
        .key(key())
        .checkpoints(&cp_path)
        .checkpoint_public_key(keys.verifying());
    let report = verify(&path, &options).unwrap();
    assert_eq!(report.checkpoints_checked, u64::from(checked));
    assert!(matches!(
        verify(
            &path,
            &VerifyOptions::new().key(key()).checkpoints(&cp_path)
        ),
        Err(VerifyError::PublicKeyRequired)
    ));
    let (_, other) = signed_trail(&python_bin, dir.path(), "b").await;
    let with_other = options.clone().checkpoint_public_key(other.verifying());
    let error = verify(&path, &with_other).unwrap_err();
    assert_eq!(
        error.damage().map(|d| d.kind),
        Some(DamageKind::WrongKey),
        "{error}"
    );

    // Whoever holds the HMAC chain key (a verifier of an HMAC trail) can
    // cut the trail, but cannot sign the checkpoint that would hide it.
    let lines = read_lines(&path);
    write_lines(&path, &lines[..30]);
    let last: serde_json::Value = serde_json::from_str(&lines[29]).unwrap();
    let mut forged = serde_json::json!({
        "schema": "guardrails.audit.checkpoint/1",
        "chain_id": last["chain"]["id"],
        "seq": 29,
        "hash": last["chain"]["hash"],
        "time": "2026-11-25T00:00:00Z",
        "reason": "shutdown",
        "sig_alg": "hmac-sha256",
    });
    let unsigned = guardrails_audit::jcs::to_vec(&forged).unwrap();
    forged["sig"] = ChainHasher::hmac(&key()).digest_hex(&unsigned).into();
    let mut checkpoints = read_lines(&cp_path);
    checkpoints.retain(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"] == 27);
    checkpoints.push(String::from_utf8(guardrails_audit::jcs::to_vec(&forged).unwrap()).unwrap());
    write_lines(&cp_path, &checkpoints);
    let error = verify(&path, &options).unwrap_err();
    let damage = error.damage().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(damage.kind, DamageKind::Modified, "{error}");
    assert!(error.to_string().contains("Ed25519"), "{error}");
    // With the HMAC key as the checkpoint key, the same forgery passes:
    // what Ed25519 is for.
    let hmac_only = VerifyOptions::new().key(key()).checkpoints(&cp_path);
    let kept = checkpoints.pop().unwrap();
    write_lines(&cp_path, &[kept]);
    assert_eq!(verify(&path, &hmac_only).unwrap().last_seq, Some(29));
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn the_cli_verifies_with_a_public_key_file() {
    let Some(python_bin) = common::python_with(&["rfc8785", "cryptography"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (path, keys) = signed_trail(&python_bin, dir.path(), "a").await;
    let (_, other) = signed_trail(&python_bin, dir.path(), "b").await;
    let key_file = dir.path().join("chain.key");
    std::fs::write(&key_file, common::KEY).unwrap();
    let run = |public: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_guardrails-audit"));
        command
            .arg("verify")
            .arg(&path)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--checkpoints")
            .arg(checkpoints_of(&path));
        if let Some(public) = public {
            command.arg("--checkpoint-public-key-file").arg(public);
        }
        let out = command.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(Some(&keys.public));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok records=41"), "{out}");
    let (code, out, _) = run(Some(&other.public));
    assert_eq!((code, out.trim()), (1, "damage=wrong_key seq=13"));
    let (code, _, err) = run(None);
    assert_eq!(code, 2);
    assert!(err.contains("public key is needed"), "{err}");
    // The private key where the public one belongs: refused, not shown.
    let (code, _, err) = run(Some(&keys.private));
    assert_eq!(code, 2);
    assert!(err.contains("not an Ed25519 public key"), "{err}");
    let private = std::fs::read_to_string(&keys.private).unwrap();
    let body = private.lines().nth(1).unwrap();
    assert!(!err.contains(body), "{err}");
}
