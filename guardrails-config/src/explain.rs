//! `explain`: the effective configuration, redacted, with the source of
//! every value. See [`Explain`] for an example; [`Loaded::explain`] and
//! [`ConfigError::explain`] hand one out.
//!
//! [`Loaded::explain`]: crate::Loaded::explain
//! [`ConfigError::explain`]: crate::ConfigError::explain

use std::fmt;

use figment::value::{Num, Value};
use serde::Serialize;

use crate::{Environment, Source};

/// What [`Explain`] prints instead of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// The effective configuration: every key, its value (secrets as
/// `[REDACTED]`, and so are credentials embedded in URLs) and the source
/// that set it.
///
/// `Display` prints a table; [`Explain::to_json`] a JSON document:
///
/// ```
/// use guardrails_config::{Configuration, Loader};
/// use secrecy::SecretString;
///
/// #[derive(serde::Deserialize, garde::Validate)]
/// struct Settings {
///     #[garde(skip)]
///     name: String,
///     #[garde(skip)]
///     api_key: Option<SecretString>,
/// }
/// impl Configuration for Settings {
///     const SECRET_KEYS: &'static [&'static str] = &["api_key"];
/// }
///
/// let loaded = Loader::new("APP")
///     .with_env_vars([("APP_API_KEY", "s3cr3t-value")])
///     .default_value("name", "demo")
///     .load::<Settings>()?;
/// let table = loaded.explain().to_string();
/// assert!(table.contains("api_key") && table.contains("[REDACTED]"));
/// assert!(table.contains("env APP_API_KEY"));
/// assert!(!table.contains("s3cr3t-value"));
/// let json = loaded.explain().to_json();
/// assert_eq!(json["entries"][1]["key"], "name");
/// assert_eq!(json["entries"][1]["source"], "default");
/// # Ok::<(), guardrails_config::ConfigError>(())
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct Explain {
    environment: Environment,
    sources: Vec<String>,
    entries: Vec<ExplainEntry>,
}

/// One key of an [`Explain`].
#[derive(Clone, Debug, Serialize)]
pub struct ExplainEntry {
    key: String,
    value: serde_json::Value,
    secret: bool,
    source: Option<Source>,
}

impl ExplainEntry {
    /// The dotted key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value as JSON; the string `[REDACTED]` for a secret.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// `true` when the key is a secret (its value is redacted).
    pub fn is_secret(&self) -> bool {
        self.secret
    }

    /// The source that set the value.
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }
}

impl Explain {
    pub(crate) fn new(environment: Environment, sources: Vec<String>) -> Self {
        Self {
            environment,
            sources,
            entries: Vec::new(),
        }
    }

    /// Adds `key`; `is_secret` decides for the key and for every key
    /// nested in its value (a list of tables with a `password` each).
    pub(crate) fn push(
        &mut self,
        key: String,
        value: &Value,
        is_secret: &dyn Fn(&str) -> bool,
        source: Option<Source>,
    ) {
        let secret = is_secret(&key);
        let value = if secret {
            redacted()
        } else {
            to_json(value, &key, is_secret)
        };
        self.entries.push(ExplainEntry {
            key,
            value,
            secret,
            source,
        });
    }

    /// The environment the configuration was loaded for.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The sources that were read, lowest precedence first, each with the
    /// number of values it set (`file config/default.toml (8 keys)`).
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Every key, sorted.
    pub fn entries(&self) -> &[ExplainEntry] {
        &self.entries
    }

    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<&ExplainEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The explanation as a JSON document:
    /// `{"environment", "sources": [...], "entries": [{"key", "value", "secret", "source"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        // Cannot fail: string keys and plain values only.
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "environment: {}", self.environment)?;
        writeln!(
            f,
            "sources (lowest precedence first): {}",
            self.sources.join(", ")
        )?;
        let rows: Vec<[String; 3]> = self
            .entries
            .iter()
            .map(|e| {
                [
                    e.key.clone(),
                    if e.secret {
                        REDACTED.to_owned()
                    } else {
                        e.value.to_string()
                    },
                    e.source
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), ToString::to_string),
                ]
            })
            .collect();
        let header = ["KEY".to_owned(), "VALUE".to_owned(), "SOURCE".to_owned()];
        let mut widths = [0usize; 3];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {}",
                row[0],
                row[1],
                row[2],
                w0 = widths[0],
                w1 = widths[1]
            )?;
        }
        Ok(())
    }
}

fn redacted() -> serde_json::Value {
    serde_json::Value::String(REDACTED.to_owned())
}

