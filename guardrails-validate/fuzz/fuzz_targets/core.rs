//! The whole core on arbitrary bytes, into a typed target with rules: never
//! panics, never answers 5xx, and every violation pointer of a document that
//! parses resolves in it (or, for a missing member, its parent does).
#![no_main]

use garde::Validate;
use guardrails_validate::{Config, json};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Order {
    #[garde(email)]
    customer_email: String,
    #[garde(pattern(r"^[A-Z]{3}$"))]
    currency: String,
    #[garde(length(min = 1, max = 5), dive)]
    lines: Vec<Line>,
    #[garde(skip)]
    priority: Option<u8>,
}

#[derive(Debug, Deserialize, Validate)]
#[allow(dead_code)]
struct Line {
    #[garde(length(chars, min = 1, max = 10))]
    description: String,
    #[garde(range(min = 1, max = 100))]
    quantity: u32,
}

fuzz_target!(|data: &[u8]| {
    let Err(problem) = json::from_slice::<Order>(data, &Config::default(), &()) else {
        return;
    };
    assert!(matches!(problem.status().as_u16(), 400 | 422));
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        for v in problem.violations() {
            let parent = v.pointer.rfind('/').map(|i| &v.pointer[..i]);
            assert!(
                doc.pointer(&v.pointer).is_some()
                    || (v.code == "required" && parent.is_some_and(|p| doc.pointer(p).is_some())),
                "{} does not resolve",
                v.pointer
            );
        }
    }
});
