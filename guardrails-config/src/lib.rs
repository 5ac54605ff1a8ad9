//! Layered, environment-aware, validated configuration.
//!
//! This crate loads the application's configuration from defaults, files,
//! environment variables and secret files, validates it, applies production
//! hardening rules, and keeps secrets out of every output.
//!
//! It is being built; see the workspace README for its status.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
