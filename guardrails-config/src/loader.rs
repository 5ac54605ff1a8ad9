//! The loader: sources, layering, deserialization, validation, hardening.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::env::{EnvClass, Shape, classify, var_name};
use crate::explain::Explain;
use crate::harden::{Hardening, Reference};
use crate::{ConfigError, Environment, Finding, FindingKind, Severity, Source};

/// The largest file (TOML or `*_FILE` secret) the loader reads.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// The app's configuration type.
///
/// It deserializes with serde (any source), validates with garde, names
/// its secret keys, and applies [hardening](crate::Hardening) checks to its
/// own fields.
///
/// Tips:
///
/// - `#[serde(deny_unknown_fields)]` on every struct gives the loader the
///   list of valid keys, so an unknown key gets a precise "did you mean"
///   suggestion; without it unknown keys are still reported.
/// - `#[serde(flatten)]` hides keys from unknown-key detection; avoid it.
/// - Prefer typed defaults on the loader ([`Loader::default_value`]) to
///   `#[serde(default)]`: a serde default has no source and does not appear
///   in [`Explain`].
/// - garde reports paths by field name: keep serde renames out of the
///   settings types so both name the same key.
pub trait Configuration: DeserializeOwned + garde::Validate {
    /// Dotted keys of the secret settings (`auth.hs256_secret`). They are
    /// redacted in `explain` and never echoed in errors, and
    /// `{PREFIX}_{KEY}_FILE` works for them even when no lower layer sets
    /// them. Keys whose name contains `secret`, `password`, `passwd`,
    /// `passphrase`, `token`, `credential`, `private`, `privkey`,
    /// `authorization` or `dsn`, or ends in `key` or `keys`, are treated as
    /// secrets too, whatever their case and separators (`hmac_key`,
    /// `signing-key`, `accessKey`, `api_keys`).
    ///
    /// The loader cannot see field types: a `SecretString` field whose name
    /// says nothing of the kind (`stripe.signing`) must be listed here, or
    /// `explain` prints its value.
    const SECRET_KEYS: &'static [&'static str] = &[];

    /// Applies hardening checks; called only in hardened environments
    /// (always `Production`). The default applies none.
    fn harden(&self, hardening: &mut Hardening<'_>) {
        let _ = hardening;
    }
}

/// Whether a configuration file must exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Requirement {
    /// A missing file is fine.
    #[default]
    Optional,
    /// A missing file is an error.
    Required,
}

/// Loads a [`Configuration`] from layered sources. See the [crate
/// docs](crate) for the layers and the rules.
///
/// The loader only reads what it is told to: the configuration directory
/// is explicit (no search of parent directories), and the environment
/// variables can be injected ([`Loader::with_env_vars`]) so tests never touch
/// the process environment.
#[must_use]
pub struct Loader {
    prefix: String,
    config_dir: Option<PathBuf>,
    default_file: Requirement,
    environment_file: Requirement,
    env_vars: Option<Vec<(String, String)>>,
    environment: Option<Environment>,
    defaults: Dict,
    overrides: Dict,
    /// Kept secret until a load needs them.
    secret_overrides: Vec<(String, SecretString)>,
    setup_errors: Vec<Finding>,
    secret_keys: Vec<String>,
    strict: bool,
    hardened: BTreeSet<Environment>,
}

impl fmt::Debug for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Defaults, overrides and variables may hold secrets: list keys only.
        f.debug_struct("Loader")
            .field("prefix", &self.prefix)
            .field("config_dir", &self.config_dir)
            .field("default_file", &self.default_file)
            .field("environment_file", &self.environment_file)
            .field(
                "env_vars",
                &self
                    .env_vars
                    .as_ref()
                    .map(|vars| vars.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()),
            )
            .field("environment", &self.environment)
            .field("default_keys", &leaf_keys(&self.defaults))
            .field(
                "override_keys",
                &leaf_keys(&self.overrides)
                    .into_iter()
                    .chain(self.secret_overrides.iter().map(|(k, _)| k.clone()))
                    .collect::<Vec<_>>(),
            )
            .field("secret_keys", &self.secret_keys)
            .field("strict", &self.strict)
            .field("hardened", &self.hardened)
            .finish()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        wipe(&mut self.defaults);
        wipe(&mut self.overrides);
        if let Some(vars) = &mut self.env_vars {
            vars.zeroize();
        }
    }
}

