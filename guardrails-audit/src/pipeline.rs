//! The delivery pipeline: a bounded queue, a background writer that batches,
//! and three delivery modes with honest guarantees.
//!
//! [`AuditPipeline::builder`] starts a writer on its own thread (with a small
//! single-threaded runtime, so a slow disk never stalls the application's
//! runtime) and returns an [`Auditor`] — the cheap, cloneable handle that
//! records events — and an [`AuditGuard`] that must be kept alive and shut
//! down.
//!
//! # Delivery modes
//!
//! | mode | request path | guarantee | when the audit trail fails |
//! |---|---|---|---|
//! | [`DeliveryMode::BestEffort`] | never waits (`try_send` into the queue) | written within about [`AuditPipelineBuilder::max_linger`] (10 ms by default) plus one write, unless the queue is full or the sink fails; every loss is counted in `guardrails_audit_dropped_total` and written in-band as an `audit.dropped { count, first_seq }` record: reason `queue_full` as soon as space returns, `sink_error` (events of failed batches) as soon as the sink writes again | the request proceeds |
//! | [`DeliveryMode::Blocking`] | waits until the batch holding its event is written and `fsync`ed (group commit: one `fsync` per batch, all waiters acknowledged together) | an answered request has a durable record (a gRPC call: its status, in the trailers, waits for the record, its messages do not) | the response becomes a 500 `audit-failed` problem (a gRPC call ends `INTERNAL`) |
//! | [`DeliveryMode::Strict`] | writes a durable `stage: "received"` attempt record **before** the inner service runs, then a durable completion record | nothing happens without a durable trace (like Kubernetes `blocking-strict`) | 503 `audit-unavailable`, and the handler never runs |
//!
//! "Durable" is what the sink reports for each batch
//! ([`WriteReceipt::durable`](crate::sink::WriteReceipt::durable)). A sink
//! that writes without making writes durable (a JSON-lines file with
//! `fsync(false)`, the tracing sink, PostgreSQL with `synchronous_commit`
//! off) fails blocking and strict events with [`DeliveryError::NotDurable`]
//! (logged once): their promise cannot be kept, so it is not made.
//!
//! # Domain events outside requests
//!
//! [`Auditor`] is `Clone + Send + Sync`: keep one in the application state
//! (or anywhere) to record events that no request carries — jobs, admin
//! tasks, start-up. Inside a request prefer the request's
//! [`AuditContext`](crate::AuditContext), which fills in the request id,
//! source and actor.
//!
//! # Shutdown
//!
//! [`AuditGuard::shutdown`] lets in the records of cancelled blocking and
//! strict requests still waiting for queue space, closes the queue (later
//! events are refused and counted), writes every event accepted before,
//! closes the sink (final
//! `audit.stopped` record and checkpoint), and waits at most the given time;
//! the [`ShutdownReport`] says how many events could not be flushed. Dropping
//! the guard without calling `shutdown` does the same with a 5 second bound,
//! blocking the dropping thread.
//!
//! # Metrics
//!
//! `guardrails_audit_events_total{outcome}` (events written, by outcome),
//! `guardrails_audit_queue_depth` (gauge), `guardrails_audit_write_seconds`
//! (histogram per batch), `guardrails_audit_sink_errors_total{sink}`,
//! `guardrails_audit_dropped_total{reason="queue_full"|"closed"|"sink_error"}`.
//! Every label value is a constant.
//!
//! ```
//! use guardrails_audit::{AuditEvent, AuditPipeline, Category, Outcome};
//! use guardrails_audit::sink::MemorySink;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let sink = MemorySink::new();
//! let (auditor, guard) = AuditPipeline::builder().spawn(sink.clone()).unwrap();
//!
//! // Fire and forget:
//! auditor.record(AuditEvent::new("user.login", Category::Authn).with_outcome(Outcome::Success)).unwrap();
//! // Wait until durable:
//! let receipt = auditor.record_durable(AuditEvent::new("invoice.delete", Category::DataWrite)).await.unwrap();
//! assert_eq!(receipt.seq, Some(1));
//!
//! let report = guard.shutdown(Duration::from_secs(5)).await;
//! assert!(report.is_complete());
//! assert_eq!(sink.len(), 2);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use guardrails_core::{Problem, ProblemType};
use tokio::sync::{mpsc, oneshot};

use crate::event::{AuditEvent, Category, Observer, Outcome, Redactor};
use crate::sink::AuditSink;

/// How an event is delivered; see the [module documentation](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryMode {
    /// Never wait; drop and count when the queue is full.
    #[default]
    BestEffort,
    /// Wait until the event is durable; a failure becomes a 500.
    Blocking,
    /// Fail closed: a durable attempt record before the handler, else 503.
    Strict,
}

impl DeliveryMode {
    /// `best_effort`, `blocking` or `strict`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BestEffort => "best_effort",
            Self::Blocking => "blocking",
            Self::Strict => "strict",
        }
    }
}

