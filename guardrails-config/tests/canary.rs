//! The canary: a random secret driven through every path — success, wrong
//! type, validation failure, hardening failure, `Debug` of the config and of
//! every error, `explain`, tracing output, a caught panic — never appears in
//! any output.

mod support;

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use guardrails_config::{ConfigError, Loaded};
use secrecy::SecretString;
use support::{Fixture, Settings};

fn canary() -> String {
    let state = RandomState::new();
    (0..3)
        .map(|i| format!("{:016x}", state.hash_one(i)))
        .collect::<String>()
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Everything a load can print.
fn describe(result: &Result<Loaded<Settings>, ConfigError>) -> String {
    let mut out = String::new();
    match result {
        Ok(loaded) => {
            out += &format!("{loaded:?}\n{:#?}\n", loaded.config());
            out += &format!("{}\n{}\n", loaded.explain(), loaded.explain().to_json());
            for w in loaded.warnings() {
                out += &format!("{w}\n{w:?}\n{}\n", serde_json::to_string(w).unwrap());
            }
        }
        Err(error) => {
            out += &format!("{error}\n{error:?}\n{error:#?}\n");
            for f in error.errors().iter().chain(error.warnings()) {
                out += &format!("{f}\n{f:?}\n{}\n", serde_json::to_string(f).unwrap());
            }
            if let Some(explain) = error.explain() {
                out += &format!("{explain}\n{}\n", explain.to_json());
            }
        }
    }
    out
}

/// The tests of this file run one at a time: tracing's callsite interest and
/// global max level are process-wide, and a test loading configuration on
/// another thread while the canary test's scoped subscriber is being set up
/// can leave events of the canary test unrecorded.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn the_canary_never_appears_in_any_output() {
    let _serial = serial();
    let canary = canary();
    let short = &canary[..20];
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let mut out = String::new();
    let mut outcomes = Vec::new();

    tracing::subscriber::with_default(subscriber, || {
        // Callsites first hit by another thread while no subscriber was
        // listening may have cached "not interested" (and a lower global
        // max level); recompute now that this one is the default.
        tracing::callsite::rebuild_interest_cache();
        let fx = Fixture::new();
        let secret_path = fx.secret_file("hs", &format!("{canary}\n"));

        // success: a secret file and a variable, in production
        let ok = fx
            .production(&[
                ("APP_AUTH__HS256_SECRET_FILE", &secret_path),
                ("APP_AUDIT__HMAC_KEY_FILE", ""),
                ("APP_AUDIT__HMAC_KEY", &canary),
            ])
            .load::<Settings>();
        assert!(ok.is_ok(), "{}", describe(&ok));
        out += &describe(&ok);
        // success in development, with an override from code
        let ok = fx
            .loader(&[])
            .set_secret("auth.hs256_secret", &SecretString::from(canary.clone()))
            .load::<Settings>();
        assert!(ok.is_ok());
        out += &describe(&ok);
        let loader = fx
            .loader(&[("APP_AUTH__HS256_SECRET", &canary)])
            .set_secret("audit.hmac_key", &SecretString::from(canary.clone()))
            .set("server.name", &canary);
        out += &format!("{loader:?}\n");

        // wrong types
        let mut failures: Vec<Result<Loaded<Settings>, ConfigError>> = vec![
            fx.loader(&[("APP_AUTH__PIN", &canary)]).load(),
            fx.loader(&[("APP_SERVER__WORKERS", &canary)]).load(),
            fx.loader(&[("APP_SERVER__ADDR", &canary)]).load(),
            fx.loader(&[("APP_AUTH__HS256_SECRET__NESTED", &canary)])
                .load(),
            fx.loader(&[("APP_AUTH_HS256_SECRET", &canary)])
                .strict(true)
                .load(),
            fx.loader(&[("APP_AUTH__HS256_SECRETT", &canary)])
                .strict(true)
                .load(),
        ];
        fx.file(
            "test.toml",
            &format!("[auth]\nhs256_secret = [\"{canary}\"]\n"),
        );
        failures.push(fx.loader(&[("APP_ENV", "test")]).load());
        fx.file(
            "test.toml",
            &format!("[auth]\nhs256_secrett = \"{canary}\"\n"),
        );
        failures.push(fx.loader(&[("APP_ENV", "test")]).load());
        fx.file(
            "test.toml",
            &format!("[auth]\nhs256_secret = {{ x = \"{canary}\" }}\n"),
        );
        failures.push(fx.loader(&[("APP_ENV", "test")]).load());
        fx.file("test.toml", &format!("[auth]\nhs256_secret = \"{canary}\n"));
        failures.push(fx.loader(&[("APP_ENV", "test")]).load());
        // validation failure (the app's validator even puts the value in its message)
        failures.push(
            fx.loader(&[("APP_AUTH__HS256_SECRET", &format!("invalid:{canary}"))])
                .load(),
        );
        // hardening failures: too short, reused development value, not https
        failures.push(
            fx.production(&[
                ("APP_AUDIT__HMAC_KEY_FILE", ""),
                ("APP_AUDIT__HMAC_KEY", short),
            ])
            .load(),
        );
        fx.file(
            "development.toml",
            &format!("[auth]\nhs256_secret = \"{canary}\"\n"),
        );
        failures.push(
            fx.production(&[
                ("APP_AUTH__HS256_SECRET_FILE", &secret_path),
                (
                    "APP_AUTH__ISSUER",
                    &format!("http://u:{canary}@idp.example.com"),
                ),
            ])
            .load(),
        );
        for failure in &failures {
            assert!(failure.is_err(), "{}", describe(failure));
            out += &describe(failure);
        }
        outcomes = failures;

        // caught panics: unwrap of a failed load, and a panic formatting a config
        std::panic::set_hook(Box::new(|_| {}));
        let payload = catch_unwind(AssertUnwindSafe(|| {
            fx.production(&[
                ("APP_AUDIT__HMAC_KEY_FILE", ""),
                ("APP_AUDIT__HMAC_KEY", short),
            ])
            .load::<Settings>()
            .unwrap()
        }))
        .unwrap_err();
        out += payload.downcast_ref::<String>().unwrap();
        let loaded = fx
            .loader(&[("APP_AUTH__HS256_SECRET", &canary)])
            .load::<Settings>()
            .unwrap();
        let payload = catch_unwind(AssertUnwindSafe(|| panic!("config: {loaded:?}"))).unwrap_err();
        out += payload.downcast_ref::<String>().unwrap();
        let _ = std::panic::take_hook();
    });

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // the paths really ran and produced output
    assert!(
        logs.contains("configuration loaded") && logs.contains("configuration rejected"),
        "{logs}"
    );
    for expected in [
        "[REDACTED]",
        "auth.pin",
        "server.workers",
        "server.addr",
        "hs256_secrett",
        "auth.hs256_secret",
        "audit.hmac_key",
        "auth.issuer",
        "line 2",
    ] {
        assert!(out.contains(expected), "{expected} missing from output");
    }
    assert!(outcomes.len() >= 12);
    for (name, text) in [("output", &out), ("tracing", &logs)] {
        let leaks: Vec<String> = text
            .lines()
            .filter(|line| line.contains(short))
            .map(|line| line.replace(short, "<CANARY>"))
            .collect();
        assert!(
            leaks.is_empty(),
            "the canary leaked into {name}:\n{}",
            leaks.join("\n")
        );
    }
}

