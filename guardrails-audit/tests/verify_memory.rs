//! `verify` reads a trail line by line: its memory does not grow with the
//! trail. Its own test binary: it measures the process's peak memory.
#![cfg(target_os = "linux")]

use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{AuditEvent, Category, Outcome, VerifyOptions, verify};

/// The process's peak resident memory since the last reset, in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_large_trail_verifies_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = JsonLinesSink::builder(&path).fsync(false).open().unwrap();
    let batch: Vec<AuditEvent> = (0..4096)
        .map(|i| {
            AuditEvent::new("test.event", Category::DataRead)
                .with_outcome(Outcome::Success)
                .with_target("invoice", format!("inv_{i}"))
                .with_detail("note", "x".repeat(400))
        })
        .collect();
    for _ in 0..12 {
        sink.write_batch(&batch).await.unwrap();
    }
    sink.close().await.unwrap();
    drop(batch);
    let trail_kib = std::fs::metadata(&path).unwrap().len() / 1024;
    assert!(trail_kib > 40 * 1024, "a trail of {trail_kib} KiB");

    // Reset the peak (Linux 4.0 and later), then verify.
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("SKIPPED: the peak memory cannot be reset here");
        return;
    }
    let before = peak_kib();
    let report = verify(&path, &VerifyOptions::new()).unwrap();
    let grown = peak_kib().saturating_sub(before);
    assert_eq!(report.records, 12 * 4096 + 1);
    assert!(
        grown < trail_kib / 4,
        "verifying a trail of {trail_kib} KiB took {grown} KiB more memory"
    );
}
