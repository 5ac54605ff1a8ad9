//! The app's settings, loaded with guardrails-config under the contract in
//! the workspace README.
//!
//! Layers, lowest first: the built-in defaults below, `config/default.toml`,
//! `config/{environment}.toml`, variables `SAAS_SECTION__KEY`,
//! `SAAS_SECTION__KEY_FILE` (the value is read from the file), overrides.
//! The environment comes from `SAAS_ENV` (default `development`; an unknown
//! value is an error). The configuration directory is `SAAS_CONFIG_DIR`, else
//! `./config` when it holds a `default.toml`, else this crate's own `config/`.
//!
//! | key | variable | default |
//! |---|---|---|
//! | `server.addr` | `SAAS_SERVER__ADDR` | `127.0.0.1:3000` |
//! | `server.max_connections` | `SAAS_SERVER__MAX_CONNECTIONS` | `900` |
//! | `auth.issuer` | `SAAS_AUTH__ISSUER` | `saas-api-dev` |
//! | `auth.audience` | `SAAS_AUTH__AUDIENCE` | `saas-api` |
//! | `auth.jwks_url` | `SAAS_AUTH__JWKS_URL` | — |
//! | `auth.hs256_secret` (secret) | `SAAS_AUTH__HS256_SECRET`, `SAAS_AUTH__HS256_SECRET_FILE` | development only: `config/development.toml` |
//! | `audit.path` | `SAAS_AUDIT__PATH` | `var/audit.jsonl` |
//! | `audit.hmac_key` (secret) | `SAAS_AUDIT__HMAC_KEY`, `SAAS_AUDIT__HMAC_KEY_FILE` | — |
//! | `audit.previous_hmac_key` (secret) | `SAAS_AUDIT__PREVIOUS_HMAC_KEY`, `SAAS_AUDIT__PREVIOUS_HMAC_KEY_FILE` | — (the file trail's key before `hmac_key`, for the one start that changes the key; then remove it) |
//! | `audit.postgres_url` (secret) | `SAAS_AUDIT__POSTGRES_URL`, `SAAS_AUDIT__POSTGRES_URL_FILE` | — (the file at `audit.path`) |
//! | `audit.postgres_ca_file` | `SAAS_AUDIT__POSTGRES_CA_FILE` | — (the webpki roots only) |
//! | `audit.chain_id` | `SAAS_AUDIT__CHAIN_ID` | a fresh id per process start (PostgreSQL only) |
//!
//! In `staging` and `production` the hardening rules apply: the issuer and
//! JWKS URL must be `https`; the keys come from a JWKS URL, an HS256 secret,
//! or (with neither) OpenID Connect discovery from the `https` issuer;
//! secrets must be at least 32 bytes, random-looking and not development
//! values (preferably read from files); the audit destination must be chosen
//! for the deployment: a PostgreSQL URL, or a file path of its own. A
//! PostgreSQL URL that reaches a host other than a Unix socket, `localhost`
//! or a loopback address must ask for TLS with `sslmode=require` (the
//! server certificate is always verified, see [`crate::audit`]); the error
//! names the key and its source, never the URL. Production also requires
//! `config/production.toml` and treats unknown `SAAS_*` variables as errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use guardrails_config::{
    ConfigError, Configuration, Environment, Explain, Finding, Hardening, Loaded, Loader,
    Requirement, SecretPolicy,
};
use secrecy::SecretString;
use serde::Deserialize;

