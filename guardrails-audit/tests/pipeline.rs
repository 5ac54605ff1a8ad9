//! Delivery guarantees: unwritable sinks per mode, full queues, group commit,
//! shutdown under load.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{delete, get};
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::sink::{AuditSink, MemorySink, SinkFuture, WriteReceipt};
use guardrails_audit::{
    AuditEvent, AuditLayer, AuditPipeline, Category, DeliveryError, DeliveryMode, RoutePolicy,
    verify,
};
use guardrails_core::Rejection;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn app(layer: AuditLayer, calls: Arc<AtomicUsize>) -> Router {
    let c1 = Arc::clone(&calls);
    let c2 = calls;
    Router::new()
        .route(
            "/things/{id}",
            get(move || {
                c1.fetch_add(1, Ordering::SeqCst);
                async { "thing" }
            }),
        )
        .route(
            "/things/{id}/delete",
            delete(move || {
                c2.fetch_add(1, Ordering::SeqCst);
                async { "deleted" }
            }),
        )
        .layer(layer)
}

/// Sends a request; a rejection must be an RFC 9457 problem whose body names
/// its status and never the sink's cause (an I/O error, a path).
async fn send(app: &Router, method: Method, uri: &str) -> (StatusCode, Option<Rejection>, String) {
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let rejection = response.extensions().get::<Rejection>().copied();
    let content_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if rejection.is_some() {
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{body}"
        );
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["status"], status.as_u16(), "{body}");
        let detail = problem["detail"].as_str().unwrap_or("").to_lowercase();
        for cause in [
            "space",
            "i/o",
            "sink",
            "os error",
            "timed out",
            "full",
            "closed",
        ] {
            assert!(!detail.contains(cause), "the cause leaks: {body}");
        }
    }
    (status, rejection, body)
}

/// Each mode against a sink that cannot write.
async fn failing_modes(sink: impl AuditSink) {
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));

    // Blocking: the handler ran, but the answer is a 500 audit-failed problem.
    let blocking = app(
        AuditLayer::new(auditor.clone()).default_mode(DeliveryMode::Blocking),
        Arc::clone(&calls),
    );
    let (status, rejection, body) = send(&blocking, Method::GET, "/things/1").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("audit-failed"), "{body}");
    assert_eq!(rejection.unwrap().reason(), "audit_write_failed");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Strict: 503 audit-unavailable and the handler never runs.
    let strict = app(
        AuditLayer::new(auditor.clone()).policy(
            RoutePolicy::new()
                .method(Method::DELETE)
                .mode(DeliveryMode::Strict),
        ),
        Arc::clone(&calls),
    );
    let (status, rejection, body) = send(&strict, Method::DELETE, "/things/1/delete").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("audit-unavailable"), "{body}");
    assert_eq!(rejection.unwrap().reason(), "audit_unavailable");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the strict handler must not run"
    );

    // Best effort: the request succeeds, the loss is counted.
    let before = auditor.stats().failed;
    let best = app(AuditLayer::new(auditor.clone()), Arc::clone(&calls));
    for _ in 0..5 {
        let (status, _, _) = send(&best, Method::GET, "/things/2").await;
        assert_eq!(status, StatusCode::OK);
    }
    auditor.flush().await.unwrap();
    let stats = auditor.stats();
    assert!(stats.failed >= before + 5, "{stats:?}");
    assert_eq!(stats.pending, 0);
    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert!(report.failed >= 7);
    assert!(!report.is_complete());
}

