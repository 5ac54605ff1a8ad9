//! Authentication boundaries for tower services.
//!
//! This crate turns a credential (a bearer JWT, an API key) into a verified
//! [`Principal`](guardrails_core::Principal) and enforces authorization
//! boundaries (scopes, roles, tenant) in front of an inner service, answering
//! every rejection with an RFC 9457 problem and an RFC 6750
//! `WWW-Authenticate` header.
//!
//! It is being built; see the workspace README for its status.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
