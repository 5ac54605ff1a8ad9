//! A rotation checkpoint that cannot be written at once (here: the file
//! size limit, as a full checkpoint disk would) is written later, before
//! any later checkpoint: after a second rotation in between, the checkpoint
//! file still moves forward, and the trail verifies.
//!
//! Its own test binary: `RLIMIT_FSIZE` applies to the whole process.
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{VerifyOptions, verify};
use rustix::process::{Resource, Rlimit, Signal, getrlimit, setrlimit};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::test]
async fn a_late_rotation_checkpoint_keeps_the_checkpoints_in_order() {
    let original = getrlimit(Resource::Fsize);
    if original.maximum.is_some_and(|hard| hard < 1 << 20) {
        eprintln!("SKIPPED: a hard file size limit below 1 MiB is set here");
        return;
    }
    // Past the limit a write raises SIGXFSZ; with a handler it fails with
    // EFBIG instead.
    let _xfsz = signal(SignalKind::from_raw(Signal::XFSZ.as_raw())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let checkpoints = common::checkpoints_of(&path);
    // A checkpoint file larger than any trail file, so that a size limit
    // between the two stops only checkpoints.
    const PADDING: u64 = 100_000;
    std::fs::write(&checkpoints, vec![b'\n'; PADDING as usize]).unwrap();
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(common::key())
        .rotate_bytes(1)
        .checkpoint_every(1000, Duration::from_secs(3600))
        .open()
        .unwrap();
    let events = common::awkward_events(9);
    sink.write_batch(&events[..3]).await.unwrap();
    {
        let limit = Rlimit {
            current: Some(PADDING),
            maximum: original.maximum,
        };
        setrlimit(Resource::Fsize, limit).unwrap();
        // Rotates first: the rename works, its checkpoint does not.
        let written = sink.write_batch(&events[3..6]).await;
        setrlimit(
            Resource::Fsize,
            Rlimit {
                current: original.current,
                maximum: original.maximum,
            },
        )
        .unwrap();
        written.unwrap();
    }
    assert_eq!(std::fs::metadata(&checkpoints).unwrap().len(), PADDING);
    // A second rotation, now with room: the late checkpoint goes first.
    sink.write_batch(&events[6..]).await.unwrap();
    sink.close().await.unwrap();

    let seqs: Vec<u64> = common::read_lines(&checkpoints)
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(seqs.is_sorted(), "{seqs:?}");
    assert!(seqs.len() >= 3, "{seqs:?}");
    let options = VerifyOptions::new()
        .key(common::key())
        .checkpoints(&checkpoints)
        .include_rotated(true);
    let report = verify(&path, &options).unwrap();
    assert_eq!(report.first_seq, Some(0));
}
