//! Variables, `_FILE` indirection, files, unknown keys, environments and
//! reporting every problem at once.

mod support;

use guardrails_config::{
    Configuration, Environment, FindingKind, Loader, Requirement, Severity, Source,
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use support::{Fixture, Settings};

fn find<'a>(
    findings: &'a [guardrails_config::Finding],
    key: &str,
) -> &'a guardrails_config::Finding {
    findings
        .iter()
        .find(|f| f.key() == Some(key))
        .unwrap_or_else(|| panic!("no finding for {key}: {findings:#?}"))
}

#[test]
fn variables_reach_string_and_secret_fields_unchanged() {
    let fx = Fixture::new();
    for raw in [
        "007",
        "123456",
        "true",
        "false",
        "\"quoted\"",
        "[a",
        "{x",
        "1e5",
        "-0",
        " spaced ",
        "",
        "ünïcødé ✓",
        "null",
        "~",
        "0x10",
        "a,b",
    ] {
        let loaded = fx
            .loader(&[("APP_AUTH__ISSUER", raw), ("APP_AUTH__HS256_SECRET", raw)])
            .load::<Settings>();
        let loaded = match loaded {
            Ok(loaded) => loaded,
            // only garde's `length(min = 1)` on the issuer may object
            Err(e) => {
                assert_eq!(raw, "", "{e}");
                assert_eq!(e.errors()[0].kind(), FindingKind::Validation);
                continue;
            }
        };
        let auth = &loaded.config().auth;
        assert_eq!(auth.issuer, raw);
        assert_eq!(auth.hs256_secret.as_ref().unwrap().expose_secret(), raw);
    }
}

#[test]
fn numbers_and_booleans_still_parse_from_variables() {
    let fx = Fixture::new();
    for (workers, debug, expected) in [
        ("007", "true", (7, true)),
        ("12", "no", (12, false)),
        ("1", "1", (1, true)),
    ] {
        let loaded = fx
            .loader(&[
                ("APP_SERVER__WORKERS", workers),
                ("APP_SERVER__DEBUG", debug),
            ])
            .load::<Settings>()
            .unwrap();
        assert_eq!(
            (loaded.config().server.workers, loaded.config().server.debug),
            expected
        );
    }
    let error = fx
        .loader(&[("APP_SERVER__WORKERS", "many")])
        .load::<Settings>()
        .unwrap_err();
    let finding = find(error.errors(), "server.workers");
    assert_eq!(finding.kind(), FindingKind::InvalidValue);
    assert_eq!(
        finding.source(),
        Some(&Source::Env {
            var: "APP_SERVER__WORKERS".into()
        })
    );
    assert!(finding.message().contains("expected u8"), "{finding}");
    assert!(!finding.message().contains("many"), "{finding}");
}

#[test]
fn file_indirection_reads_the_file_and_trims_one_newline() {
    let fx = Fixture::new();
    for (contents, expected) in [
        ("abc\n", "abc"),
        ("abc\r\n", "abc"),
        ("abc\n\n", "abc\n"),
        ("abc", "abc"),
        (" abc ", " abc "),
        ("\n", ""),
    ] {
        let path = fx.secret_file("s", contents);
        let loaded = fx
            .loader(&[("APP_AUTH__HS256_SECRET_FILE", &path)])
            .load::<Settings>()
            .unwrap();
        let secret = loaded.config().auth.hs256_secret.as_ref().unwrap();
        assert_eq!(secret.expose_secret(), expected);
        assert_eq!(
            loaded.explain().get("auth.hs256_secret").unwrap().source(),
            Some(&Source::SecretFile {
                var: "APP_AUTH__HS256_SECRET_FILE".into(),
                path: path.clone().into()
            })
        );
    }
    // any key set by a lower layer can come from a file too
    let path = fx.secret_file("addr", "0.0.0.0:8080\n");
    let loaded = fx
        .loader(&[("APP_SERVER__ADDR_FILE", &path)])
        .load::<Settings>()
        .unwrap();
    assert_eq!(loaded.config().server.addr.port(), 8080);
}