impl Loader {
    /// A loader for variables `{prefix}_…` (an upper-case name such as
    /// `SAAS`), no configuration directory, hardening in `Production`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            config_dir: None,
            default_file: Requirement::Optional,
            environment_file: Requirement::Optional,
            env_vars: None,
            environment: None,
            defaults: Dict::new(),
            overrides: Dict::new(),
            secret_overrides: Vec::new(),
            setup_errors: Vec::new(),
            secret_keys: Vec::new(),
            strict: false,
            hardened: BTreeSet::from([Environment::Production]),
        }
    }

    /// Reads `default.toml` and `{environment}.toml` from `dir` (and only
    /// from there).
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// Whether `default.toml` must exist (default: optional).
    pub fn default_file(mut self, requirement: Requirement) -> Self {
        self.default_file = requirement;
        self
    }

    /// Whether `{environment}.toml` must exist (default: optional).
    pub fn environment_file(mut self, requirement: Requirement) -> Self {
        self.environment_file = requirement;
        self
    }

    /// Uses these variables instead of the process environment.
    pub fn with_env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env_vars = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Chooses the environment in code instead of `{PREFIX}_ENV`.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Typed defaults: `value` serialized (the lowest layer). Secret fields
    /// cannot be serialized (`SecretString` has no `Serialize`), so give a
    /// type without them, or use [`Loader::default_value`].
    pub fn defaults<D: Serialize>(mut self, value: &D) -> Self {
        match Value::serialize(value).ok().and_then(Value::into_dict) {
            Some(dict) => merge(&mut self.defaults, dict),
            None => self.setup_errors.push(Finding::new(
                Severity::Error,
                FindingKind::InvalidValue,
                None,
                Some(Source::Default),
                "the typed defaults do not serialize to a table",
            )),
        }
        self
    }

    /// A typed default for one dotted key.
    pub fn default_value<V: Serialize>(mut self, key: &str, value: V) -> Self {
        match Value::serialize(value) {
            Ok(value) => insert_path(&mut self.defaults, key, value),
            Err(_) => self.setup_errors.push(Finding::new(
                Severity::Error,
                FindingKind::InvalidValue,
                Some(key.to_owned()),
                Some(Source::Default),
                "the default does not serialize",
            )),
        }
        self
    }

    /// An explicit override from code: the highest layer.
    pub fn set<V: Serialize>(mut self, key: &str, value: V) -> Self {
        match Value::serialize(value) {
            Ok(value) => insert_path(&mut self.overrides, key, value),
            Err(_) => self.setup_errors.push(Finding::new(
                Severity::Error,
                FindingKind::InvalidValue,
                Some(key.to_owned()),
                Some(Source::Override),
                "the override does not serialize",
            )),
        }
        self
    }

    /// An explicit secret override from code (declares `key` a secret).
    pub fn set_secret(mut self, key: &str, value: &SecretString) -> Self {
        self.secret_keys.push(key.to_owned());
        self.secret_overrides.push((key.to_owned(), value.clone()));
        self
    }

    /// Declares another secret key, in addition to
    /// [`Configuration::SECRET_KEYS`].
    pub fn secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_keys.push(key.into());
        self
    }

    /// Strict mode: unknown or malformed variables under the prefix (and
    /// other warnings about variables) are errors.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Also applies hardening in these environments (`Production` always).
    pub fn harden_in(mut self, environments: impl IntoIterator<Item = Environment>) -> Self {
        self.hardened.extend(environments);
        self
    }

    /// The variables under `{PREFIX}_`: the injected ones, or the process
    /// environment's (values that are not UTF-8 are reported). The rest of
    /// the environment (other services' credentials) is never kept, and the
    /// copies are wiped when dropped.
    fn vars(&self, findings: &mut Vec<Finding>) -> Zeroizing<Vec<(String, String)>> {
        let under = format!("{}_", self.prefix);
        if let Some(vars) = &self.env_vars {
            return Zeroizing::new(
                vars.iter()
                    .filter(|(name, _)| name.starts_with(&under))
                    .cloned()
                    .collect(),
            );
        }
        let mut vars = Zeroizing::new(Vec::new());
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|name| name.starts_with(&under)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => vars.push((name.to_owned(), value)),
                Err(_) => findings.push(Finding::new(
                    Severity::Error,
                    FindingKind::InvalidValue,
                    None,
                    Some(Source::Env {
                        var: name.to_owned(),
                    }),
                    "is not valid UTF-8",
                )),
            }
        }
        vars
    }

    /// Resolves the environment: the one set in code, else `{PREFIX}_ENV`,
    /// else `Development`.
    ///
    /// # Errors
    ///
    /// When `{PREFIX}_ENV` names no known environment.
    pub fn resolve_environment(&self) -> Result<Environment, ConfigError> {
        let mut findings = Vec::new();
        let vars = self.vars(&mut findings);
        self.environment_from(&vars).map_err(|finding| ConfigError {
            environment: None,
            errors: vec![*finding],
            warnings: Vec::new(),
            explain: None,
        })
    }

    fn environment_from(&self, vars: &[(String, String)]) -> Result<Environment, Box<Finding>> {
        if let Some(env) = self.environment {
            return Ok(env);
        }
        // Names match case-insensitively after the prefix, the selector's
        // too: `{PREFIX}_Env=production` must not fall back to development.
        let mut selectors = vars.iter().rev().filter(|(k, _)| {
            k.strip_prefix(self.prefix.as_str())
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|rest| rest.eq_ignore_ascii_case("ENV"))
        });
        let Some((name, value)) = selectors.next() else {
            return Ok(Environment::default());
        };
        let finding = |message: String| {
            Box::new(Finding::new(
                Severity::Error,
                FindingKind::UnknownEnvironment,
                Some("environment".to_owned()),
                Some(Source::Env { var: name.clone() }),
                message,
            ))
        };
        if let Some((other, _)) = selectors.find(|(_, v)| v != value) {
            return Err(finding(format!(
                "{name} and {other} choose different environments"
            )));
        }
        value
            .parse()
            .map_err(|e: crate::UnknownEnvironment| finding(e.to_string()))
    }

    /// Loads, validates and hardens `T`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] with every problem found: unknown environment,
    /// missing required or unreadable files, syntax errors, unknown keys,
    /// wrong types, garde violations, hardening violations.
    pub fn load<T>(&self) -> Result<Loaded<T>, ConfigError>
    where
        T: Configuration,
        T::Context: Default,
    {
        self.load_with(&T::Context::default())
    }

    /// As [`Loader::load`], with a garde context.
    ///
    /// # Errors
    ///
    /// As [`Loader::load`].
    pub fn load_with<T: Configuration>(
        &self,
        context: &T::Context,
    ) -> Result<Loaded<T>, ConfigError> {
        let mut secrets: Vec<String> = T::SECRET_KEYS.iter().map(|s| (*s).to_owned()).collect();
        secrets.extend(self.secret_keys.iter().cloned());
        let mut run = Run {
            loader: self,
            secrets,
            errors: self.setup_errors.clone(),
            warnings: Vec::new(),
            layers: Vec::new(),
            env_keys: BTreeMap::new(),
            file_keys: BTreeMap::new(),
        };
        let result = run.load::<T>(context);
        let (environment, outcome) = match &result {
            Ok(loaded) => (Some(loaded.environment), "ok"),
            Err(error) => (error.environment, "invalid"),
        };
        record_metrics(environment, outcome);
        result
    }
}

#[cfg(feature = "metrics")]
fn record_metrics(environment: Option<Environment>, outcome: &'static str) {
    metrics::counter!(
        "guardrails_config_loads_total",
        "environment" => environment.map_or("unknown", Environment::as_str),
        "outcome" => outcome,
    )
    .increment(1);
}

