//! The app's settings.
//!
//! For now only the listen address, read from `SAAS_SERVER__ADDR`
//! (default `127.0.0.1:3000`).

use std::net::SocketAddr;

/// The default listen address: loopback only, so a development run is never
/// reachable from the network by accident.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// Settings of the app.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub addr: SocketAddr,
}

/// A setting has an invalid value.
#[derive(Debug)]
pub struct SettingsError {
    key: &'static str,
    problem: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    ///
    /// When `SAAS_SERVER__ADDR` is set but is not a socket address.
    pub fn from_env() -> Result<Self, SettingsError> {
        let raw = std::env::var("SAAS_SERVER__ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_owned());
        let addr = raw.parse().map_err(|_| SettingsError {
            key: "SAAS_SERVER__ADDR",
            problem: "is not a socket address such as 127.0.0.1:3000".to_owned(),
        })?;
        Ok(Self { addr })
    }
}