#[test]
fn file_indirection_to_a_missing_file_is_an_error_naming_the_variable() {
    let fx = Fixture::new();
    let error = fx
        .loader(&[("APP_AUDIT__HMAC_KEY_FILE", "/nonexistent/guardrails/secret")])
        .load::<Settings>()
        .unwrap_err();
    let finding = find(error.errors(), "audit.hmac_key");
    assert_eq!(finding.kind(), FindingKind::UnreadableFile);
    assert_eq!(
        finding.source(),
        Some(&Source::Env {
            var: "APP_AUDIT__HMAC_KEY_FILE".into()
        })
    );
    assert!(finding.message().contains("does not exist"));
    // The value is not quoted: it may be the secret itself, set where its
    // file's path belongs.
    let error = fx
        .loader(&[("APP_AUDIT__HMAC_KEY_FILE", "Zq3vN8-the-secret-itself")])
        .load::<Settings>()
        .unwrap_err();
    assert!(!format!("{error} {error:?}").contains("Zq3vN8"), "{error}");
}

#[cfg(unix)]
#[test]
fn file_indirection_to_a_fifo_fails_instead_of_blocking() {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("secret");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let loader = fx.loader(&[("APP_AUDIT__HMAC_KEY_FILE", fifo.to_str().unwrap())]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(loader.load::<Settings>().map(|_| ()));
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("loading blocked on the FIFO");
    let error = result.unwrap_err();
    let finding = find(error.errors(), "audit.hmac_key");
    assert!(
        finding.message().contains("not a regular file"),
        "{finding}"
    );
}

#[test]
fn unknown_variables_warn_with_a_suggestion_and_fail_in_strict_mode() {
    let fx = Fixture::new();
    let vars = [("APP_AUTH__ISUER", "x"), ("APP_NOPE__THING", "y")];
    let loaded = fx.loader(&vars).load::<Settings>().unwrap();
    let typo = find(loaded.warnings(), "auth.isuer");
    assert_eq!(typo.severity(), Severity::Warning);
    assert_eq!(typo.kind(), FindingKind::UnknownVariable);
    assert!(
        typo.message().contains("did you mean APP_AUTH__ISSUER?"),
        "{typo}"
    );
    find(loaded.warnings(), "nope");

    let error = fx
        .loader(&vars)
        .strict(true)
        .load::<Settings>()
        .unwrap_err();
    assert_eq!(
        find(error.errors(), "auth.isuer").severity(),
        Severity::Error
    );
}

#[test]
fn single_underscore_section_variables_are_reported_as_typos() {
    let fx = Fixture::new();
    let loaded = fx
        .loader(&[("APP_SERVER_WORKERS", "9")])
        .load::<Settings>()
        .unwrap();
    assert_eq!(loaded.config().server.workers, 4);
    let warning = &loaded.warnings()[0];
    assert!(
        warning
            .message()
            .contains("did you mean APP_SERVER__WORKERS?"),
        "{warning}"
    );
    assert!(
        fx.loader(&[("APP_SERVER_WORKERS", "9")])
            .strict(true)
            .load::<Settings>()
            .is_err()
    );
}

#[test]
fn kubernetes_service_variables_never_break_start_up() {
    let fx = Fixture::new();
    let vars = [
        ("APP_SERVICE_HOST", "10.0.0.1"),
        ("APP_SERVICE_PORT", "80"),
        ("APP_SERVICE_PORT_HTTP", "80"),
        ("APP_PORT", "tcp://10.0.0.1:80"),
        ("APP_PORT_80_TCP", "tcp://10.0.0.1:80"),
        ("APP_PORT_80_TCP_ADDR", "10.0.0.1"),
        ("APP_PORT_80_TCP_PORT", "80"),
        ("APP_PORT_80_TCP_PROTO", "tcp"),
        ("APP_API_SERVICE_HOST", "10.0.0.2"),
        ("APP_SERVER_SERVICE_HOST", "10.0.0.3"),
        ("APP_SERVER_PORT", "tcp://10.0.0.3:443"),
        ("APP_AUTH_PORT_443_TCP_ADDR", "10.0.0.4"),
        ("APPLICATION_SERVER__ADDR", "not ours"),
        ("APP_SOMETHING_ELSE", "not ours either"),
    ];
    let loaded = fx.loader(&vars).strict(true).load::<Settings>().unwrap();
    assert!(loaded.warnings().is_empty(), "{:?}", loaded.warnings());
}

#[test]
fn unknown_environment_is_an_error_never_a_default() {
    let fx = Fixture::new();
    let error = fx
        .loader(&[("APP_ENV", "prod")])
        .load::<Settings>()
        .unwrap_err();
    assert_eq!(error.environment(), None);
    let finding = &error.errors()[0];
    assert_eq!(finding.kind(), FindingKind::UnknownEnvironment);
    assert_eq!(finding.key(), Some("environment"));
    assert_eq!(
        finding.source(),
        Some(&Source::Env {
            var: "APP_ENV".into()
        })
    );
    assert!(
        finding.message().contains("did you mean `production`?"),
        "{finding}"
    );
    for bad in ["", "PRODUCTION ", "live"] {
        assert!(
            fx.loader(&[("APP_ENV", bad)]).load::<Settings>().is_err(),
            "{bad:?}"
        );
    }
    assert_eq!(
        fx.loader(&[]).resolve_environment().unwrap(),
        Environment::Development
    );
    assert_eq!(
        fx.loader(&[("APP_ENV", "Staging")])
            .resolve_environment()
            .unwrap(),
        Environment::Staging
    );
    // The selector's name matches case-insensitively, like every other
    // name: a production deployment never falls back to development.
    for name in ["APP_Env", "APP_env"] {
        assert_eq!(
            fx.loader(&[(name, "production")])
                .resolve_environment()
                .unwrap(),
            Environment::Production,
            "{name}"
        );
    }
    let error = fx
        .loader(&[("APP_ENV", "development"), ("APP_Env", "production")])
        .resolve_environment()
        .unwrap_err();
    assert!(
        error.errors()[0]
            .message()
            .contains("choose different environments"),
        "{error}"
    );
    assert!(
        fx.loader(&[("APP_ENV", "test"), ("APP_env", "test")])
            .resolve_environment()
            .is_ok()
    );
}

#[test]
fn missing_files_are_fine_unless_required() {
    let fx = Fixture::empty();
    let base = [
        ("APP_SERVER__ADDR", "127.0.0.1:1"),
        ("APP_SERVER__WORKERS", "1"),
        ("APP_AUTH__ISSUER", "x"),
    ];
    fx.loader(&base).load::<Settings>().unwrap();
    let error = fx
        .loader(&base)
        .default_file(Requirement::Required)
        .environment_file(Requirement::Required)
        .load::<Settings>()
        .unwrap_err();
    assert_eq!(error.errors().len(), 2, "{error}");
    assert!(
        error
            .errors()
            .iter()
            .all(|f| f.kind() == FindingKind::MissingFile)
    );
    assert!(error.to_string().contains("development.toml"));
    // a directory that does not exist: a warning, and no parent search
    let loaded = Loader::new("APP")
        .config_dir(fx.dir.path().join("nope"))
        .with_env_vars(base)
        .load::<Settings>()
        .unwrap();
    assert_eq!(loaded.warnings()[0].kind(), FindingKind::MissingFile);
}

#[test]
fn syntax_errors_name_the_file_and_line_but_not_the_text() {
    let fx = Fixture::new();
    fx.file(
        "development.toml",
        "[auth]\nhs256_secret = \"unterminated-canary\n",
    );
    let error = fx.loader(&[]).load::<Settings>().unwrap_err();
    let finding = &error.errors()[0];
    assert_eq!(finding.kind(), FindingKind::Syntax);
    assert!(finding.message().contains("line 2"), "{finding}");
    assert!(!error.to_string().contains("canary"));
    assert!(!format!("{error:?}").contains("canary"));
}

#[test]
fn unknown_keys_in_files_are_errors_with_a_suggestion() {
    let fx = Fixture::new();
    fx.file(
        "development.toml",
        "[auth]\nisuer = \"x\"\n[sever]\naddr = \"1.2.3.4:5\"\n",
    );
    let error = fx.loader(&[]).load::<Settings>().unwrap_err();
    let isuer = find(error.errors(), "auth.isuer");
    assert_eq!(isuer.kind(), FindingKind::UnknownKey);
    assert!(
        isuer.message().contains("did you mean `auth.issuer`?"),
        "{isuer}"
    );
    assert!(matches!(
        isuer.source(),
        Some(Source::File {
            profile: Some(Environment::Development),
            ..
        })
    ));
    let sever = find(error.errors(), "sever");
    assert!(
        sever.message().contains("did you mean `server`?"),
        "{sever}"
    );
}

/// Without `deny_unknown_fields`, unknown keys are still found.
#[derive(Debug, Deserialize, garde::Validate)]
struct Loose {
    #[garde(dive)]
    server: LooseServer,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code, reason = "only deserialized")]
