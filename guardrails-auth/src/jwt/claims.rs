//! The claims of a verified token, read with duplicate detection.
//!
//! `serde_json` silently keeps the last of two members with the same name, so
//! `{"sub":"alice","sub":"admin"}` would read as `admin` here and as `alice`
//! in another parser. The [`Claims`] deserializer refuses any payload that
//! names a claim twice, at the top level and in any nested object (an app
//! claim such as `{"perms":{"admin":false,"admin":true}}` reaches the app
//! through the `Principal`).

use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The message of the error raised on a duplicate claim; mapped to
/// [`AuthError::DuplicateClaim`](crate::AuthError::DuplicateClaim).
pub(crate) const DUPLICATE_CLAIM: &str = "duplicate claim";

/// The registered and app claims this crate reads, as raw JSON values (their
/// types are checked after signature verification), plus every other claim.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    pub(crate) sub: Option<Value>,
    pub(crate) iss: Option<Value>,
    pub(crate) aud: Option<Value>,
    pub(crate) exp: Option<Value>,
    pub(crate) nbf: Option<Value>,
    pub(crate) iat: Option<Value>,
    pub(crate) jti: Option<Value>,
    pub(crate) scope: Option<Value>,
    pub(crate) scp: Option<Value>,
    pub(crate) roles: Option<Value>,
    pub(crate) tenant: Option<Value>,
    pub(crate) extra: Map<String, Value>,
}

impl<'de> de::Deserialize<'de> for Claims {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

fn set<E: de::Error>(slot: &mut Option<Value>, value: Value) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::custom(DUPLICATE_CLAIM));
    }
    Ok(())
}

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = Claims;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        let mut c = Claims::default();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let StrictValue(value) = map.next_value()?;
            let slot = match &*name {
                "sub" => &mut c.sub,
                "iss" => &mut c.iss,
                "aud" => &mut c.aud,
                "exp" => &mut c.exp,
                "nbf" => &mut c.nbf,
                "iat" => &mut c.iat,
                "jti" => &mut c.jti,
                "scope" => &mut c.scope,
                "scp" => &mut c.scp,
                "roles" => &mut c.roles,
                "tenant" => &mut c.tenant,
                _ => {
                    if c.extra.insert(name.into_owned(), value).is_some() {
                        return Err(de::Error::custom(DUPLICATE_CLAIM));
                    }
                    continue;
                }
            };
            set(slot, value)?;
        }
        Ok(c)
    }
}

/// A JSON value read like `serde_json::Value`, except that an object naming a
/// member twice is an error.
struct StrictValue(Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if members.insert(name, value).is_some() {
                return Err(de::Error::custom(DUPLICATE_CLAIM));
            }
        }
        Ok(Value::Object(members))
    }
}

/// The largest NumericDate accepted: 10^15 s (some 31 million years). Far
/// beyond any real date, and far from where `Instant` or a Unix
/// `SystemTime` overflows (a signed token with `exp: 18446744073709551615`
/// must be refused, not panic the server); Windows' `SystemTime` ends
/// earlier (about 1.8·10^12 s), so turning `exp` into one is checked too.
pub(crate) const MAX_NUMERIC_DATE: u64 = 1_000_000_000_000_000;

/// A NumericDate (RFC 7519): a non-negative number of seconds, possibly
/// fractional, at most [`MAX_NUMERIC_DATE`]. A fraction is rounded down when
/// `round_up` is false (`exp`: the token expires no later than it says) and up
/// when it is true (`nbf`, `iat`: never earlier than they say). Strings,
/// negative numbers, NaN and infinities are not NumericDates.
pub(crate) fn numeric_date(value: &Value, round_up: bool) -> Option<u64> {
    let Value::Number(n) = value else {
        return None;
    };
    let secs = match n.as_u64() {
        Some(secs) => secs,
        None => {
            let f = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0)?;
            let f = if round_up { f.ceil() } else { f.floor() };
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "finite, non-negative, and compared with the bound before the cast"
            )]
            if f > MAX_NUMERIC_DATE as f64 {
                return None;
            } else {
                f as u64
            }
        }
    };
    (secs <= MAX_NUMERIC_DATE).then_some(secs)
}

