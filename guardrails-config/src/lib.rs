//! Layered, environment-aware, validated configuration with secrets that
//! never leak.
//!
//! `guardrails-config` loads the app's own configuration type from layered
//! sources, validates it with [garde], applies production hardening rules,
//! and reports *every* problem at once — each naming the key, the source it
//! came from, and what is wrong, never the value.
//!
//! # Layers
//!
//! Lowest precedence first:
//!
//! 1. typed defaults from code ([`Loader::defaults`], [`Loader::default_value`]);
//! 2. `{config_dir}/default.toml`;
//! 3. `{config_dir}/{environment}.toml` (`development.toml`, `production.toml`, …);
//! 4. environment variables `{PREFIX}_SECTION__KEY` (`__` nests; single
//!    underscores stay in key names) — see [the variable rules](#variables);
//! 5. `{PREFIX}_SECTION__KEY_FILE`: the value is read from the named file
//!    (Docker and Kubernetes secrets), one trailing newline trimmed;
//! 6. explicit overrides from code ([`Loader::set`], [`Loader::set_secret`]).
//!
//! The configuration directory is explicit ([`Loader::config_dir`]; no
//! search of parent directories). A missing file is fine unless marked
//! [`Requirement::Required`]. There is no `.env` loading at all, so none in
//! production either.
//!
//! The [`Environment`] comes from `{PREFIX}_ENV` (`development` when unset);
//! an unknown value is an error with a suggestion (`prod` → `production`).
//!
//! # Variables
//!
//! Variables are read as *strings*, always: unlike figment's `Env`
//! provider, `007`, `true`, `"quoted"` or `[a` reach a `String` or
//! `SecretString` field unchanged. Numeric and boolean fields still accept
//! them (`"8080"` → `8080`; `"true"`, `"yes"`, `"on"`, `"1"` → `true`), and
//! [`de::string_list`] reads a comma-separated list.
//!
//! A variable is *under the prefix* when its name is `{PREFIX}_` followed by
//!
//! - a `__`-nested key path: `{PREFIX}_SERVER__ADDR` → `server.addr`,
//!   `{PREFIX}_A__B__C_D` → `a.b.c_d` (single underscores stay in key names;
//!   names are matched case-insensitively, keys are lower-case), or
//! - the name of a top-level scalar key that a lower layer (a default or a
//!   file) already sets, or a declared top-level secret:
//!   `{PREFIX}_LOG_LEVEL` → `log_level`;
//!
//! either form may end in `_FILE`: `{PREFIX}_AUTH__HS256_SECRET_FILE` reads
//! `auth.hs256_secret` from the named file (one trailing `\n` or `\r\n`
//! trimmed; at most [`MAX_FILE_SIZE`] bytes) when the key without `_file` is
//! a declared secret or already set by a lower layer, and the key with
//! `_file` is not (so `{PREFIX}_TLS__CERT_FILE` still sets `tls.cert_file`
//! when that key exists). If both `X` and `X_FILE` are set, the file wins
//! and a warning says so. `{PREFIX}_ENV` chooses the environment.
//!
//! A variable under the prefix that matches no setting, or is malformed
//! (`{PREFIX}__X`, `{PREFIX}_A___B`), is a warning, or an error with
//! [`Loader::strict`]. Everything else that merely starts with the prefix is
//! *not* under it and is ignored, so it never breaks start-up — notably
//! Kubernetes service variables (`SAAS_API_SERVICE_HOST`,
//! `SAAS_SERVICE_PORT_HTTP`, `SAAS_PORT_8080_TCP_ADDR`, and
//! `SAAS_PORT=tcp://10.0.0.1:80` even when `port` is a key). One exception
//! helps with typos: `{PREFIX}_SERVER_ADDR`, a known section followed by a
//! single underscore, is reported as "did you mean `{PREFIX}_SERVER__ADDR`?".
//!
//! # Checks
//!
//! - **Unknown keys** in files, defaults and overrides are errors with a
//!   "did you mean" suggestion (use `#[serde(deny_unknown_fields)]` for the
//!   most precise ones).
//! - **Types**: every type error and missing value is reported with its key
//!   and source; the loader removes the culprit (or stands in for the
//!   missing value, never handing the stand-in out) and keeps going to find
//!   the next one, then runs garde and hardening on the rest.
//! - **garde**: the app type's own rules.
//! - **Hardening** ([`Configuration::harden`], [`Hardening`]): in
//!   `Production` (and the environments given to [`Loader::harden_in`]):
//!   secret length and entropy, no secret from a default or a development
//!   profile, `https` URLs, no debug flags, no wildcard CORS, secrets
//!   preferably from files, and the app's own rules.
//!
//! # Secrets
//!
//! Fields typed [`secrecy::SecretString`] deserialize from any source and
//! never serialize. Keys named in [`Configuration::SECRET_KEYS`] (or named
//! like secrets: `*secret*`, `*password*`, `*token*`, `*_key`, …) are
//! `[REDACTED]` in [`Explain`], and no error message of this crate contains
//! a configured value: type errors are built from the error's kind, not from
//! figment's message (which echoes the value), and TOML syntax errors name
//! the line and column, not the text. As a last line of defence, every
//! message (even one the app's own validator or hardening rule wrote) is
//! scrubbed of the text of every secret value before it is returned or
//! logged.
//!
//! # Example
//!
//! ```
//! use guardrails_config::{Configuration, Environment, Hardening, Loader, SecretPolicy};
//! use secrecy::{ExposeSecret, SecretString};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, garde::Validate)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     #[garde(dive)]
//!     server: Server,
//!     #[garde(skip)]
//!     api_secret: Option<SecretString>,
//! }
//!
//! #[derive(Deserialize, garde::Validate)]
//! #[serde(deny_unknown_fields)]
//! struct Server {
//!     #[garde(range(min = 1))]
//!     port: u16,
//!     #[garde(length(min = 1))]
//!     name: String,
//! }
//!
//! impl Configuration for Settings {
//!     const SECRET_KEYS: &'static [&'static str] = &["api_secret"];
//!     fn harden(&self, h: &mut Hardening<'_>) {
//!         h.secret("api_secret", self.api_secret.as_ref(), &SecretPolicy::hmac_key().required());
//!     }
//! }
//!
//! let loaded = Loader::new("APP")
//!     .default_value("server.port", 3000)
//!     .with_env_vars([
//!         ("APP_SERVER__PORT", "8080"),
//!         ("APP_SERVER__NAME", "007"),
//!         ("APP_API_SECRET", "true"),
//!     ])
//!     .load::<Settings>()?;
//! let settings = loaded.config();
//! assert_eq!(loaded.environment(), Environment::Development);
//! assert_eq!(settings.server.port, 8080);
//! assert_eq!(settings.server.name, "007");
//! assert_eq!(settings.api_secret.as_ref().unwrap().expose_secret(), "true");
//! # Ok::<(), guardrails_config::ConfigError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod de;
mod env;
mod environment;
pub mod explain;
pub mod harden;
mod loader;
mod report;

pub use environment::{Environment, UnknownEnvironment};
pub use explain::{Explain, ExplainEntry, REDACTED};
pub use harden::{Hardening, SecretPolicy, estimate_entropy_bits};
pub use loader::{Configuration, Loaded, Loader, MAX_FILE_SIZE, Requirement};
pub use report::{ConfigError, Finding, FindingKind, Rule, Severity, Source};