/// The trap this crate closes: figment on its own echoes the value in its
/// error message (so the canary test above is meaningful).
#[test]
fn figment_alone_echoes_the_value() {
    let _serial = serial();
    #[derive(Debug, serde::Deserialize)]
    struct Pin {
        #[allow(dead_code, reason = "only deserialized")]
        pin: u32,
    }
    let canary = canary();
    let error = figment::Figment::from(("pin", canary.as_str()))
        .extract::<Pin>()
        .unwrap_err();
    assert!(error.to_string().contains(&canary));
    assert!(format!("{error:?}").contains(&canary));
}

/// A secret nested in a list of tables is a leaf of no `explain` entry of
/// its own: it is redacted inside the list's value, table and JSON alike.
#[test]
fn secrets_nested_in_lists_of_tables_are_redacted() {
    let _serial = serial();
    #[derive(Debug, serde::Deserialize, garde::Validate)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Replicas {
        #[garde(skip)]
        replicas: Vec<Replica>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Replica {
        host: String,
        password: SecretString,
        tls: ReplicaTls,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "only deserialized")]
    struct ReplicaTls {
        private_key: SecretString,
    }
    impl guardrails_config::Configuration for Replicas {}

    let canary = canary();
    let fx = Fixture::empty();
    fx.file(
        "default.toml",
        &format!(
            "[[replicas]]\nhost = \"db-1.internal\"\npassword = \"{canary}\"\n\
             tls = {{ private_key = \"{canary}\" }}\n"
        ),
    );
    let loaded = fx.loader(&[]).load::<Replicas>().unwrap();
    let table = loaded.explain().to_string();
    let json = loaded.explain().to_json().to_string();
    for text in [&table, &json] {
        assert!(text.contains("db-1.internal"), "{text}");
        assert!(!text.contains(&canary), "{text}");
    }
    let entry = loaded.explain().get("replicas").unwrap();
    assert_eq!(entry.value()[0]["password"], "[REDACTED]");
    assert_eq!(entry.value()[0]["tls"]["private_key"], "[REDACTED]");
}

/// Messages the app writes — a garde validator on a table that holds a
/// secret, a hardening rule — are scrubbed of every secret value.
#[test]
fn app_messages_that_quote_a_secret_are_scrubbed() {
    let _serial = serial();
    use guardrails_config::{Configuration, Environment, Hardening, Loader};
    use secrecy::ExposeSecret;

    #[derive(Debug, serde::Deserialize, garde::Validate)]
    struct Careless {
        #[garde(custom(quote_the_secret))]
        upstream: Upstream,
    }
    #[derive(Debug, serde::Deserialize)]
    struct Upstream {
        api_secret: SecretString,
    }
    fn quote_the_secret(upstream: &Upstream, _: &()) -> garde::Result {
        Err(garde::Error::new(format!(
            "rejected {}",
            upstream.api_secret.expose_secret()
        )))
    }
    impl Configuration for Careless {
        fn harden(&self, h: &mut Hardening<'_>) {
            let quoted = format!("bad {}", self.upstream.api_secret.expose_secret());
            h.error("app.quoting", "upstream", quoted.clone());
            h.warn("app.quoting", "upstream", quoted);
        }
    }

    let canary = canary();
    let error = Loader::new("APP")
        .environment(Environment::Production)
        .with_env_vars([("APP_UPSTREAM__API_SECRET", canary.as_str())])
        .load::<Careless>()
        .unwrap_err();
    let text = format!("{error}\n{error:?}");
    assert!(!text.contains(&canary), "{text}");
    assert_eq!(error.errors().len(), 2, "{text}");
    assert!(
        error
            .errors()
            .iter()
            .chain(error.warnings())
            .all(|f| f.message().contains("[REDACTED]")),
        "{text}"
    );
}
