//! The JOSE header, parsed and checked before any key is chosen.
//!
//! jsonwebtoken parses the header too, but leniently: it ignores `crit`,
//! keeps the last of duplicate members and exposes `jku`/`x5u`/`jwk`/`x5c` for
//! the caller to (mis)use. This parser runs first and rejects all of that.

use std::borrow::Cow;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use crate::AuthError;

/// The longest encoded JOSE header accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 2048;
/// The longest token accepted by the verifier, in bytes (the bearer source
/// caps credentials at 8 KiB before this).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// The longest `kid` accepted, in bytes.
pub const MAX_KID_LEN: usize = 128;

/// The three segments of a compact JWS.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segments<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header.payload`, the signing input.
    pub(crate) message: &'a str,
}

fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Splits a compact JWS into exactly three base64url segments.
pub(crate) fn split(token: &str) -> Result<Segments<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::TooLarge);
    }
    let mut parts = token.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    // An empty signature passes here so that `alg: none` is named as such
    // by the header check; it never verifies.
    if header.is_empty() || !is_b64url(header) || !is_b64url(payload) || !is_b64url(signature) {
        return Err(AuthError::Malformed);
    }
    if header.len() > MAX_HEADER_LEN {
        return Err(AuthError::MalformedHeader);
    }
    Ok(Segments {
        header,
        payload,
        signature,
        message: &token[..header.len() + 1 + payload.len()],
    })
}

/// The header members this crate acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoseHeader {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) typ: Option<String>,
}

/// Whether `kid` is acceptable: 1 to [`MAX_KID_LEN`] bytes of
/// `A-Z a-z 0-9 - _ . : @ + =`, and no `..`.
pub(crate) fn kid_is_valid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && !kid.contains("..")
        && kid.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@' | b'+' | b'=')
        })
}

/// Decodes and checks the header segment.
pub(crate) fn parse(segment: &str) -> Result<JoseHeader, AuthError> {
    let json = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::Malformed)?;
    // Duplicate members, wrong types and invalid JSON are all a malformed header.
    let raw: RawHeader<'_> =
        serde_json::from_slice(&json).map_err(|_| AuthError::MalformedHeader)?;
    raw.check()
}

const DUPLICATE: &str = "duplicate member";

#[derive(Default)]
struct RawHeader<'a> {
    alg: Option<Cow<'a, str>>,
    kid: Option<Cow<'a, str>>,
    typ: Option<Cow<'a, str>>,
    crit: bool,
    embedded_key: bool,
    wrong_type: bool,
}

impl RawHeader<'_> {
    fn check(self) -> Result<JoseHeader, AuthError> {
        if self.wrong_type {
            return Err(AuthError::MalformedHeader);
        }
        let alg = self.alg.ok_or(AuthError::MalformedHeader)?;
        if alg.eq_ignore_ascii_case("none") {
            return Err(AuthError::AlgNone);
        }
        if self.embedded_key {
            return Err(AuthError::EmbeddedKey);
        }
        if self.crit {
            return Err(AuthError::UnsupportedCritical);
        }
        let alg = Algorithm::from_str(&alg).map_err(|_| AuthError::AlgorithmNotAllowed)?;
        let kid = match self.kid {
            Some(kid) if kid_is_valid(&kid) => Some(kid.into_owned()),
            Some(_) => return Err(AuthError::InvalidKid),
            None => None,
        };
        Ok(JoseHeader {
            alg,
            kid,
            typ: self.typ.map(Cow::into_owned),
        })
    }
}

impl<'de: 'a, 'a> de::Deserialize<'de> for RawHeader<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