#[cfg(not(feature = "metrics"))]
fn record_metrics(_: Option<Environment>, _: &'static str) {}

/// A loaded, validated and hardened configuration.
#[derive(Debug)]
pub struct Loaded<T> {
    config: T,
    environment: Environment,
    warnings: Vec<Finding>,
    explain: Explain,
}

impl<T> Loaded<T> {
    /// The configuration.
    pub fn config(&self) -> &T {
        &self.config
    }

    /// The configuration, mutably (to fill in fields the loader does not
    /// set, such as the environment).
    pub fn config_mut(&mut self) -> &mut T {
        &mut self.config
    }

    /// The configuration, taken out.
    pub fn into_config(self) -> T {
        self.config
    }

    /// The environment it was loaded for.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// Warnings (unknown variables, secrets not read from files, …).
    pub fn warnings(&self) -> &[Finding] {
        &self.warnings
    }

    /// The redacted effective configuration with the source of every value.
    pub fn explain(&self) -> &Explain {
        &self.explain
    }

    /// `(config, environment, explain, warnings)`.
    pub fn into_parts(self) -> (T, Environment, Explain, Vec<Finding>) {
        (self.config, self.environment, self.explain, self.warnings)
    }
}

#[derive(Clone, Debug)]
enum LayerKind {
    Default,
    File(PathBuf, Option<Environment>),
    Env,
    SecretFiles,
    Override,
}

struct Layer {
    kind: LayerKind,
    dict: Dict,
}

impl Layer {
    fn describe(&self, prefix: &str) -> String {
        match &self.kind {
            LayerKind::Default => "default".to_owned(),
            LayerKind::File(path, _) => format!("file {}", path.display()),
            LayerKind::Env => format!("env {prefix}_*"),
            LayerKind::SecretFiles => format!("secret files {prefix}_*_FILE"),
            LayerKind::Override => "override".to_owned(),
        }
    }
}

/// The merged layers as a figment provider, for figment's lossy
/// deserialization (strings to numbers and booleans) with error paths.
struct Merged<'a>(&'a Dict);

impl Provider for Merged<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named("configuration")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// A dictionary whose strings are wiped when it is dropped.
///
/// Best effort: the copies figment makes while extracting are out of reach,
/// but the loader's own copies of secrets do not outlive the load.
#[derive(Default)]
struct Wiped(Dict);

impl std::ops::Deref for Wiped {
    type Target = Dict;

    fn deref(&self) -> &Dict {
        &self.0
    }
}

impl std::ops::DerefMut for Wiped {
    fn deref_mut(&mut self) -> &mut Dict {
        &mut self.0
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites every string in `dict` with zeros.
fn wipe(dict: &mut Dict) {
    fn wipe_value(value: &mut Value) {
        match value {
            Value::String(_, s) => s.zeroize(),
            Value::Dict(_, inner) => wipe(inner),
            Value::Array(_, items) => items.iter_mut().for_each(wipe_value),
            _ => {}
        }
    }
    dict.values_mut().for_each(wipe_value);
}

/// One load.
struct Run<'l> {
    loader: &'l Loader,
    secrets: Vec<String>,
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
    layers: Vec<Layer>,
    env_keys: BTreeMap<String, String>,
    file_keys: BTreeMap<String, (String, PathBuf)>,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        for layer in &mut self.layers {
            wipe(&mut layer.dict);
        }
    }
}

