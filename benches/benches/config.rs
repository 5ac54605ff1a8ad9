//! guardrails-config: load + validate + harden of a realistic configuration
//! (51 values of 52 keys from 3 sources: `default.toml`, `production.toml` and
//! variables, two of them `_FILE` secrets), against the raw baseline of
//! deserializing the same values from one TOML string with serde.
#![allow(
    dead_code,
    reason = "the settings are only loaded, as at an app's start-up"
)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use guardrails_config::{Configuration, Hardening, Loader, SecretPolicy};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[garde(dive)]
    server: Server,
    #[garde(dive)]
    database: Database,
    #[garde(dive)]
    auth: Auth,
    #[garde(dive)]
    audit: Audit,
    #[garde(dive)]
    cache: Cache,
    #[garde(dive)]
    email: Email,
    #[garde(dive)]
    limits: Limits,
    #[garde(dive)]
    features: Features,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Server {
    #[garde(skip)]
    addr: std::net::SocketAddr,
    #[garde(range(min = 1, max = 256))]
    workers: u16,
    #[garde(range(min = 1, max = 600))]
    request_timeout_secs: u32,
    #[garde(range(min = 1, max = 600))]
    shutdown_timeout_secs: u32,
    #[garde(skip)]
    debug: bool,
    #[garde(length(min = 1, max = 64))]
    name: String,
    #[garde(skip)]
    cors_origins: Vec<String>,
    #[garde(range(min = 1024, max = 16_777_216))]
    max_body_bytes: u64,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Database {
    #[garde(length(min = 1))]
    host: String,
    #[garde(range(min = 1))]
    port: u16,
    #[garde(length(min = 1))]
    name: String,
    #[garde(length(min = 1))]
    user: String,
    #[garde(skip)]
    password: SecretString,
    #[garde(range(min = 1, max = 1000))]
    pool_size: u32,
    #[garde(range(min = 1, max = 120))]
    connect_timeout_secs: u32,
    #[garde(length(min = 1))]
    ssl_mode: String,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Auth {
    #[garde(length(min = 1))]
    issuer: String,
    #[garde(length(min = 1))]
    audience: String,
    #[garde(skip)]
    jwks_url: Option<String>,
    #[garde(skip)]
    hs256_secret: Option<SecretString>,
    #[garde(range(min = 0, max = 300))]
    leeway_secs: u32,
    #[garde(range(min = 60, max = 86_400))]
    jwks_refresh_secs: u32,
    #[garde(length(min = 1))]
    algorithms: Vec<String>,
    #[garde(skip)]
    require_tenant: bool,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Audit {
    #[garde(skip)]
    path: PathBuf,
    #[garde(skip)]
    hmac_key: Option<SecretString>,
    #[garde(range(min = 1, max = 1_000_000))]
    queue_capacity: u32,
    #[garde(range(min = 1, max = 10_000))]
    batch_size: u32,
    #[garde(length(min = 1))]
    overflow: String,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Cache {
    #[garde(skip)]
    enabled: bool,
    #[garde(length(min = 1))]
    url: String,
    #[garde(range(min = 1))]
    ttl_secs: u32,
    #[garde(range(min = 1))]
    max_entries: u32,
    #[garde(length(min = 1))]
    namespace: String,
    #[garde(range(min = 1, max = 60))]
    timeout_secs: u32,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Email {
    #[garde(length(min = 1))]
    smtp_host: String,
    #[garde(range(min = 1))]
    smtp_port: u16,
    #[garde(length(min = 1))]
    from: String,
    #[garde(length(min = 1))]
    username: String,
    #[garde(skip)]
    api_token: SecretString,
    #[garde(skip)]
    starttls: bool,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Limits {
    #[garde(range(min = 1))]
    requests_per_minute: u32,
    #[garde(range(min = 1))]
    burst: u32,
    #[garde(range(min = 1, max = 1000))]
    max_invoice_lines: u32,
    #[garde(range(min = 1))]
    max_tenants: u32,
    #[garde(range(min = 1))]
    max_page_size: u32,
    #[garde(range(min = 1))]
    export_rows: u32,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Features {
    #[garde(skip)]
    exports: bool,
    #[garde(skip)]
    webhooks: bool,
    #[garde(skip)]
    beta_ui: bool,
    #[garde(skip)]
    audit_strict_deletes: bool,
    #[garde(skip)]
    metrics: bool,
}

impl Configuration for Settings {
    const SECRET_KEYS: &'static [&'static str] = &[
        "database.password",
        "auth.hs256_secret",
        "audit.hmac_key",
        "email.api_token",
    ];

    fn harden(&self, h: &mut Hardening<'_>) {
        h.external_url("auth.issuer", Some(&self.auth.issuer));
        h.external_url("auth.jwks_url", self.auth.jwks_url.as_deref());
        h.secret(
            "database.password",
            Some(&self.database.password),
            &SecretPolicy::new(),
        );
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
        h.secret(
            "email.api_token",
            Some(&self.email.api_token),
            &SecretPolicy::new().allow_non_file(),
        );
        h.no_debug("server.debug", self.server.debug);
        h.no_wildcard_cors("server.cors_origins", &self.server.cors_origins);
        h.require(
            "audit.path",
            !self.audit.path.as_os_str().is_empty(),
            "an audit destination",
        );
    }
}

const DEFAULT_TOML: &str = r#"
[server]
addr = "127.0.0.1:3000"
workers = 4
request_timeout_secs = 30
shutdown_timeout_secs = 20
debug = false
name = "saas-api"
cors_origins = ["http://localhost:5173"]
max_body_bytes = 1048576

[database]
host = "localhost"
port = 5432
name = "saas"
user = "saas"
pool_size = 10
connect_timeout_secs = 5
ssl_mode = "prefer"

[auth]
issuer = "saas-api-dev"
audience = "saas-api"
leeway_secs = 30
jwks_refresh_secs = 300
algorithms = ["RS256", "ES256"]
require_tenant = true

[audit]
path = "var/audit.jsonl"
queue_capacity = 10000
batch_size = 100
overflow = "block"

[cache]
enabled = true
url = "redis://localhost:6379"
ttl_secs = 300
max_entries = 100000
namespace = "saas"
timeout_secs = 2

[email]
smtp_host = "localhost"
smtp_port = 1025
from = "noreply@example.com"
username = "saas"
starttls = false

[limits]
requests_per_minute = 600
burst = 100
max_invoice_lines = 100
max_tenants = 10000
max_page_size = 100
export_rows = 50000

[features]
exports = true
webhooks = false
beta_ui = false
audit_strict_deletes = true
metrics = true
"#;

const PRODUCTION_TOML: &str = r#"
[server]
addr = "0.0.0.0:3000"
workers = 16
cors_origins = ["https://app.example.com", "https://admin.example.com"]

[database]
host = "db.internal"
ssl_mode = "verify-full"
pool_size = 50

[cache]
url = "rediss://cache.internal:6380"

[email]
smtp_host = "smtp.example.com"
smtp_port = 587
starttls = true
"#;

/// The baseline: the same 51 values, from one TOML document, straight
/// into the type with serde (no layers, no sources, no checks).
fn baseline_document() -> String {
    let mut doc = String::from(DEFAULT_TOML);
    for (from, to) in [
        ("addr = \"127.0.0.1:3000\"", "addr = \"0.0.0.0:3000\""),
        (
            "host = \"localhost\"",
            "host = \"db.internal\"\npassword = \"Kp4vN8xQ2mWz7Ld9\"",
        ),
        (
            "issuer = \"saas-api-dev\"",
            "issuer = \"https://idp.example.com/\"\njwks_url = \"https://idp.example.com/jwks\"",
        ),
        (
            "path = \"var/audit.jsonl\"",
            "path = \"/var/lib/saas/audit.jsonl\"\nhmac_key = \"h7Gk2PqX9mWv4Tz8Lr1Nc6By3Sd5Fj0A\"",
        ),
        (
            "username = \"saas\"",
            "username = \"saas\"\napi_token = \"tok_9f8e7d6c5b4a39281706\"",
        ),
    ] {
        doc = doc.replacen(from, to, 1);
    }
    doc
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("default.toml"), DEFAULT_TOML).unwrap();
    std::fs::write(dir.path().join("production.toml"), PRODUCTION_TOML).unwrap();
    let hmac = dir.path().join("hmac");
    std::fs::write(&hmac, "h7Gk2PqX9mWv4Tz8Lr1Nc6By3Sd5Fj0A\n").unwrap();
    let password = dir.path().join("db-password");
    std::fs::write(&password, "Kp4vN8xQ2mWz7Ld9\n").unwrap();
    let vars = vec![
        ("APP_ENV".to_owned(), "production".to_owned()),
        (
            "APP_AUTH__ISSUER".to_owned(),
            "https://idp.example.com/".to_owned(),
        ),
        (
            "APP_AUTH__JWKS_URL".to_owned(),
            "https://idp.example.com/jwks".to_owned(),
        ),
        (
            "APP_AUDIT__PATH".to_owned(),
            "/var/lib/saas/audit.jsonl".to_owned(),
        ),
        (
            "APP_AUDIT__HMAC_KEY_FILE".to_owned(),
            hmac.to_str().unwrap().to_owned(),
        ),
        (
            "APP_DATABASE__PASSWORD_FILE".to_owned(),
            password.to_str().unwrap().to_owned(),
        ),
        (
            "APP_EMAIL__API_TOKEN".to_owned(),
            "tok_9f8e7d6c5b4a39281706".to_owned(),
        ),
        ("APP_SERVER__WORKERS".to_owned(), "16".to_owned()),
        (
            "APP_LIMITS__REQUESTS_PER_MINUTE".to_owned(),
            "1200".to_owned(),
        ),
        ("APP_FEATURES__WEBHOOKS".to_owned(), "true".to_owned()),
        ("HOME".to_owned(), "/home/app".to_owned()),
        ("APP_API_SERVICE_HOST".to_owned(), "10.0.0.1".to_owned()),
    ];
    let loader = Loader::new("APP")
        .config_dir(dir.path())
        .with_env_vars(vars);
    let loaded = loader.load::<Settings>().unwrap();
    assert_eq!(loaded.explain().entries().len(), 51);
    assert_eq!(loaded.config().server.workers, 16);

    let document = baseline_document();
    let baseline: Settings = toml::from_str(&document).unwrap();
    assert_eq!(baseline.database.host, "db.internal");

    let mut group = c.benchmark_group("config");
    group.bench_function("raw serde (one TOML string)", |b| {
        b.iter(|| black_box(toml::from_str::<Settings>(black_box(&document)).unwrap()));
    });
    group.bench_function("guardrails-config (load + validate + harden)", |b| {
        b.iter(|| black_box(loader.load::<Settings>().unwrap()));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
