//! Serde helpers for values that arrive as strings from variables.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::fmt;

/// Deserializes a list of strings from a list (TOML `["a", "b"]`) or from a
/// comma-separated string (a variable: `APP_CORS__ORIGINS="a, b"`; items
/// are trimmed, empty items dropped).
///
/// ```
/// use guardrails_config::{Configuration, Loader};
///
/// #[derive(serde::Deserialize, garde::Validate)]
/// struct Settings {
///     #[garde(skip)]
///     #[serde(default, deserialize_with = "guardrails_config::de::string_list")]
///     origins: Vec<String>,
/// }
/// impl Configuration for Settings {}
///
/// let loaded = Loader::new("APP")
///     .default_value("origins", Vec::<String>::new())
///     .with_env_vars([("APP_ORIGINS", "https://a.example, https://b.example")])
///     .load::<Settings>()?;
/// assert_eq!(loaded.config().origins, ["https://a.example", "https://b.example"]);
/// # Ok::<(), guardrails_config::ConfigError>(())
/// ```
///
/// # Errors
///
/// When the value is neither a list of strings nor a string.
pub fn string_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings or a comma-separated string")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_any(ListVisitor)
}
