//! Property tests: no input makes the core panic or answer 5xx, and every
//! violation pointer resolves in the submitted document (or, for a missing
//! member, its parent does).

use garde::Validate;
use guardrails_validate::{Config, Problem, json, scan};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Order {
    #[garde(email)]
    customer_email: String,
    #[garde(length(min = 1, max = 3), dive)]
    lines: Vec<Line>,
    #[garde(inner(range(max = 9)))]
    priority: Option<u8>,
    #[garde(skip)]
    flags: Option<Vec<bool>>,
}

#[derive(Debug, Deserialize, Validate)]
#[allow(dead_code)]
struct Line {
    #[garde(length(chars, min = 1, max = 5))]
    description: String,
    #[garde(range(min = 1, max = 100))]
    quantity: u32,
}

fn check_invariants(bytes: &[u8], result: &Result<Order, Problem>) {
    let Err(problem) = result else { return };
    assert!(
        matches!(problem.status().as_u16(), 400 | 422),
        "{problem:?}"
    );
    assert!(!problem.violations().is_empty());
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return; // not JSON: pointers are best effort positions
    };
    for v in problem.violations() {
        let resolves = doc.pointer(&v.pointer).is_some();
        let parent_resolves = v
            .pointer
            .rfind('/')
            .is_some_and(|idx| doc.pointer(&v.pointer[..idx]).is_some());
        assert!(
            resolves || (v.code == "required" && parent_resolves),
            "pointer {} ({}) does not resolve in {}",
            v.pointer,
            v.code,
            String::from_utf8_lossy(bytes)
        );
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u32..300).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z@.~/ ]{0,8}".prop_map(Value::from),
        Just(Value::from("a@example.com")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("description".to_owned()),
                    Just("quantity".to_owned()),
                    "[a-z~/]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Documents shaped like an `Order`, with random values in its members.
fn order_like() -> impl Strategy<Value = Value> {
    (
        prop::option::of(value()),
        prop::option::of(prop::collection::vec(value(), 0..5)),
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of(("[a-z~/]{1,5}", value())),
    )
        .prop_map(|(email, lines, priority, flags, extra)| {
            let mut map = serde_json::Map::new();
            if let Some(v) = email {
                map.insert("customerEmail".into(), v);
            }
            if let Some(lines) = lines {
                map.insert("lines".into(), Value::Array(lines));
            }
            if let Some(v) = priority {
                map.insert("priority".into(), v);
            }
            if let Some(v) = flags {
                map.insert("flags".into(), v);
            }
            if let Some((k, v)) = extra {
                map.insert(k, v);
            }
            Value::Object(map)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let config = Config::default();
        let _ = scan::prescan(&bytes, &config);
        let result = json::from_slice::<Order>(&bytes, &config, &());
        check_invariants(&bytes, &result);
    }

    #[test]
    fn json_like_bytes_never_panic(
        bytes in prop::collection::vec(
            prop::sample::select(b"{}[]\",:\\u0123456789abcdefnulltrue -+.eE \xff\xc3".to_vec()),
            0..128,
        )
    ) {
        let result = json::from_slice::<Order>(&bytes, &Config::default(), &());
        check_invariants(&bytes, &result);
    }

    #[test]
    fn pointers_resolve_in_the_submitted_document(doc in order_like()) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        let result = json::from_slice::<Order>(&bytes, &Config::default(), &());
        check_invariants(&bytes, &result);
    }

    #[test]
    fn unknown_members_are_found_exactly_as_serde_ignored_finds_them(doc in order_like()) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        let mut reference = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let parsed: Result<Order, _> = serde_ignored::deserialize(&mut de, |path| reference.push(path.to_string()));
        let result = json::from_slice::<Order>(&bytes, &Config::default(), &());
        if parsed.is_ok() {
            let found = match &result {
                Ok(_) => 0,
                Err(problem) => problem.violations().iter().filter(|v| v.code == "unknown_field").count(),
            };
            prop_assert_eq!(found, reference.len(), "{} {:?}", doc, reference);
        }
    }

    #[test]
    fn pointers_resolve_in_any_document(doc in value()) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        let result = json::from_slice::<Order>(&bytes, &Config::default(), &());
        check_invariants(&bytes, &result);
    }
}