struct LooseServer {
    #[garde(skip)]
    workers: u8,
    #[garde(skip)]
    name: Option<String>,
}

impl Configuration for Loose {}

#[test]
fn unknown_keys_are_found_without_deny_unknown_fields_too() {
    let fx = Fixture::empty();
    fx.file(
        "default.toml",
        "[server]\nworkers = 2\nworkerz = 3\nname = \"n\"\n",
    );
    let error = fx
        .loader(&[("APP_SERVER__NAMES", "x")])
        .load::<Loose>()
        .unwrap_err();
    let finding = find(error.errors(), "server.workerz");
    assert!(
        finding.message().contains("did you mean `server.workers`?"),
        "{finding}"
    );
    // the variable is a warning only
    assert!(error.keys().all(|k| k != "server.names"));
    assert!(
        error
            .warnings()
            .iter()
            .any(|w| w.key() == Some("server.names"))
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let fx = Fixture::new();
    fx.file(
        "development.toml",
        "[server]\nworkers = \"many\"\nname = \"this name is far too long for the garde rule on it\"\nbogus = 1\n",
    );
    let error = fx
        .loader(&[
            ("APP_SERVER__ADDR", "not an address"),
            ("APP_AUTH__PIN", "12x"),
        ])
        .load::<Settings>()
        .unwrap_err();
    let keys: Vec<&str> = error.keys().collect();
    for key in ["server.workers", "server.bogus", "server.addr", "auth.pin"] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}\n{error}");
    }
    assert_eq!(
        find(error.errors(), "server.addr").source(),
        Some(&Source::Env {
            var: "APP_SERVER__ADDR".into()
        })
    );
    assert!(matches!(
        find(error.errors(), "server.workers").source(),
        Some(Source::File {
            profile: Some(Environment::Development),
            ..
        })
    ));
    // garde runs once the value types are right
    fx.file(
        "development.toml",
        "[server]\nname = \"this name is far too long for the garde rule on it\"\nworkers = 99\n",
    );
    let error = fx.loader(&[]).load::<Settings>().unwrap_err();
    let keys: Vec<&str> = error.keys().collect();
    assert!(
        keys.contains(&"server.name") && keys.contains(&"server.workers"),
        "{error}"
    );
    assert!(
        error
            .errors()
            .iter()
            .all(|f| f.kind() == FindingKind::Validation)
    );
    // the Display lists each problem on its own line
    assert_eq!(error.to_string().lines().count(), 1 + error.errors().len());
}

