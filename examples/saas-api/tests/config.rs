//! End-to-end: the real binary fails fast on an invalid configuration,
//! naming every offending key and its source, and `saas-api config`
//! explains the effective configuration with secrets redacted.

mod common;

use std::process::Output;
use std::time::Duration;

use saas_api::settings::DEVELOPMENT_HS256_SECRET;

fn run(cmd: &mut std::process::Command) -> (Output, String, String) {
    let output = cmd.output().expect("run saas-api");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// A secret file in the system temp dir, removed when dropped.
struct TempSecret(std::path::PathBuf);

impl TempSecret {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "saas-api-config-test-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempSecret {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const STRONG: &str = "Zq3vN8xKp2LmA7bT5wYc9HdE1gUf4sRjh7Gk2PqX";

#[test]
fn production_with_bad_settings_exits_non_zero_naming_every_offending_key() {
    let (output, stdout, stderr) = run(common::command()
        .env("SAAS_ENV", "production")
        .env("SAAS_AUTH__HS256_SECRET", DEVELOPMENT_HS256_SECRET)
        .env("SAAS_AUTH__ISSUER", "http://idp.example.com")
        .env("SAAS_AUTH__JWKS_URL", "http://idp.example.com/jwks")
        .env("SAAS_AUDIT__HMAC_KEY", "short-key"));
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("listening on") && !stderr.contains("listening on"));
    for expected in [
        "auth.hs256_secret (from env SAAS_AUTH__HS256_SECRET): came from a development profile file",
        "auth.issuer (from env SAAS_AUTH__ISSUER): must use https",
        "auth.jwks_url (from env SAAS_AUTH__JWKS_URL): must use https",
        "audit.hmac_key (from env SAAS_AUDIT__HMAC_KEY): is shorter than 32 bytes",
        "audit.path (from file ",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
    assert!(!stderr.contains(DEVELOPMENT_HS256_SECRET) && !stderr.contains("short-key"));
    assert!(!stdout.contains(DEVELOPMENT_HS256_SECRET) && !stdout.contains("short-key"));
}

#[test]
fn the_development_secret_is_refused_without_the_development_profile_deployed() {
    // A deployment's configuration directory: no `development.toml` next
    // to the production profile, so only the value itself gives it away.
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let dir = tempfile::tempdir().unwrap();
    for file in ["default.toml", "production.toml"] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    let secret = TempSecret::new("dev-hs256", &format!("{DEVELOPMENT_HS256_SECRET}\n"));
    let (output, stdout, stderr) = run(common::command()
        .env("SAAS_CONFIG_DIR", dir.path())
        .env("SAAS_ENV", "production")
        .env("SAAS_AUTH__ISSUER", "https://idp.example.com/")
        .env("SAAS_AUTH__HS256_SECRET_FILE", secret.path())
        .env("SAAS_AUDIT__PATH", dir.path().join("audit.jsonl")));
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: auth.hs256_secret (from file ")
            && stderr.contains("SAAS_AUTH__HS256_SECRET_FILE)): is a public value"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(DEVELOPMENT_HS256_SECRET) && !stdout.contains(DEVELOPMENT_HS256_SECRET)
    );
}

#[test]
fn production_defaults_alone_are_refused() {
    let (output, _, stderr) = run(common::command().env("SAAS_ENV", "production"));
    assert!(!output.status.success());
    for key in ["auth.issuer", "auth.jwks_url", "audit.path"] {
        assert!(
            stderr.contains(&format!("error: {key}")),
            "{key}:\n{stderr}"
        );
    }
}

#[test]
fn an_unknown_environment_exits_non_zero() {
    let (output, _, stderr) = run(common::command().env("SAAS_ENV", "prod"));
    assert!(!output.status.success());
    assert!(
        stderr.contains("environment (from env SAAS_ENV): unknown environment `prod`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `production`?"));
}

#[test]
fn an_unknown_variable_is_an_error_where_hardening_applies() {
    let (_, _, stderr) = run(common::command().arg("config").env("SAAS_AUTH__ISUER", "x"));
    assert!(
        stderr.contains("did you mean SAAS_AUTH__ISSUER?"),
        "{stderr}"
    );
    for environment in ["staging", "production"] {
        let (output, _, stderr) = run(common::command()
            .env("SAAS_ENV", environment)
            .env("SAAS_AUDIT__HMAC_KYE", "x"));
        assert!(!output.status.success(), "{environment}");
        assert!(
            stderr.contains("error: audit.hmac_kye (from env SAAS_AUDIT__HMAC_KYE)"),
            "{environment}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_good_production_configuration_starts() {
    let secret = TempSecret::new("hs256", &format!("{STRONG}\n"));
    let audit = TempSecret::new("audit.jsonl", "");
    let mut cmd = common::command();
    cmd.env("SAAS_ENV", "production")
        .env("SAAS_AUTH__ISSUER", "https://idp.example.com/")
        .env("SAAS_AUTH__HS256_SECRET_FILE", secret.path())
        .env("SAAS_AUDIT__PATH", audit.path())
        // Kubernetes service variables of services `saas` and `saas-api`:
        // production is strict about `SAAS_*`, yet these must not matter.
        .env("SAAS_SERVICE_HOST", "10.0.0.1")
        .env("SAAS_PORT", "tcp://10.0.0.1:80")
        .env("SAAS_API_SERVICE_PORT_HTTP", "80")
        .env("SAAS_API_PORT_80_TCP_ADDR", "10.0.0.2");
    let mut app = common::start(cmd);
    let reply = common::get(&app.url("/healthz")).await;
    assert_eq!(reply.status, 200);
    let status = app.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let output = app.drain_output().join("\n");
    assert!(!output.contains(STRONG));
}

/// Neither a JWKS URL nor a secret: keys by OpenID Connect discovery from the
/// https issuer. The issuer here cannot be reached (`.invalid` never
/// resolves), so nothing verifies, yet the app starts and denies by default.
#[tokio::test]
async fn a_production_configuration_with_discovery_starts() {
    let audit = TempSecret::new("audit-discovery.jsonl", "");
    let mut cmd = common::command();
    cmd.env("SAAS_ENV", "production")
        .env("SAAS_AUTH__ISSUER", "https://idp.invalid/")
        .env("SAAS_AUDIT__PATH", audit.path());
    let mut app = common::start(cmd);
    assert_eq!(common::get(&app.url("/healthz")).await.status, 200);
    assert_eq!(
        common::get(&app.url("/v1/tenants/acme/invoices"))
            .await
            .status,
        401
    );
    let status = app.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn config_prints_the_redacted_configuration_with_sources() {
    let (output, stdout, stderr) = run(common::command().arg("config"));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("environment: development"));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("auth.hs256_secret"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("[REDACTED]") && line.contains("development.toml"),
        "{line}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("server.addr"))
        .unwrap();
    assert!(
        line.contains("\"127.0.0.1:0\"") && line.contains("env SAAS_SERVER__ADDR"),
        "{line}"
    );
    assert!(
        !stdout.contains(DEVELOPMENT_HS256_SECRET) && !stderr.contains(DEVELOPMENT_HS256_SECRET)
    );
}

#[test]
fn config_json() {
    let (output, stdout, _) = run(common::command().args(["config", "--json"]));
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(json["environment"], "development");
    let entries = json["entries"].as_array().unwrap();
    let secret = entries
        .iter()
        .find(|e| e["key"] == "auth.hs256_secret")
        .unwrap();
    assert_eq!(secret["value"], "[REDACTED]");
    assert_eq!(secret["secret"], true);
    assert!(
        secret["source"]
            .as_str()
            .unwrap()
            .contains("development.toml")
    );
    let audience = entries
        .iter()
        .find(|e| e["key"] == "auth.audience")
        .unwrap();
    assert_eq!(audience["value"], "saas-api");

    let (output, stdout, _) = run(common::command()
        .args(["config", "--json"])
        .env("SAAS_ENV", "production"));
    assert!(!output.status.success());
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(json["valid"], false);
    assert!(
        json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["key"] == "auth.issuer")
    );
}
