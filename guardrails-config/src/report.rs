//! Where values come from, and what is wrong with them.

use std::fmt;
use std::path::PathBuf;

use serde::{Serialize, Serializer};

use crate::Environment;
use crate::explain::Explain;

/// The source that set a configuration value.
///
/// Every [`Finding`] and every [`Explain`] entry names one, so an operator
/// knows which file or variable to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A typed default from code ([`Loader::defaults`](crate::Loader::defaults),
    /// [`Loader::default_value`](crate::Loader::default_value)).
    Default,
    /// A TOML file in the configuration directory.
    File {
        /// The file, as found under the configuration directory.
        path: PathBuf,
        /// The environment whose profile file this is; `None` for
        /// `default.toml`, which every environment reads.
        profile: Option<Environment>,
    },
    /// An environment variable (`{PREFIX}_SECTION__KEY`).
    Env {
        /// The variable's name.
        var: String,
    },
    /// A file named by a `{PREFIX}_SECTION__KEY_FILE` variable (Docker and
    /// Kubernetes secrets).
    SecretFile {
        /// The `*_FILE` variable's name.
        var: String,
        /// The file it names.
        path: PathBuf,
    },
    /// An explicit override from code ([`Loader::set`](crate::Loader::set)).
    Override,
    /// The loader itself (for problems that belong to no single value).
    Loader,
}

impl Source {
    /// `true` when this is a development profile file
    /// (`config/development.toml` or `config/test.toml`).
    pub fn is_development_file(&self) -> bool {
        matches!(self, Self::File { profile: Some(env), .. } if env.is_development_like())
    }

    /// `true` when the value was not read from the deployment itself: a code
    /// default, `default.toml`, or a development profile file.
    pub fn is_built_in(&self) -> bool {
        matches!(self, Self::Default | Self::File { profile: None, .. })
            || self.is_development_file()
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File { path, .. } => write!(f, "file {}", path.display()),
            Self::Env { var } => write!(f, "env {var}"),
            Self::SecretFile { var, path } => write!(f, "file {} (via {var})", path.display()),
            Self::Override => f.write_str("override"),
            Self::Loader => f.write_str("loader"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How bad a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported; start-up continues.
    Warning,
    /// Start-up must not continue.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// What kind of problem a [`Finding`] is; stable, for programs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// `{PREFIX}_ENV` names no known environment.
    UnknownEnvironment,
    /// A required configuration file is missing.
    MissingFile,
    /// A file could not be read (or is too large, or not UTF-8).
    UnreadableFile,
    /// A TOML file does not parse.
    Syntax,
    /// A key in a file, a default or an override matches no setting.
    UnknownKey,
    /// A variable under the prefix matches no setting, is malformed, or
    /// conflicts with another.
    UnknownVariable,
    /// A value has the wrong type or cannot be parsed.
    InvalidValue,
    /// A required setting has no value.
    MissingValue,
    /// The app's garde rules reject a value.
    Validation,
    /// A hardening rule rejects (or warns about) a value.
    Hardening(Rule),
}

impl FindingKind {
    /// A short, stable identifier (`unknown_key`, `hardening.secret_length`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownEnvironment => "unknown_environment",
            Self::MissingFile => "missing_file",
            Self::UnreadableFile => "unreadable_file",
            Self::Syntax => "syntax",
            Self::UnknownKey => "unknown_key",
            Self::UnknownVariable => "unknown_variable",
            Self::InvalidValue => "invalid_value",
            Self::MissingValue => "missing_value",
            Self::Validation => "validation",
            Self::Hardening(rule) => rule.as_str(),
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hardening rule (see [`Hardening`](crate::Hardening)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// A required setting (secret, URL, destination) is absent.
    Required,
    /// A secret is shorter than its policy's minimum.
    SecretLength,
    /// A secret's estimated entropy is below its policy's minimum.
    SecretEntropy,
    /// A secret came from a default, a shared file or a development profile,
    /// or equals a development value.
    DevelopmentSecret,
    /// A secret is not read from a file (warning).
    SecretNotFromFile,
    /// An external URL is not `https`, or embeds credentials.
    InsecureUrl,
    /// A debug flag is on.
    DebugEnabled,
    /// A CORS origin list allows any origin.
    WildcardCors,
    /// A rule the application defined.
    Custom(&'static str),
}

impl Rule {
    /// A short, stable identifier (`hardening.secret_length`, …; an app rule
    /// keeps the name the app gave it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "hardening.required",
            Self::SecretLength => "hardening.secret_length",
            Self::SecretEntropy => "hardening.secret_entropy",
            Self::DevelopmentSecret => "hardening.development_secret",
            Self::SecretNotFromFile => "hardening.secret_not_from_file",
            Self::InsecureUrl => "hardening.insecure_url",
            Self::DebugEnabled => "hardening.debug_enabled",
            Self::WildcardCors => "hardening.wildcard_cors",
            Self::Custom(name) => name,
        }
    }
}

/// One problem with the configuration: which key, from which source, what
/// is wrong. Its message never contains a configured value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub(crate) severity: Severity,
    pub(crate) kind: FindingKind,
    pub(crate) key: Option<String>,
    pub(crate) source: Option<Source>,
    pub(crate) message: String,
}

impl Finding {
    pub(crate) fn new(
        severity: Severity,
        kind: FindingKind,
        key: Option<String>,
        source: Option<Source>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            kind,
            key,
            source,
            message: message.into(),
        }
    }