#[test]
fn a_missing_required_value_is_named() {
    let fx = Fixture::empty();
    let error = fx
        .loader(&[
            ("APP_SERVER__ADDR", "127.0.0.1:1"),
            ("APP_SERVER__WORKERS", "1"),
        ])
        .load::<Settings>()
        .unwrap_err();
    let finding = find(error.errors(), "auth");
    assert_eq!(finding.kind(), FindingKind::MissingValue);
}

#[test]
fn the_config_dir_is_explicit_no_parent_search() {
    let fx = Fixture::new();
    let child = fx.dir.path().join("child");
    std::fs::create_dir(&child).unwrap();
    let error = Loader::new("APP")
        .config_dir(&child)
        .with_env_vars::<String, String>([])
        .load::<Settings>()
        .unwrap_err();
    // the parent's default.toml (server, auth) was not read
    assert!(error.keys().any(|k| k == "server"), "{error}");
    let error = Loader::new("APP")
        .config_dir(&child)
        .default_file(Requirement::Required)
        .with_env_vars::<String, String>([])
        .load::<Settings>()
        .unwrap_err();
    assert_eq!(error.errors()[0].kind(), FindingKind::MissingFile);
}

#[derive(serde::Serialize)]
struct Defaults {
    server: DefaultServer,
}