/// The acknowledgement of a durable write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The record's sequence number in the sink, when it numbers records.
    pub seq: Option<u64>,
}

/// An event could not be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The queue was full (best effort only: the event was dropped).
    #[error("the audit queue is full; the event was dropped")]
    QueueFull,
    /// The pipeline is shut down.
    #[error("the audit pipeline is closed")]
    Closed,
    /// The sink failed to write the batch holding the event.
    #[error("the audit sink failed to write the event")]
    WriteFailed,
    /// The sink wrote the batch but cannot make it durable (a file sink
    /// without `fsync`, the tracing sink, PostgreSQL with
    /// `synchronous_commit` off): a blocking or strict event is not
    /// acknowledged on a promise the sink cannot keep.
    #[error("the audit sink cannot write the event durably")]
    NotDurable,
    /// The event was not durable within the delivery timeout.
    #[error("the audit record was not written in time")]
    TimedOut,
    /// The event's action is in the library's own namespace
    /// ([`RESERVED_ACTION_PREFIX`](crate::event::RESERVED_ACTION_PREFIX),
    /// `audit.`), which only the pipeline and the sinks write: refused, not
    /// queued.
    #[error("audit actions starting with `audit.` are the library's own")]
    ReservedAction,
}

impl DeliveryError {
    /// The problem a request answers with when its event could not be
    /// delivered in `mode`: 503 `audit-unavailable` in strict mode, 500
    /// `audit-failed` otherwise. The detail never includes the cause.
    pub fn to_problem(self, mode: DeliveryMode) -> Problem {
        match mode {
            DeliveryMode::Strict => Problem::new(ProblemType::AUDIT_UNAVAILABLE)
                .with_detail("the request was not processed because it could not be audited"),
            _ => Problem::new(ProblemType::AUDIT_FAILED)
                .with_detail("the request's audit record could not be written"),
        }
    }
}

type AckSender = oneshot::Sender<Result<Receipt, DeliveryError>>;

/// A batch slot: an accepted event (with its waiter, if any), or a record
/// the pipeline wrote on its own (`audit.dropped`).
enum Slot {
    Accepted(Option<AckSender>),
    /// An in-band `audit.dropped` record for `count` queue-full drops.
    QueueFull {
        count: u64,
    },
    /// The in-band `audit.dropped` record for events lost in failed batches.
    SinkError,
}

// Events travel by value: the channel stores them in its reused blocks, so
// the request path neither allocates a box nor has the writer free it.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Event(AuditEvent, Option<AckSender>),
    Dropped { count: u64 },
    Flush(oneshot::Sender<()>),
    Shutdown,
}

/// Counters of a pipeline, as [`Auditor::stats`] reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Events accepted into the queue.
    pub accepted: u64,
    /// Events written by the sink.
    pub written: u64,
    /// Accepted events whose batch the sink failed to write.
    pub failed: u64,
    /// Events refused because the queue was full.
    pub dropped_full: u64,
    /// Events refused because the pipeline was closed.
    pub dropped_closed: u64,
    /// Accepted events not yet written or failed.
    pub pending: u64,
    /// Records of cancelled blocking and strict requests waiting for queue
    /// space (see [`ResponseFuture`](crate::layer::ResponseFuture)); at most
    /// the queue's capacity.
    pub detached: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    dropped_full: AtomicU64,
    dropped_closed: AtomicU64,
    /// Full-queue drops not yet reported in-band.
    unreported: AtomicU64,
    /// Events in the queue whose sender waits for them (counted before the
    /// event is sent, so never below zero).
    queued_waiters: AtomicI64,
}

struct Shared {
    tx: mpsc::Sender<Msg>,
    /// Ends the writer's linger early: signalled by senders that wait for
    /// their event, and when enough events wait (`Writer::wake_at`).
    nudge: tokio::sync::Notify,
    /// Queue capacity minus `Writer::wake_at`: below this much free space
    /// best-effort senders end the linger too.
    nudge_below: usize,
    redactor: Redactor,
    observer: Arc<Observer>,
    counters: Counters,
    /// One permit per record of [`Auditor::record_detached`] that may wait
    /// for queue space (as many as the queue holds); shutdown takes them
    /// all back, which lets the waiting ones in before it closes the queue.
    detached: Arc<tokio::sync::Semaphore>,
    /// The permits of `detached`.
    detached_permits: u32,
}

/// Records audit events; cheap to clone. See the [module documentation](self).
#[derive(Clone)]
pub struct Auditor {
    shared: Arc<Shared>,
}

