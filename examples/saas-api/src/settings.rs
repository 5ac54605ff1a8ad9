//! The app's settings, under the contract in the workspace README.
//!
//! Keys (environment variables with the `SAAS` prefix, `__` nesting):
//! `SAAS_ENV`, `SAAS_SERVER__ADDR`, `SAAS_AUTH__ISSUER`, `SAAS_AUTH__AUDIENCE`,
//! `SAAS_AUTH__JWKS_URL`, `SAAS_AUTH__HS256_SECRET`, `SAAS_AUDIT__PATH`,
//! `SAAS_AUDIT__HMAC_KEY`.
//!
//! This first version reads the process environment directly; the
//! guardrails-config integration replaces [`Settings::from_env`] with layered,
//! validated loading.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

/// The default listen address: loopback only, so a development run is never
/// reachable from the network by accident.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// The default issuer of development tokens.
pub const DEFAULT_ISSUER: &str = "saas-api-dev";
/// The default audience tokens must carry.
pub const DEFAULT_AUDIENCE: &str = "saas-api";
/// The HS256 secret of development tokens. Public by design: it only ever
/// signs tokens in the `development` environment.
pub const DEVELOPMENT_HS256_SECRET: &str = "saas-api-development-secret-do-not-use-in-production";
/// The default audit file.
pub const DEFAULT_AUDIT_PATH: &str = "var/audit.jsonl";

/// Settings of the app.
#[derive(Debug)]
pub struct Settings {
    /// The deployment environment (`development`, `test`, `staging`, `production`).
    pub environment: String,
    /// HTTP server settings.
    pub server: ServerSettings,
    /// Token verification settings.
    pub auth: AuthSettings,
    /// Audit trail settings.
    pub audit: AuditSettings,
}

/// HTTP server settings (`SAAS_SERVER__*`).
#[derive(Debug)]
pub struct ServerSettings {
    /// Address the HTTP server listens on.
    pub addr: SocketAddr,
}

/// Token verification settings (`SAAS_AUTH__*`).
#[derive(Debug)]
pub struct AuthSettings {
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// The `aud` tokens must carry.
    pub audience: String,
    /// Where the issuer publishes its keys, if tokens are asymmetric.
    pub jwks_url: Option<String>,
    /// The HS256 secret, if tokens are symmetric.
    pub hs256_secret: Option<SecretString>,
}

/// Audit trail settings (`SAAS_AUDIT__*`).
#[derive(Debug)]
pub struct AuditSettings {
    /// The JSON-lines audit file.
    pub path: PathBuf,
    /// The HMAC key of the hash chain; plain SHA-256 when absent.
    pub hmac_key: Option<SecretString>,
}

/// A setting has an invalid value. Never includes the value.
#[derive(Debug)]
pub struct SettingsError {
    key: &'static str,
    problem: &'static str,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl std::error::Error for SettingsError {}

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

impl Settings {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    ///
    /// When `SAAS_SERVER__ADDR` is set but is not a socket address.
    pub fn from_env() -> Result<Self, SettingsError> {
        let raw = var("SAAS_SERVER__ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = raw.parse().map_err(|_| SettingsError {
            key: "SAAS_SERVER__ADDR",
            problem: "is not a socket address such as 127.0.0.1:3000",
        })?;
        let environment = var("SAAS_ENV").unwrap_or_else(|| "development".to_owned());
        let hs256_secret = var("SAAS_AUTH__HS256_SECRET")
            .or_else(|| (environment == "development").then(|| DEVELOPMENT_HS256_SECRET.to_owned()))
            .map(SecretString::from);
        Ok(Self {
            environment,
            server: ServerSettings { addr },
            auth: AuthSettings {
                issuer: var("SAAS_AUTH__ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
                audience: var("SAAS_AUTH__AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned()),
                jwks_url: var("SAAS_AUTH__JWKS_URL"),
                hs256_secret,
            },
            audit: AuditSettings {
                path: var("SAAS_AUDIT__PATH")
                    .unwrap_or_else(|| DEFAULT_AUDIT_PATH.to_owned())
                    .into(),
                hmac_key: var("SAAS_AUDIT__HMAC_KEY").map(SecretString::from),
            },
        })
    }
}
