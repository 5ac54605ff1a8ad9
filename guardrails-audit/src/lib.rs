//! A tamper-evident audit trail for tower services.
//!
//! - [`AuditEvent`]: who did what, to which resource, when, from where, with
//!   which outcome — schema `guardrails.audit/1`, field mapping to
//!   CADF/OCSF/ECS in [`event`].
//! - [`AuditLayer`]: one event per request, with the route template, the
//!   actor from the [`Principal`](guardrails_core::Principal), the status and
//!   the [`Rejection`](guardrails_core::Rejection) reason, per-route policy
//!   levels and delivery modes.
//! - [`Auditor`]: the handle that records domain events.
//! - [`AuditPipeline`]: a bounded queue and a background writer that batches,
//!   with three delivery modes ([`DeliveryMode`]) whose guarantees are
//!   documented in [`pipeline`], and a graceful, bounded shutdown.
//! - [`sink`]: the [`AuditSink`](sink::AuditSink) trait, and the JSON-lines
//!   file with a SHA-256 / HMAC-SHA-256 hash chain ([`chain`]), rotation,
//!   signed checkpoints, crash recovery and a change of key within the
//!   chain ([`JsonLinesBuilder::previous_key`](sink::file::JsonLinesBuilder::previous_key));
//!   tracing; memory.
//! - [`verify()`]: checks a file and names the first bad `seq` and the kind of
//!   damage; the `guardrails-audit verify` CLI (feature `cli`) wraps it.
//! - PostgreSQL (feature `postgres`): one trail for many instances —
//!   `sink::postgres` (migrations, the chained sink, the transactional
//!   outbox), `verify::verify_postgres`, and `query` for admin pages.
//!
//! # Example
//!
//! ```no_run
//! use guardrails_audit::{AuditLayer, AuditPipeline, DeliveryMode, RoutePolicy};
//! use guardrails_audit::sink::file::JsonLinesSink;
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = JsonLinesSink::builder("var/audit.jsonl").open()?;
//! let (auditor, guard) = AuditPipeline::builder().spawn(sink)?;
//! let layer = AuditLayer::new(auditor)
//!     // Strict on the routes that need it: not on every `DELETE` a client
//!     // may send to any path.
//!     .policy(
//!         RoutePolicy::new()
//!             .method(http::Method::DELETE)
//!             .route("/v1/invoices/{id}")
//!             .mode(DeliveryMode::Strict),
//!     );
//! // let app = axum::Router::new()/* routes */.layer(layer);
//! // ... serve ...
//! let report = guard.shutdown(Duration::from_secs(10)).await;
//! assert!(report.is_complete());
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `axum`: route templates from `MatchedPath`, client addresses from
//!   `ConnectInfo`, and the [`RequestAudit`] extractor.
//! - `cli`: the `guardrails-audit` binary (`verify`, and with `postgres`
//!   also `verify --postgres` and `export`, over TLS with
//!   `postgres-rustls`, plain otherwise).
//! - `postgres`: the PostgreSQL sink, verification and queries
//!   (tokio-postgres; no TLS stack of its own: bring a connector).
//! - `postgres-rustls` (implies `postgres`): `sink::postgres::rustls_connector`,
//!   a TLS connector for the database connections that always verifies the
//!   server certificate and host name (rustls on aws-lc-rs, Mozilla's roots
//!   plus an optional PEM CA file).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod chain;
pub mod event;
pub mod jcs;
pub mod layer;
pub mod pipeline;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod query;
pub mod signing;
pub mod sink;
pub mod verify;

pub use event::{
    Actor, AuditEvent, Category, Observer, Outcome, Redactor, RequestInfo, Source, Stage, Target,
};
#[cfg(feature = "axum")]
pub use layer::RequestAudit;
pub use layer::{
    AuditContext, AuditLayer, AuditService, CapturePrincipalLayer, ClientIp, Level, MatchedRoute,
    RouteFromExtensions, RoutePolicy, RouteResolver, TrustedProxies,
};
pub use pipeline::{
    AuditGuard, AuditPipeline, AuditPipelineBuilder, Auditor, Delivery, DeliveryError,
    DeliveryMode, PipelineStats, Receipt, ShutdownReport,
};
pub use verify::{Damage, DamageKind, VerifyError, VerifyOptions, VerifyReport, verify};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
