//! Helpers shared by the audit benches (`mod common;` in `audit.rs` and
//! `audit_postgres.rs`, by path in `examples/saas-load-server.rs`), so all
//! measure the same event and the same discarding sink.
// Each includer uses part of it.
#![allow(dead_code)]

use guardrails_audit::sink::{AuditSink, SinkFuture, WriteReceipt};
use guardrails_audit::{AuditEvent, Category, Outcome, RequestInfo, Source};

/// A sink that accepts and discards every batch: what remains is the
/// pipeline's own cost.
pub(crate) struct NullSink;

impl AuditSink for NullSink {
    fn name(&self) -> &'static str {
        "null"
    }

    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
        std::hint::black_box(batch.len());
        Box::pin(std::future::ready(Ok(WriteReceipt::default())))
    }
}

/// The audit event of one typical API request (`GET` of an invoice), made
/// unique by `i`.
pub(crate) fn request_event(i: u64) -> AuditEvent {
    AuditEvent::new("http.request", Category::DataRead)
        .with_outcome(Outcome::Success)
        .with_request(RequestInfo {
            id: Some(format!("0193c3a0-7c1e-7b2a-9d3e-{i:012}").into()),
            method: Some("GET".into()),
            route: Some("/v1/tenants/{tenant}/invoices/{id}".into()),
            path: Some(format!("/v1/tenants/acme/invoices/inv_{i}").into()),
            status: Some(200),
            duration_us: Some(187),
        })
        .with_source(Source {
            ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) bench".into()),
        })
}