#[derive(serde::Serialize)]
struct DefaultServer {
    addr: &'static str,
    workers: u8,
}

#[test]
fn typed_defaults_from_a_serializable_type() {
    let fx = Fixture::empty();
    let loaded = fx
        .loader(&[("APP_AUTH__ISSUER", "x")])
        .defaults(&Defaults {
            server: DefaultServer {
                addr: "127.0.0.1:9",
                workers: 3,
            },
        })
        .load::<Settings>()
        .unwrap();
    assert_eq!(loaded.config().server.workers, 3);
    assert_eq!(
        loaded.explain().get("server.addr").unwrap().source(),
        Some(&Source::Default)
    );
    // defaults that are not a table are reported, not panicked on
    let error = fx.loader(&[]).defaults(&5).load::<Settings>().unwrap_err();
    assert_eq!(error.errors()[0].source(), Some(&Source::Default));
}

#[test]
fn sources_display_names_the_file_or_variable() {
    let cases = [
        (Source::Default, "default"),
        (
            Source::File {
                path: "config/default.toml".into(),
                profile: None,
            },
            "file config/default.toml",
        ),
        (
            Source::Env {
                var: "APP_X__Y".into(),
            },
            "env APP_X__Y",
        ),
        (
            Source::SecretFile {
                var: "APP_X__Y_FILE".into(),
                path: "/run/secrets/y".into(),
            },
            "file /run/secrets/y (via APP_X__Y_FILE)",
        ),
        (Source::Override, "override"),
    ];
    for (source, text) in cases {
        assert_eq!(source.to_string(), text);
    }
}

#[test]
fn missing_values_do_not_hide_later_problems() {
    let fx = Fixture::empty();
    fx.file(
        "default.toml",
        "[server]\nworkers = \"many\"\nname = \"a name that is far too long for the garde rule on it\"\n",
    );
    let error = fx.loader(&[]).load::<Settings>().unwrap_err();
    let mut keys: Vec<(&str, FindingKind)> = error
        .errors()
        .iter()
        .map(|f| (f.key().unwrap(), f.kind()))
        .collect();
    keys.sort_by_key(|(k, _)| *k);
    assert_eq!(
        keys,
        [
            ("auth", FindingKind::MissingValue),
            ("server.addr", FindingKind::MissingValue),
            ("server.name", FindingKind::Validation),
            ("server.workers", FindingKind::InvalidValue),
        ],
        "{error}"
    );
    // the stand-ins never show up in the explanation
    let explain = error.explain().unwrap();
    assert!(explain.get("server.addr").is_none() && explain.get("auth.issuer").is_none());
    assert!(explain.get("server.name").is_some());
}
