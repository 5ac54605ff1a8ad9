//! The deployment environment: `development`, `test`, `staging`, `production`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The deployment environment the configuration is loaded for.
///
/// Chosen by `{PREFIX}_ENV` (see [`Loader`](crate::Loader)); `Development`
/// when the variable is unset. An unknown value is an error, never a silent
/// default: `SAAS_ENV=prod` does not quietly run a development build.
///
/// ```
/// use guardrails_config::Environment;
///
/// assert_eq!("production".parse::<Environment>().unwrap(), Environment::Production);
/// assert_eq!("Staging".parse::<Environment>().unwrap(), Environment::Staging);
///
/// let error = "prod".parse::<Environment>().unwrap_err();
/// assert_eq!(error.suggestion(), Some(Environment::Production));
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A developer's machine: development conveniences allowed, no hardening.
    #[default]
    Development,
    /// Automated tests.
    Test,
    /// A production-like environment; hardened when the loader says so
    /// ([`Loader::harden_in`](crate::Loader::harden_in)).
    Staging,
    /// Production: hardening rules are always active.
    Production,
}

impl Environment {
    /// Every environment, in order.
    pub const ALL: [Self; 4] = [
        Self::Development,
        Self::Test,
        Self::Staging,
        Self::Production,
    ];

    /// The lower-case name, as written in `{PREFIX}_ENV` and in the name of
    /// the profile file (`config/{name}.toml`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }

    /// `true` for [`Environment::Production`].
    pub const fn is_production(self) -> bool {
        matches!(self, Self::Production)
    }

    /// `true` for [`Environment::Development`].
    pub const fn is_development(self) -> bool {
        matches!(self, Self::Development)
    }

    /// `true` where development conveniences (built-in development secrets,
    /// dev tokens) may exist: [`Development`](Self::Development) and
    /// [`Test`](Self::Test).
    pub const fn is_development_like(self) -> bool {
        matches!(self, Self::Development | Self::Test)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    /// Parses an environment name, ignoring ASCII case.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|env| env.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| UnknownEnvironment::new(value))
    }
}

/// The longest part of an unknown environment name kept for messages.
const MAX_ECHO: usize = 32;

/// An environment name that is not one of [`Environment::ALL`].
///
/// Its `Display` names the expected values and, when the value is close to
/// one, suggests it (`prod` → `production`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownEnvironment {
    value: String,
    suggestion: Option<Environment>,
}

impl UnknownEnvironment {
    fn new(value: &str) -> Self {
        let lower = value.trim().to_ascii_lowercase();
        let suggestion = suggest(&lower);
        // The value is a plain environment name, not a secret, but it is
        // client-controlled text: keep a short, printable excerpt only.
        let value = value
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_ECHO)
            .collect();
        Self { value, suggestion }
    }

    /// The closest known environment, if the value resembles one.
    pub fn suggestion(&self) -> Option<Environment> {
        self.suggestion
    }

    /// The (possibly shortened) value that was given.
    pub fn value(&self) -> &str {
        &self.value
    }
}

fn suggest(lower: &str) -> Option<Environment> {
    if lower.len() >= 2
        && let Some(env) = Environment::ALL
            .into_iter()
            .find(|env| env.as_str().starts_with(lower) || lower.starts_with(env.as_str()))
    {
        return Some(env);
    }
    Environment::ALL
        .into_iter()
        .map(|env| (env, strsim::jaro_winkler(lower, env.as_str())))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(env, _)| env)
}

impl fmt::Display for UnknownEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown environment `{}`; expected one of development, test, staging, production",
            self.value
        )?;
        if let Some(env) = self.suggestion {
            write!(f, " (did you mean `{env}`?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownEnvironment {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_name_in_any_case() {
        for env in Environment::ALL {
            assert_eq!(env.as_str().parse::<Environment>().unwrap(), env);
            assert_eq!(
                env.as_str().to_uppercase().parse::<Environment>().unwrap(),
                env
            );
        }
    }

    #[test]
    fn unknown_values_are_errors_with_suggestions() {
        let cases = [
            ("prod", Some(Environment::Production)),
            ("dev", Some(Environment::Development)),
            ("stage", Some(Environment::Staging)),
            ("testing", Some(Environment::Test)),
            ("productoin", Some(Environment::Production)),
            ("", None),
            ("banana", None),
        ];
        for (value, suggestion) in cases {
            let error = value.parse::<Environment>().unwrap_err();
            assert_eq!(error.suggestion(), suggestion, "{value}");
            assert!(error.to_string().contains("unknown environment"));
        }
    }

    #[test]
    fn long_or_control_values_are_shortened_in_messages() {
        let error = format!("x\n{}", "y".repeat(500))
            .parse::<Environment>()
            .unwrap_err();
        assert!(error.value().len() <= MAX_ECHO);
        assert!(!error.to_string().contains('\n'));
    }
}
