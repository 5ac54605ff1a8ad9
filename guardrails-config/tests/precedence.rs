//! Layer precedence: for every pair of sources, the higher one wins, and
//! `explain` names it.

mod support;

use guardrails_config::{Configuration, Environment, Loader, REDACTED, Source};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use support::Fixture;

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Pair {
    #[garde(dive)]
    #[serde(default)]
    app: PairApp,
}

#[derive(Debug, Default, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct PairApp {
    #[garde(skip)]
    name: Option<String>,
    #[garde(skip)]
    token: Option<SecretString>,
}

impl Configuration for Pair {
    const SECRET_KEYS: &'static [&'static str] = &["app.token"];
}

/// The sources, lowest precedence first.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    Default,
    DefaultFile,
    EnvironmentFile,
    Var,
    FileVar,
    Override,
}

const ALL: [Src; 6] = [
    Src::Default,
    Src::DefaultFile,
    Src::EnvironmentFile,
    Src::Var,
    Src::FileVar,
    Src::Override,
];

fn value(src: Src) -> String {
    format!("{src:?}-value")
}

fn loader(fx: &Fixture, field: &str, sources: &[Src]) -> Loader {
    let key = format!("app.{field}");
    let var = format!("APP_APP__{}", field.to_uppercase());
    let mut vars = vec![("APP_ENV".to_owned(), "test".to_owned())];
    let mut loader = Loader::new("APP").config_dir(fx.dir.path());
    for &src in sources {
        let v = value(src);
        match src {
            Src::Default => loader = loader.default_value(&key, v),
            Src::DefaultFile => {
                fx.file("default.toml", &format!("[app]\n{field} = \"{v}\"\n"));
            }
            Src::EnvironmentFile => {
                fx.file("test.toml", &format!("[app]\n{field} = \"{v}\"\n"));
            }
            Src::Var => vars.push((var.clone(), v)),
            Src::FileVar => {
                let path = fx.secret_file(field, &format!("{v}\n"));
                vars.push((format!("{var}_FILE"), path));
            }
            Src::Override => loader = loader.set(&key, v),
        }
    }
    loader.with_env_vars(vars)
}

fn expected_source(fx: &Fixture, field: &str, src: Src) -> Source {
    let var = format!("APP_APP__{}", field.to_uppercase());
    match src {
        Src::Default => Source::Default,
        Src::DefaultFile => Source::File {
            path: fx.dir.path().join("default.toml"),
            profile: None,
        },
        Src::EnvironmentFile => Source::File {
            path: fx.dir.path().join("test.toml"),
            profile: Some(Environment::Test),
        },
        Src::Var => Source::Env { var },
        Src::FileVar => Source::SecretFile {
            var: format!("{var}_FILE"),
            path: fx.dir.path().join("secrets").join(field),
        },
        Src::Override => Source::Override,
    }
}

fn check(field: &str, lo: Src, hi: Src) {
    let fx = Fixture::empty();
    let loaded = loader(&fx, field, &[lo, hi])
        .load::<Pair>()
        .unwrap_or_else(|e| panic!("{lo:?} < {hi:?}: {e}"));
    let got = match field {
        "name" => loaded.config().app.name.clone().unwrap(),
        _ => loaded
            .config()
            .app
            .token
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned(),
    };
    assert_eq!(got, value(hi), "{field}: {lo:?} < {hi:?}");
    let entry = loaded.explain().get(&format!("app.{field}")).unwrap();
    assert_eq!(
        entry.source(),
        Some(&expected_source(&fx, field, hi)),
        "{field}: {lo:?} < {hi:?}"
    );
    if field == "token" {
        assert_eq!(entry.value(), REDACTED);
    }
}

#[test]
fn every_pair_of_sources_on_a_secret_field() {
    for (i, &lo) in ALL.iter().enumerate() {
        for &hi in &ALL[i + 1..] {
            check("token", lo, hi);
        }
    }
}

#[test]
fn every_pair_of_sources_on_a_string_field() {
    for (i, &lo) in ALL.iter().enumerate() {
        for &hi in &ALL[i + 1..] {
            // `_FILE` for a plain key works when a lower layer sets the key.
            if hi == Src::FileVar && lo == Src::Var {
                continue;
            }
            check("name", lo, hi);
        }
    }
}

#[test]
fn all_sources_at_once_then_removing_the_top_one_each_time() {
    for top in (0..ALL.len()).rev() {
        let fx = Fixture::empty();
        let loaded = loader(&fx, "token", &ALL[..=top]).load::<Pair>().unwrap();
        let token = loaded.config().app.token.as_ref().unwrap();
        assert_eq!(token.expose_secret(), value(ALL[top]));
    }
}

#[test]
fn a_variable_and_its_file_twin_warn_and_the_file_wins() {
    let fx = Fixture::empty();
    let loaded = loader(&fx, "token", &[Src::Var, Src::FileVar])
        .load::<Pair>()
        .unwrap();
    assert!(
        loaded
            .warnings()
            .iter()
            .any(|w| w.key() == Some("app.token") && w.message().contains("the file wins")),
        "{:?}",
        loaded.warnings()
    );
    // strict: the ambiguity is an error
    let error = loader(&fx, "token", &[Src::Var, Src::FileVar])
        .strict(true)
        .load::<Pair>()
        .unwrap_err();
    assert!(error.keys().any(|k| k == "app.token"), "{error}");
}

#[test]
fn only_the_selected_environment_file_is_read() {
    let fx = Fixture::empty();
    fx.file("production.toml", "[app]\nname = \"prod\"\n");
    fx.file("development.toml", "[app]\nname = \"dev\"\n");
    let dev = Loader::new("APP")
        .config_dir(fx.dir.path())
        .with_env_vars::<String, String>([])
        .load::<Pair>()
        .unwrap();
    assert_eq!(dev.environment(), Environment::Development);
    assert_eq!(dev.config().app.name.as_deref(), Some("dev"));
    let staging = Loader::new("APP")
        .config_dir(fx.dir.path())
        .with_env_vars([("APP_ENV", "staging")])
        .load::<Pair>()
        .unwrap();
    assert_eq!(staging.config().app.name, None);
    let explicit = Loader::new("APP")
        .config_dir(fx.dir.path())
        .environment(Environment::Production)
        .with_env_vars([("APP_ENV", "development")])
        .load::<Pair>()
        .unwrap();
    assert_eq!(explicit.config().app.name.as_deref(), Some("prod"));
}
