//! Criterion benches of the guardrails crates; see `benches/README.md`.
//!
//! Run them all with `cargo bench -p guardrails-benches`, or one with
//! `cargo bench -p guardrails-benches --bench problem`.