/// A file sink without `fsync` writes every event, but cannot acknowledge
/// a blocking or strict one as durable: those requests fail closed, as when
/// the disk fails, while best-effort events are written as usual.
#[tokio::test]
async fn a_sink_that_cannot_make_writes_durable_fails_blocking_and_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLinesSink::builder(&path).fsync(false).open().unwrap();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let event = || AuditEvent::new("thing.read", Category::DataRead);
    assert_eq!(
        auditor.record_durable(event()).await,
        Err(DeliveryError::NotDurable)
    );
    auditor.record(event()).unwrap();
    auditor.flush().await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let strict = app(
        AuditLayer::new(auditor.clone()).default_mode(DeliveryMode::Strict),
        Arc::clone(&calls),
    );
    let (status, _, body) = send(&strict, Method::GET, "/things/1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("audit-unavailable"), "{body}");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");
    assert!(guard.shutdown(Duration::from_secs(5)).await.is_complete());
    // Every event is in the file all the same, and the trail verifies.
    let report = verify(&path, &guardrails_audit::VerifyOptions::new()).unwrap();
    let actions: Vec<String> = common::read_lines(&path)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].to_string())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "\"thing.read\"").count(),
        2,
        "{actions:?}"
    );
    assert!(report.cleanly_stopped);

    // With `fsync`, the same requests succeed.
    let synced = dir.path().join("synced.jsonl");
    let sink = JsonLinesSink::builder(&synced).open().unwrap();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    assert!(auditor.record_durable(event()).await.is_ok());
    let strict = app(
        AuditLayer::new(auditor.clone()).default_mode(DeliveryMode::Strict),
        Arc::clone(&calls),
    );
    assert_eq!(
        send(&strict, Method::GET, "/things/1").await.0,
        StatusCode::OK
    );
    assert!(guard.shutdown(Duration::from_secs(5)).await.is_complete());
}

#[tokio::test]
async fn failing_sink_per_mode() {
    let sink = MemorySink::new();
    sink.set_failing(true);
    failing_modes(sink).await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn disk_full_per_mode() {
    // /dev/full accepts opens and fails every write with ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    let Ok(sink) = JsonLinesSink::builder("/dev/full")
        .checkpoint_path(dir.path().join("cp"))
        .open()
    else {
        eprintln!("SKIPPED: /dev/full cannot be opened here");
        return;
    };
    failing_modes(sink).await;
}

#[tokio::test]
async fn unwritable_path_fails_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let error = JsonLinesSink::builder(file.join("audit.jsonl"))
        .open()
        .unwrap_err();
    assert!(
        matches!(error, guardrails_audit::sink::SinkError::Io { .. }),
        "{error}"
    );
}

/// The events counted as lost by the in-band `audit.dropped` records.
fn reported_drops(events: &[AuditEvent]) -> u64 {
    events
        .iter()
        .filter(|e| e.action() == "audit.dropped")
        .map(|e| e.details()["count"].as_u64().unwrap())
        .sum()
}

/// A sink that waits for permission before each batch, counting batches.
#[derive(Clone)]
struct GatedSink {
    inner: MemorySink,
    gate: Arc<tokio::sync::Semaphore>,
    batches: Arc<AtomicUsize>,
    delay: Duration,
}

impl GatedSink {
    /// A sink into `inner` that writes nothing until permits are added to
    /// the returned gate.
    fn closed(inner: MemorySink) -> (Self, Arc<tokio::sync::Semaphore>) {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let sink = Self {
            inner,
            gate: Arc::clone(&gate),
            batches: Arc::default(),
            delay: Duration::ZERO,
        };
        (sink, gate)
    }
}

impl AuditSink for GatedSink {
    fn name(&self) -> &'static str {
        "gated"
    }
    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
        Box::pin(async move {
            let _permit = self.gate.acquire().await.unwrap();
            tokio::time::sleep(self.delay).await;
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.inner.write_batch(batch).await
        })
    }
}