impl Run<'_> {
    fn fail(&mut self, environment: Option<Environment>, explain: Option<Explain>) -> ConfigError {
        self.scrub_findings();
        ConfigError {
            environment,
            errors: std::mem::take(&mut self.errors),
            warnings: std::mem::take(&mut self.warnings),
            explain,
        }
    }

    /// Removes the text of every secret value, from any layer, from every
    /// message: the last line of defence against a message the app wrote
    /// (a garde validator on a table holding a secret, a hardening rule, a
    /// deserializer) that quotes a secret.
    fn scrub_findings(&mut self) {
        let mut texts = Vec::new();
        for layer in &self.layers {
            for (key, value) in &layer.dict {
                secret_texts(value, key, &|k| is_secret_key(&self.secrets, k), &mut texts);
            }
        }
        // Longest first, so a secret containing another goes whole.
        texts.sort_by_key(|text| std::cmp::Reverse(text.len()));
        for finding in self.errors.iter_mut().chain(self.warnings.iter_mut()) {
            for text in &texts {
                if finding.message.contains(text.as_str()) {
                    finding.message = finding
                        .message
                        .replace(text.as_str(), crate::explain::REDACTED);
                }
            }
        }
    }

    /// A problem with a variable: a warning, or an error in strict mode.
    fn variable_problem(&mut self, key: Option<String>, source: Source, message: String) {
        let severity = if self.loader.strict {
            Severity::Error
        } else {
            Severity::Warning
        };
        let finding = Finding::new(
            severity,
            FindingKind::UnknownVariable,
            key,
            Some(source),
            message,
        );
        match severity {
            Severity::Error => self.errors.push(finding),
            Severity::Warning => self.warnings.push(finding),
        }
    }

    fn is_secret(&self, key: &str) -> bool {
        is_secret_key(&self.secrets, key)
    }

    #[allow(
        clippy::too_many_lines,
        reason = "the load pipeline reads best in one place"
    )]
    fn load<T: Configuration>(&mut self, context: &T::Context) -> Result<Loaded<T>, ConfigError> {
        let loader = self.loader;
        let prefix = loader.prefix.as_str();
        if prefix.is_empty()
            || prefix.ends_with('_')
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            self.errors.push(Finding::new(
                Severity::Error,
                FindingKind::UnknownVariable,
                None,
                Some(Source::Loader),
                "the prefix must be upper-case letters, digits and `_`, not ending in `_`",
            ));
            return Err(self.fail(None, None));
        }
        let vars = loader.vars(&mut self.errors);
        let environment = match loader.environment_from(&vars) {
            Ok(env) => env,
            Err(finding) => {
                self.errors.push(*finding);
                return Err(self.fail(None, None));
            }
        };

        // 1. typed defaults
        if !loader.defaults.is_empty() {
            self.layers.push(Layer {
                kind: LayerKind::Default,
                dict: loader.defaults.clone(),
            });
        }
        // 2-3. default.toml, {environment}.toml
        if let Some(dir) = &loader.config_dir {
            if !dir.is_dir() {
                self.warnings.push(Finding::new(
                    Severity::Warning,
                    FindingKind::MissingFile,
                    None,
                    Some(Source::Loader),
                    format!(
                        "the configuration directory {} does not exist",
                        dir.display()
                    ),
                ));
            }
            let files = [
                ("default.toml".to_owned(), loader.default_file, None),
                (
                    format!("{environment}.toml"),
                    loader.environment_file,
                    Some(environment),
                ),
            ];
            for (name, requirement, profile) in files {
                let path = dir.join(name);
                if let Some(dict) = self.read_toml(&path, requirement, profile) {
                    self.layers.push(Layer {
                        kind: LayerKind::File(path, profile),
                        dict,
                    });
                }
            }
        }
        let mut lower = Wiped::default();
        for layer in &self.layers {
            merge(&mut lower, layer.dict.clone());
        }
        // 4-5. variables and *_FILE indirection
        let (env_dict, file_dict) = self.read_env(&vars, &lower);
        if !env_dict.is_empty() {
            self.layers.push(Layer {
                kind: LayerKind::Env,
                dict: env_dict,
            });
        }
        if !file_dict.is_empty() {
            self.layers.push(Layer {
                kind: LayerKind::SecretFiles,
                dict: file_dict,
            });
        }
        // 6. explicit overrides
        if !loader.overrides.is_empty() || !loader.secret_overrides.is_empty() {
            let mut dict = loader.overrides.clone();
            for (key, secret) in &loader.secret_overrides {
                insert_path(
                    &mut dict,
                    key,
                    Value::from(secret.expose_secret().to_owned()),
                );
            }
            self.layers.push(Layer {
                kind: LayerKind::Override,
                dict,
            });
        }

        // Merge as figment's `merge` does: tables recursively, anything
        // else replaced. A value's source is the highest layer setting it.
        let mut merged = Wiped::default();
        for layer in &self.layers {
            merge(&mut merged, layer.dict.clone());
        }
        let mut sources = BTreeMap::new();
        collect_sources(&merged, &mut Vec::new(), &mut |key, _| {
            if let Some(source) = self.source_of(key) {
                sources.insert(key.to_owned(), source);
            }
        });

        // Deserialize, collecting every problem: remove an invalid value,
        // stand in for a missing one, and try again.
        let mut pruned = Wiped(merged.clone());
        let mut extracted = None;
        let mut retry = Retry::default();
        for _ in 0..(leaf_count(&merged) + 8) * (PLACEHOLDERS + 1) {
            let attempt = Figment::from(Merged(&pruned)).extract_lossy::<Capture<T>>();
            match attempt {
                Ok(capture) => {
                    extracted = Some(capture);
                    break;
                }
                Err(error) => {
                    if !self.deserialize_error(&error, &merged, &sources, &mut pruned, &mut retry) {
                        break;
                    }
                }
            }
        }
        for path in retry.placeholders.keys() {
            remove_path(&mut pruned, path);
        }
        let config = extracted.map(|Capture { value, ignored }| {
            for path in ignored {
                let key = path.join(".");
                self.unknown_key(&key, None, &merged, &sources);
                remove_path(&mut pruned, &path);
            }
            value
        });

        // The explanation of what is in effect.
        let described: Vec<String> = self
            .layers
            .iter()
            .map(|layer| {
                let n = leaf_count(&layer.dict);
                format!(
                    "{} ({n} key{})",
                    layer.describe(prefix),
                    if n == 1 { "" } else { "s" }
                )
            })
            .collect();
        let mut explain = Explain::new(environment, described.clone());
        collect_sources(&pruned, &mut Vec::new(), &mut |key, value| {
            explain.push(
                key.to_owned(),
                value,
                &|k| self.is_secret(k),
                sources.get(key).cloned(),
            );
        });

        let Some(config) = config else {
            self.trace_failure(environment, &described);
            return Err(self.fail(Some(environment), Some(explain)));
        };

        // garde
        if let Err(report) = config.validate_with(context) {
            for (path, error) in report.iter() {
                let key = garde_key(&path.to_string());
                let value = find(&merged, &key);
                let message = if self.is_secret(&key) {
                    "is not a valid value (details withheld: secret)".to_owned()
                } else {
                    scrub(error.message(), value)
                };
                if retry.is_broken(&key) {
                    continue;
                }
                self.errors.push(Finding::new(
                    Severity::Error,
                    FindingKind::Validation,
                    Some(key.clone()),
                    source_for(&sources, &key),
                    message,
                ));
            }
        }

        // hardening
        if loader.hardened.contains(&environment) {
            let references = self.development_references(environment);
            let mut hardening = Hardening::new(environment, prefix, &sources, &references);
            config.harden(&mut hardening);
            for finding in hardening.into_findings() {
                if finding.key().is_some_and(|key| retry.is_broken(key)) {
                    continue;
                }
                match finding.severity {
                    Severity::Error => self.errors.push(finding),
                    Severity::Warning => self.warnings.push(finding),
                }
            }
        }

        if !self.errors.is_empty() {
            self.trace_failure(environment, &described);
            return Err(self.fail(Some(environment), Some(explain)));
        }
        self.scrub_findings();
        for warning in &self.warnings {
            tracing::warn!(
                target: "guardrails_config",
                key = warning.key().unwrap_or("-"),
                source = %warning.source().map_or_else(|| "-".to_owned(), ToString::to_string),
                kind = warning.kind().as_str(),
                "{}",
                warning.message()
            );
        }
        tracing::info!(
            target: "guardrails_config",
            environment = environment.as_str(),
            sources = %described.join(", "),
            keys = explain.entries().len(),
            secrets = explain.entries().iter().filter(|e| e.is_secret()).count(),
            warnings = self.warnings.len(),
            hardened = loader.hardened.contains(&environment),
            "configuration loaded"
        );
        Ok(Loaded {
            config,
            environment,
            warnings: std::mem::take(&mut self.warnings),
            explain,
        })
    }

    fn trace_failure(&self, environment: Environment, described: &[String]) {
        tracing::error!(
            target: "guardrails_config",
            environment = environment.as_str(),
            sources = %described.join(", "),
            problems = self.errors.len(),
            warnings = self.warnings.len(),
            "configuration rejected"
        );
    }

    /// Reads and parses one TOML file; `None` when absent or broken (with
    /// a finding unless absent and optional).
    fn read_toml(
        &mut self,
        path: &Path,
        requirement: Requirement,
        profile: Option<Environment>,
    ) -> Option<Dict> {
        let source = Source::File {
            path: path.to_owned(),
            profile,
        };
        let text = match read_limited(path) {
            // The file may hold secrets (`production.toml`): wiped when dropped.
            Ok(text) => Zeroizing::new(text),
            Err(ReadError::NotFound) => {
                if requirement == Requirement::Required {
                    self.errors.push(Finding::new(
                        Severity::Error,
                        FindingKind::MissingFile,
                        None,
                        Some(source),
                        "this required configuration file does not exist",
                    ));
                }
                return None;
            }
            Err(error) => {
                self.errors.push(Finding::new(
                    Severity::Error,
                    FindingKind::UnreadableFile,
                    None,
                    Some(source),
                    error.to_string(),
                ));
                return None;
            }
        };
        match parse_toml(&text) {
            Ok(dict) => Some(dict),
            Err(message) => {
                self.errors.push(Finding::new(
                    Severity::Error,
                    FindingKind::Syntax,
                    None,
                    Some(source),
                    message,
                ));
                None
            }
        }
    }

    /// The variables layer and the secret-files layer.
    fn read_env(&mut self, vars: &[(String, String)], lower: &Dict) -> (Dict, Dict) {
        let prefix = self.loader.prefix.clone();
        let secrets = self.secrets.clone();
        let shape = Shape {
            lower,
            secrets: &secrets,
        };
        let mut env_dict = Dict::new();
        let mut file_dict = Dict::new();
        let mut sorted: Vec<&(String, String)> = vars.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in sorted {
            let source = Source::Env { var: name.clone() };
            match classify(&prefix, name, value, &shape) {
                EnvClass::Selector | EnvClass::Foreign => {}
                EnvClass::Kubernetes => {
                    tracing::debug!(target: "guardrails_config", var = %name, "ignoring a Kubernetes service variable");
                }
                EnvClass::Malformed(why) => {
                    self.variable_problem(None, source, format!("is under the prefix but {why}"));
                }
                EnvClass::Typo(suggestion) => self.variable_problem(
                    None,
                    source,
                    format!("is not a configuration variable (sections nest with `__`); did you mean {suggestion}?"),
                ),
                EnvClass::Key(path) => {
                    let key = path.join(".");
                    if let Some(previous) = self.env_keys.insert(key.clone(), name.clone()) {
                        self.variable_problem(
                            Some(key.clone()),
                            source,
                            format!("sets the same key as {previous}; {name} wins"),
                        );
                    }
                    insert_segments(&mut env_dict, &path, Value::from(value.clone()));
                }
                EnvClass::File(path) => {
                    let key = path.join(".");
                    let file = PathBuf::from(value);
                    match read_limited(&file) {
                        Ok(mut contents) => {
                            if contents.ends_with('\n') {
                                contents.pop();
                                if contents.ends_with('\r') {
                                    contents.pop();
                                }
                            }
                            if let Some((previous, _)) =
                                self.file_keys.insert(key.clone(), (name.clone(), file.clone()))
                            {
                                self.variable_problem(
                                    Some(key.clone()),
                                    source,
                                    format!("sets the same key as {previous}; {name} wins"),
                                );
                            }
                            insert_segments(&mut file_dict, &path, Value::from(contents));
                        }
                        Err(error) => {
                            // The variable's value is not quoted: a secret put
                            // where its file's path belongs would be printed.
                            let message = match error {
                                ReadError::NotFound => "names a file that does not exist".to_owned(),
                                other => format!("names a file that cannot be read: {other}"),
                            };
                            self.errors.push(Finding::new(
                                Severity::Error,
                                FindingKind::UnreadableFile,
                                Some(key),
                                Some(source),
                                message,
                            ));
                        }
                    }
                }
            }
        }
        // A key set both directly and through a file: the file wins.
        for (key, (file_var, _)) in &self.file_keys.clone() {
            if let Some(var) = self.env_keys.get(key).cloned() {
                self.variable_problem(
                    Some(key.clone()),
                    Source::Env { var: var.clone() },
                    format!("is also set through {file_var}; the file wins"),
                );
            }
        }
        (env_dict, file_dict)
    }

    /// The source of the value at `key`: the highest layer that sets it.
    fn source_of(&self, key: &str) -> Option<Source> {
        let layer = self
            .layers
            .iter()
            .rev()
            .find(|layer| find(&layer.dict, key).is_some())?;
        Some(match &layer.kind {
            LayerKind::Default => Source::Default,
            LayerKind::File(path, profile) => Source::File {
                path: path.clone(),
                profile: *profile,
            },
            LayerKind::Env => Source::Env {
                var: self.env_keys.get(key).cloned().unwrap_or_else(|| {
                    let path: Vec<&str> = key.split('.').collect();
                    var_name(&self.loader.prefix, &path)
                }),
            },
            LayerKind::SecretFiles => {
                let (var, path) = self.file_keys.get(key)?.clone();
                Source::SecretFile { var, path }
            }
            LayerKind::Override => Source::Override,
        })
    }

    /// Turns one deserialization error into a finding and changes `pruned`
    /// so the next attempt gets past it: an invalid value is removed, a
    /// missing one gets a stand-in. `false` when no further attempt can help.
    fn deserialize_error(
        &mut self,
        error: &figment::Error,
        merged: &Dict,
        sources: &BTreeMap<String, Source>,
        pruned: &mut Dict,
        retry: &mut Retry,
    ) -> bool {
        let path = error.path.clone();
        let key = path.join(".");
        match &error.kind {
            Kind::UnknownField(_, expected) => {
                self.unknown_key(&key, Some(expected), merged, sources);
                remove_path(pruned, &path)
            }
            Kind::MissingField(field) => {
                let mut full = path;
                full.push(field.to_string());
                let key = full.join(".");
                // Missing because an invalid value was removed, or inside a
                // stand-in: already reported.
                let consequence = find(merged, &key).is_some()
                    || retry
                        .placeholders
                        .keys()
                        .any(|p| full.len() > p.len() && full.starts_with(p));
                if !consequence {
                    let message = if self.is_secret(&key) {
                        let p: Vec<&str> = full.iter().map(String::as_str).collect();
                        let var = var_name(&self.loader.prefix, &p);
                        format!("is required but not set (set {var} or {var}_FILE)")
                    } else {
                        "is required but not set".to_owned()
                    };
                    self.errors.push(Finding::new(
                        Severity::Error,
                        FindingKind::MissingValue,
                        Some(key.clone()),
                        None,
                        message,
                    ));
                }
                retry.broken.insert(key);
                match placeholder(0) {
                    Some(value) => {
                        insert_segments(pruned, &full, value);
                        retry.placeholders.insert(full, 0);
                        true
                    }
                    None => false,
                }
            }
            kind => {
                // A stand-in of the wrong type: try the next one.
                if let Some((at, tried)) = retry
                    .placeholders
                    .iter_mut()
                    .find(|(p, _)| path.starts_with(p))
                {
                    *tried += 1;
                    return match placeholder(*tried) {
                        Some(value) => {
                            insert_segments(pruned, at, value);
                            true
                        }
                        None => false,
                    };
                }
                let secret = self.is_secret(&key);
                let value = find(merged, &key);
                let message = describe_kind(kind, secret, value);
                self.errors.push(Finding::new(
                    Severity::Error,
                    FindingKind::InvalidValue,
                    (!key.is_empty()).then(|| key.clone()),
                    source_for(sources, &key),
                    message,
                ));
                retry.broken.insert(key);
                !path.is_empty() && remove_path(pruned, &path)
            }
        }
    }

    /// Reports a key no setting consumed: an error for files, defaults and
    /// overrides; for variables a warning (an error in strict mode).
    fn unknown_key(
        &mut self,
        key: &str,
        expected: Option<&&'static [&'static str]>,
        merged: &Dict,
        sources: &BTreeMap<String, Source>,
    ) {
        let (parent, last) = key.rsplit_once('.').map_or(("", key), |(p, l)| (p, l));
        let candidates: Vec<String> = match expected {
            Some(fields) => fields.iter().map(|f| (*f).to_owned()).collect(),
            None => siblings(merged, parent)
                .into_iter()
                .filter(|k| k != last)
                .chain(self.secrets.iter().filter_map(|s| {
                    let (p, l) = s.rsplit_once('.').map_or(("", s.as_str()), |(p, l)| (p, l));
                    (p == parent).then(|| l.to_owned())
                }))
                .collect(),
        };
        let suggestion = best_match(last, &candidates).map(|field| {
            if parent.is_empty() {
                field
            } else {
                format!("{parent}.{field}")
            }
        });
        let source = source_for(sources, key);
        match &source {
            Some(Source::Env { var }) => {
                let hint = suggestion.map_or_else(String::new, |s| {
                    let p: Vec<&str> = s.split('.').collect();
                    format!("; did you mean {}?", var_name(&self.loader.prefix, &p))
                });
                let message = format!("{var} does not match any setting{hint}");
                self.variable_problem(
                    Some(key.to_owned()),
                    source.clone().unwrap_or(Source::Loader),
                    message,
                );
            }
            Some(Source::SecretFile { var, .. }) => {
                let hint = suggestion.map_or_else(String::new, |s| {
                    let p: Vec<&str> = s.split('.').collect();
                    format!("; did you mean {}_FILE?", var_name(&self.loader.prefix, &p))
                });
                let message = format!("{var} does not match any setting{hint}");
                self.variable_problem(
                    Some(key.to_owned()),
                    source.clone().unwrap_or(Source::Loader),
                    message,
                );
            }
            _ => {
                let hint =
                    suggestion.map_or_else(String::new, |s| format!("; did you mean `{s}`?"));
                let message = match &expected {
                    Some(fields) if !fields.is_empty() => format!(
                        "unknown key `{key}`{hint} (expected one of: {})",
                        fields.join(", ")
                    ),
                    _ => format!("unknown key `{key}`{hint}"),
                };
                self.errors.push(Finding::new(
                    Severity::Error,
                    FindingKind::UnknownKey,
                    Some(key.to_owned()),
                    source,
                    message,
                ));
            }
        }
    }

    /// Development values that must not appear in a hardened environment:
    /// the code defaults and the development and test profile files.
    fn development_references(&self, environment: Environment) -> Vec<Reference> {
        let mut references = Vec::new();
        let mut push = |dict: &Dict, source: &Source| {
            collect_sources(dict, &mut Vec::new(), &mut |key, value| {
                if let Value::String(_, s) = value
                    && s.len() >= 8
                {
                    references.push(Reference {
                        key: key.to_owned(),
                        value: s.clone(),
                        source: source.clone(),
                    });
                }
            });
        };
        push(&self.loader.defaults, &Source::Default);
        if let Some(dir) = &self.loader.config_dir {
            for env in [Environment::Development, Environment::Test] {
                if env == environment {
                    continue;
                }
                let path = dir.join(format!("{env}.toml"));
                if let Some(dict) = read_limited(&path).ok().and_then(|t| parse_toml(&t).ok()) {
                    push(
                        &dict,
                        &Source::File {
                            path,
                            profile: Some(env),
                        },
                    );
                }
            }
        }
        references
    }
}

