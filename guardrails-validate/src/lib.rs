//! Typed, validated request input for tower services, with one error contract.
//!
//! This crate turns untrusted request input — a JSON body, a query string, a
//! form, path parameters — into a typed value checked by
//! [garde](https://docs.rs/garde), or into one RFC 9457 [`Problem`] that says
//! exactly what is wrong: every violation as `{ pointer, code, detail }`, with
//! an RFC 6901 pointer made of the names the client sent, a stable machine
//! code, and a deterministic order (the document's).
//!
//! | status | problem type | when |
//! |---|---|---|
//! | 400 | `malformed-body` | not JSON, not UTF-8, BOM, too deep, too long, duplicate keys |
//! | 400 | `malformed-request` | query, form or path input that cannot be decoded |
//! | 408 | `request-timeout` | the body did not arrive within the read deadline |
//! | 413 | `payload-too-large` | `Content-Length`, or the streamed body, over the limit |
//! | 415 | `unsupported-media-type` | not `application/json` / `*/*+json`, or not UTF-8 |
//! | 422 | `validation-failed` | type mismatches, missing or unknown fields, garde rules |
//!
//! A type mismatch is a 422, not a 400: the body is well-formed JSON whose
//! content does not fit, which RFC 9110 section 15.5.21 describes as 422.
//!
//! # Layers of the API
//!
//! - [`json`]: the pure core, `bytes + content type + Config + garde context
//!   -> Result<T, Problem>`, for framework authors;
//! - [`body`]: reading an `http_body::Body` under a size limit and a deadline;
//! - [`urlencoded`]: query strings, forms and path parameters, strictly
//!   decoded;
//! - [`value`]: values that did not arrive as JSON (a decoded protobuf
//!   message), checked with the same codes and problem;
//! - [`layer`]: [`ValidateJsonLayer`], a tower layer that validates a route's
//!   JSON body and hands the value on in the request extensions
//!   ([`Validated`]);
//! - [`rewrite`]: [`ProblemJsonLayer`], which turns the framework's plain-text
//!   4xx responses into problems, so the whole API speaks one contract;
//! - `axum` feature: the `Valid<Json<T>>`, `Valid<Query<T>>`,
//!   `Valid<Form<T>>` and `Valid<Path<T>>` extractors;
//! - `tonic` feature: violations as `google.rpc.BadRequest` field violations.
//!
//! # Example
//!
//! ```
//! use garde::Validate;
//! use guardrails_validate::{Config, json};
//! use http::HeaderValue;
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize, Validate)]
//! struct NewUser {
//!     #[garde(length(chars, min = 1, max = 64))]
//!     name: String,
//! }
//!
//! let json = HeaderValue::from_static("application/json");
//! let user: NewUser =
//!     json::from_request_bytes(Some(&json), br#"{"name":"Ada"}"#, &Config::default(), &()).unwrap();
//! assert_eq!(user.name, "Ada");
//!
//! let problem =
//!     json::from_request_bytes::<NewUser>(Some(&json), br#"{"name":"Ada","admin":true}"#, &Config::default(), &())
//!         .unwrap_err();
//! assert_eq!(problem.status(), 422);
//! assert_eq!(problem.violations()[0].pointer, "/admin");
//! assert_eq!(problem.violations()[0].code, "unknown_field");
//! ```
//!
//! # Observability
//!
//! Each rejection answered by a layer or an extractor of this crate counts in
//! the `guardrails_validate_rejections_total{status, code}` counter (the code
//! is a static reason such as `syntax`, `payload_too_large` or
//! `validation_failed`, never a field name or a value), emits a `tracing`
//! event at debug level, and carries a [`guardrails_core::Rejection`] of
//! category `Validation` in the response extensions.
//!
//! # Testing and fuzzing
//!
//! The tests hold a table of hostile inputs (depth 10 000, 100 MB bodies with
//! and without `Content-Length`, slow bodies, duplicate keys, BOM, invalid
//! UTF-8, lone surrogates, NUL, huge numbers…), Nicolas Seriot's
//! JSONTestSuite and property tests. Two cargo-fuzz targets, `core` and
//! `prescan`, live in `fuzz/` (outside the workspace); from that folder:
//!
//! ```text
//! cargo +nightly fuzz run core -- -max_total_time=60
//! ```
//!
//! # Features
//!
//! - `axum`: the extractors in `axum` (module) and `IntoResponse` glue.
//! - `tonic`: `tonic::Status` with `google.rpc.BadRequest` details.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `Problem` is the error contract of every function here; it is only built on
// the rejection path, so its size costs nothing on success.
#![allow(clippy::result_large_err)]

pub mod body;
pub mod codes;
pub mod config;
pub mod json;
pub mod layer;
mod pointer;
mod rejection;
pub mod rewrite;
pub mod scan;
mod schema;
pub mod urlencoded;
pub mod value;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod grpc;

pub use config::{Config, UnknownFields};
pub use guardrails_core::{Problem, ProblemType, Violation};
pub use layer::{OnRejection, ProblemResponse, ValidateJson, ValidateJsonLayer, Validated};
pub use rejection::{reason, rejection_response};
pub use rewrite::{ProblemJson, ProblemJsonLayer};
