//! Values that did not arrive as JSON: a decoded protobuf message, a value
//! put together from several inputs.
//!
//! [`check`] runs garde with the same stable codes as the JSON path and
//! answers the same 422 `validation-failed` problem, each violation's
//! pointer made of the field names and indexes garde reports
//! (`/lines/0/quantity`), sorted by pointer (indexes by number), so that
//! the same value always gets the same problem. A map key that starts with
//! `r#` loses it, as a raw identifier's field name does.
//! With the `tonic` feature, [`grpc::check`](crate::grpc::check) answers
//! the `tonic::Status` of that problem.
//!
//! ```
//! use garde::Validate;
//! use guardrails_validate::{Config, value};
//!
//! #[derive(Validate)]
//! struct NewNote {
//!     #[garde(length(chars, min = 1, max = 200))]
//!     title: String,
//!     #[garde(length(max = 3), inner(length(chars, min = 1)))]
//!     tags: Vec<String>,
//! }
//!
//! let note = NewNote { title: String::new(), tags: vec!["ok".into(), String::new()] };
//! let problem = value::check(&note, &(), &Config::default()).unwrap_err();
//! assert_eq!(problem.status(), 422);
//! let found: Vec<(&str, &str)> = problem
//!     .violations()
//!     .iter()
//!     .map(|v| (v.pointer.as_str(), v.code.as_ref()))
//!     .collect();
//! assert_eq!(found, [("/tags/1", "length.min"), ("/title", "length.min")]);
//!
//! let note = NewNote { title: "Groceries".into(), tags: Vec::new() };
//! assert!(value::check(&note, &(), &Config::default()).is_ok());
//! ```

use std::cmp::Ordering;

use garde::Validate;
use serde_json::Value;

use crate::codes::{Coded, split_garde};
use crate::config::Config;
use crate::json::failed;
use crate::pointer::push_token;
use guardrails_core::{Problem, Violation};

/// Validates `value` with garde in `context`.
///
/// # Errors
///
/// The 422 `validation-failed` problem listing every violation (at most
/// `config.max_violations` of them, with `violations_total` when there are
/// more).
pub fn check<T>(value: &T, context: &T::Context, config: &Config) -> Result<(), Problem>
where
    T: Validate + ?Sized,
{
    let Err(report) = garde::with_i18n(Coded, || value.validate_with(context)) else {
        return Ok(());
    };
    let mut violations: Vec<Violation> = report
        .iter()
        .map(|(path, error)| {
            let (code, detail) = split_garde(error.message());
            Violation {
                pointer: pointer_of(path),
                detail,
                code,
            }
        })
        .collect();
    // garde's own order follows the map types' iteration (a `HashMap`'s
    // changes from run to run): sorted, the problem, and which violations
    // a bound keeps, are the same for the same value.
    violations.sort_by(|a, b| pointer_order(&a.pointer, &b.pointer));
    let total = violations.len();
    Err(failed(violations, total, config))
}

/// The RFC 6901 pointer of a garde path: its keys (a raw identifier
/// without its `r#`) and indexes; the key-less step `inner` takes into an
/// `Option` adds nothing.
fn pointer_of(path: &garde::Path) -> String {
    let mut pointer = String::new();
    let components = serde_json::to_value(path).unwrap_or(Value::Null);
    for component in components.as_array().map(Vec::as_slice).unwrap_or_default() {
        let kind = component.get(0).and_then(Value::as_str).unwrap_or_default();
        let name = component.get(1).and_then(Value::as_str).unwrap_or_default();
        match kind {
            "key" => push_token(&mut pointer, name.strip_prefix("r#").unwrap_or(name)),
            "index" => {
                pointer.push('/');
                pointer.push_str(name);
            }
            _ => {}
        }
    }
    pointer
}

