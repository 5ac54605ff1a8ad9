//! `saas-api`: a small multi-tenant invoices API wired with every guardrail.
//!
//! This is the reference integration of the guardrails crates on axum. The
//! binary (`cargo run -p saas-api`) serves it; the library half exists so
//! that tests can build the same router and server.
//!
//! The contract the app keeps (routes, configuration keys, claims) is
//! described in the workspace README.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod invoices;
pub mod metrics;
pub mod server;
pub mod settings;
