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
//! {PREFIX}_SECTION__KEY variables are read as *strings*, always: unlike
//! figment's `Env` provider, `007`, `true`, `"quoted"` or `[a` reach a
//! `String` or `SecretString` field unchanged. Numeric and boolean fields
//! still accept them (`"8080"` → `8080`, `"true"`/`"yes"`/`"1"` → `true`).
//!
//! Which variables are *under the prefix* is defined precisely in the
//! [`env` rules](crate#variables): `{PREFIX}_` followed by a `__`-nested
//! path, or by a top-level scalar key a lower layer already sets, optionally
//! ending in `_FILE`, plus `{PREFIX}_ENV`. Such a variable that matches no
//! setting is a warning (an error with [`Loader::strict`]). Everything else
//! that merely starts with the prefix — Kubernetes service variables like
//! `SAAS_API_SERVICE_HOST` or `SAAS_PORT=tcp://10.0.0.1:80` — is ignored and
//! never breaks start-up. `SAAS_SERVER_ADDR` (one underscore after a known
//! section) is reported as a probable typo of `SAAS_SERVER__ADDR`.
//!
//! # Checks
//!
//! - **Unknown keys** in files, defaults and overrides are errors with a
//!   "did you mean" suggestion (use `#[serde(deny_unknown_fields)]` for the
//!   most precise ones).
//! - **Types**: every type error is reported with its key and source; the
//!   loader removes the culprit and keeps going to find the next one.
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
//! the line and column, not the text.
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