/// Orders pointers token by token, indexes (all-digit tokens) by number:
/// `/lines/2` before `/lines/10`.
fn pointer_order(a: &str, b: &str) -> Ordering {
    let token = |t: &str| (t.len(), t.bytes().all(|b| b.is_ascii_digit()));
    for (x, y) in a.split('/').zip(b.split('/')) {
        let order = match (token(x), token(y)) {
            ((xl, true), (yl, true)) => xl.cmp(&yl).then_with(|| x.cmp(y)),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.split('/').count().cmp(&b.split('/').count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(garde::Validate)]
    struct Line {
        #[garde(range(min = 1, max = 10_000))]
        quantity: u32,
    }

    #[derive(garde::Validate)]
    struct Invoice {
        #[garde(length(chars, min = 1))]
        r#type: String,
        #[garde(dive)]
        lines: Vec<Line>,
        #[garde(custom(|v: &String, _: &()| if v.contains('~') {
            Err(crate::codes::custom_error("no_tilde", "must not hold a tilde"))
        } else {
            Ok(())
        }))]
        memo: String,
    }

    #[test]
    fn pointers_name_fields_and_indexes_and_codes_are_stable() {
        let invoice = Invoice {
            r#type: String::new(),
            lines: vec![Line { quantity: 5 }, Line { quantity: 0 }],
            memo: "a~b".into(),
        };
        let problem = check(&invoice, &(), &Config::default()).unwrap_err();
        assert_eq!(problem.status(), 422);
        let mut found: Vec<(String, String, String)> = problem
            .violations()
            .iter()
            .map(|v| (v.pointer.clone(), v.code.to_string(), v.detail.to_string()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                (
                    "/lines/1/quantity".to_owned(),
                    "range.min".to_owned(),
                    "must be at least 1".to_owned()
                ),
                (
                    "/memo".to_owned(),
                    "no_tilde".to_owned(),
                    "must not hold a tilde".to_owned()
                ),
                (
                    "/type".to_owned(),
                    "length.min".to_owned(),
                    "must have a length of at least 1".to_owned()
                ),
            ]
        );
        assert_eq!(problem.detail(), Some("the request has 3 invalid values"));
    }

    #[derive(garde::Validate)]
    struct Optional {
        #[garde(inner(length(min = 1)))]
        subtitle: Option<String>,
        #[garde(dive)]
        by_name: std::collections::HashMap<String, Line>,
        #[garde(dive)]
        lines: Vec<Line>,
    }

    #[test]
    fn options_add_no_token_and_the_order_is_the_same_every_time() {
        let value = || Optional {
            subtitle: Some(String::new()),
            by_name: ["k", "a~b/c", "z", "m", "b", "q", "x", "c"]
                .into_iter()
                .map(|k| (k.to_owned(), Line { quantity: 0 }))
                .collect(),
            lines: (0..12).map(|_| Line { quantity: 0 }).collect(),
        };
        let pointers = || -> Vec<String> {
            check(&value(), &(), &Config::default())
                .unwrap_err()
                .violations()
                .iter()
                .map(|v| v.pointer.clone())
                .collect()
        };
        let first = pointers();
        assert_eq!(
            first[..3],
            [
                "/by_name/a~0b~1c/quantity",
                "/by_name/b/quantity",
                "/by_name/c/quantity"
            ]
        );
        assert_eq!(
            first[8..11],
            [
                "/lines/0/quantity",
                "/lines/1/quantity",
                "/lines/2/quantity"
            ]
        );
        assert_eq!(
            first[18..],
            ["/lines/10/quantity", "/lines/11/quantity", "/subtitle"]
        );
        for _ in 0..20 {
            assert_eq!(pointers(), first);
        }
    }

    #[test]
    fn violations_are_bounded() {
        let invoice = Invoice {
            r#type: "t".into(),
            lines: (0..50).map(|_| Line { quantity: 0 }).collect(),
            memo: String::new(),
        };
        let config = Config::default().max_violations(10);
        let problem = check(&invoice, &(), &config).unwrap_err();
        assert_eq!(problem.violations().len(), 10);
        let json: Value = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(json["violations_total"], 50);
    }
}
