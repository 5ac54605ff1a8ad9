//! Nicolas Seriot's JSONTestSuite (`tests/data/JSONTestSuite`, MIT):
//! every `y_` document is accepted or refused only by a documented policy
//! (never as a syntax error), every `n_` document is a 400, nothing panics or
//! answers 5xx, and the outcome of every `i_` document is pinned in
//! `i_expectations.txt` (regenerate with `GUARDRAILS_BLESS=1`).
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use garde::Validate;
use guardrails_validate::{Config, Problem, json};
use serde::Deserialize;

/// Any JSON value, with no rules.
#[derive(Debug, Deserialize, Validate)]
#[serde(transparent)]
struct Any(
    #[garde(skip)]
    #[allow(dead_code)]
    serde_json::Value,
);

/// Refusals that are policy, not syntax: the document is valid JSON that
/// this crate refuses by default (duplicate keys, `\u0000`, lone surrogates)
/// or that breaks a structural limit.
const POLICY_CODES: &[&str] = &[
    "duplicate_key",
    "nul_character",
    "lone_surrogate",
    "depth_exceeded",
    "number_too_long",
    "string_too_long",
    "too_many_items",
    "too_many_members",
];

fn outcome(bytes: &[u8]) -> Result<(), Problem> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        json::from_slice::<Any>(bytes, &Config::default(), &())
    }));
    let result = result.expect("the core must never panic");
    if let Err(problem) = &result {
        assert!(!problem.status().is_server_error(), "{problem:?}");
    }
    result.map(|_| ())
}

fn code(problem: &Problem) -> String {
    problem
        .violations()
        .first()
        .map(|v| v.code.to_string())
        .unwrap_or_else(|| problem.status().as_str().to_owned())
}

#[test]
fn json_test_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/JSONTestSuite");
    let mut files: Vec<_> = std::fs::read_dir(dir.join("test_parsing"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 318, "the vendored suite is complete");
    let mut implementation_defined = BTreeMap::new();
    let (mut y, mut n) = (0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(path).unwrap();
        let result = outcome(&bytes);
        match &name[..2] {
            "y_" => {
                y += 1;
                if let Err(problem) = &result {
                    let code = code(problem);
                    assert!(
                        POLICY_CODES.contains(&code.as_str()),
                        "{name} is valid JSON but was refused with {code}: {problem:?}"
                    );
                }
            }
            "n_" => {
                n += 1;
                let problem = result.expect_err(&name);
                assert_eq!(problem.status(), 400, "{name}: {problem:?}");
            }
            "i_" => {
                let text = match &result {
                    Ok(()) => "accept".to_owned(),
                    Err(problem) => {
                        format!("reject {} {}", problem.status().as_u16(), code(problem))
                    }
                };
                implementation_defined.insert(name, text);
            }
            other => panic!("unexpected file prefix {other}"),
        }
    }
    assert_eq!((y, n), (95, 188));

    let expectations = dir.join("i_expectations.txt");
    let mut current = String::from(
        "# Outcome of each implementation-defined (i_) JSONTestSuite case under Config::default().\n",
    );
    for (name, text) in &implementation_defined {
        current.push_str(&format!("{name} {text}\n"));
    }
    if std::env::var_os("GUARDRAILS_BLESS").is_some() {
        std::fs::write(&expectations, &current).unwrap();
    }
    let pinned = std::fs::read_to_string(&expectations)
        .expect("i_expectations.txt (create it with GUARDRAILS_BLESS=1)");
    assert_eq!(pinned, current, "i_ outcomes changed; review and re-bless");
}
