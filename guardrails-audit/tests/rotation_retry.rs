//! A rotation checkpoint that cannot be written at once (here: the file
//! size limit, as a full checkpoint disk would) is written later, before
//! any later checkpoint: after a second rotation in between, the checkpoint
//! file still moves forward, and the trail verifies.
//!
//! Its own test binary: `RLIMIT_FSIZE` applies to the whole process.
#![cfg(target_os = "linux")]

mod common;

use std::future::Future;
use std::time::Duration;

use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{VerifyOptions, verify};
use rustix::process::{Resource, Rlimit, Signal, getrlimit, setrlimit};
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};

/// A checkpoint file larger than any trail file, so that a size limit
/// between the two stops only checkpoints.
const PADDING: u64 = 100_000;

/// The file size limit is the process's: one test at a time, each holding
/// this from start to end.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `f` (build it inside, in an `async` block) with every file of this
/// process limited to [`PADDING`] bytes: checkpoints cannot be written,
/// trail files can. `None` where the limit cannot be set so.
async fn without_checkpoints<T>(f: impl Future<Output = T>) -> Option<T> {
    let original = getrlimit(Resource::Fsize);
    if original.maximum.is_some_and(|hard| hard < 1 << 20) {
        eprintln!("SKIPPED: a hard file size limit below 1 MiB is set here");
        return None;
    }
    // Past the limit a write raises SIGXFSZ; with a handler it fails with
    // EFBIG instead.
    let _xfsz = signal(SignalKind::from_raw(Signal::XFSZ.as_raw())).unwrap();
    let limit = Rlimit {
        current: Some(PADDING),
        maximum: original.maximum,
    };
    setrlimit(Resource::Fsize, limit).unwrap();
    let out = f.await;
    setrlimit(Resource::Fsize, original).unwrap();
    Some(out)
}

/// A test's trail: a sink rotating at every batch, its checkpoint file
/// padded to [`PADDING`], three events written; the test holds the lock.
struct Rotating {
    _one: tokio::sync::MutexGuard<'static, ()>,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    checkpoints: std::path::PathBuf,
    sink: JsonLinesSink,
    events: Vec<guardrails_audit::AuditEvent>,
}

async fn rotating() -> Rotating {
    let one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let checkpoints = common::checkpoints_of(&path);
    std::fs::write(&checkpoints, vec![b'\n'; usize::try_from(PADDING).unwrap()]).unwrap();
    let mut sink = JsonLinesSink::builder(&path)
        .hmac_key(common::key())
        .rotate_bytes(1)
        .checkpoint_every(1000, Duration::from_secs(3600))
        .open()
        .unwrap();
    let events = common::awkward_events(9);
    sink.write_batch(&events[..3]).await.unwrap();
    Rotating {
        _one: one,
        _dir: dir,
        path,
        checkpoints,
        sink,
        events,
    }
}

#[tokio::test]
async fn a_late_rotation_checkpoint_keeps_the_checkpoints_in_order() {
    // (`_one` and `_dir` stay bound: the lock and the directory last the test.)
    let Rotating {
        _one,
        _dir,
        path,
        checkpoints,
        mut sink,
        events,
    } = rotating().await;
    // Rotates first: the rename works, its checkpoint does not.
    // (The file sink writes when `write_batch` is called, not when awaited.)
    let Some(written) = without_checkpoints(async { sink.write_batch(&events[3..6]).await }).await
    else {
        return;
    };
    written.unwrap();
    assert_eq!(
        std::fs::metadata(&checkpoints).unwrap().len(),
        PADDING,
        "{:?}",
        common::read_lines(&checkpoints)
            .iter()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
    );
    // A second rotation, now with room: the late checkpoint goes first.
    sink.write_batch(&events[6..]).await.unwrap();
    sink.close().await.unwrap();

    let seqs: Vec<u64> = common::read_lines(&checkpoints)
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
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

/// A rotation checkpoint still due when the writer stops (its shutdown
/// checkpoint failed too) is written by the next writer at open: the active
/// file alone links to its rotated predecessor again.
#[tokio::test]
async fn a_rotation_checkpoint_lost_at_stop_is_written_at_the_next_open() {
    // (`_one` and `_dir` stay bound: the lock and the directory last the test.)
    let Rotating {
        _one,
        _dir,
        path,
        checkpoints,
        mut sink,
        events,
    } = rotating().await;
    let Some(()) = without_checkpoints(async {
        sink.write_batch(&events[3..6]).await.unwrap();
        assert!(
            sink.close().await.is_err(),
            "the shutdown checkpoint was written"
        );
    })
    .await
    else {
        return;
    };
    let mut sink = common::reopen_keyed(&path);
    sink.write_batch(&events[6..]).await.unwrap();
    sink.close().await.unwrap();
    let reasons: Vec<String> = common::read_lines(&checkpoints)
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            format!("{}:{}", v["seq"], v["reason"].as_str().unwrap())
        })
        .collect();
    assert!(
        reasons.iter().any(|r| r.ends_with(":rotation")),
        "{reasons:?}"
    );
    let options = VerifyOptions::new()
        .key(common::key())
        .checkpoints(&checkpoints);
    verify(&path, &options).unwrap();
    verify(&path, &options.include_rotated(true)).unwrap();
}