impl fmt::Debug for Auditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auditor")
            .field("observer", &self.shared.observer)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Auditor {
    /// The counters of the pipeline.
    pub fn stats(&self) -> PipelineStats {
        let c = &self.shared.counters;
        // Written and failed first: an event counted as accepted and then
        // written between the loads must not show more written than accepted.
        let written = c.written.load(Ordering::Acquire);
        let failed = c.failed.load(Ordering::Acquire);
        let accepted = c.accepted.load(Ordering::Acquire);
        PipelineStats {
            accepted,
            written,
            failed,
            dropped_full: c.dropped_full.load(Ordering::Acquire),
            dropped_closed: c.dropped_closed.load(Ordering::Acquire),
            pending: accepted.saturating_sub(written + failed),
            detached: u64::from(self.shared.detached_permits)
                .saturating_sub(self.shared.detached.available_permits() as u64),
        }
    }

    /// The observer filled into events that have none.
    pub fn observer(&self) -> &Arc<Observer> {
        &self.shared.observer
    }

    /// Redacts the event's details and escapes the terminal controls that
    /// the canonical form keeps literal. The writer fills in the observer,
    /// so that request threads do not share the observer's reference count.
    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        crate::event::prepare(&self.shared.redactor, event)
    }

    fn report_drops(&self) {
        let c = &self.shared.counters;
        if c.unreported.load(Ordering::Relaxed) == 0 {
            return;
        }
        let count = c.unreported.swap(0, Ordering::AcqRel);
        if count > 0 && self.shared.tx.try_send(Msg::Dropped { count }).is_err() {
            c.unreported.fetch_add(count, Ordering::AcqRel);
        }
    }

    fn refused(&self, full: bool) -> DeliveryError {
        let c = &self.shared.counters;
        if full {
            c.dropped_full.fetch_add(1, Ordering::AcqRel);
            c.unreported.fetch_add(1, Ordering::AcqRel);
            metrics::counter!("guardrails_audit_dropped_total", "reason" => "queue_full")
                .increment(1);
            DeliveryError::QueueFull
        } else {
            c.dropped_closed.fetch_add(1, Ordering::AcqRel);
            metrics::counter!("guardrails_audit_dropped_total", "reason" => "closed").increment(1);
            DeliveryError::Closed
        }
    }

    // The refused message comes back by value, as `try_send` returns it.
    #[allow(clippy::result_large_err)]
    fn try_enqueue(&self, event: AuditEvent, ack: Option<AckSender>) -> Result<(), (Msg, bool)> {
        self.report_drops();
        let waits = ack.is_some();
        // A slot first, then the counts, then the event: the writer never
        // sees an event that is not counted yet.
        match self.shared.tx.try_reserve() {
            Ok(slot) => {
                self.count_accepted(waits);
                slot.send(Msg::Event(event, ack));
                if waits || self.shared.tx.capacity() < self.shared.nudge_below {
                    self.shared.nudge.notify_one();
                }
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err((Msg::Event(event, ack), true)),
            Err(mpsc::error::TrySendError::Closed(())) => Err((Msg::Event(event, ack), false)),
        }
    }

    /// Counts an event about to be sent: accepted, and a waiter that ends
    /// the writer's linger when its sender `waits` for it.
    fn count_accepted(&self, waits: bool) {
        let c = &self.shared.counters;
        c.accepted.fetch_add(1, Ordering::AcqRel);
        if waits {
            c.queued_waiters.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Records `event` best-effort: never waits.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::QueueFull`] or [`DeliveryError::Closed`] when the
    /// event was dropped (and counted), [`DeliveryError::ReservedAction`]
    /// for an action in the library's own `audit.` namespace. A later sink
    /// failure is counted, not reported here.
    pub fn record(&self, event: AuditEvent) -> Result<(), DeliveryError> {
        if event.has_reserved_action() {
            return Err(DeliveryError::ReservedAction);
        }
        self.try_enqueue(self.prepare(event), None)
            .map_err(|(_, full)| self.refused(full))
    }

    /// Records `event` without making the caller wait, and when the queue is
    /// full, waits for space in a task of the current Tokio runtime rather
    /// than dropping it: for the records of blocking and strict requests
    /// that nothing can wait for any more (a cancelled request, the record
    /// of a 500 that replaced a response). At most as many wait as the
    /// queue holds ([`PipelineStats::detached`]); beyond that, without a
    /// runtime, or when the task is dropped first, the record is a counted
    /// full-queue drop; when the pipeline closes while it waits, a counted
    /// refusal (shutdown lets the waiting ones in first).
    pub(crate) fn record_detached(&self, event: AuditEvent) {
        match self.try_enqueue(self.prepare(event), None) {
            Ok(()) => {}
            Err((msg, true)) => {
                let send = self.clone().send_when_room(msg, false);
                self.detach(Box::pin(async move {
                    let _ = send.await;
                }));
            }
            Err((_, false)) => {
                let _ = self.refused(false);
            }
        }
    }

    /// Sends `msg` once the queue has room, and counts it: accepted (and,
    /// when its sender `waits` for it, a waiter that ends the writer's
    /// linger), or refused when the pipeline closed. Given up first (its
    /// future dropped), it is a counted full-queue drop ([`Unsent`]).
    /// The event is counted as given up from this call on, not from the
    /// future's first poll: a future dropped unpolled counts too.
    fn send_when_room(
        self,
        msg: Msg,
        waits: bool,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send + Sync + 'static {
        let mut unsent = Unsent {
            auditor: self,
            waiting: true,
        };
        async move {
            let slot = unsent.auditor.shared.tx.reserve().await;
            unsent.waiting = false;
            let this = &unsent.auditor;
            let Ok(slot) = slot else {
                return Err(this.refused(false));
            };
            this.count_accepted(waits);
            slot.send(msg);
            if waits {
                this.shared.nudge.notify_one();
            }
            Ok(())
        }
    }

    /// Runs `wait` (a send waiting for queue space) in a task of the current
    /// runtime, counted in `detached`, unless as many wait as the queue
    /// holds or there is no runtime: it is then dropped, which counts its
    /// record as a full-queue drop.
    fn detach(&self, wait: Pin<Box<dyn Future<Output = ()> + Send>>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // No permit (all taken, or closed by shutdown): dropped and counted.
        let Ok(permit) = Arc::clone(&self.shared.detached).try_acquire_owned() else {
            return;
        };
        runtime.spawn(async move {
            wait.await;
            drop(permit);
        });
    }

    /// Records `event` and waits until it is durably written (group commit).
    /// Waits for queue space when the queue is full.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Closed`] when the pipeline is shut down,
    /// [`DeliveryError::WriteFailed`] when the sink failed,
    /// [`DeliveryError::NotDurable`] when the sink writes without making the
    /// write durable.
    pub fn record_durable(&self, event: AuditEvent) -> Delivery {
        self.deliver(event, DeliveryMode::Blocking)
    }

    /// Records `event` in `mode`: best effort resolves at once, blocking and
    /// strict resolve when the event is durable.
    pub fn deliver(&self, event: AuditEvent, mode: DeliveryMode) -> Delivery {
        if event.has_reserved_action() {
            return Delivery::done(Err(DeliveryError::ReservedAction));
        }
        let event = self.prepare(event);
        if mode == DeliveryMode::BestEffort {
            let result = self
                .try_enqueue(event, None)
                .map(|()| Receipt { seq: None })
                .map_err(|(_, full)| self.refused(full));
            return Delivery::done(result);
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        match self.try_enqueue(event, Some(ack_tx)) {
            Ok(()) => Delivery {
                state: DeliveryState::Waiting(ack_rx),
                deadline: None,
            },
            Err((msg, true)) => {
                // Full: wait for space (the slow path, boxed once).
                let send = self.clone().send_when_room(msg, true);
                Delivery {
                    deadline: None,
                    state: DeliveryState::Sending(Box::new((
                        self.clone(),
                        Box::pin(async move { send.await.map(|()| ack_rx) }),
                    ))),
                }
            }
            Err((_, false)) => Delivery::done(Err(self.refused(false))),
        }
    }

    /// Waits until every event accepted before this call has been handed to
    /// the sink (written or failed).
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Closed`] when the pipeline is shut down.
    pub async fn flush(&self) -> Result<(), DeliveryError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .tx
            .send(Msg::Flush(tx))
            .await
            .map_err(|_| DeliveryError::Closed)?;
        rx.await.map_err(|_| DeliveryError::Closed)
    }
}

/// An event waiting for queue space. Given up before the queue took it (the
/// delivery timed out or was dropped), it counts as a full-queue drop, so it
/// is reported in-band like any other.
struct Unsent {
    auditor: Auditor,
    waiting: bool,
}

impl Drop for Unsent {
    fn drop(&mut self) {
        if self.waiting {
            let _ = self.auditor.refused(true);
        }
    }
}

type SendFuture = Pin<
    Box<
        dyn Future<
                Output = Result<oneshot::Receiver<Result<Receipt, DeliveryError>>, DeliveryError>,
            > + Send
            + Sync,
    >,
>;

enum DeliveryState {
    Done(Option<Result<Receipt, DeliveryError>>),
    Waiting(oneshot::Receiver<Result<Receipt, DeliveryError>>),
    /// Waiting for queue space (with the auditor, to detach it; boxed, as
    /// this slow path is, to keep every delivery small).
    Sending(Box<(Auditor, SendFuture)>),
}

/// Resolves when an event is delivered as its mode promises.
#[must_use = "a durable delivery is only known when this future resolves"]
pub struct Delivery {
    state: DeliveryState,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            DeliveryState::Done(_) => "done",
            DeliveryState::Waiting(_) => "waiting",
            DeliveryState::Sending(..) => "sending",
        };
        f.debug_struct("Delivery").field("state", &state).finish()
    }
}

impl Delivery {
    fn done(result: Result<Receipt, DeliveryError>) -> Self {
        Self {
            state: DeliveryState::Done(Some(result)),
            deadline: None,
        }
    }

    /// Lets an event still waiting for queue space go on waiting without
    /// its waiter (the request that waited was cancelled or gave up), as
    /// [`Auditor::record_detached`] does; an event the queue took stays
    /// queued. The delivery then resolves as closed.
    pub(crate) fn detach(&mut self) {
        if !matches!(self.state, DeliveryState::Sending(..)) {
            return;
        }
        let DeliveryState::Sending(sending) =
            std::mem::replace(&mut self.state, DeliveryState::Done(None))
        else {
            return;
        };
        let (auditor, send) = *sending;
        auditor.detach(Box::pin(async move {
            let _ = send.await;
        }));
    }

    /// Gives up after `limit` with [`DeliveryError::TimedOut`] (a stuck disk
    /// must not hold requests forever). An event the queue took stays queued
    /// and may still be written later; one still waiting for queue space is
    /// dropped and counted (and reported in-band) as a full-queue drop.
    /// Needs a Tokio runtime with timers enabled.
    pub fn timeout(mut self, limit: Duration) -> Self {
        if !matches!(self.state, DeliveryState::Done(_)) {
            self.deadline = Some(Box::pin(tokio::time::sleep(limit)));
        }
        self
    }
}

impl Future for Delivery {
    type Output = Result<Receipt, DeliveryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = self.as_mut().poll_state(cx);
        if polled.is_pending()
            && let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(DeliveryError::TimedOut));
        }
        polled
    }
}

impl Delivery {
    fn poll_state(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Receipt, DeliveryError>> {
        loop {
            match &mut self.state {
                DeliveryState::Done(result) => {
                    return Poll::Ready(result.take().unwrap_or(Err(DeliveryError::Closed)));
                }
                DeliveryState::Waiting(rx) => {
                    return Pin::new(rx)
                        .poll(cx)
                        .map(|r| r.unwrap_or(Err(DeliveryError::Closed)));
                }
                DeliveryState::Sending(sending) => match sending.1.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(rx)) => self.state = DeliveryState::Waiting(rx),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                },
            }
        }
    }
}

/// What a shutdown achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Events written over the pipeline's life.
    pub written: u64,
    /// Accepted events the sink failed to write.
    pub failed: u64,
    /// Events refused (queue full or closed).
    pub dropped: u64,
    /// Accepted events neither written nor failed when the wait ended.
    pub unflushed: u64,
    /// Whether the wait ended by the time limit.
    pub timed_out: bool,
    /// Whether the sink was closed cleanly (final record and checkpoint).
    pub sink_closed: bool,
}

impl ShutdownReport {
    /// Every accepted event was written, and the sink closed cleanly.
    pub fn is_complete(&self) -> bool {
        self.unflushed == 0 && self.failed == 0 && !self.timed_out && self.sink_closed
    }
}

/// Keeps the writer running; shut it down with [`AuditGuard::shutdown`].
#[must_use = "dropping the guard shuts the audit pipeline down; keep it until the server stops"]
pub struct AuditGuard {
    auditor: Auditor,
    done: Option<oneshot::Receiver<bool>>,
    thread: Option<JoinHandle<()>>,
    shut: AtomicBool,
}

impl fmt::Debug for AuditGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditGuard")
            .field("auditor", &self.auditor)
            .finish_non_exhaustive()
    }
}

impl AuditGuard {
    /// An [`Auditor`] of this pipeline.
    pub fn auditor(&self) -> Auditor {
        self.auditor.clone()
    }

    fn report(&self, timed_out: bool, sink_closed: bool) -> ShutdownReport {
        let s = self.auditor.stats();
        ShutdownReport {
            written: s.written,
            failed: s.failed,
            dropped: s.dropped_full + s.dropped_closed,
            unflushed: s.pending,
            timed_out,
            sink_closed,
        }
    }

    /// Closes the queue, writes every accepted event, closes the sink, and
    /// waits at most `timeout`. The records of cancelled blocking and strict
    /// requests that were still waiting for queue space are let in first.
    pub async fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.shut.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + timeout;
        // Records that wait for queue space on their own (cancelled blocking
        // requests) are let in first: the writer makes room meanwhile. Once
        // all their permits are back, no other may start waiting.
        let shared = &self.auditor.shared;
        let all_back = tokio::time::timeout_at(
            deadline,
            shared.detached.acquire_many(shared.detached_permits),
        )
        .await;
        shared.detached.close();
        drop(all_back);
        let sent =
            tokio::time::timeout_at(deadline, self.auditor.shared.tx.send(Msg::Shutdown)).await;
        let mut closed = false;
        let mut timed_out = sent.is_err();
        if let (Ok(Ok(())), Some(done)) = (sent, self.done.take()) {
            match tokio::time::timeout_at(deadline, done).await {
                Ok(result) => closed = result.unwrap_or(false),
                Err(_) => timed_out = true,
            }
        }
        if !timed_out && let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let report = self.report(timed_out, closed);
        log_report(&report);
        report
    }
}

fn log_report(report: &ShutdownReport) {
    if report.is_complete() {
        tracing::info!(target: "audit", written = report.written, dropped = report.dropped, "audit pipeline shut down");
    } else {
        tracing::error!(
            target: "audit",
            written = report.written,
            failed = report.failed,
            dropped = report.dropped,
            unflushed = report.unflushed,
            timed_out = report.timed_out,
            sink_closed = report.sink_closed,
            "audit pipeline shut down with events not flushed"
        );
    }
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        if self.shut.load(Ordering::Acquire) {
            return;
        }
        // A full queue refuses the request at first: retry until the writer
        // made room (it drains the queue meanwhile), within the bound.
        let mut asked = self.auditor.shared.tx.try_send(Msg::Shutdown).is_ok();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut closed = false;
        let mut finished = false;
        while Instant::now() < deadline {
            if !asked {
                asked = match self.auditor.shared.tx.try_send(Msg::Shutdown) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => false,
                    // Already closed: the writer is finishing.
                    Err(mpsc::error::TrySendError::Closed(_)) => true,
                };
            }
            if let Some(done) = self.done.as_mut() {
                match done.try_recv() {
                    Ok(c) => {
                        closed = c;
                        finished = true;
                        break;
                    }
                    Err(oneshot::error::TryRecvError::Closed) => {
                        finished = true;
                        break;
                    }
                    Err(oneshot::error::TryRecvError::Empty) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if finished && let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        log_report(&self.report(!finished, closed));
    }
}

/// Configures and starts a pipeline.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuditPipelineBuilder {
    capacity: usize,
    max_batch: usize,
    tick: Duration,
    linger: Duration,
    max_linger: Duration,
    observer: Observer,
    redactor: Redactor,
}

/// The pipeline entry point; see the [module documentation](self).
#[derive(Debug)]
pub struct AuditPipeline {
    _private: (),
}

impl AuditPipeline {
    /// A pipeline configuration: queue of 8192 events, batches of up to 4096,
    /// a linger of 1 ms, a maintenance tick every second, default redaction, observer
    /// `guardrails` with this crate's version and the host name.
    pub fn builder() -> AuditPipelineBuilder {
        AuditPipelineBuilder {
            capacity: 8192,
            max_batch: 4096,
            tick: Duration::from_secs(1),
            linger: Duration::from_millis(1),
            max_linger: Duration::from_millis(10),
            observer: Observer::new("guardrails", env!("CARGO_PKG_VERSION"), default_instance()),
            redactor: Redactor::default(),
        }
    }
}

fn default_instance() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

impl AuditPipelineBuilder {
    /// The queue capacity (at least 1).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The largest batch handed to the sink (at least 1).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// How long the writer waits after a batch that emptied the queue before
    /// it takes the next one (default 1 ms; zero disables it). Lingering
    /// lets events gather into batches without waking the writer for each
    /// one, which keeps the request path cheap under load; it adds at most
    /// this much to the wait of `Blocking` and `Strict` requests.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// How long best-effort events may wait in the queue for a larger batch
    /// while no `Blocking` or `Strict` sender waits and fewer than a batch
    /// (or half the queue, if smaller) are queued (default 10 ms; at least
    /// the linger). Bounds how stale the file can be under best-effort load
    /// and how many `fsync`s per second it costs.
    pub fn max_linger(mut self, max_linger: Duration) -> Self {
        self.max_linger = max_linger;
        self
    }

    /// How often the sink's maintenance (`tick`) runs.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick.max(Duration::from_millis(1));
        self
    }

    /// The observer recorded in events.
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// The redaction of detail keys.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// Starts the writer thread with `sink`.
    ///
    /// # Errors
    ///
    /// When the thread or its runtime cannot be created.
    pub fn spawn<S: AuditSink>(self, sink: S) -> std::io::Result<(Auditor, AuditGuard)> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let detached_permits = u32::try_from(self.capacity).unwrap_or(u32::MAX);
        // Lingering ends once this many events wait: a full batch, or half
        // the queue when the queue is smaller than two batches (so that
        // best-effort senders do not meet a full queue while the writer
        // lingers).
        let wake_at = self.max_batch.min(self.capacity.div_ceil(2)).max(1);
        let shared = Arc::new(Shared {
            tx,
            nudge: tokio::sync::Notify::new(),
            nudge_below: self.capacity - wake_at,
            redactor: self.redactor,
            observer: Arc::new(self.observer),
            counters: Counters::default(),
            detached: Arc::new(tokio::sync::Semaphore::new(detached_permits as usize)),
            detached_permits,
        });
        let auditor = Auditor {
            shared: Arc::clone(&shared),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (done_tx, done_rx) = oneshot::channel();
        let writer = Writer {
            rx,
            sink,
            shared,
            max_batch: self.max_batch,
            tick: self.tick,
            linger: self.linger,
            max_linger: self.max_linger.max(self.linger),
            wake_at,
            next_seq: None,
            lost: 0,
            said_not_durable: false,
        };
        let thread = std::thread::Builder::new()
            .name("guardrails-audit-writer".into())
            .spawn(move || {
                let closed = runtime.block_on(writer.run());
                let _ = done_tx.send(closed);
            })?;
        let guard = AuditGuard {
            auditor: auditor.clone(),
            done: Some(done_rx),
            thread: Some(thread),
            shut: AtomicBool::new(false),
        };
        Ok((auditor, guard))
    }
}

struct Writer<S> {
    rx: mpsc::Receiver<Msg>,
    sink: S,
    shared: Arc<Shared>,
    max_batch: usize,
    tick: Duration,
    linger: Duration,
    max_linger: Duration,
    /// Queued events that end a linger.
    wake_at: usize,
    next_seq: Option<u64>,
    /// Accepted events of failed batches not yet reported in-band.
    lost: u64,
    /// Whether the sink's first non-durable write with waiters was logged.
    said_not_durable: bool,
}

impl<S: AuditSink> Writer<S> {
    /// Runs until shut down; returns whether the sink closed cleanly.
    async fn run(mut self) -> bool {
        let mut events: Vec<AuditEvent> = Vec::with_capacity(self.max_batch);
        let mut acks: Vec<Slot> = Vec::with_capacity(self.max_batch);
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        let mut last_tick = Instant::now();
        let mut shutting_down = false;
        loop {
            let first = match tokio::time::timeout(self.tick, self.rx.recv()).await {
                Ok(Some(msg)) => Some(msg),
                Ok(None) => break,
                Err(_) => None,
            };
            if let Some(msg) = first {
                shutting_down |= self.take(msg, &mut events, &mut acks, &mut flushes);
                while events.len() < self.max_batch {
                    match self.rx.try_recv() {
                        Ok(msg) => {
                            shutting_down |= self.take(msg, &mut events, &mut acks, &mut flushes);
                        }
                        Err(_) => break,
                    }
                }
                if !events.is_empty() {
                    self.write(&mut events, &mut acks).await;
                }
                for flush in flushes.drain(..) {
                    let _ = flush.send(());
                }
                if shutting_down {
                    // Refuse new events; drain what was accepted before.
                    self.rx.close();
                } else if !self.linger.is_zero() && self.rx.len() < self.wake_at {
                    self.linger().await;
                }
            }
            if last_tick.elapsed() >= self.tick {
                last_tick = Instant::now();
                if self.lost > 0 {
                    // Report losses as soon as the sink works again, even
                    // when no new event comes.
                    self.write(&mut events, &mut acks).await;
                }
                if let Err(error) = self.sink.tick().await {
                    self.sink_error(&error);
                }
            }
        }
        // The queue is closed and empty: report unreported drops, close the sink.
        let count = self.shared.counters.unreported.swap(0, Ordering::AcqRel);
        if count > 0 {
            events.push(self.dropped_event(count, "queue_full"));
            acks.push(Slot::QueueFull { count });
        }
        if !events.is_empty() || self.lost > 0 {
            self.write(&mut events, &mut acks).await;
        }
        metrics::gauge!("guardrails_audit_queue_depth").set(0.0);
        match self.sink.close().await {
            Ok(()) => true,
            Err(error) => {
                self.sink_error(&error);
                false
            }
        }
    }

    /// Lets the next batch gather without a wake-up per event: while the
    /// writer is not parked on the queue, senders do not pay for waking it.
    /// Waits `linger` (group commit for waiting senders), then, while no
    /// sender waits and no full batch is queued, up to `max_linger` in all
    /// (fewer, larger batches and syncs for best-effort events). A waiting
    /// sender or a full batch ends it through `nudge`, so the writer wakes
    /// at most twice per batch instead of polling.
    async fn linger(&self) {
        let until = tokio::time::Instant::now() + self.max_linger;
        tokio::time::sleep(self.linger).await;
        loop {
            if self.shared.counters.queued_waiters.load(Ordering::Acquire) > 0
                || self.rx.len() >= self.wake_at
                || tokio::time::Instant::now() >= until
            {
                return;
            }
            // A stale permit (from a sender already taken) only costs one
            // more check.
            if tokio::time::timeout_at(until, self.shared.nudge.notified())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// The in-band record of `count` events lost for `reason`
    /// (`queue_full` or `sink_error`).
    fn dropped_event(&self, count: u64, reason: &'static str) -> AuditEvent {
        let mut event = AuditEvent::new("audit.dropped", Category::System)
            .with_outcome(Outcome::Failure)
            .with_reason(reason)
            .with_detail("count", count)
            .with_detail(
                "first_seq",
                self.next_seq
                    .map_or(serde_json::Value::Null, serde_json::Value::from),
            );
        event.observer = Some(Arc::clone(&self.shared.observer));
        event
    }

    /// Takes one message; returns whether it asks for shutdown.
    fn take(
        &self,
        msg: Msg,
        events: &mut Vec<AuditEvent>,
        acks: &mut Vec<Slot>,
        flushes: &mut Vec<oneshot::Sender<()>>,
    ) -> bool {
        match msg {
            Msg::Event(mut event, ack) => {
                if event.observer.is_none() {
                    event.observer = Some(Arc::clone(&self.shared.observer));
                }
                if ack.is_some() {
                    self.shared
                        .counters
                        .queued_waiters
                        .fetch_sub(1, Ordering::AcqRel);
                }
                events.push(event);
                acks.push(Slot::Accepted(ack));
            }
            Msg::Dropped { count } => {
                events.push(self.dropped_event(count, "queue_full"));
                acks.push(Slot::QueueFull { count });
            }
            Msg::Flush(tx) => flushes.push(tx),
            Msg::Shutdown => return true,
        }
        false
    }

    fn sink_error(&self, error: &crate::sink::SinkError) {
        metrics::counter!("guardrails_audit_sink_errors_total", "sink" => self.sink.name())
            .increment(1);
        tracing::error!(target: "audit", sink = self.sink.name(), %error, "audit sink failed");
    }

    async fn write(&mut self, events: &mut Vec<AuditEvent>, acks: &mut Vec<Slot>) {
        if self.lost > 0 {
            // Events of earlier failed batches: say so in-band, first.
            events.insert(0, self.dropped_event(self.lost, "sink_error"));
            acks.insert(0, Slot::SinkError);
        }
        let started = Instant::now();
        let result = self.sink.write_batch(events).await;
        metrics::histogram!("guardrails_audit_write_seconds", "sink" => self.sink.name())
            .record(started.elapsed().as_secs_f64());
        // In-band records (audit.dropped) were never counted as accepted.
        let counted = acks
            .iter()
            .filter(|slot| matches!(slot, Slot::Accepted(_)))
            .count() as u64;
        let c = &self.shared.counters;
        match result {
            Ok(receipt) => {
                let mut by_outcome = [0u64; 4];
                for event in events.iter() {
                    by_outcome[match event.outcome() {
                        Outcome::Success => 0,
                        Outcome::Failure => 1,
                        Outcome::Denied => 2,
                        _ => 3,
                    }] += 1;
                }
                for (outcome, n) in [
                    Outcome::Success,
                    Outcome::Failure,
                    Outcome::Denied,
                    Outcome::Unknown,
                ]
                .into_iter()
                .zip(by_outcome)
                {
                    if n > 0 {
                        metrics::counter!("guardrails_audit_events_total", "outcome" => outcome.as_str())
                            .increment(n);
                    }
                }
                self.next_seq = receipt.first_seq.map(|s| s + events.len() as u64);
                self.lost = 0;
                c.written.fetch_add(counted, Ordering::AcqRel);
                let waiters = acks
                    .iter()
                    .any(|slot| matches!(slot, Slot::Accepted(Some(_))));
                if waiters && !receipt.durable && !self.said_not_durable {
                    self.said_not_durable = true;
                    tracing::error!(
                        target: "audit",
                        sink = self.sink.name(),
                        "the audit sink writes without making records durable: blocking and \
                         strict events fail (enable fsync, or synchronous_commit)"
                    );
                }
                for (i, slot) in acks.drain(..).enumerate() {
                    if let Slot::Accepted(Some(ack)) = slot {
                        let _ = ack.send(if receipt.durable {
                            Ok(Receipt {
                                seq: receipt.first_seq.map(|s| s + i as u64),
                            })
                        } else {
                            Err(DeliveryError::NotDurable)
                        });
                    }
                }
            }
            Err(error) => {
                self.sink_error(&error);
                c.failed.fetch_add(counted, Ordering::AcqRel);
                metrics::counter!("guardrails_audit_dropped_total", "reason" => "sink_error")
                    .increment(counted);
                // Reported in-band by the next batch the sink accepts (the
                // count of a failed `sink_error` record is still in `lost`).
                self.lost += counted;
                for slot in acks.drain(..) {
                    match slot {
                        Slot::Accepted(Some(ack)) => {
                            let _ = ack.send(Err(DeliveryError::WriteFailed));
                        }
                        Slot::QueueFull { count } => {
                            c.unreported.fetch_add(count, Ordering::AcqRel);
                        }
                        Slot::Accepted(None) | Slot::SinkError => {}
                    }
                }
            }
        }
        events.clear();
        let depth = c
            .accepted
            .load(Ordering::Acquire)
            .saturating_sub(c.written.load(Ordering::Acquire) + c.failed.load(Ordering::Acquire));
        metrics::gauge!("guardrails_audit_queue_depth").set(depth as f64);
    }
}
