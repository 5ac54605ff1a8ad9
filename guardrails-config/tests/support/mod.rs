//! Shared fixtures: a realistic settings type and a temporary config dir.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a subset")]

use std::net::SocketAddr;
use std::path::PathBuf;

use guardrails_config::{Configuration, Hardening, Loader, SecretPolicy};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Deserialize;

/// A production-shaped settings type.
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[garde(dive)]
    pub server: Server,
    #[garde(dive)]
    pub auth: Auth,
    #[garde(dive)]
    #[serde(default)]
    pub audit: Audit,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Server {
    #[garde(skip)]
    pub addr: SocketAddr,
    #[garde(range(min = 1, max = 64))]
    pub workers: u8,
    #[garde(skip)]
    #[serde(default)]
    pub debug: bool,
    #[garde(skip)]
    #[serde(default, deserialize_with = "guardrails_config::de::string_list")]
    pub cors_origins: Vec<String>,
    #[garde(length(min = 1, max = 40))]
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_name() -> String {
    "app".to_owned()
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[garde(length(min = 1))]
    pub issuer: String,
    #[garde(skip)]
    pub jwks_url: Option<String>,
    #[garde(custom(not_marked_invalid))]
    pub hs256_secret: Option<SecretString>,
    /// A non-string secret.
    #[garde(skip)]
    pub pin: Option<SecretBox<u32>>,
}

/// A (deliberately careless) validator whose message contains the value:
/// the loader must withhold it because the key is a secret.
fn not_marked_invalid(value: &Option<SecretString>, _: &()) -> garde::Result {
    match value {
        Some(secret) if secret.expose_secret().starts_with("invalid:") => Err(garde::Error::new(
            format!("`{}` is marked invalid", secret.expose_secret()),
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Default, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    #[garde(skip)]
    pub path: Option<PathBuf>,
    #[garde(skip)]
    pub hmac_key: Option<SecretString>,
}

impl Configuration for Settings {
    const SECRET_KEYS: &'static [&'static str] =
        &["auth.hs256_secret", "auth.pin", "audit.hmac_key"];

    fn harden(&self, h: &mut Hardening<'_>) {
        h.external_url("auth.issuer", Some(&self.auth.issuer));
        h.external_url("auth.jwks_url", self.auth.jwks_url.as_deref());
        h.secret(
            "auth.hs256_secret",
            self.auth.hs256_secret.as_ref(),
            &SecretPolicy::hmac_key(),
        );
        h.secret(
            "audit.hmac_key",
            self.audit.hmac_key.as_ref(),
            &SecretPolicy::hmac_key().required(),
        );
        h.no_debug("server.debug", self.server.debug);
        h.no_wildcard_cors("server.cors_origins", &self.server.cors_origins);
        h.require(
            "audit.path",
            self.audit.path.is_some(),
            "an audit destination",
        );
        if self.server.workers > 32 {
            h.error(
                "app.max_workers",
                "server.workers",
                "must be at most 32 in production",
            );
        }
    }
}

/// A strong secret that passes every policy.
pub const STRONG: &str = "Zq3vN8xKp2LmA7bT5wYc9HdE1gUf4sRj";
/// Another one.
pub const STRONG2: &str = "h7Gk2PqX9mWv4Tz8Lr1Nc6By3Sd5Fj0A";
/// The development secret in the fixture's `development.toml`.
pub const DEV_SECRET: &str = "development-only-secret-0123456789abcdef";

/// A temporary configuration directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// An empty directory.
    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `default.toml` and `development.toml` of a typical app.
    pub fn new() -> Self {
        let f = Self::empty();
        f.file(
            "default.toml",
            r#"
            [server]
            addr = "127.0.0.1:3000"
            workers = 4

            [auth]
            issuer = "app-dev"
            "#,
        );
        f.file(
            "development.toml",
            &format!("[auth]\nhs256_secret = \"{DEV_SECRET}\"\n"),
        );
        f
    }

    /// Writes `name` in the config dir.
    pub fn file(&self, name: &str, contents: &str) -> &Self {
        std::fs::write(self.dir.path().join(name), contents).unwrap();
        self
    }

    /// Writes a secret file outside the config dir; returns its path.
    pub fn secret_file(&self, name: &str, contents: &str) -> String {
        let dir = self.dir.path().join("secrets");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// A loader for prefix `APP` reading this directory and only `vars`.
    pub fn loader(&self, vars: &[(&str, &str)]) -> Loader {
        Loader::new("APP")
            .config_dir(self.dir.path())
            .with_env_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    /// Variables of a production deployment that passes every rule.
    pub fn production_vars(&self) -> Vec<(String, String)> {
        let hs = self.secret_file("hs256", &format!("{STRONG}\n"));
        let hmac = self.secret_file("hmac", STRONG2);
        vec![
            ("APP_ENV".into(), "production".into()),
            ("APP_AUTH__ISSUER".into(), "https://idp.example.com/".into()),
            (
                "APP_AUTH__JWKS_URL".into(),
                "https://idp.example.com/jwks".into(),
            ),
            ("APP_AUTH__HS256_SECRET_FILE".into(), hs),
            ("APP_AUDIT__HMAC_KEY_FILE".into(), hmac),
            ("APP_AUDIT__PATH".into(), "/var/log/app/audit.jsonl".into()),
        ]
    }

    /// A loader with the production variables, with `changes` applied
    /// (an empty value removes the variable).
    pub fn production(&self, changes: &[(&str, &str)]) -> Loader {
        let mut vars = self.production_vars();
        for (k, v) in changes {
            vars.retain(|(name, _)| name != k);
            if !v.is_empty() {
                vars.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        Loader::new("APP")
            .config_dir(self.dir.path())
            .with_env_vars(vars)
    }
}
