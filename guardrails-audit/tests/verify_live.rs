//! `verify` on a trail that is being written: a healthy trail verifies
//! however the verifier's reads interleave with the writer's batches,
//! checkpoints and rotations.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{awkward_events, checkpoints_of};
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::{JsonLinesBuilder, JsonLinesSink};
use guardrails_audit::{VerifyOptions, verify};

/// A writer on its own thread: 3-event batches, a checkpoint after each
/// (`checkpoint_every(3, ..)`), until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Writer {
    /// Starts writing with `builder`, and returns once `head_start` events
    /// are written (so that each verification has a trail long enough to
    /// take a while to read).
    fn start(builder: JsonLinesBuilder, head_start: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let mut sink = builder.open().unwrap();
                    let events = awkward_events(3);
                    let mut written = 0;
                    while !stop.load(Ordering::Relaxed) {
                        sink.write_batch(&events).await.unwrap();
                        written += 3;
                        if written as usize == head_start {
                            ready_tx.send(()).unwrap();
                        }
                    }
                    sink.close().await.unwrap();
                    written
                })
            })
        };
        ready_rx.recv().expect("the writer failed");
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the writer; returns how many events it wrote.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the writer panicked")
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn builder(path: &Path) -> JsonLinesBuilder {
    JsonLinesSink::builder(path).checkpoint_every(3, Duration::from_secs(3600))
}

/// Verifies `path` up to 20 times (at most 2 s) while the writer writes;
/// every verdict must be whole. Returns how many verifications ran.
fn verify_while_written(path: &Path, options: &VerifyOptions, writer: Writer) -> u32 {
    let started = Instant::now();
    let mut runs = 0;
    let mut failures = Vec::new();
    while runs < 20 && (runs < 3 || started.elapsed() < Duration::from_secs(2)) {
        runs += 1;
        if let Err(error) = verify(path, options) {
            failures.push(error.to_string());
        }
    }
    let written = writer.stop();
    assert!(
        failures.is_empty(),
        "{} of {runs} verifications of a healthy trail failed (writer wrote {written} events); first: {}",
        failures.len(),
        failures[0]
    );
    // Once the writer has stopped, the whole trail verifies too.
    let report = verify(path, options).unwrap();
    assert!(report.cleanly_stopped);
    runs
}

#[test]
fn checkpoints_added_during_verification_are_not_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let writer = Writer::start(builder(&path), 600);
    let options = VerifyOptions::new().checkpoints(checkpoints_of(&path));
    verify_while_written(&path, &options, writer);
}
/// Rotated files of `path`, as the sink names them.
fn rotated(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let mut found: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&format!("{name}.")))
                .is_some_and(|s| s.len() == 20)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn rotations_during_verification_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // About one rotation every other batch.
    let writer = Writer::start(builder(&path).rotate_bytes(4096), 300);
    let before = rotated(&path).len();
    let options = VerifyOptions::new()
        .include_rotated(true)
        .checkpoints(checkpoints_of(&path));
    verify_while_written(&path, &options, writer);
    assert!(
        rotated(&path).len() > before,
        "no rotation while the trail was verified"
    );
}