    /// Error or warning.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// What kind of problem it is.
    pub fn kind(&self) -> FindingKind {
        self.kind
    }

    /// The dotted configuration key (`auth.hs256_secret`), when the problem
    /// belongs to one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The source that set the value, when known.
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }

    /// What is wrong, without the value.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        match (&self.key, &self.source) {
            (Some(key), Some(source)) => write!(f, "{key} (from {source}): ")?,
            (Some(key), None) => write!(f, "{key}: ")?,
            (None, Some(source)) => write!(f, "{source}: ")?,
            (None, None) => {}
        }
        write!(f, "{} [{}]", self.message, self.kind)
    }
}

impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Finding", 5)?;
        s.serialize_field("severity", &self.severity)?;
        s.serialize_field("kind", self.kind.as_str())?;
        s.serialize_field("key", &self.key)?;
        s.serialize_field("source", &self.source)?;
        s.serialize_field("message", &self.message)?;
        s.end()
    }
}

/// The configuration is invalid: every problem found, all at once.
///
/// `Display` lists each problem with its key, source and message; neither
/// `Display` nor `Debug` contains a configured value.
#[derive(Clone, Debug)]
pub struct ConfigError {
    pub(crate) environment: Option<Environment>,
    pub(crate) errors: Vec<Finding>,
    pub(crate) warnings: Vec<Finding>,
    pub(crate) explain: Option<Explain>,
}

impl ConfigError {
    /// The environment being loaded, unless choosing it was the problem.
    pub fn environment(&self) -> Option<Environment> {
        self.environment
    }

    /// The problems that stop start-up (never empty).
    pub fn errors(&self) -> &[Finding] {
        &self.errors
    }

    /// Warnings found along the way.
    pub fn warnings(&self) -> &[Finding] {
        &self.warnings
    }

    /// The (redacted) effective configuration as far as it could be merged,
    /// to help find the culprit.
    pub fn explain(&self) -> Option<&Explain> {
        self.explain.as_ref()
    }

    /// The keys named by the errors.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().filter_map(Finding::key)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(f, "invalid configuration")?;
        if let Some(env) = self.environment {
            write!(f, " for environment `{env}`")?;
        }
        write!(f, ": {n} problem{}", if n == 1 { "" } else { "s" })?;
        for finding in self.errors.iter().chain(&self.warnings) {
            write!(f, "\n  - {finding}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
