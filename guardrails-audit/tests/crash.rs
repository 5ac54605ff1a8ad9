//! Crash test: a writer in blocking mode is killed with SIGKILL mid-stream;
//! the file is reopened and verifies, with an `audit.recovered` record, and
//! every sequence number the writer acknowledged is in it.
#![cfg(all(unix, feature = "cli"))]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{KEY, checkpoints_of, key, read_lines};
use guardrails_audit::sink::AuditSink;
use guardrails_audit::{VerifyOptions, verify};
use serde_json::Value;

#[tokio::test]
async fn kill_9_mid_stream_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();

    let mut acked: HashSet<u64> = HashSet::new();
    for round in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_guardrails-audit"))
            .arg("write-load")
            .arg(&path)
            .arg("--key-file")
            .arg(&key_file)
            .args(["--count", "100000000", "--concurrency", "64"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut this_round = 0;
        while this_round < 3000 {
            let line = lines.next().expect("writer ended early").unwrap();
            let seq: u64 = line.strip_prefix("ack ").unwrap().parse().unwrap();
            assert!(acked.insert(seq), "seq {seq} acknowledged twice");
            this_round += 1;
        }
        // SIGKILL while batches are in flight.
        child.kill().unwrap();
        // Acknowledgements printed before the kill still count.
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(seq) = line.strip_prefix("ack ").and_then(|s| s.parse().ok()) {
                acked.insert(seq);
            }
        }
        child.wait().unwrap();
        eprintln!("round {round}: {} acknowledged so far", acked.len());
    }

    // Before reopening, the trail verifies as far as it goes (maybe a torn tail).
    let options = VerifyOptions::new()
        .key(key())
        .checkpoints(checkpoints_of(&path));
    let before = verify(&path, &options).unwrap();
    assert!(!before.cleanly_stopped);

    // Reopen: the crash is recorded, the chain continues.
    let mut sink = common::reopen_keyed(&path);
    sink.write_batch(&common::awkward_events(2)).await.unwrap();
    sink.close().await.unwrap();

    let report = verify(&path, &options).unwrap();
    // One recovery for the first crash (found by the second writer), one now.
    assert_eq!(report.recoveries, 2, "{report:?}");
    assert!(report.cleanly_stopped);

    let mut present: HashSet<u64> = HashSet::new();
    for line in read_lines(&path) {
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["action"] == "load.write"
        {
            present.insert(v["chain"]["seq"].as_u64().unwrap());
        }
    }
    let missing: Vec<_> = acked.difference(&present).collect();
    assert!(missing.is_empty(), "acknowledged but missing: {missing:?}");
    assert!(acked.len() >= 6000);
}
