//! Where audit events go: the [`AuditSink`] trait and the built-in sinks.
//!
//! A sink receives whole batches from the pipeline's background writer, one
//! call (and at most one boxed future) per batch, never per event. It returns
//! once the batch is written, saying in its [`WriteReceipt`] whether the
//! batch is durable; the pipeline then acknowledges the waiting requests
//! (group commit), or fails them with
//! [`DeliveryError::NotDurable`](crate::DeliveryError::NotDurable) when it is
//! not.
//!
//! - [`file::JsonLinesSink`]: the embedded default, an append-only,
//!   hash-chained JSON-lines file with rotation and signed checkpoints.
//! - [`TracingSink`]: one `tracing` event per record, target `audit`.
//! - [`MemorySink`]: keeps records in memory, for tests; can be told to fail.
//!
//! Implementing a sink (a database, a queue) means implementing
//! [`AuditSink::write_batch`]: write all events of the batch, in order, or
//! fail the whole batch.
//!
//! ```
//! use guardrails_audit::sink::{AuditSink, SinkError, SinkFuture, WriteReceipt};
//! use guardrails_audit::AuditEvent;
//!
//! #[derive(Debug, Default)]
//! struct CountingSink(u64);
//!
//! impl AuditSink for CountingSink {
//!     fn name(&self) -> &'static str { "counting" }
//!     fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
//!         Box::pin(async move {
//!             let first = self.0;
//!             self.0 += batch.len() as u64;
//!             Ok(WriteReceipt { first_seq: Some(first), durable: false })
//!         })
//!     }
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use crate::AuditEvent;

pub mod file;
mod page_cache;
#[cfg(feature = "postgres")]
pub mod postgres;

/// The future a sink returns: boxed once per batch.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SinkError>> + Send + 'a>>;

/// What a sink reports for a written batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteReceipt {
    /// The sequence number of the batch's first event, when the sink numbers
    /// its records (event `i` of the batch has `first_seq + i`).
    pub first_seq: Option<u64>,
    /// Whether the batch is on stable storage (`fsync`ed or committed).
    pub durable: bool,
}

/// A sink could not write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// An I/O operation failed.
    #[error("audit sink I/O failed during {operation}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, `rotate`…).
        operation: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record has no canonical form (a non-integer number).
    #[error(transparent)]
    NotCanonical(#[from] crate::jcs::NotCanonical),
    /// An existing file cannot be continued (its last record is not a
    /// chain record, or uses another algorithm).
    #[error("audit file cannot be continued: {0}")]
    Incompatible(&'static str),
    /// The file's last record does not verify with the sink's chain key:
    /// the trail was chained with another key (a key change needs the
    /// previous one, [`JsonLinesBuilder::previous_key`]) or its last record
    /// was altered. Verify the trail before anything else.
    ///
    /// [`JsonLinesBuilder::previous_key`]: crate::sink::file::JsonLinesBuilder::previous_key
    #[error(
        "audit file cannot be continued: the last record does not verify with this key (if this \
         start changes the key, give the previous one, for this start only; otherwise verify the \
         trail first)"
    )]
    WrongKey,
    /// The trail does not hold the records its checkpoint file names: it
    /// was deleted, emptied, cut or replaced after those records were
    /// durable. A crash never does that (a checkpoint is written only once
    /// the records it names are on disk), so the sink refuses to go on
    /// rather than record the loss as a crash, or start a new chain over it.
    #[error(
        "audit file does not hold its checkpointed records ({0}); restore it from a copy, \
         or move the checkpoint file aside (keep it as evidence) to start a new trail"
    )]
    BehindCheckpoints(String),
    /// The chain or checkpoint HMAC key is shorter than
    /// [`MIN_KEY_BYTES`](crate::chain::MIN_KEY_BYTES) (which key: `chain`
    /// or `checkpoint`).
    #[error("the audit {0} key is shorter than 16 bytes")]
    ShortKey(&'static str),
    /// The sink refused the batch (test sinks, closed sinks).
    #[error("audit sink unavailable: {0}")]
    Unavailable(&'static str),
    /// Any other failure of a custom sink.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl SinkError {
    pub(crate) fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { operation, source }
    }
}

/// A destination for audit events; see the [module documentation](self).
pub trait AuditSink: Send + 'static {
    /// A short, constant name used as a metric label (`file`, `tracing`).
    fn name(&self) -> &'static str;

    /// Writes every event of `batch`, in order.
    ///
    /// # Errors
    ///
    /// Any failure to write the whole batch; the pipeline then answers every
    /// waiter of the batch with an error.
    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt>;

    /// Periodic maintenance (time-based rotation, checkpoints), called at
    /// least every pipeline tick even when idle.
    ///
    /// # Errors
    ///
    /// A failure of the maintenance; it is counted, not fatal.
    fn tick(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Flushes and closes the sink at shutdown (final checkpoint).
    ///
    /// # Errors
    ///
    /// A failure to close cleanly.
    fn close(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl<S: AuditSink + ?Sized> AuditSink for Box<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
        (**self).write_batch(batch)
    }
    fn tick(&mut self) -> SinkFuture<'_, ()> {
        (**self).tick()
    }
    fn close(&mut self) -> SinkFuture<'_, ()> {
        (**self).close()
    }
}

/// Writes each record as one `tracing` event at INFO, target `audit`, field
/// `record` holding the canonical JSON (so control characters of user input
/// are escaped and cannot forge log lines or drive a terminal).
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink {
    _private: (),
}

impl TracingSink {
    /// The tracing sink.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AuditSink for TracingSink {
    fn name(&self) -> &'static str {
        "tracing"
    }

    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
        let result = batch.iter().try_for_each(|event| {
            let line = crate::jcs::to_vec(&event.to_json())?;
            let line = String::from_utf8_lossy(&line);
            tracing::info!(
                target: "audit",
                action = %event.action(),
                outcome = event.outcome().as_str(),
                record = %line,
                "audit"
            );
            Ok(())
        });
        Box::pin(std::future::ready(result.map(|()| WriteReceipt::default())))
    }
}

#[derive(Debug, Default)]
struct MemoryState {
    events: Vec<AuditEvent>,
    failing: bool,
    closed: bool,
}

/// Keeps every record in memory; for tests. Cloning shares the storage.
///
/// ```
/// use guardrails_audit::sink::MemorySink;
///
/// let sink = MemorySink::new();
/// let view = sink.clone();
/// assert!(view.events().is_empty());
/// view.set_failing(true); // every following batch fails
/// ```
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    state: Arc<Mutex<MemoryState>>,
}

impl MemorySink {
    /// An empty memory sink.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryState) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// A copy of the records written so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.with(|s| s.events.clone())
    }

    /// How many records were written.
    pub fn len(&self) -> usize {
        self.with(|s| s.events.len())
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every following batch fail (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.with(|s| s.failing = failing);
    }

    /// Whether the pipeline closed the sink.
    pub fn is_closed(&self) -> bool {
        self.with(|s| s.closed)
    }
}

impl AuditSink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
        let result = self.with(|s| {
            if s.failing {
                return Err(SinkError::Unavailable("memory sink set to fail"));
            }
            let first = s.events.len() as u64;
            s.events.extend_from_slice(batch);
            Ok(WriteReceipt {
                first_seq: Some(first),
                durable: true,
            })
        });
        Box::pin(std::future::ready(result))
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        self.with(|s| s.closed = true);
        Box::pin(std::future::ready(Ok(())))
    }
}
