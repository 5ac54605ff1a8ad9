//! A tamper-evident audit trail for tower services.
//!
//! This crate records one audit event per request and domain events from
//! handlers, delivers them through a bounded pipeline with explicit overflow
//! policies, and writes them to sinks such as a hash-chained JSON-lines file
//! that can be verified.
//!
//! It is being built; see the workspace README for its status.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
