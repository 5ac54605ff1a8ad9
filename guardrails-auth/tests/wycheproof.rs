//! Project Wycheproof's JWS vectors (Apache-2.0, vendored in `tests/data`)
//! against the JWS verifier: header checks, key selection and binding, and
//! the signature. Vectors decided differently on purpose are listed, with the
//! reason, in `tests/data/wycheproof_expectations.txt`.

mod common;

use std::collections::HashMap;

use guardrails_auth::jwt::KeySet;
use jsonwebtoken::Algorithm;
use serde_json::Value;

const ALL: &[Algorithm] = &[
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn expectations() -> HashMap<u64, bool> {
    let text = String::from_utf8(common::data("wycheproof_expectations.txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split_whitespace();
            let id: u64 = f.next().unwrap().parse().unwrap();
            let verdict = match f.next().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("bad verdict {other}"),
            };
            assert!(f.next().is_some(), "line {id} needs a reason");
            (id, verdict)
        })
        .collect()
}

#[test]
fn wycheproof_json_web_signature() {
    let doc: Value = serde_json::from_slice(&common::data("json_web_signature_test.json")).unwrap();
    let expected_differences = expectations();
    let mut seen_differences = Vec::new();
    let mut mismatches = Vec::new();
    let mut total = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        let jwk = group.get("public").unwrap_or(&group["private"]);
        let set = serde_json::json!({ "keys": [jwk] }).to_string();
        let keys = KeySet::from_jwks_json(set.as_bytes(), ALL).unwrap();
        for test in group["tests"].as_array().unwrap() {
            total += 1;
            let id = test["tcId"].as_u64().unwrap();
            let wycheproof_valid = match test["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {id}: result {other}"),
            };
            let jws = test["jws"].as_str().unwrap_or_default();
            let ours = keys.verify_jws(jws, ALL).is_ok();
            let want = match expected_differences.get(&id) {
                Some(&ours_by_design) => {
                    assert_ne!(
                        ours_by_design, wycheproof_valid,
                        "tcId {id} is listed but agrees with Wycheproof"
                    );
                    seen_differences.push(id);
                    ours_by_design
                }
                None => wycheproof_valid,
            };
            if ours != want {
                mismatches.push(format!(
                    "tcId {id} ({}): ours {} expected {}",
                    test["comment"], ours, want
                ));
            }
        }
    }
    assert!(total > 300, "{total} vectors");
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
    let mut unused: Vec<_> = expected_differences
        .keys()
        .filter(|id| !seen_differences.contains(id))
        .collect();
    unused.sort();
    assert!(
        unused.is_empty(),
        "expectations for unknown tcIds: {unused:?}"
    );
}