#[tokio::test]
async fn full_queue_drops_are_counted_and_reported_in_band() {
    let memory = MemorySink::new();
    let (sink, gate) = GatedSink::closed(memory.clone());
    let (auditor, guard) = AuditPipeline::builder()
        .capacity(4)
        .max_batch(4)
        .spawn(sink)
        .unwrap();
    let mut dropped = 0;
    for i in 0..40u64 {
        match auditor.record(AuditEvent::new("t.e", Category::System).with_detail("i", i)) {
            Ok(()) => {}
            Err(DeliveryError::QueueFull) => dropped += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert!(dropped > 0);
    assert_eq!(auditor.stats().dropped_full, dropped);
    gate.add_permits(1000);
    auditor.flush().await.unwrap();
    // Space returned: the next event carries the in-band report before it.
    auditor
        .record(AuditEvent::new("t.after", Category::System))
        .unwrap();
    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");
    let events = memory.events();
    assert_eq!(reported_drops(&events), dropped);
    assert_eq!(
        events.iter().filter(|e| e.action() == "t.e").count() as u64,
        40 - dropped
    );
}

#[tokio::test]
async fn blocking_waiters_share_one_write_per_batch() {
    let memory = MemorySink::new();
    let batches = Arc::new(AtomicUsize::new(0));
    let sink = GatedSink {
        inner: memory.clone(),
        gate: Arc::new(tokio::sync::Semaphore::new(1000)),
        batches: Arc::clone(&batches),
        delay: Duration::from_millis(20),
    };
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let auditor = auditor.clone();
            tokio::spawn(async move {
                auditor
                    .record_durable(AuditEvent::new("t.e", Category::System))
                    .await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap().seq.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..64).collect::<Vec<_>>(),
        "every waiter gets its own seq"
    );
    let n = batches.load(Ordering::SeqCst);
    assert!(
        n < 64 / 4,
        "{n} writes for 64 durable events: no group commit"
    );
    let _ = guard.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_nothing_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLinesSink::builder(&path).open().unwrap();
    let (auditor, guard) = AuditPipeline::builder()
        .capacity(100_000)
        .spawn(sink)
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let router = app(AuditLayer::new(auditor.clone()), Arc::clone(&calls));
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (router, answered, stop) =
                (router.clone(), Arc::clone(&answered), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut i = 0u32;
                while !stop.load(Ordering::SeqCst) && i < 600 {
                    let (status, _, _) = send(&router, Method::GET, "/things/7").await;
                    assert_eq!(status, StatusCode::OK);
                    answered.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Shut down while requests are still flowing.
    let report = guard.shutdown(Duration::from_secs(10)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert!(report.is_complete(), "{report:?}");
    let stats = auditor.stats();
    let answered = answered.load(Ordering::SeqCst) as u64;
    assert!(stats.accepted > 0);
    // Every request answered was either accepted (and then written) or
    // refused after the shutdown began, and counted.
    assert_eq!(stats.accepted + stats.dropped_closed, answered, "{stats:?}");
    assert_eq!(stats.written, stats.accepted);
    let report = verify(&path, &Default::default()).unwrap();
    let requests = common::read_lines(&path)
        .iter()
        .filter(|l| l.contains("\"action\":\"http.request\""))
        .count() as u64;
    assert_eq!(requests, stats.accepted);
    assert!(report.cleanly_stopped);
}

#[tokio::test]
async fn a_domain_event_on_a_stuck_sink_times_out_too() {
    /// Writes one batch (the strict attempt record), then hangs.
    struct StallsAfterFirst(MemorySink, bool);
    impl AuditSink for StallsAfterFirst {
        fn name(&self) -> &'static str {
            "stalls"
        }
        fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
            if std::mem::replace(&mut self.1, true) {
                Box::pin(std::future::pending())
            } else {
                self.0.write_batch(batch)
            }
        }
    }
    let memory = MemorySink::new();
    let sink = StallsAfterFirst(memory.clone(), false);
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let layer = AuditLayer::new(auditor)
        .default_mode(DeliveryMode::Strict)
        .delivery_timeout(Duration::from_millis(100));
    let router = Router::new()
        .route(
            "/things/{id}",
            delete(|axum::Extension(audit): axum::Extension<guardrails_audit::AuditContext>| async move {
                match audit
                    .record(audit.event("thing.delete", Category::DataWrite))
                    .await
                {
                    Ok(_) => StatusCode::NO_CONTENT,
                    Err(_) => StatusCode::SERVICE_UNAVAILABLE,
                }
            }),
        )
        .layer(layer);
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        send(&router, Method::DELETE, "/things/1"),
    )
    .await
    .expect("the handler waited for the stuck sink without a limit");
    // The handler's event failed in time; then the completion record could
    // not be written either: 500 `audit-failed`.
    assert_eq!(answered.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        memory.events()[0].stage(),
        guardrails_audit::Stage::Received
    );
    let report = guard.shutdown(Duration::from_millis(200)).await;
    assert!(report.timed_out);
}

#[tokio::test]
async fn a_stuck_sink_times_out_instead_of_holding_requests() {
    let (sink, _never_opened) = GatedSink::closed(MemorySink::new());
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = AuditLayer::new(auditor.clone())
        .default_mode(DeliveryMode::Blocking)
        .policy(
            RoutePolicy::new()
                .method(Method::DELETE)
                .mode(DeliveryMode::Strict),
        )
        .delivery_timeout(Duration::from_millis(50));
    let router = app(layer, Arc::clone(&calls));
    let started = std::time::Instant::now();
    let (status, rejection, _) = send(&router, Method::DELETE, "/things/1/delete").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejection.unwrap().reason(), "audit_unavailable");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the strict handler must not run"
    );
    let (status, rejection, _) = send(&router, Method::GET, "/things/1").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(rejection.unwrap().reason(), "audit_write_failed");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The stuck writer cannot flush: the bounded shutdown says so.
    let report = guard.shutdown(Duration::from_millis(200)).await;
    assert!(report.timed_out);
    assert!(report.unflushed > 0);
    assert!(!report.is_complete());
}