/// The prefix of every variable.
pub const PREFIX: &str = "SAAS";
/// The default listen address: loopback only, so a development run is never
/// reachable from the network by accident.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// The default limit of connections served at once: under the soft limit
/// of open files a Linux process usually gets (1024), with room left for
/// the audit trail's files, the listener and the runtime's own.
pub const DEFAULT_MAX_CONNECTIONS: usize = 900;
/// The default issuer of development tokens.
pub const DEFAULT_ISSUER: &str = "saas-api-dev";
/// The default audience tokens must carry.
pub const DEFAULT_AUDIENCE: &str = "saas-api";
/// The HS256 secret of development tokens, as set in
/// `config/development.toml`. Public by design: it only ever signs tokens in
/// the `development` environment, and hardening rejects it elsewhere.
pub const DEVELOPMENT_HS256_SECRET: &str = "saas-api-development-secret-do-not-use-in-production";
/// The default audit file.
pub const DEFAULT_AUDIT_PATH: &str = "var/audit.jsonl";

/// Settings of the app.
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The deployment environment (from `SAAS_ENV`; not a configuration key).
    #[serde(skip)]
    #[garde(skip)]
    pub environment: Environment,
    /// HTTP server settings.
    #[garde(dive)]
    pub server: ServerSettings,
    /// Token verification settings.
    #[garde(dive)]
    pub auth: AuthSettings,
    /// Audit trail settings.
    #[garde(dive)]
    pub audit: AuditSettings,
}

/// HTTP server settings (`SAAS_SERVER__*`).
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP server listens on.
    #[garde(skip)]
    pub addr: SocketAddr,
    /// The most connections served at once; more wait in the listen
    /// backlog. Keep it below the process's file-descriptor limit
    /// (`ulimit -n`), so that the audit trail can always open its files.
    #[garde(range(min = 1, max = 1_000_000))]
    pub max_connections: usize,
}

/// Token verification settings (`SAAS_AUTH__*`).
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The `iss` tokens must carry.
    #[garde(length(min = 1, max = 2048))]
    pub issuer: String,
    /// The `aud` tokens must carry.
    #[garde(length(min = 1, max = 256))]
    pub audience: String,
    /// Where the issuer publishes its keys, if tokens are asymmetric.
    #[garde(inner(length(min = 1, max = 2048)))]
    pub jwks_url: Option<String>,
    /// The HS256 secret, if tokens are symmetric.
    #[garde(skip)]
    pub hs256_secret: Option<SecretString>,
}

/// Audit trail settings (`SAAS_AUDIT__*`).
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// The JSON-lines audit file.
    #[garde(skip)]
    pub path: PathBuf,
    /// The HMAC key of the hash chain; plain SHA-256 when absent.
    #[garde(skip)]
    pub hmac_key: Option<SecretString>,
    /// The key the file trail was chained with before `hmac_key`: set both
    /// for one start to change the key, and the trail goes on under the new
    /// one from an `audit.key_changed` record; then remove it (a later
    /// start refuses it). Not for PostgreSQL (a new key takes a new chain
    /// id there).
    #[garde(skip)]
    pub previous_hmac_key: Option<SecretString>,
    /// The PostgreSQL database of the audit trail (a URL or key=value
    /// connection string, with its credentials: a secret). When set, the
    /// trail goes there instead of the file at `path`.
    #[garde(skip)]
    pub postgres_url: Option<SecretString>,
    /// This instance's chain in PostgreSQL, continued across restarts; a
    /// fresh one per process start when absent.
    #[garde(length(min = 1, max = 200))]
    pub chain_id: Option<String>,
    /// A PEM file of CA certificates trusted for the database's TLS
    /// certificate, in addition to the webpki roots (a managed database's
    /// private CA).
    #[garde(skip)]
    pub postgres_ca_file: Option<PathBuf>,
}

