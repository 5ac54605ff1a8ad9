//! The core response path: building and serializing a `Problem` into an
//! `http::Response`, against a hand-written baseline that serializes the same
//! document from a plain `#[derive(Serialize)]` struct.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use guardrails_core::{Problem, ProblemType, Violation};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

#[derive(Serialize)]
struct RawViolation<'a> {
    pointer: &'a str,
    detail: &'a str,
    code: &'a str,
}

#[derive(Serialize)]
struct RawProblem<'a> {
    #[serde(rename = "type")]
    type_uri: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: Vec<RawViolation<'a>>,
}

fn raw(violations: &[(&'static str, &'static str, &'static str)]) -> Response<Bytes> {
    let doc = RawProblem {
        type_uri: ProblemType::VALIDATION_FAILED.uri(),
        title: "Validation failed",
        status: 422,
        detail: "the request body is invalid",
        errors: violations
            .iter()
            .map(|&(pointer, code, detail)| RawViolation {
                pointer,
                detail,
                code,
            })
            .collect(),
    };
    let mut response = Response::new(Bytes::from(serde_json::to_vec(&doc).unwrap()));
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn guardrails(violations: &[(&'static str, &'static str, &'static str)]) -> Response<Bytes> {
    Problem::new(ProblemType::VALIDATION_FAILED)
        .with_detail("the request body is invalid")
        .with_violations(
            violations
                .iter()
                .map(|&(pointer, code, detail)| Violation::new(pointer, code, detail)),
        )
        .into_http_response()
}

fn bench_problem(c: &mut Criterion) {
    let three = [
        ("/customer_email", "email", "must be an email address"),
        ("/currency", "pattern", "must be three upper-case letters"),
        ("/lines/0/quantity", "range.max", "must be at most 10000"),
    ];
    let mut group = c.benchmark_group("problem");
    group.bench_function("raw_serde/no_violations", |b| {
        b.iter(|| raw(black_box(&[])));
    });
    group.bench_function("guardrails/no_violations", |b| {
        b.iter(|| guardrails(black_box(&[])));
    });
    group.bench_function("raw_serde/3_violations", |b| {
        b.iter(|| raw(black_box(&three)));
    });
    group.bench_function("guardrails/3_violations", |b| {
        b.iter(|| guardrails(black_box(&three)));
    });
    group.finish();
}

criterion_group!(benches, bench_problem);
criterion_main!(benches);