#[tokio::test]
async fn events_of_failed_batches_are_reported_in_band_when_the_sink_returns() {
    let memory = MemorySink::new();
    let (auditor, guard) = AuditPipeline::builder().spawn(memory.clone()).unwrap();
    memory.set_failing(true);
    for i in 0..5u64 {
        auditor
            .record(AuditEvent::new("t.lost", Category::System).with_detail("i", i))
            .unwrap();
    }
    // A waiter in the failing batch is told; its event counts as lost too.
    let failed = auditor
        .record_durable(AuditEvent::new("t.lost", Category::System))
        .await;
    assert_eq!(failed, Err(DeliveryError::WriteFailed));
    auditor.flush().await.unwrap();
    assert_eq!(auditor.stats().failed, 6);
    assert!(memory.is_empty());

    memory.set_failing(false);
    let receipt = auditor
        .record_durable(AuditEvent::new("t.after", Category::System))
        .await
        .unwrap();
    let report = guard.shutdown(Duration::from_secs(5)).await;
    // The report still says what was lost.
    assert_eq!((report.failed, report.unflushed), (6, 0), "{report:?}");
    assert!(report.sink_closed);
    let events = memory.events();
    let first = &events[0];
    assert_eq!(first.action(), "audit.dropped");
    assert_eq!(first.reason(), Some("sink_error"));
    assert_eq!(first.details()["count"], 6);
    assert_eq!(events[1].action(), "t.after");
    // The receipt numbers the waiter's own record, after the report.
    assert_eq!(receipt.seq, Some(1));
    assert!(!events.iter().any(|e| e.action() == "t.lost"));
}

