//! What the JSON-lines sink reads from a trail when it opens it: the file's
//! age for time rotation, and whether its chain can go on.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{awkward_events, checkpoints_of, read_lines, write_lines};
use guardrails_audit::chain::ChainHasher;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::sink::{AuditSink, SinkError};
use serde_json::Value;

/// Rotated files beside `path` (`<name>.<first seq, 20 digits>`).
fn rotated(path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|f| {
            f.strip_prefix(&name)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|seq| seq.len() == 20 && seq.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// A service restarted more often than its rotation interval: the file's
/// age is its first record's, so it still rotates.
#[tokio::test]
async fn time_rotation_counts_the_files_age_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    for _ in 0..3 {
        let mut sink = JsonLinesSink::builder(&path)
            .rotate_interval(Duration::from_millis(1000))
            .open()
            .unwrap();
        sink.write_batch(&awkward_events(1)).await.unwrap();
        sink.close().await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    // Opened three times, 0.6 s apart: never open for 1 s, but its first
    // record was 1.2 s old at the third batch.
    assert_eq!(rotated(&path).len(), 1, "no rotation by age");
    let options = guardrails_audit::VerifyOptions::new()
        .checkpoints(checkpoints_of(&path))
        .include_rotated(true);
    guardrails_audit::verify(&path, &options).unwrap();
}

/// A chain whose last seq is 2^53 - 1 cannot go on (the next seq is not
/// an integer every JSON reader keeps exactly, and its record could not be
/// canonical): the sink refuses it and writes nothing.
#[tokio::test]
async fn a_chain_at_its_last_seq_is_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path).open().unwrap();
    sink.write_batch(&awkward_events(1)).await.unwrap();
    drop(sink);
    // The record again, at the last seq, hashed as the chain says.
    let mut record: Value = serde_json::from_str(&read_lines(&path)[0]).unwrap();
    record["chain"]["seq"] = Value::from((1_u64 << 53) - 1);
    record["chain"].as_object_mut().unwrap().remove("hash");
    let hash = ChainHasher::sha256().hash_record(&record).unwrap();
    record["chain"]["hash"] = Value::from(hash);
    let line = String::from_utf8(guardrails_audit::jcs::to_vec(&record).unwrap()).unwrap();
    write_lines(&path, &[line]);
    std::fs::remove_file(checkpoints_of(&path)).unwrap();
    let before = std::fs::read(&path).unwrap();

    let refused = JsonLinesSink::builder(&path).open();
    let Err(SinkError::Incompatible(why)) = refused else {
        panic!("continued a full chain: {:?}", refused.err());
    };
    assert!(why.contains("2^53"), "{why}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "wrote to it");
}

/// The newest checkpoint line must be exactly the sink's own writing, as
/// `verify` requires: the same checkpoint with a duplicated key (which a
/// first-wins parser reads as another seq) or a carriage return is refused,
/// and the trail is left untouched.
#[tokio::test]
async fn an_edited_newest_checkpoint_line_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path).open().unwrap();
    sink.write_batch(&awkward_events(3)).await.unwrap();
    sink.close().await.unwrap();
    let cp_path = checkpoints_of(&path);
    let genuine = read_lines(&cp_path);
    let newest = genuine.last().unwrap().clone();
    let duplicated = newest.replacen("{", "{\"seq\":0,", 1);
    assert_ne!(duplicated, newest);
    assert_eq!(
        serde_json::from_str::<Value>(&duplicated).unwrap(),
        serde_json::from_str::<Value>(&newest).unwrap(),
        "serde_json reads the last of duplicated keys: the same checkpoint"
    );
    for edited in [duplicated, format!("{newest}\r"), format!(" {newest}")] {
        let mut lines = genuine.clone();
        *lines.last_mut().unwrap() = edited.clone();
        write_lines(&cp_path, &lines);
        let before = std::fs::read(&path).unwrap();
        let refused = JsonLinesSink::builder(&path).open();
        let Err(SinkError::Incompatible(why)) = refused else {
            panic!("accepted {edited:?}: {:?}", refused.err());
        };
        assert!(why.contains("canonical"), "{why}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "wrote to the trail");
    }
    // The genuine line opens.
    write_lines(&cp_path, &genuine);
    JsonLinesSink::builder(&path).open().unwrap();
}

/// An empty or short HMAC key makes a chain anyone who guesses the key can
/// forge, labelled `hmac-sha256` all the same: refused, without the key in
/// the message.
#[test]
fn short_keys_are_refused() {
    use secrecy::SecretString;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    for short in ["", "fifteen bytes!!"] {
        let chain = JsonLinesSink::builder(&path)
            .hmac_key(SecretString::from(short))
            .open();
        let Err(SinkError::ShortKey("chain")) = chain else {
            panic!("a {}-byte chain key: {:?}", short.len(), chain.err());
        };
        let checkpoint = JsonLinesSink::builder(&path)
            .checkpoint_key(SecretString::from(short))
            .open();
        let Err(error @ SinkError::ShortKey("checkpoint")) = checkpoint else {
            panic!(
                "a {}-byte checkpoint key: {:?}",
                short.len(),
                checkpoint.err()
            );
        };
        assert_eq!(
            error.to_string(),
            "the audit checkpoint key is shorter than 16 bytes"
        );
    }
    assert!(!path.exists(), "created the trail before refusing its key");
    JsonLinesSink::builder(&path)
        .hmac_key(SecretString::from("sixteen bytes!!!"))
        .open()
        .unwrap();

    #[cfg(feature = "postgres")]
    {
        use guardrails_audit::sink::postgres::{PgError, PostgresSink};
        let conn = || SecretString::from("host=127.0.0.1 user=audit dbname=audit");
        let chain = PostgresSink::builder(conn())
            .hmac_key(SecretString::from("short"))
            .build();
        assert!(matches!(chain, Err(PgError::InvalidConfig(_))));
        let checkpoint = PostgresSink::builder(conn())
            .checkpoint_key(SecretString::from("short"))
            .build();
        let Err(error) = checkpoint else {
            panic!("a short checkpoint key was accepted");
        };
        assert!(error.to_string().contains("checkpoint key is shorter"));
        assert!(!error.to_string().contains("short\""));
    }
}
