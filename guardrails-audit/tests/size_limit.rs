//! A batch that fails part-way (here: the process's file size limit, as a
//! full disk would) leaves nothing of itself in the trail: the sink cuts the
//! file back, so the in-band `audit.dropped` count is exactly the events
//! missing, and the chain goes on from the last batch written.
//!
//! Its own test binary: `RLIMIT_FSIZE` applies to the whole process.
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{AuditEvent, AuditPipeline, Category, DeliveryError, VerifyOptions, verify};
use rustix::process::{Resource, Rlimit, Signal, getrlimit, setrlimit};
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};

/// Limits the size of every file this process writes to `bytes`; the
/// limit found at the start returns when the guard is dropped (also when an
/// assertion fails).
fn limit_file_size(bytes: u64) -> impl Drop {
    struct Restore(Rlimit);
    impl Drop for Restore {
        fn drop(&mut self) {
            let original = Rlimit {
                current: self.0.current,
                maximum: self.0.maximum,
            };
            setrlimit(Resource::Fsize, original).unwrap();
        }
    }
    let original = getrlimit(Resource::Fsize);
    setrlimit(
        Resource::Fsize,
        Rlimit {
            current: Some(bytes),
            maximum: original.maximum,
        },
    )
    .unwrap();
    Restore(original)
}

fn lines_with(path: &std::path::Path, action: &str) -> Vec<Value> {
    common::read_lines(path)
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| record["action"] == action)
        .collect()
}

#[tokio::test]
async fn a_batch_cut_by_the_file_size_limit_leaves_nothing_behind() {
    // The test's files stay far below this; a soft limit can return to
    // anything up to the hard one.
    if getrlimit(Resource::Fsize)
        .maximum
        .is_some_and(|hard| hard < 1 << 20)
    {
        eprintln!("SKIPPED: a hard file size limit below 1 MiB is set here");
        return;
    }
    // Writing past the limit raises SIGXFSZ, which would end the process;
    // with a handler the write fails with EFBIG instead.
    let _xfsz = signal(SignalKind::from_raw(Signal::XFSZ.as_raw())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(common::key())
        .open()
        .unwrap();
    sink.write_batch(&common::awkward_events(5)).await.unwrap();
    let written = std::fs::metadata(&path).unwrap().len();

    // Room for about one and a half more records: the next batch of ten
    // is written in part, then the write fails.
    let record = written / 5;
    let limit = limit_file_size(written + record * 3 / 2);
    let failed = sink.write_batch(&common::awkward_events(10)).await;
    let length = std::fs::metadata(&path).unwrap().len();
    drop(limit);
    assert!(failed.is_err(), "the batch did not fail: {failed:?}");
    assert_eq!(
        length, written,
        "part of the failed batch stayed in the file"
    );

    // The chain goes on from the last batch written, with no recovery.
    let receipt = sink.write_batch(&common::awkward_events(2)).await.unwrap();
    assert_eq!(receipt.first_seq, Some(5));
    sink.close().await.unwrap();
    let options = VerifyOptions::new()
        .key(common::key())
        .checkpoints(common::checkpoints_of(&path));
    let report = verify(&path, &options).unwrap();
    assert_eq!(report.recoveries, 0, "{report:?}");
    assert!(!report.torn_tail);
    assert!(report.cleanly_stopped);
    assert_eq!(lines_with(&path, "test.event").len(), 7);

    // Through the pipeline: the events of failed batches are reported lost
    // in-band, exactly, and none of them is in the trail.
    let path = dir.path().join("piped.jsonl");
    let sink = JsonLinesSink::builder(&path)
        .hmac_key(common::key())
        .open()
        .unwrap();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    auditor
        .record_durable(AuditEvent::new("t.kept", Category::System))
        .await
        .unwrap();
    let written = std::fs::metadata(&path).unwrap().len();
    // Every `t.lost` record is larger than the room left, so each batch
    // that holds one fails, however the writer batches them.
    let limit = limit_file_size(written + 1000);
    for i in 0..20u64 {
        auditor
            .record(
                AuditEvent::new("t.lost", Category::System)
                    .with_detail("i", i)
                    .with_detail("padding", "x".repeat(2000)),
            )
            .unwrap();
    }
    let waiter = auditor
        .record_durable(
            AuditEvent::new("t.lost", Category::System).with_detail("padding", "x".repeat(2000)),
        )
        .await;
    drop(limit);
    assert_eq!(waiter, Err(DeliveryError::WriteFailed));
    auditor
        .record_durable(AuditEvent::new("t.after", Category::System))
        .await
        .unwrap();
    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.failed, 21, "{report:?}");

    assert!(lines_with(&path, "t.lost").is_empty());
    // One record or, if a tick came between the failures, more: together
    // exactly the lost events.
    let dropped = lines_with(&path, "audit.dropped");
    assert!(dropped.iter().all(|d| d["reason"] == "sink_error"));
    let counted: u64 = dropped
        .iter()
        .map(|d| d["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 21, "{dropped:?}");
    assert_eq!(lines_with(&path, "t.after").len(), 1);
    let report = verify(
        &path,
        &options.clone().checkpoints(common::checkpoints_of(&path)),
    )
    .unwrap();
    assert_eq!(report.recoveries, 0, "{report:?}");
    assert!(report.cleanly_stopped);
}