/// A string, or a marker that the value had another type.
enum MaybeStr<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl<'de: 'a, 'a> de::Deserialize<'de> for MaybeStr<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeStr::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MaybeStr::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(MaybeStr::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeStr::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeStr::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeStr::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeStr::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeStr::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr::Other)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut header = RawHeader::default();
        // Member names seen so far; headers are small, a linear scan is fine,
        // and the count is capped so a header cannot make this quadratic.
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            if seen.contains(&name) {
                return Err(de::Error::custom(DUPLICATE));
            }
            if seen.len() >= 32 {
                return Err(de::Error::custom("too many header members"));
            }
            match &*name {
                "alg" | "kid" | "typ" => {
                    let value = match map.next_value::<MaybeStr<'de>>()? {
                        MaybeStr::Str(s) => Some(s),
                        MaybeStr::Other => {
                            header.wrong_type = true;
                            None
                        }
                    };
                    match &*name {
                        "alg" => header.alg = value,
                        "kid" => header.kid = value,
                        _ => header.typ = value,
                    }
                }
                // No critical extension is understood (RFC 7515 section 4.1.11):
                // any `crit` member, whatever its value, rejects the token.
                "crit" => {
                    map.next_value::<IgnoredAny>()?;
                    header.crit = true;
                }
                // Keys are never taken from, nor fetched because of, a token.
                "jku" | "x5u" | "jwk" | "x5c" => {
                    map.next_value::<IgnoredAny>()?;
                    header.embedded_key = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            seen.push(name);
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    #[allow(clippy::type_complexity, reason = "table rows")]
    fn table() {
        let rows: &[(&str, Result<(Algorithm, Option<&str>), AuthError>)] = &[
            (r#"{"alg":"HS256"}"#, Ok((Algorithm::HS256, None))),
            (
                r#"{"alg":"ES256","kid":"k-1"}"#,
                Ok((Algorithm::ES256, Some("k-1"))),
            ),
            (
                r#"{ "alg" : "RS256" , "typ":"JWT"}"#,
                Ok((Algorithm::RS256, None)),
            ),
            (r#"{"alg":"none"}"#, Err(AuthError::AlgNone)),
            (r#"{"alg":"None"}"#, Err(AuthError::AlgNone)),
            (r#"{"alg":"NONE"}"#, Err(AuthError::AlgNone)),
            (
                r#"{"alg":"HS256","alg":"none"}"#,
                Err(AuthError::MalformedHeader),
            ),
            (
                r#"{"alg":"none","alg":"HS256"}"#,
                Err(AuthError::MalformedHeader),
            ),
            (r#"{"alg":"ES512"}"#, Err(AuthError::AlgorithmNotAllowed)),
            (
                r#"{"alg":"HS256","crit":["exp"]}"#,
                Err(AuthError::UnsupportedCritical),
            ),
            (
                r#"{"alg":"HS256","crit":[]}"#,
                Err(AuthError::UnsupportedCritical),
            ),
            (
                r#"{"alg":"RS256","jku":"https://evil"}"#,
                Err(AuthError::EmbeddedKey),
            ),
            (
                r#"{"alg":"RS256","x5u":"https://evil"}"#,
                Err(AuthError::EmbeddedKey),
            ),
            (
                r#"{"alg":"RS256","jwk":{"kty":"oct"}}"#,
                Err(AuthError::EmbeddedKey),
            ),
            (
                r#"{"alg":"RS256","x5c":["MII"]}"#,
                Err(AuthError::EmbeddedKey),
            ),
            (
                r#"{"alg":"RS256","kid":"../../etc/passwd"}"#,
                Err(AuthError::InvalidKid),
            ),
            (r#"{"alg":"RS256","kid":""}"#, Err(AuthError::InvalidKid)),
            (r#"{"alg":"RS256","kid":"a b"}"#, Err(AuthError::InvalidKid)),
            (
                r#"{"alg":"RS256","kid":7}"#,
                Err(AuthError::MalformedHeader),
            ),
            (r#"{"alg":256}"#, Err(AuthError::MalformedHeader)),
            (r#"{"kid":"x"}"#, Err(AuthError::MalformedHeader)),
            (r#"["alg"]"#, Err(AuthError::MalformedHeader)),
            (r#"{"alg":"HS256""#, Err(AuthError::MalformedHeader)),
        ];
        for (json, expected) in rows {
            let got = parse(&enc(json)).map(|h| h.alg);
            let want = expected.clone().map(|(a, _)| a);
            assert_eq!(got, want, "{json}");
            if let Ok((_, kid)) = expected {
                assert_eq!(parse(&enc(json)).unwrap().kid.as_deref(), *kid, "{json}");
            }
        }
        let long = format!(
            r#"{{"alg":"RS256","kid":"{}"}}"#,
            "a".repeat(MAX_KID_LEN + 1)
        );
        assert_eq!(parse(&enc(&long)), Err(AuthError::InvalidKid));
        assert_eq!(parse("!!"), Err(AuthError::Malformed));
    }

    #[test]
    fn split_requires_three_segments() {
        assert!(split("a.b.c").is_ok());
        assert!(split("a..c").is_ok());
        assert!(split("a.b.").is_ok());
        for bad in ["", "a.b", "a.b.c.d", ".b.c", "a.b c.d", "a.b.c=", "a+b.c.d"] {
            assert_eq!(split(bad).unwrap_err(), AuthError::Malformed, "{bad}");
        }
        let huge = format!("a.{}.c", "b".repeat(MAX_TOKEN_LEN));
        assert_eq!(split(&huge).unwrap_err(), AuthError::TooLarge);
        let s = split("hh.pp.ss").unwrap();
        assert_eq!(
            (s.header, s.payload, s.signature, s.message),
            ("hh", "pp", "ss", "hh.pp")
        );
    }
}