/// `value` at `key` as JSON, with every nested secret key redacted.
fn to_json(value: &Value, key: &str, is_secret: &dyn Fn(&str) -> bool) -> serde_json::Value {
    use serde_json::Value as J;
    let nested = |child: String, v: &Value| {
        if is_secret(&child) {
            redacted()
        } else {
            to_json(v, &child, is_secret)
        }
    };
    match value {
        Value::String(_, s) => J::String(redact_url_credentials(s)),
        Value::Char(_, c) => J::String(c.to_string()),
        Value::Bool(_, b) => J::Bool(*b),
        Value::Num(_, n) => num_to_json(*n),
        Value::Empty(..) => J::Null,
        Value::Dict(_, d) => J::Object(
            d.iter()
                .map(|(k, v)| (k.clone(), nested(format!("{key}.{k}"), v)))
                .collect(),
        ),
        Value::Array(_, a) => J::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| nested(format!("{key}.{i}"), v))
                .collect(),
        ),
    }
}

/// `https://user:pass@host/x` → `https://[REDACTED]@host/x`: credentials
/// embedded in a URL are secrets even under a key that is not. So are the
/// values of query parameters named like secrets (`?token=…`,
/// `&X-Amz-Signature=…`) and a key/value connection string's `password=…`.
pub(crate) fn redact_url_credentials(value: &str) -> String {
    let mut out = match value.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://{REDACTED}{}", &rest[at..]),
                None => value.to_owned(),
            }
        }
        None => return redact_password_pairs(value),
    };
    if let Some(start) = out.find('?') {
        let end = out[start..].find('#').map_or(out.len(), |i| start + i);
        let query: Vec<String> = out[start + 1..end]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if secret_parameter(name) => format!("{name}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.replace_range(start + 1..end, &query.join("&"));
    }
    out
}

/// Whether a query parameter's name says its value is a secret.
fn secret_parameter(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    crate::loader::is_secret_key(&[], &lower)
        || lower.ends_with("sig")
        || lower.ends_with("signature")
}

/// `host=db password=s3cret user=app` → `host=db password=[REDACTED] user=app`
/// (a libpq key/value connection string; the value may be quoted).
fn redact_password_pairs(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("password=") {
        let starts_word = at == 0 || rest[..at].ends_with(char::is_whitespace);
        let value_at = at + "password=".len();
        out.push_str(&rest[..value_at]);
        rest = &rest[value_at..];
        if !starts_word {
            continue;
        }
        let end = if let Some(quoted) = rest.strip_prefix('\'') {
            // Up to the closing quote that is not escaped.
            let mut escaped = false;
            quoted
                .char_indices()
                .find(|&(_, c)| {
                    let close = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    close
                })
                .map_or(rest.len(), |(i, _)| i + 2)
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        out.push_str(REDACTED);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn num_to_json(n: Num) -> serde_json::Value {
    if let Some(i) = n.to_i128()
        && let Ok(i) = i64::try_from(i)
    {
        return i.into();
    }
    if let Some(u) = n.to_u128()
        && let Ok(u) = u64::try_from(u)
    {
        return u.into();
    }
    n.to_f64().map_or(serde_json::Value::Null, Into::into)
}

#[cfg(test)]
mod tests {
    use super::redact_url_credentials as r;

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(r("https://u:p@h/x@y"), "https://[REDACTED]@h/x@y");
        assert_eq!(
            r("postgres://u@h:5432/db"),
            "postgres://[REDACTED]@h:5432/db"
        );
        assert_eq!(r("https://h/x@y"), "https://h/x@y");
        assert_eq!(r("plain@text"), "plain@text");
    }

    #[test]
    fn secret_query_parameters_and_passwords_are_redacted() {
        assert_eq!(
            r("https://h/hook?id=7&token=abc&X-Amz-Signature=f00#frag"),
            "https://h/hook?id=7&token=[REDACTED]&X-Amz-Signature=[REDACTED]#frag"
        );
        assert_eq!(
            r("https://u:p@h/x?api_key=k&page=2"),
            "https://[REDACTED]@h/x?api_key=[REDACTED]&page=2"
        );
        assert_eq!(r("https://h/x?page=2"), "https://h/x?page=2");
        assert_eq!(
            r("host=db password=s3cret user=app"),
            "host=db password=[REDACTED] user=app"
        );
        assert_eq!(
            r("host=db password='s3 \\'cret' user=app"),
            "host=db password=[REDACTED] user=app"
        );
        assert_eq!(r("oldpassword=x"), "oldpassword=x");
    }
}
