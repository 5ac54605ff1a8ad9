//! Every hardening rule, firing and not firing.

mod support;

use guardrails_config::{ConfigError, Environment, FindingKind, Loaded, Rule, Severity, Source};
use support::{DEV_SECRET, Fixture, STRONG, Settings};

fn load(fx: &Fixture, changes: &[(&str, &str)]) -> Result<Loaded<Settings>, ConfigError> {
    fx.production(changes).load::<Settings>()
}

/// The hardening findings (errors and warnings) of a load, as (key, rule, severity).
fn hardening(result: &Result<Loaded<Settings>, ConfigError>) -> Vec<(String, Rule, Severity)> {
    let (errors, warnings) = match result {
        Ok(loaded) => (&[][..], loaded.warnings()),
        Err(error) => (error.errors(), error.warnings()),
    };
    errors
        .iter()
        .chain(warnings)
        .filter_map(|f| match f.kind() {
            FindingKind::Hardening(rule) => Some((f.key().unwrap().to_owned(), rule, f.severity())),
            _ => None,
        })
        .collect()
}

fn fires(result: &Result<Loaded<Settings>, ConfigError>, key: &str, rule: Rule) -> bool {
    hardening(result)
        .iter()
        .any(|(k, r, s)| k == key && *r == rule && *s == Severity::Error)
}

#[test]
fn a_good_production_config_passes_without_warnings() {
    let fx = Fixture::new();
    let loaded = load(&fx, &[]).unwrap();
    assert_eq!(loaded.environment(), Environment::Production);
    assert!(loaded.warnings().is_empty(), "{:?}", loaded.warnings());
}

#[test]
fn required_secret() {
    let fx = Fixture::new();
    let missing = load(&fx, &[("APP_AUDIT__HMAC_KEY_FILE", "")]);
    assert!(fires(&missing, "audit.hmac_key", Rule::Required));
    let message = missing.unwrap_err().to_string();
    assert!(message.contains("APP_AUDIT__HMAC_KEY_FILE"), "{message}");
    // optional secrets may be absent
    let no_hs = load(&fx, &[("APP_AUTH__HS256_SECRET_FILE", "")]);
    assert!(no_hs.is_ok(), "{:?}", hardening(&no_hs));
}

#[test]
fn secret_length() {
    let fx = Fixture::new();
    let short = fx.secret_file("short", &STRONG[..31]);
    let exact = fx.secret_file("exact", &STRONG[..32]);
    assert!(fires(
        &load(&fx, &[("APP_AUTH__HS256_SECRET_FILE", &short)]),
        "auth.hs256_secret",
        Rule::SecretLength
    ));
    let ok = load(&fx, &[("APP_AUTH__HS256_SECRET_FILE", &exact)]);
    assert!(ok.is_ok(), "{:?}", hardening(&ok));
}

#[test]
fn secret_entropy() {
    let fx = Fixture::new();
    let weak = fx.secret_file("weak", &"ab".repeat(24));
    assert!(fires(
        &load(&fx, &[("APP_AUTH__HS256_SECRET_FILE", &weak)]),
        "auth.hs256_secret",
        Rule::SecretEntropy
    ));
    let strong = fx.secret_file("strong", &format!("{STRONG}{STRONG}"));
    assert!(load(&fx, &[("APP_AUTH__HS256_SECRET_FILE", &strong)]).is_ok());
}

#[test]
fn development_secret_by_value() {
    let fx = Fixture::new();
    let result = load(
        &fx,
        &[
            ("APP_AUTH__HS256_SECRET_FILE", ""),
            ("APP_AUTH__HS256_SECRET", DEV_SECRET),
        ],
    );
    assert!(fires(&result, "auth.hs256_secret", Rule::DevelopmentSecret));
    let text = result.unwrap_err().to_string();
    assert!(text.contains("development.toml"), "{text}");
    assert!(!text.contains(DEV_SECRET));
}