#[tokio::test]
async fn a_durable_event_given_up_while_waiting_for_space_is_counted_and_reported() {
    let memory = MemorySink::new();
    let (sink, gate) = GatedSink::closed(memory.clone());
    let (auditor, guard) = AuditPipeline::builder()
        .capacity(1)
        .max_batch(1)
        .linger(Duration::ZERO)
        .spawn(sink)
        .unwrap();
    // Fill the queue behind the stuck writer.
    let mut full = false;
    for _ in 0..100 {
        if auditor.record(AuditEvent::new("t.e", Category::System)) == Err(DeliveryError::QueueFull)
        {
            full = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(full, "the queue never filled");
    let before = auditor.stats().dropped_full;
    let result = auditor
        .record_durable(AuditEvent::new("t.durable", Category::System))
        .timeout(Duration::from_millis(50))
        .await;
    assert_eq!(result, Err(DeliveryError::TimedOut));
    assert_eq!(
        auditor.stats().dropped_full,
        before + 1,
        "the lost event is counted"
    );

    gate.add_permits(1000);
    auditor.flush().await.unwrap();
    // The one slot goes to the in-band report first: wait for space.
    auditor
        .record_durable(AuditEvent::new("t.after", Category::System))
        .await
        .unwrap();
    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");
    let events = memory.events();
    assert_eq!(
        reported_drops(&events),
        before + 1,
        "every drop is reported in-band"
    );
    assert!(!events.iter().any(|e| e.action() == "t.durable"));
}

/// `accepted` counts an event before the writer can see it, so the stats
/// never show more written than accepted (`pending` would hide it by
/// saturating at zero). The sink checks, at every batch, that every event it
/// was handed was already counted; many senders on a runtime with more
/// workers than cores give the old order (send, then count) a sender
/// preempted between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_event_reaches_the_sink_before_it_is_counted_as_accepted() {
    struct ChecksCounts {
        auditor: Arc<std::sync::OnceLock<guardrails_audit::Auditor>>,
        handed: u64,
        uncounted: Arc<AtomicUsize>,
    }
    impl AuditSink for ChecksCounts {
        fn name(&self) -> &'static str {
            "checks-counts"
        }
        fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
            self.handed += batch
                .iter()
                .filter(|event| event.action() == "test.counted")
                .count() as u64;
            let accepted = self
                .auditor
                .get()
                .expect("set after spawn")
                .stats()
                .accepted;
            if accepted < self.handed {
                self.uncounted.fetch_add(1, Ordering::SeqCst);
            }
            Box::pin(async {
                Ok(WriteReceipt {
                    first_seq: None,
                    durable: true,
                })
            })
        }
    }
    let cell = Arc::new(std::sync::OnceLock::new());
    let uncounted = Arc::new(AtomicUsize::new(0));
    let sink = ChecksCounts {
        auditor: Arc::clone(&cell),
        handed: 0,
        uncounted: Arc::clone(&uncounted),
    };
    // No linger: the writer takes events as soon as they are sent.
    let (auditor, guard) = AuditPipeline::builder()
        .capacity(64)
        .linger(Duration::ZERO)
        .max_linger(Duration::ZERO)
        .spawn(sink)
        .unwrap();
    cell.set(auditor.clone()).unwrap();
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let auditor = auditor.clone();
            tokio::spawn(async move {
                for _ in 0..5_000 {
                    let event = AuditEvent::new("test.counted", Category::System);
                    if auditor.record(event).is_err() {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let report = guard.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_complete(), "{report:?}");
    let stats = auditor.stats();
    assert!(stats.accepted > 0);
    assert_eq!(stats.written, stats.accepted, "{stats:?}");
    assert_eq!(
        uncounted.load(Ordering::SeqCst),
        0,
        "the sink was handed events not yet counted as accepted"
    );
}

/// The `audit.` actions are written by the pipeline and the sinks alone:
/// an application's `audit.stopped` would pass for a clean stop (so the
/// next start would not record a crash), an `audit.key_changed` for a key
/// change. Refused by every way in, and nothing is written.
#[tokio::test]
async fn actions_in_the_librarys_namespace_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLinesSink::builder(&path).open().unwrap();
    let (auditor, guard) = AuditPipeline::builder().spawn(sink).unwrap();
    for action in ["audit.stopped", "audit.key_changed", "audit.dropped"] {
        let event = || AuditEvent::new(action, Category::System);
        assert_eq!(auditor.record(event()), Err(DeliveryError::ReservedAction));
        for mode in [
            DeliveryMode::BestEffort,
            DeliveryMode::Blocking,
            DeliveryMode::Strict,
        ] {
            assert_eq!(
                auditor.deliver(event(), mode).await.unwrap_err(),
                DeliveryError::ReservedAction
            );
        }
    }
    // An action that merely contains the word is the application's.
    auditor
        .record_durable(AuditEvent::new("billing.audit.export", Category::DataRead))
        .await
        .unwrap();
    assert_eq!(auditor.stats().accepted, 1);
    assert!(guard.shutdown(Duration::from_secs(5)).await.is_complete());
    let actions: Vec<String> = common::read_lines(&path)
        .iter()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["action"].to_string())
        .collect();
    assert_eq!(actions, ["\"billing.audit.export\"", "\"audit.stopped\""]);
}
