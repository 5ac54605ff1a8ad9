//! The `guardrails-audit verify` command: output and exit codes.
#![cfg(feature = "cli")]

mod common;

use std::process::Command;

use common::{KEY, checkpoints_of, key, read_lines, write_lines, write_trail};

fn verify_cmd(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_guardrails-audit"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn exit_codes_and_damage_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, Some(key()), 20, 5).await;
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let wrong_key = dir.path().join("wrong");
    std::fs::write(&wrong_key, "not the key").unwrap();
    let cp = checkpoints_of(&path);
    let args = |k: &std::path::Path| {
        vec![
            path.as_os_str().to_owned(),
            "--key-file".into(),
            k.as_os_str().to_owned(),
            "--checkpoints".into(),
            cp.as_os_str().to_owned(),
        ]
    };
    let refs = |v: &Vec<std::ffi::OsString>| {
        v.iter()
            .map(|s| s.as_os_str().to_owned())
            .collect::<Vec<_>>()
    };

    let good = refs(&args(&key_file));
    let (code, out, err) = verify_cmd(&good.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}");
    assert!(!err.contains("unsigned"), "HMAC-signed checkpoints: {err}");
    assert!(
        out.starts_with("ok records=21 first_seq=0 last_seq=20"),
        "{out}"
    );

    let wrong = refs(&args(&wrong_key));
    let (code, out, err) = verify_cmd(&wrong.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert_eq!(code, 1);
    assert_eq!(out.trim(), "damage=wrong_key seq=0");
    assert!(
        !err.contains(KEY) && !err.contains("not the key"),
        "keys never printed: {err}"
    );

    let (code, _, err) = verify_cmd(&[path.as_os_str()]);
    assert_eq!(code, 2, "a keyed chain without a key cannot be verified");
    assert!(err.contains("key"), "{err}");

    let mut lines = read_lines(&path);
    lines.remove(5);
    write_lines(&path, &lines);
    let (code, out, err) = verify_cmd(&good.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert_eq!(code, 1);
    assert_eq!(out.trim(), "damage=deleted seq=5");
    assert!(err.contains("deleted at seq 5"), "{err}");

    let missing = dir.path().join("missing.jsonl");
    let (code, _, _) = verify_cmd(&[missing.as_os_str()]);
    assert_eq!(code, 2);
}

#[tokio::test]
async fn the_default_checkpoint_file_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_trail(&path, None, 20, 5).await;
    let cp = checkpoints_of(&path);

    let (code, out, err) = verify_cmd(&[path.as_os_str()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("checkpoints_checked=0"), "{out}");
    assert!(err.contains(&cp.display().to_string()), "says which: {err}");
    assert!(
        err.contains("warning: the checkpoints are unsigned"),
        "a plain trail's checkpoints prove nothing: {err}"
    );

    // The last records cut: the checkpoint beside the trail names them.
    let mut lines = read_lines(&path);
    lines.truncate(17);
    write_lines(&path, &lines);
    let (code, out, err) = verify_cmd(&[path.as_os_str()]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.trim(), "damage=truncated seq=17");

    // Asked not to, or with no checkpoint file: whole, with a warning.
    let (code, out, err) = verify_cmd(&[path.as_os_str(), "--no-checkpoints".as_ref()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("truncation"), "{err}");
    std::fs::remove_file(&cp).unwrap();
    let (code, out, err) = verify_cmd(&[path.as_os_str()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning") && err.contains("truncation"),
        "{err}"
    );
}

/// The checkpoint file beside the trail, signed with a checkpoint key of its
/// own that was not given: a warning, and the chain verified alone (not a
/// wrong key, which would read as tampering). Named with `--checkpoints`,
/// the same file is an error as before.
#[tokio::test]
async fn default_checkpoints_signed_with_a_key_not_given_are_a_warning() {
    use guardrails_audit::sink::AuditSink;
    use guardrails_audit::sink::file::JsonLinesSink;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(key())
        .checkpoint_key(secrecy::SecretString::from(
            "a checkpoint key of its own, 32 b",
        ))
        .checkpoint_every(5, std::time::Duration::from_secs(3600))
        .open()
        .unwrap();
    sink.write_batch(&common::awkward_events(12)).await.unwrap();
    sink.close().await.unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let args = [
        path.as_os_str(),
        "--key-file".as_ref(),
        key_file.as_os_str(),
    ];

    let (code, out, err) = verify_cmd(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok records=13"), "{out}");
    assert!(
        err.contains("signed with a key that was not given"),
        "{err}"
    );

    // Without the chain's key: that is the error, not the checkpoints.
    let (code, out, err) = verify_cmd(&[path.as_os_str()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("a key is needed"), "{err}");
    assert!(!err.contains("signed with a key"), "{err}");

    let cp = checkpoints_of(&path);
    let mut named = args.to_vec();
    named.extend(["--checkpoints".as_ref(), cp.as_os_str()]);
    let (code, out, err) = verify_cmd(&named);
    assert_ne!(code, 0, "{out}{err}");
}