impl Configuration for Settings {
    const SECRET_KEYS: &'static [&'static str] = &[
        "auth.hs256_secret",
        "audit.hmac_key",
        "audit.previous_hmac_key",
        "audit.postgres_url",
    ];

    fn harden(&self, h: &mut Hardening<'_>) {
        h.external_url("auth.issuer", Some(&self.auth.issuer));
        h.external_url("auth.jwks_url", self.auth.jwks_url.as_deref());
        // Refused by value too: a deployment's configuration directory need
        // not hold `development.toml` for hardening to recognise it.
        h.secret(
            "auth.hs256_secret",
            self.auth.hs256_secret.as_ref(),
            &SecretPolicy::hmac_key().public_value(DEVELOPMENT_HS256_SECRET),
        );
        h.secret(
            "audit.hmac_key",
            self.audit.hmac_key.as_ref(),
            &SecretPolicy::hmac_key(),
        );
        h.secret(
            "audit.previous_hmac_key",
            self.audit.previous_hmac_key.as_ref(),
            &SecretPolicy::hmac_key(),
        );
        if self.audit.previous_hmac_key.is_some() && self.audit.hmac_key.is_none() {
            h.error(
                "saas.previous_hmac_key",
                "audit.previous_hmac_key",
                "needs audit.hmac_key, the trail's new key (a keyed trail does not go on unkeyed)",
            );
        }
        // Without a JWKS URL or a secret, keys are found by OpenID Connect
        // discovery from the issuer, which is then a URL: `https`, as checked
        // above. An issuer that is not even `https://...` cannot be discovered.
        let discoverable = self
            .auth
            .issuer
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        h.require(
            "auth.jwks_url",
            self.auth.jwks_url.is_some() || self.auth.hs256_secret.is_some() || discoverable,
            "a JWKS URL (SAAS_AUTH__JWKS_URL), an HS256 secret (SAAS_AUTH__HS256_SECRET_FILE), \
             or an https issuer (SAAS_AUTH__ISSUER) for OpenID Connect discovery",
        );
        // The audit destination: a PostgreSQL database, or a file of this
        // deployment's own (not the built-in development path).
        if let Some(url) = &self.audit.postgres_url {
            if let Some(problem) = postgres_tls_problem(url) {
                h.error("saas.postgres_tls", "audit.postgres_url", problem);
            }
            if self.audit.previous_hmac_key.is_some() {
                // A PostgreSQL chain does not change its key: a new key
                // takes a new chain id.
                h.warn(
                    "saas.previous_hmac_key",
                    "audit.previous_hmac_key",
                    "has no effect with audit.postgres_url (a new key takes a new audit.chain_id)",
                );
            }
            return;
        }
        if self.audit.postgres_ca_file.is_some() {
            h.warn(
                "saas.postgres_ca_file",
                "audit.postgres_ca_file",
                "has no effect without audit.postgres_url",
            );
        }
        if self.audit.chain_id.is_some() {
            // The file trail has one chain per file; its id is the file's.
            h.warn(
                "saas.chain_id",
                "audit.chain_id",
                "has no effect without audit.postgres_url",
            );
        }
        h.require(
            "audit.path",
            !self.audit.path.as_os_str().is_empty(),
            "an audit destination",
        );
        if h.source("audit.path").is_some_and(|s| s.is_built_in()) {
            h.error(
                "saas.audit_destination",
                "audit.path",
                "is the built-in development destination; choose this deployment's audit \
                 destination with SAAS_AUDIT__POSTGRES_URL_FILE or SAAS_AUDIT__PATH",
            );
        }
    }
}

/// Why a PostgreSQL connection string is not fit for a hardened
/// environment, if it is not: it must parse, and unless every host is local
/// (a Unix socket, `localhost`, a loopback address) it must ask for TLS
/// with `sslmode=require`; the app always verifies the server's certificate
/// (see [`crate::audit`]). The message never contains the string.
fn postgres_tls_problem(url: &SecretString) -> Option<&'static str> {
    let config = match guardrails_audit::sink::postgres::connection_config(url) {
        Ok(config) => config,
        Err(guardrails_audit::sink::postgres::PgError::InvalidConfig(why)) => return Some(why),
        Err(_) => return Some("is not a PostgreSQL connection string"),
    };
    let remote_host = config.get_hosts().iter().any(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => !is_loopback_name(name),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => false,
    });
    let remote_addr = config.get_hostaddrs().iter().any(|a| !a.is_loopback());
    let remote = remote_host || remote_addr;
    (remote && config.get_ssl_mode() != tokio_postgres::config::SslMode::Require).then_some(
        "reaches a host that is not local without sslmode=require, so the audit trail and the \
         database password could travel in plain text; add sslmode=require to the connection \
         string (the server certificate is always verified: webpki roots, or a private CA with \
         SAAS_AUDIT__POSTGRES_CA_FILE)",
    )
}