#[test]
fn development_secret_by_source() {
    let fx = Fixture::new();
    // a development profile file in a hardened environment
    let result = fx
        .loader(&[])
        .harden_in([Environment::Development])
        .load::<Settings>();
    assert!(fires(&result, "auth.hs256_secret", Rule::DevelopmentSecret));
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("came from a development profile file")
    );
    // a code default
    let result = fx
        .production(&[("APP_AUTH__HS256_SECRET_FILE", "")])
        .default_value("auth.hs256_secret", STRONG)
        .load::<Settings>();
    assert!(fires(&result, "auth.hs256_secret", Rule::DevelopmentSecret));
    // default.toml, which every environment reads
    fx.file(
        "default.toml",
        &format!("[server]\naddr = \"127.0.0.1:1\"\nworkers = 1\n[auth]\nissuer = \"x\"\nhs256_secret = \"{STRONG}\"\n"),
    );
    let result = load(&fx, &[("APP_AUTH__HS256_SECRET_FILE", "")]);
    assert!(fires(&result, "auth.hs256_secret", Rule::DevelopmentSecret));
    // production.toml is the deployment's own file: allowed (with the file warning)
    let fx = Fixture::new();
    fx.file(
        "production.toml",
        &format!("[auth]\nhs256_secret = \"{STRONG}\"\n"),
    );
    let result = load(&fx, &[("APP_AUTH__HS256_SECRET_FILE", "")]);
    assert!(!fires(
        &result,
        "auth.hs256_secret",
        Rule::DevelopmentSecret
    ));
    assert!(result.is_ok());
}

#[test]
fn secrets_preferably_from_files() {
    let fx = Fixture::new();
    let result = load(
        &fx,
        &[
            ("APP_AUTH__HS256_SECRET_FILE", ""),
            ("APP_AUTH__HS256_SECRET", STRONG),
        ],
    );
    let loaded = result.as_ref().unwrap();
    let warning = loaded
        .warnings()
        .iter()
        .find(|w| w.kind() == FindingKind::Hardening(Rule::SecretNotFromFile))
        .unwrap();
    assert_eq!(warning.key(), Some("auth.hs256_secret"));
    assert_eq!(
        warning.source(),
        Some(&Source::Env {
            var: "APP_AUTH__HS256_SECRET".into()
        })
    );
    assert!(warning.message().contains("APP_AUTH__HS256_SECRET_FILE"));
    // from a file: no warning
    assert!(load(&fx, &[]).unwrap().warnings().is_empty());
}

#[test]
fn https_only_for_external_urls() {
    let fx = Fixture::new();
    for (url, bad) in [
        ("https://idp.example.com", false),
        ("HTTPS://idp.example.com:8443/x", false),
        ("http://idp.example.com", true),
        ("http://localhost:8080", true),
        ("http://127.0.0.1/", true),
        ("https://user:pass@idp.example.com", true),
        ("ftp://idp.example.com", true),
        ("idp.example.com", true),
        ("app-dev", true),
    ] {
        let result = load(&fx, &[("APP_AUTH__ISSUER", url)]);
        assert_eq!(
            fires(&result, "auth.issuer", Rule::InsecureUrl),
            bad,
            "{url}"
        );
        if let Err(error) = &result
            && url.contains("pass")
        {
            assert!(!error.to_string().contains("pass@"));
        }
        let result = load(&fx, &[("APP_AUTH__JWKS_URL", url)]);
        assert_eq!(
            fires(&result, "auth.jwks_url", Rule::InsecureUrl),
            bad,
            "{url}"
        );
    }
    // loopback http is allowed outside production (staging, hardened)
    for url in [
        "http://localhost:8080/jwks",
        "http://127.0.0.1/jwks",
        "http://[::1]:9/jwks",
    ] {
        let staging = fx
            .production(&[("APP_ENV", "staging"), ("APP_AUTH__JWKS_URL", url)])
            .harden_in([Environment::Staging])
            .load::<Settings>();
        assert!(staging.is_ok(), "{url}: {:?}", hardening(&staging));
        let staging = fx
            .production(&[
                ("APP_ENV", "staging"),
                ("APP_AUTH__JWKS_URL", "http://jwks.example.com"),
            ])
            .harden_in([Environment::Staging])
            .load::<Settings>();
        assert!(fires(&staging, "auth.jwks_url", Rule::InsecureUrl));
    }
}