/// What the deserialization retries changed.
#[derive(Default)]
struct Retry {
    /// Stand-ins for missing values: path → index of the stand-in tried.
    placeholders: BTreeMap<Vec<String>, usize>,
    /// Keys with a deserialization problem: garde and hardening findings
    /// about them (made on stand-ins or absent values) are noise.
    broken: BTreeSet<String>,
}

impl Retry {
    fn is_broken(&self, key: &str) -> bool {
        self.broken.iter().any(|b| {
            key == b
                || key
                    .strip_prefix(b.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        })
    }
}

/// How many stand-ins [`placeholder`] has.
const PLACEHOLDERS: usize = 6;

/// Stand-ins for a missing required value, tried in order, so that
/// deserialization gets past it and finds the next problem. The resulting
/// value is never handed out: a missing value is an error.
fn placeholder(n: usize) -> Option<Value> {
    Some(match n {
        0 => Value::from(String::new()),
        1 => Value::from(0u8),
        2 => Value::from(false),
        3 => Value::from(Dict::new()),
        4 => Value::from(Vec::<Value>::new()),
        5 => Value::from("0.0.0.0:0".to_owned()),
        _ => return None,
    })
}

/// Wraps `T`'s deserialization to collect the keys it ignored.
struct Capture<T> {
    value: T,
    ignored: Vec<Vec<String>>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Capture<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut ignored = Vec::new();
        let value = serde_ignored::deserialize(deserializer, |path| {
            let mut segments = Vec::new();
            ignored_segments(&path, &mut segments);
            ignored.push(segments);
        })?;
        Ok(Self { value, ignored })
    }
}

