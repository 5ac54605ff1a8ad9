//! `Problem` on the wire, member by member against RFC 9457.

use bytes::Bytes;
use guardrails_core::{PROBLEM_JSON, Problem, ProblemType, Violation};
use http::StatusCode;
use serde_json::{Value, json};

fn body_json(problem: &Problem) -> serde_json::Map<String, Value> {
    match serde_json::from_slice(&problem.to_json()).unwrap() {
        Value::Object(map) => map,
        other => panic!("a problem must be a JSON object, got {other}"),
    }
}

#[test]
fn response_has_status_content_type_and_no_store() {
    for kind in ProblemType::ALL {
        let response = Problem::new(*kind).into_http_response::<Bytes>();
        assert_eq!(response.status(), kind.status(), "{kind:?}");
        assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let json: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(json["status"], kind.status().as_u16());
        assert_eq!(json["type"], kind.uri());
        assert_eq!(json["title"], kind.title());
    }
}

#[test]
fn members_have_rfc_9457_names_and_types() {
    let problem = Problem::new(ProblemType::VALIDATION_FAILED)
        .with_detail("2 fields are invalid")
        .with_instance("urn:request:abc")
        .with_violation(Violation::new(
            "/lines/0/quantity",
            "range.max",
            "must be at most 10000",
        ))
        .with_violation(Violation::new(
            "/currency",
            "pattern",
            "must be three upper-case letters",
        ));
    let map = body_json(&problem);

    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    // type: a URI reference string (RFC 9457 3.1.1)
    let type_uri = map["type"].as_str().unwrap();
    assert!(type_uri.starts_with("tag:guardrails.rs,2026:problem/"));
    // title: string (3.1.3)
    assert_eq!(map["title"], json!("Validation failed"));
    // status: a JSON number, same as the HTTP status (3.1.2)
    assert!(map["status"].is_u64());
    assert_eq!(map["status"], json!(422));
    // detail: string (3.1.4)
    assert_eq!(map["detail"], json!("2 fields are invalid"));
    // instance: URI reference string (3.1.5)
    assert_eq!(map["instance"], json!("urn:request:abc"));
    // errors: extension array, order kept, each { pointer, detail, code }
    assert_eq!(
        map["errors"],
        json!([
            { "pointer": "/lines/0/quantity", "detail": "must be at most 10000", "code": "range.max" },
            { "pointer": "/currency", "detail": "must be three upper-case letters", "code": "pattern" }
        ])
    );
}

#[test]
fn absent_members_are_omitted_not_null() {
    let map = body_json(&Problem::new(ProblemType::AUTHENTICATION_REQUIRED));
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["status", "title", "type"]);
}

#[test]
fn extension_members_sit_beside_the_standard_ones() {
    let problem = Problem::new(ProblemType::PAYLOAD_TOO_LARGE)
        .with_extension("limit", 1024)
        .unwrap()
        .with_extension("hint", json!({"compress": true}))
        .unwrap();
    let map = body_json(&problem);
    assert_eq!(map["limit"], json!(1024));
    assert_eq!(map["hint"], json!({"compress": true}));
    assert_eq!(map["status"], json!(413));
}

#[test]
fn server_errors_disclose_nothing_internal() {
    let problem = Problem::new(ProblemType::INTERNAL_ERROR)
        .with_detail("connection to db-primary.internal:5432 refused")
        .with_violation(Violation::new("/x", "internal", "stack trace"))
        .with_extension("sql", "SELECT * FROM secrets")
        .unwrap()
        .with_instance("urn:request:42");
    let body = problem.to_json();
    let text = std::str::from_utf8(&body).unwrap();
    for leaked in [
        "db-primary",
        "stack trace",
        "SELECT",
        "errors",
        "detail",
        "sql",
    ] {
        assert!(!text.contains(leaked), "{leaked} leaked in {text}");
    }
    let map = body_json(&problem);
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["instance", "status", "title", "type"]);

    for kind in [ProblemType::AUDIT_UNAVAILABLE, ProblemType::AUDIT_FAILED] {
        let text = Problem::new(kind)
            .with_detail("disk /var/audit full")
            .to_json();
        assert!(!std::str::from_utf8(&text).unwrap().contains("disk"));
    }
}

#[test]
fn round_trips_through_deserialize() {
    let problem = Problem::new(ProblemType::VALIDATION_FAILED)
        .with_detail("bad")
        .with_violation(Violation::new("", "syntax", "not JSON"))
        .with_extension("trace_id", "abc")
        .unwrap();
    let back: Problem = serde_json::from_slice(&problem.to_json()).unwrap();
    assert_eq!(back, problem);
    assert!(back.is(ProblemType::VALIDATION_FAILED));
}

#[test]
fn missing_type_reads_as_about_blank() {
    let p: Problem = serde_json::from_str(r#"{"status":404,"title":"Not Found"}"#).unwrap();
    assert_eq!(p.type_uri(), "about:blank");
    assert_eq!(p.status(), StatusCode::NOT_FOUND);
    assert!(serde_json::from_str::<Problem>(r#"{"status":1000}"#).is_err());
}

#[test]
fn strings_are_json_escaped() {
    let problem =
        Problem::new(ProblemType::MALFORMED_BODY).with_detail("quote \" and\nnewline </script>");
    let back: Value = serde_json::from_slice(&problem.to_json()).unwrap();
    assert_eq!(back["detail"], "quote \" and\nnewline </script>");
}

#[test]
fn custom_problem_types_work_the_same() {
    const OUT_OF_CREDIT: ProblemType = ProblemType::new(
        "https://example.com/probs/out-of-credit",
        "You do not have enough credit.",
        StatusCode::FORBIDDEN,
    );
    assert!(!OUT_OF_CREDIT.is_guardrails());
    let response = Problem::new(OUT_OF_CREDIT)
        .with_extension("balance", 30)
        .unwrap()
        .into_http_response::<Bytes>();
    assert_eq!(response.status(), 403);
    let json: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(json["type"], "https://example.com/probs/out-of-credit");
    assert_eq!(json["balance"], 30);
}