#[test]
fn no_debug_flags() {
    let fx = Fixture::new();
    assert!(fires(
        &load(&fx, &[("APP_SERVER__DEBUG", "true")]),
        "server.debug",
        Rule::DebugEnabled
    ));
    assert!(load(&fx, &[("APP_SERVER__DEBUG", "false")]).is_ok());
}

#[test]
fn no_wildcard_cors() {
    let fx = Fixture::new();
    for origins in ["*", "https://a.example, *", "https://*.example.com", "null"] {
        let result = load(&fx, &[("APP_SERVER__CORS_ORIGINS", origins)]);
        assert!(
            fires(&result, "server.cors_origins", Rule::WildcardCors),
            "{origins}"
        );
    }
    let ok = load(
        &fx,
        &[(
            "APP_SERVER__CORS_ORIGINS",
            "https://a.example, https://b.example",
        )],
    );
    assert!(ok.is_ok(), "{:?}", hardening(&ok));
    fx.file("production.toml", "[server]\ncors_origins = [\"*\"]\n");
    assert!(fires(
        &load(&fx, &[]),
        "server.cors_origins",
        Rule::WildcardCors
    ));
}

#[test]
fn required_destination() {
    let fx = Fixture::new();
    assert!(fires(
        &load(&fx, &[("APP_AUDIT__PATH", "")]),
        "audit.path",
        Rule::Required
    ));
}

#[test]
fn app_defined_rules() {
    let fx = Fixture::new();
    let result = load(&fx, &[("APP_SERVER__WORKERS", "40")]);
    assert!(fires(
        &result,
        "server.workers",
        Rule::Custom("app.max_workers")
    ));
    let error = result.unwrap_err();
    assert_eq!(error.errors()[0].kind().as_str(), "app.max_workers");
    assert!(load(&fx, &[("APP_SERVER__WORKERS", "32")]).is_ok());
}

#[test]
fn rules_are_inactive_outside_hardened_environments() {
    let fx = Fixture::new();
    let bad = [
        ("APP_AUTH__ISSUER", "http://idp.example.com"),
        ("APP_SERVER__DEBUG", "true"),
        ("APP_SERVER__CORS_ORIGINS", "*"),
        ("APP_AUTH__HS256_SECRET", "short"),
    ];
    for env in ["development", "test", "staging"] {
        let mut vars = bad.to_vec();
        vars.push(("APP_ENV", env));
        let loaded = fx.loader(&vars).load::<Settings>().unwrap();
        assert!(loaded.warnings().is_empty());
    }
}

#[test]
fn every_hardening_problem_at_once_with_its_source() {
    let fx = Fixture::new();
    let short = fx.secret_file("short", "tiny");
    let error = load(
        &fx,
        &[
            ("APP_AUTH__ISSUER", "http://idp.example.com"),
            ("APP_AUTH__HS256_SECRET_FILE", &short),
            ("APP_AUDIT__HMAC_KEY_FILE", ""),
            ("APP_AUDIT__PATH", ""),
            ("APP_SERVER__DEBUG", "1"),
        ],
    )
    .unwrap_err();
    let keys: Vec<&str> = error.keys().collect();
    for key in [
        "auth.issuer",
        "auth.hs256_secret",
        "audit.hmac_key",
        "audit.path",
        "server.debug",
    ] {
        assert!(keys.contains(&key), "{key}: {error}");
    }
    let issuer = error
        .errors()
        .iter()
        .find(|f| f.key() == Some("auth.issuer"))
        .unwrap();
    assert_eq!(
        issuer.source(),
        Some(&Source::Env {
            var: "APP_AUTH__ISSUER".into()
        })
    );
    let hs = error
        .errors()
        .iter()
        .find(|f| f.key() == Some("auth.hs256_secret"))
        .unwrap();
    assert!(matches!(hs.source(), Some(Source::SecretFile { .. })));
    assert!(error.to_string().contains("auth.hs256_secret (from file "));
}