fn ignored_segments(path: &serde_ignored::Path<'_>, out: &mut Vec<String>) {
    use serde_ignored::Path as P;
    match path {
        P::Root => {}
        P::Seq { parent, index } => {
            ignored_segments(parent, out);
            out.push(index.to_string());
        }
        P::Map { parent, key } => {
            ignored_segments(parent, out);
            out.push(key.clone());
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_segments(parent, out);
        }
    }
}

/// A deserialization error's message, built from its kind, never from the
/// value.
fn describe_kind(kind: &Kind, secret: bool, value: Option<&Value>) -> String {
    match kind {
        Kind::InvalidType(actual, expected) => {
            format!(
                "has the wrong type: expected {expected}, found {}",
                describe_actual(actual)
            )
        }
        Kind::InvalidValue(_, expected) => format!("has an invalid value: expected {expected}"),
        Kind::InvalidLength(len, expected) => {
            format!("has {len} elements, expected {expected}")
        }
        Kind::UnknownVariant(variant, expected) => {
            let hint = if secret {
                None
            } else {
                let candidates: Vec<String> = expected.iter().map(|e| (*e).to_owned()).collect();
                best_match(variant, &candidates)
            };
            let hint = hint.map_or_else(String::new, |h| format!(" (did you mean `{h}`?)"));
            format!("is not one of: {}{hint}", expected.join(", "))
        }
        Kind::Message(message) => {
            if secret {
                "is not a valid value (details withheld: secret)".to_owned()
            } else {
                format!("is not a valid value: {}", scrub(message, value))
            }
        }
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "is out of range".to_owned(),
        Kind::Unsupported(actual) => {
            format!("has an unsupported type: {}", describe_actual(actual))
        }
        Kind::UnsupportedKey(actual, expected) => {
            format!(
                "has a key of type {}, expected {expected}",
                describe_actual(actual)
            )
        }
        Kind::MissingField(field) => format!("is missing `{field}`"),
        Kind::DuplicateField(field) => format!("sets `{field}` twice"),
        Kind::UnknownField(field, _) => format!("has an unknown key `{field}`"),
    }
}