/// `localhost` or a loopback address.
fn is_loopback_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

impl Settings {
    /// The configuration directory: `SAAS_CONFIG_DIR`, else `./config` when
    /// it holds a `default.toml`, else this crate's own `config/` (so
    /// `cargo run -p saas-api` works from the workspace root). No search of
    /// parent directories.
    pub fn config_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("SAAS_CONFIG_DIR") {
            return dir.into();
        }
        let local = Path::new("config");
        if local.join("default.toml").is_file() {
            return local.to_owned();
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    /// The app's loader for `config_dir`, reading the process environment:
    /// `SAAS` prefix, the contract's defaults, `default.toml` required,
    /// hardening in staging and production.
    pub fn loader(config_dir: impl Into<PathBuf>) -> Loader {
        Loader::new(PREFIX)
            .config_dir(config_dir)
            .default_file(Requirement::Required)
            .default_value("server.addr", DEFAULT_ADDR)
            .default_value("server.max_connections", DEFAULT_MAX_CONNECTIONS)
            .default_value("auth.issuer", DEFAULT_ISSUER)
            .default_value("auth.audience", DEFAULT_AUDIENCE)
            .default_value("audit.path", DEFAULT_AUDIT_PATH)
            .harden_in([Environment::Staging])
    }

    /// Loads, validates and hardens the settings from
    /// [`Settings::config_dir`] and the process environment. Production
    /// requires `config/production.toml`; staging and production are strict
    /// about unknown `SAAS_*` variables (a misspelt `SAAS_AUDIT__HMAC_KEY`
    /// must not quietly turn the audit key off where hardening applies).
    ///
    /// # Errors
    ///
    /// Every problem at once: each names the key, its source and what is
    /// wrong (never the value).
    pub fn load() -> Result<Loaded<Self>, ConfigError> {
        Self::load_from(Self::loader(Self::config_dir()))
    }

    /// As [`Settings::load`], with a prepared loader (tests inject
    /// variables with [`Loader::with_env_vars`]).
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn load_from(loader: Loader) -> Result<Loaded<Self>, ConfigError> {
        let environment = loader.resolve_environment()?;
        let production = environment.is_production();
        let mut loaded = loader
            .environment(environment)
            .strict(production || environment == Environment::Staging)
            .environment_file(if production {
                Requirement::Required
            } else {
                Requirement::Optional
            })
            .load::<Self>()?;
        loaded.config_mut().environment = loaded.environment();
        Ok(loaded)
    }
}

/// `saas-api config`: prints the effective configuration (secrets
/// `[REDACTED]`, the source of every value) and the warnings, as a table or
/// as JSON, on standard output.
pub fn print_config(explain: &Explain, warnings: &[Finding], json: bool) {
    if json {
        let mut document = explain.to_json();
        document["warnings"] = serde_json::json!(warnings);
        println!("{document:#}");
    } else {
        print!("{explain}");
        for warning in warnings {
            println!("{warning}");
        }
    }
}

/// Reports an invalid configuration: every problem on standard error (and,
/// for `saas-api config --json`, a JSON document on standard output).
pub fn report_invalid(error: &ConfigError, json: bool) {
    if json {
        let document = serde_json::json!({
            "valid": false,
            "environment": error.environment(),
            "errors": error.errors(),
            "warnings": error.warnings(),
            "config": error.explain().map(Explain::to_json),
        });
        println!("{document:#}");
    }
    eprintln!("{error}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    fn load(vars: &[(&str, &str)]) -> Result<Loaded<Settings>, ConfigError> {
        Settings::load_from(Settings::loader(dir()).with_env_vars(vars.iter().copied()))
    }

    #[test]
    fn development_defaults() {
        let loaded = load(&[]).unwrap();
        let settings = loaded.config();
        assert_eq!(settings.environment, Environment::Development);
        assert_eq!(settings.server.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(settings.auth.issuer, DEFAULT_ISSUER);
        assert_eq!(settings.auth.audience, DEFAULT_AUDIENCE);
        assert_eq!(settings.audit.path, Path::new(DEFAULT_AUDIT_PATH));
        assert_eq!(
            settings.auth.hs256_secret.as_ref().unwrap().expose_secret(),
            DEVELOPMENT_HS256_SECRET,
            "config/development.toml holds the development secret"
        );
    }

    #[test]
    fn the_connection_limit_is_set_by_a_variable_and_at_least_one() {
        assert_eq!(
            load(&[]).unwrap().config().server.max_connections,
            DEFAULT_MAX_CONNECTIONS
        );
        let loaded = load(&[("SAAS_SERVER__MAX_CONNECTIONS", "200")]).unwrap();
        assert_eq!(loaded.config().server.max_connections, 200);
        for bad in ["0", "-1", "many"] {
            let error = load(&[("SAAS_SERVER__MAX_CONNECTIONS", bad)]).unwrap_err();
            let keys: Vec<&str> = error.keys().collect();
            assert_eq!(keys, ["server.max_connections"], "{bad}: {error}");
            assert!(
                error.to_string().contains("SAAS_SERVER__MAX_CONNECTIONS"),
                "{error}"
            );
        }
    }

    #[test]
    fn test_and_staging_have_no_development_secret() {
        for env in ["test", "staging"] {
            let loaded = load(&[
                ("SAAS_ENV", env),
                ("SAAS_AUTH__ISSUER", "https://idp.example.com/"),
                ("SAAS_AUTH__JWKS_URL", "https://idp.example.com/jwks"),
                ("SAAS_AUDIT__PATH", "/var/lib/saas-api/audit.jsonl"),
            ])
            .unwrap();
            assert!(loaded.config().auth.hs256_secret.is_none());
        }
    }

    /// A previous audit key without a key: a keyed trail cannot go on
    /// unkeyed, said before the app starts; the value never shown.
    #[test]
    fn a_previous_audit_key_needs_a_key() {
        let previous = "a-previous-audit-key-that-is-32-bytes-long-9f8e";
        let error = load(&[
            ("SAAS_ENV", "staging"),
            ("SAAS_AUTH__ISSUER", "https://idp.example.com/"),
            ("SAAS_AUTH__JWKS_URL", "https://idp.example.com/jwks"),
            ("SAAS_AUDIT__PATH", "/var/lib/saas-api/audit.jsonl"),
            ("SAAS_AUDIT__PREVIOUS_HMAC_KEY", previous),
        ])
        .unwrap_err();
        let keys: Vec<&str> = error.keys().collect();
        assert_eq!(keys, ["audit.previous_hmac_key"], "{error}");
        assert!(
            error.to_string().contains("needs audit.hmac_key"),
            "{error}"
        );
        assert!(!error.to_string().contains(previous), "{error}");
    }

    #[test]
    fn production_names_every_offending_key() {
        let error = load(&[
            ("SAAS_ENV", "production"),
            ("SAAS_AUTH__HS256_SECRET", DEVELOPMENT_HS256_SECRET),
            ("SAAS_AUDIT__HMAC_KEY", "too-short"),
            ("SAAS_AUTH__JWKS_URL", "http://idp.example.com/jwks"),
        ])
        .unwrap_err();
        let keys: Vec<&str> = error.keys().collect();
        for key in [
            "auth.hs256_secret",
            "audit.hmac_key",
            "auth.issuer",
            "auth.jwks_url",
            "audit.path",
        ] {
            assert!(keys.contains(&key), "{key}: {error}");
        }
        assert!(!error.to_string().contains(DEVELOPMENT_HS256_SECRET));
    }

    #[test]
    fn production_accepts_discovery_from_an_https_issuer() {
        // Neither a JWKS URL nor a secret: keys by OpenID Connect discovery.
        let loaded = load(&[
            ("SAAS_ENV", "production"),
            ("SAAS_AUTH__ISSUER", "https://idp.example.com/"),
            ("SAAS_AUDIT__PATH", "/var/lib/saas-api/audit.jsonl"),
        ])
        .unwrap();
        assert!(loaded.config().auth.jwks_url.is_none());
        assert!(loaded.config().auth.hs256_secret.is_none());
    }

    #[test]
    fn production_without_keys_needs_a_discoverable_issuer() {
        for issuer in ["idp.example.com", "http://idp.example.com/"] {
            let error = load(&[
                ("SAAS_ENV", "production"),
                ("SAAS_AUTH__ISSUER", issuer),
                ("SAAS_AUDIT__PATH", "/var/lib/saas-api/audit.jsonl"),
            ])
            .unwrap_err();
            let mut keys: Vec<&str> = error.keys().collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys, ["auth.issuer", "auth.jwks_url"], "{issuer}: {error}");
        }
        // Discovery does not open a door for a weak secret: a development or
        // short secret is still refused next to an https issuer.
        for secret in [DEVELOPMENT_HS256_SECRET, "too-short"] {
            let error = load(&[
                ("SAAS_ENV", "production"),
                ("SAAS_AUTH__ISSUER", "https://idp.example.com/"),
                ("SAAS_AUTH__HS256_SECRET", secret),
                ("SAAS_AUDIT__PATH", "/var/lib/saas-api/audit.jsonl"),
            ])
            .unwrap_err();
            assert!(error.keys().any(|k| k == "auth.hs256_secret"), "{error}");
        }
    }

    #[test]
    fn unknown_environment() {
        let error = load(&[("SAAS_ENV", "prod")]).unwrap_err();
        assert!(error.to_string().contains("did you mean `production`?"));
    }

    /// A production environment with valid auth settings and `url` as the
    /// audit database.
    fn production_with_database(
        env: &str,
        url: &str,
    ) -> (tempfile::TempDir, Result<Loaded<Settings>, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("hs256");
        std::fs::write(&secret, "Zq3vN8xKp2LmA7bT5wYc9HdE1gUf4sRjh7Gk2PqX").unwrap();
        let secret = secret.to_str().unwrap().to_owned();
        let result = load(&[
            ("SAAS_ENV", env),
            ("SAAS_AUTH__ISSUER", "https://idp.example.com/"),
            ("SAAS_AUTH__HS256_SECRET_FILE", &secret),
            ("SAAS_AUDIT__POSTGRES_URL", url),
        ]);
        (dir, result)
    }

    #[test]
    fn production_refuses_a_remote_database_without_tls() {
        for url in [
            "postgresql://app:hunter2-pw@db.internal:5432/audit",
            "postgresql://app:hunter2-pw@db.internal/audit?sslmode=prefer",
            "postgresql://app:hunter2-pw@10.1.2.3/audit?sslmode=disable",
            "host=db.internal user=app password=hunter2-pw dbname=audit",
            // A local name, but the address connected to is remote.
            "host=localhost hostaddr=10.1.2.3 user=app password=hunter2-pw",
            // Several hosts: one remote is enough.
            "postgresql://app:hunter2-pw@127.0.0.1,db.internal/audit",
        ] {
            for env in ["production", "staging"] {
                let (_dir, result) = production_with_database(env, url);
                let error = result.unwrap_err();
                let keys: Vec<&str> = error.keys().collect();
                assert_eq!(keys, ["audit.postgres_url"], "{env} {url}: {error}");
                let text = error.to_string();
                assert!(text.contains("sslmode=require"), "{text}");
                assert!(
                    text.contains("SAAS_AUDIT__POSTGRES_URL"),
                    "the source: {text}"
                );
                assert!(!text.contains("hunter2"), "{text}");
                assert!(!text.contains("db.internal"), "{text}");
                assert!(!text.contains("10.1.2.3"), "{text}");
            }
        }
    }

    #[test]
    fn production_accepts_tls_or_a_local_database() {
        for url in [
            "postgresql://app:hunter2-pw@db.internal:5432/audit?sslmode=require",
            "host=db.internal user=app password=hunter2-pw sslmode=require",
            "postgresql://app:hunter2-pw@127.0.0.1:5432/audit",
            "postgresql://app:hunter2-pw@localhost/audit?sslmode=disable",
            "postgresql://app:hunter2-pw@[::1]:5432/audit",
            "host=/var/run/postgresql user=app dbname=audit",
            "host=localhost hostaddr=127.0.0.1 user=app",
        ] {
            let (_dir, result) = production_with_database("production", url);
            let loaded = result.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(loaded.config().audit.postgres_url.is_some());
        }
    }

    #[test]
    fn libpq_verify_modes_are_refused_with_what_to_write_instead() {
        for url in [
            "postgresql://app:hunter2-pw@db.internal/audit?sslmode=verify-full",
            "postgresql://app:hunter2-pw@db.internal/audit?application_name=x&sslmode=verify-ca",
            "host=db.internal user=app password=hunter2-pw sslmode = verify-full",
        ] {
            let (_dir, result) = production_with_database("production", url);
            let error = result.unwrap_err();
            let text = error.to_string();
            assert!(error.keys().any(|k| k == "audit.postgres_url"), "{text}");
            assert!(text.contains("use sslmode=require"), "{url}: {text}");
            assert!(text.contains("verify-full"), "{url}: {text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains("db.internal"), "{text}");
        }
    }

    #[test]
    fn production_refuses_a_database_url_that_does_not_parse() {
        let (_dir, result) =
            production_with_database("production", "postgresql://app:hunter2-pw@db:notaport/x");
        let error = result.unwrap_err();
        assert!(error.keys().any(|k| k == "audit.postgres_url"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn database_only_keys_without_a_database_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("hs256");
        std::fs::write(&secret, "Zq3vN8xKp2LmA7bT5wYc9HdE1gUf4sRjh7Gk2PqX").unwrap();
        let trail = dir.path().join("audit.jsonl");
        let loaded = load(&[
            ("SAAS_ENV", "production"),
            ("SAAS_AUTH__ISSUER", "https://idp.example.com/"),
            ("SAAS_AUTH__HS256_SECRET_FILE", secret.to_str().unwrap()),
            ("SAAS_AUDIT__PATH", trail.to_str().unwrap()),
            ("SAAS_AUDIT__POSTGRES_CA_FILE", "/etc/ssl/db-ca.pem"),
            ("SAAS_AUDIT__CHAIN_ID", "api-1"),
        ])
        .unwrap();
        let mut keys: Vec<&str> = loaded.warnings().iter().filter_map(|w| w.key()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["audit.chain_id", "audit.postgres_ca_file"]);
        for warning in loaded.warnings() {
            assert!(
                warning.to_string().contains("without audit.postgres_url"),
                "{warning}"
            );
        }
    }

    #[test]
    fn development_allows_a_database_without_tls() {
        let loaded = load(&[(
            "SAAS_AUDIT__POSTGRES_URL",
            "postgresql://app:pw@db.internal/audit",
        )])
        .unwrap();
        assert!(loaded.config().audit.postgres_url.is_some());
    }
}
