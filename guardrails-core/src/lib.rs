//! The shared vocabulary of the guardrails crates.
//!
//! Every guardrail (authentication, validation, audit) answers with the same
//! error contract and reads the same identity, without depending on the others.
//! This crate is that meeting point, and nothing more: types and traits, no I/O.
//!
//! - [`Problem`] is an RFC 9457 problem details object, the body of every
//!   rejection, with a stable [`ProblemType`] per kind of rejection.
//! - [`Principal`] is the verified identity that authentication places in the
//!   request extensions and that audit and handlers read.
//! - [`Rejection`] tells an outer layer *why* an inner guard rejected a request;
//!   guards insert it into the rejection response's extensions.
//! - [`GuardBody`] and [`ResponseFuture`] let a tower middleware answer either
//!   with the inner service's response or with a problem, without boxing.
//! - [`RequestId`] is the request id that guards and audit share.
//! - [`text`] names the characters client text must not carry raw into a log
//!   line, a terminal or a response.
//!
//! # Example
//!
//! ```
//! use guardrails_core::{Problem, ProblemType, Violation};
//!
//! let problem = Problem::new(ProblemType::VALIDATION_FAILED)
//!     .with_detail("the request body has 1 invalid field")
//!     .with_violation(Violation::new("/currency", "pattern", "must be three upper-case letters"));
//!
//! let response = problem.into_http_response::<bytes::Bytes>();
//! assert_eq!(response.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! ```
//!
//! # Features
//!
//! - `axum`: implements `axum_core::response::IntoResponse` for [`Problem`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod body;
pub mod future;
pub mod principal;
pub mod problem;
pub mod rejection;
pub mod request_id;
pub mod text;

pub use body::GuardBody;
pub use future::ResponseFuture;
pub use principal::{AuthMethod, Principal, PrincipalBuilder};
pub use problem::{ExtensionError, PROBLEM_JSON, Problem, ProblemType, Violation};
pub use rejection::{Rejection, RejectionCategory};
pub use request_id::RequestId;
