//! Typed, validated request input for tower services.
//!
//! This crate reads a body under limits, checks its media type, deserializes
//! it with JSON pointers for every error, runs garde validation, and answers
//! every failure with one RFC 9457 problem contract.
//!
//! It is being built; see the workspace README for its status.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