fn describe_actual(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "nothing",
        Actual::Option => "an option",
        Actual::NewtypeStruct => "a newtype",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        Actual::Enum
        | Actual::UnitVariant
        | Actual::NewtypeVariant
        | Actual::TupleVariant
        | Actual::StructVariant => "an enum",
        Actual::Other(_) => "another type",
    }
}

/// Collects the text of the values at secret keys (or below them) in
/// `value`, which is at `key`; texts shorter than 3 bytes are left out, as
/// in [`scrub`].
fn secret_texts(
    value: &Value,
    key: &str,
    is_secret: &dyn Fn(&str) -> bool,
    out: &mut Vec<Zeroizing<String>>,
) {
    match value {
        Value::Dict(_, dict) => {
            for (k, v) in dict {
                secret_texts(v, &format!("{key}.{k}"), is_secret, out);
            }
        }
        Value::Array(_, items) => {
            for (i, v) in items.iter().enumerate() {
                secret_texts(v, &format!("{key}.{i}"), is_secret, out);
            }
        }
        leaf if is_secret(key) => {
            let text = Zeroizing::new(value_text(Some(leaf)));
            if text.trim().len() >= 3 {
                out.push(Zeroizing::new(text.trim().to_owned()));
            }
        }
        _ => {}
    }
}

/// The text of a string or integer value (empty for anything else).
fn value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(_, s)) => s.clone(),
        Some(Value::Num(_, n)) => n
            .to_i128()
            .map(|i| i.to_string())
            .or_else(|| n.to_u128().map(|u| u.to_string()))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Removes every occurrence of the value's text from `message`.
fn scrub(message: &str, value: Option<&Value>) -> String {
    let text = value_text(value);
    let text = text.trim();
    if text.len() >= 3 && message.contains(text) {
        message.replace(text, crate::explain::REDACTED)
    } else {
        message.to_owned()
    }
}

/// Whether `key` holds a secret: declared, under a declared secret, or
/// named like one.
pub(crate) fn is_secret_key(declared: &[String], key: &str) -> bool {
    if declared.iter().any(|s| {
        key == s
            || key
                .strip_prefix(s.as_str())
                .is_some_and(|r| r.starts_with('.'))
    }) {
        return true;
    }
    key.split('.').any(|segment| {
        // `signing-key`, `signingKey` and `signing_key` alike.
        let s: String = segment
            .chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        [
            "secret",
            "password",
            "passwd",
            "token",
            "credential",
            "private",
            "privkey",
            "passphrase",
            "authorization",
            "dsn",
        ]
        .iter()
        .any(|w| s.contains(w))
            || s.ends_with("key")
            || s.ends_with("keys")
    })
}

fn best_match(word: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (c, strsim::jaro_winkler(word, c)))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c.clone())
}

fn siblings(dict: &Dict, parent: &str) -> Vec<String> {
    let mut current = dict;
    if !parent.is_empty() {
        for segment in parent.split('.') {
            match current.get(segment) {
                Some(Value::Dict(_, inner)) => current = inner,
                _ => return Vec::new(),
            }
        }
    }
    current.keys().cloned().collect()
}

/// `errors[0].detail` → `errors.0.detail` (garde indexes with brackets).
fn garde_key(path: &str) -> String {
    path.replace('[', ".")
        .replace(']', "")
        .trim_start_matches('.')
        .to_owned()
}

