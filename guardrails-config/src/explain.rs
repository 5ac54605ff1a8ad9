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
/// embedded in a URL are secrets even under a key that is not.
pub(crate) fn redact_url_credentials(value: &str) -> String {
    if let Some((scheme, rest)) = value.split_once("://") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            return format!("{scheme}://{REDACTED}{}", &rest[at..]);
        }
    }
    value.to_owned()
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
}
