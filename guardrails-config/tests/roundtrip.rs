//! Property: any string — `007`, `true`, `[a`, unicode, whitespace — reaches
//! `String` and `SecretString` fields unchanged from a variable (and from a
//! `_FILE` file, minus one trailing `\n` or `\r\n`).

use guardrails_config::{Configuration, Loader};
use proptest::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct Config {
    #[garde(dive)]
    app: App,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
struct App {
    #[garde(skip)]
    name: String,
    #[garde(skip)]
    token: SecretString,
    #[garde(skip)]
    optional: Option<String>,
}

impl Configuration for Config {
    const SECRET_KEYS: &'static [&'static str] = &["app.token"];
}

fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("007".to_owned()),
        Just("123456".to_owned()),
        Just("true".to_owned()),
        Just("FALSE".to_owned()),
        Just("[a".to_owned()),
        Just("{a".to_owned()),
        Just("\"quoted\"".to_owned()),
        Just("'single'".to_owned()),
        Just("1.5e10".to_owned()),
        Just("-1".to_owned()),
        Just(String::new()),
        Just("  \t ".to_owned()),
        Just("null".to_owned()),
        Just("a=b,c=d".to_owned()),
        "[ \t\r\n]{0,8}",
        "[0-9]{1,30}",
        "\\PC{0,40}",
        any::<String>(),
    ]
}

fn load(name: &str, token: &str, optional: &str) -> Config {
    Loader::new("APP")
        .with_env_vars([
            ("APP_APP__NAME", name),
            ("APP_APP__TOKEN", token),
            ("APP_APP__OPTIONAL", optional),
        ])
        .load::<Config>()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_config()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_string_round_trips_through_a_variable(value in tricky()) {
        let config = load(&value, &value, &value);
        prop_assert_eq!(&config.app.name, &value);
        prop_assert_eq!(config.app.token.expose_secret(), value.as_str());
        prop_assert_eq!(config.app.optional.as_deref(), Some(value.as_str()));
    }

    #[test]
    // One trailing `\n` or `\r\n` is trimmed, so a value ending in `\r` is
    // not expected to survive a file with a trailing newline.
    fn any_string_round_trips_through_a_secret_file(value in tricky().prop_filter("ends with CR", |v| !v.ends_with('\r'))) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{value}\n")).unwrap();
        let config = Loader::new("APP")
            .with_env_vars([
                ("APP_APP__NAME", "n"),
                ("APP_APP__TOKEN_FILE", path.to_str().unwrap()),
            ])
            .load::<Config>()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_config();
        prop_assert_eq!(config.app.token.expose_secret(), value.as_str());
    }
}