/// A string, or `None` when the value is not one.
pub(crate) fn string(value: &Value) -> Option<&str> {
    value.as_str()
}

/// An array of strings (or one string, split on spaces when `split`), or
/// `None` when the value has another shape.
pub(crate) fn strings(value: &Value, split: bool) -> Option<Vec<String>> {
    match value {
        Value::String(s) if split => Some(
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_for_every_claim() {
        for name in [
            "sub", "iss", "aud", "exp", "scope", "tenant", "roles", "custom",
        ] {
            let json = format!(r#"{{"{name}":"a","x":1,"{name}":"b"}}"#);
            let err = serde_json::from_str::<Claims>(&json).unwrap_err();
            assert!(
                err.to_string().starts_with(DUPLICATE_CLAIM),
                "{name}: {err}"
            );
        }
        let ok: Claims = serde_json::from_str(r#"{"sub":"a","plan":{"x":1},"n":2}"#).unwrap();
        assert_eq!(ok.sub, Some(Value::from("a")));
        assert_eq!(ok.extra.len(), 2);
    }

    #[test]
    fn nested_duplicates_are_refused() {
        for json in [
            r#"{"sub":"a","perms":{"admin":false,"admin":true}}"#,
            r#"{"sub":"a","tenant":{"id":"x","id":"y"}}"#,
            r#"{"sub":"a","list":[1,{"k":1,"k":2}]}"#,
            r#"{"sub":"a","deep":{"a":{"b":{"c":1,"c":2}}}}"#,
        ] {
            let err = serde_json::from_str::<Claims>(json).unwrap_err();
            assert!(
                err.to_string().starts_with(DUPLICATE_CLAIM),
                "{json}: {err}"
            );
        }
        let ok: Claims = serde_json::from_str(
            r#"{"sub":"a","perms":{"admin":false,"x":[1,2.5,null,"s",true]}}"#,
        )
        .unwrap();
        assert_eq!(
            ok.extra["perms"],
            serde_json::json!({"admin": false, "x": [1, 2.5, null, "s", true]})
        );
    }

    #[test]
    fn escaped_names_are_still_duplicates() {
        // "s\u0075b" is "sub": a parser comparing raw bytes would miss it.
        let err = serde_json::from_str::<Claims>(r#"{"sub":"a","s\u0075b":"b"}"#).unwrap_err();
        assert!(err.to_string().starts_with(DUPLICATE_CLAIM));
    }

    #[test]
    fn numeric_dates() {
        let rows: &[(Value, Option<u64>, Option<u64>)] = &[
            (Value::from(10), Some(10), Some(10)),
            (serde_json::json!(10.7), Some(10), Some(11)),
            (serde_json::json!(10.0), Some(10), Some(10)),
            (serde_json::json!(0), Some(0), Some(0)),
            (Value::from(-1), None, None),
            (serde_json::json!(-0.5), None, None),
            (Value::from(i64::MIN), None, None),
            (Value::from("10"), None, None),
            (Value::Null, None, None),
            (Value::Bool(true), None, None),
            (serde_json::json!([10]), None, None),
            (serde_json::json!({"t": 10}), None, None),
            (
                Value::from(MAX_NUMERIC_DATE),
                Some(MAX_NUMERIC_DATE),
                Some(MAX_NUMERIC_DATE),
            ),
            (Value::from(MAX_NUMERIC_DATE + 1), None, None),
            (Value::from(u64::MAX), None, None),
            (serde_json::json!(1.0e300), None, None),
        ];
        for (value, down, up) in rows {
            assert_eq!(numeric_date(value, false), *down, "{value}");
            assert_eq!(numeric_date(value, true), *up, "{value}");
        }
    }

    #[test]
    fn string_lists() {
        assert_eq!(
            strings(&Value::from("a  b"), true),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(strings(&serde_json::json!(["a", 1]), false), None);
        assert_eq!(strings(&Value::from(1), false), None);
    }
}