/// The source of `key`: its own, else its first descendant's (for a table),
/// else its closest ancestor's (for an element of a list).
fn source_for(sources: &BTreeMap<String, Source>, key: &str) -> Option<Source> {
    if let Some(source) = sources.get(key) {
        return Some(source.clone());
    }
    let below = format!("{key}.");
    if let Some((_, source)) = sources
        .range(below.clone()..)
        .next()
        .filter(|(k, _)| k.starts_with(&below))
    {
        return Some(source.clone());
    }
    let mut key = key;
    loop {
        if let Some(source) = sources.get(key) {
            return Some(source.clone());
        }
        key = key.rsplit_once('.')?.0;
    }
}

/// The value at a dotted key (array elements by index).
fn find<'a>(dict: &'a Dict, key: &str) -> Option<&'a Value> {
    let mut segments = key.split('.');
    let mut value = dict.get(segments.next()?)?;
    for segment in segments {
        value = match value {
            Value::Dict(_, d) => d.get(segment)?,
            Value::Array(_, a) => a.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Removes the value at `path` (the whole list, for a path into a list).
fn remove_path(dict: &mut Dict, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return dict.remove(first).is_some();
    }
    match dict.get_mut(first) {
        Some(Value::Dict(_, inner)) => remove_path(inner, rest),
        Some(_) => dict.remove(first).is_some(),
        None => false,
    }
}

/// Calls `f(key, value)` for every leaf (non-table value), in key order.
fn collect_sources(dict: &Dict, prefix: &mut Vec<String>, f: &mut dyn FnMut(&str, &Value)) {
    for (key, value) in dict {
        prefix.push(key.clone());
        match value {
            Value::Dict(_, inner) => collect_sources(inner, prefix, f),
            leaf => f(&prefix.join("."), leaf),
        }
        prefix.pop();
    }
}

fn leaf_keys(dict: &Dict) -> Vec<String> {
    let mut keys = Vec::new();
    collect_sources(dict, &mut Vec::new(), &mut |key, _| {
        keys.push(key.to_owned());
    });
    keys
}

fn leaf_count(dict: &Dict) -> usize {
    dict.values()
        .map(|v| match v {
            Value::Dict(_, inner) => leaf_count(inner),
            _ => 1,
        })
        .sum()
}

/// Merges `new` into `base`: tables recursively, anything else replaced.
fn merge(base: &mut Dict, new: Dict) {
    for (key, value) in new {
        match (base.get_mut(&key), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, incoming)) => merge(existing, incoming),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn insert_path(dict: &mut Dict, key: &str, value: Value) {
    let path: Vec<String> = key.split('.').map(str::to_owned).collect();
    insert_segments(dict, &path, value);
}

fn insert_segments(dict: &mut Dict, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert_segments(inner, rest, value);
    }
}

/// Parses TOML into a figment dictionary. The error names the line and
/// column and what is wrong, never the offending text (which may be a
/// secret).
pub(crate) fn parse_toml(text: &str) -> Result<Dict, String> {
    match text.parse::<toml::Table>() {
        Ok(table) => Ok(table
            .into_iter()
            .map(|(k, v)| (k, toml_to_value(v)))
            .collect()),
        Err(error) => {
            let at = error.span().map_or_else(String::new, |span| {
                // `get`, not indexing: a slicing panic would print the text.
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(" at line {line}, column {column}")
            });
            let what = error
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_owned();
            Err(format!("is not valid TOML{at}: {what}"))
        }
    }
}

fn toml_to_value(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::from(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::from(b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(a) => Value::from(a.into_iter().map(toml_to_value).collect::<Vec<_>>()),
        toml::Value::Table(t) => Value::from(
            t.into_iter()
                .map(|(k, v)| (k, toml_to_value(v)))
                .collect::<Dict>(),
        ),
    }
}

#[derive(Debug)]
enum ReadError {
    NotFound,
    NotAFile,
    TooLarge,
    NotUtf8,
    Io(std::io::ErrorKind),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::NotAFile => f.write_str("not a regular file"),
            Self::TooLarge => write!(f, "larger than {MAX_FILE_SIZE} bytes"),
            Self::NotUtf8 => f.write_str("not UTF-8"),
            Self::Io(kind) => write!(f, "{kind}"),
        }
    }
}

fn read_limited(path: &Path) -> Result<String, ReadError> {
    let not_found = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound,
        kind => ReadError::Io(kind),
    };
    // Only a regular file (through symlinks, as Kubernetes mounts secrets):
    // opening a FIFO would block start-up until something writes to it.
    if !std::fs::metadata(path).map_err(not_found)?.is_file() {
        return Err(ReadError::NotAFile);
    }
    let file = std::fs::File::open(path).map_err(not_found)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(e.kind()))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        let declared = vec!["auth.signing".to_owned()];
        for key in [
            "auth.signing",
            "auth.signing.inner",
            "db.password",
            "api.token",
            "audit.hmac_key",
            "stripe.apikey",
            "x.private_pem",
            "client_secret",
            "key",
            "tls.privkey",
            "gpg.passphrase",
            "upstream.authorization",
            "sentry.dsn",
            "audit.signing-key",
            "audit.hmacKey",
            "aws.accessKey",
            "clients.api_keys",
            "webhook.Signing_Secret",
        ] {
            assert!(is_secret_key(&declared, key), "{key}");
        }
        for key in [
            "server.addr",
            "auth.issuer",
            "auth.signing_alg",
            "keyboard.layout",
            "audit.path",
        ] {
            assert!(!is_secret_key(&declared, key), "{key}");
        }
    }

    #[test]
    fn toml_errors_name_position_not_text() {
        let error = parse_toml("a = 1\nsecret = \"hunter2-canary\nb = 2\n").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn scrub_removes_values() {
        let v = Value::from("abc-secret".to_owned());
        assert_eq!(
            scrub("bad abc-secret here", Some(&v)),
            "bad [REDACTED] here"
        );
        assert_eq!(scrub("bad", None), "bad");
    }

    #[test]
    fn paths() {
        let mut dict = parse_toml("[a]\nb = 1\nc = [1, 2]\n").unwrap();
        assert!(find(&dict, "a.c.1").is_some());
        assert!(remove_path(
            &mut dict,
            &["a".into(), "c".into(), "1".into()]
        ));
        assert!(find(&dict, "a.c").is_none());
        assert_eq!(garde_key("a.list[0].x"), "a.list.0.x");
        assert_eq!(garde_key("[0]"), "0");
    }
}
