//! The JSON-lines sink drops durable records from the page cache: a busy
//! trail does not push the application's cached files out. Checked with
//! util-linux `fincore`, which reads residency through `mincore(2)`.
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::Command;

use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{AuditEvent, Category, Outcome};

/// Bytes of `path` resident in the page cache, or `None` (after a note) when
/// `fincore` is missing and not required.
fn resident_bytes(path: &Path) -> Option<u64> {
    match Command::new("fincore")
        .args(["--bytes", "--noheadings", "--raw", "--output", "RES"])
        .arg(path)
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8(out.stdout).unwrap();
            Some(text.trim().parse().expect("fincore prints a byte count"))
        }
        _ => {
            assert!(
                !common::require_external(),
                "GUARDRAILS_REQUIRE_EXTERNAL=1 but util-linux `fincore` is missing (run .ci/setup-external)"
            );
            eprintln!("SKIPPED: util-linux `fincore` is not installed (run .ci/setup-external)");
            None
        }
    }
}

/// Whether `path` is on tmpfs, where the cached pages are the file itself.
fn on_tmpfs(path: &Path) -> bool {
    Command::new("stat")
        .args(["--file-system", "--format=%T"])
        .arg(path)
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "tmpfs")
}

fn batch(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            AuditEvent::new("invoice.read", Category::DataRead)
                .with_outcome(Outcome::Success)
                .with_target("invoice", format!("inv-{i:08}"))
        })
        .collect()
}

async fn write(path: &Path, fsync: bool) -> u64 {
    let mut sink = JsonLinesSink::builder(path).fsync(fsync).open().unwrap();
    // Many small batches: a range that started or ended off a page
    // boundary would leave a page behind at every one of them.
    let batch = batch(100);
    for _ in 0..200 {
        sink.write_batch(&batch).await.unwrap();
    }
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test]
async fn durable_records_leave_the_page_cache() {
    // Under the target directory: a disk-backed file system, where `/tmp`
    // may be tmpfs (whose pages are the file and cannot be dropped).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    if on_tmpfs(dir.path()) {
        eprintln!("SKIPPED: the target directory is on tmpfs, whose pages cannot be dropped");
        return;
    }
    let synced = dir.path().join("synced.jsonl");
    let len = write(&synced, true).await;
    let Some(resident) = resident_bytes(&synced) else {
        return;
    };
    assert!(len > 4 << 20, "the test wrote only {len} bytes");
    // What is left: the 64 KiB block holding the end of the file, kept for
    // the next append.
    assert!(
        resident <= 64 << 10,
        "{resident} of {len} written bytes still cached"
    );
    if len % (64 << 10) != 0 {
        assert!(
            resident > 0,
            "the block the next batch appends to was dropped"
        );
    }

    // Without fsync the pages are dirty and stay: the sink leaves them to the
    // kernel's writeback. This also shows that `fincore` sees written pages.
    let unsynced = dir.path().join("unsynced.jsonl");
    let len = write(&unsynced, false).await;
    let resident = resident_bytes(&unsynced).unwrap();
    assert!(
        resident > len / 2,
        "only {resident} of {len} unsynced bytes cached"
    );
}

#[tokio::test]
async fn rotated_and_closed_files_leave_no_page_behind() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    if on_tmpfs(dir.path()) {
        eprintln!("SKIPPED: the target directory is on tmpfs, whose pages cannot be dropped");
        return;
    }
    let path = dir.path().join("rotating.jsonl");
    let mut sink = JsonLinesSink::builder(&path)
        .rotate_bytes(300 << 10)
        .open()
        .unwrap();
    let batch = batch(100);
    for _ in 0..40 {
        sink.write_batch(&batch).await.unwrap();
    }
    let mut rotated: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        // `rotating.jsonl.<first seq>`; not the checkpoints.
        .filter(|p| {
            p.extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| ext.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    rotated.sort();
    assert!(rotated.len() >= 3, "only rotated into {rotated:?}");
    for file in &rotated {
        let Some(resident) = resident_bytes(file) else {
            return;
        };
        let len = std::fs::metadata(file).unwrap().len();
        // Not a multiple of the block: the last block would have stayed.
        assert_ne!(len % (64 << 10), 0);
        assert_eq!(resident, 0, "{resident} bytes of {file:?} still cached");
    }
    // The active file keeps its last block while the sink may append...
    let active = resident_bytes(&path).unwrap();
    assert!(
        active > 0,
        "the block the next batch appends to was dropped"
    );
    // ...and drops it when the sink closes.
    sink.close().await.unwrap();
    assert_eq!(resident_bytes(&path).unwrap(), 0);
}
