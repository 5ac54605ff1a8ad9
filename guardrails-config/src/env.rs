//! Which environment variables belong to the configuration, and to which key.
//!
//! A variable is *under the prefix* when its name is `{PREFIX}_` followed by
//!
//! - a section path with `__` nesting: `{PREFIX}_SERVER__ADDR` → `server.addr`,
//!   `{PREFIX}_A__B__C` → `a.b.c` (single underscores stay in key names;
//!   names are matched case-insensitively and keys are lower-case), or
//! - the name of a top-level *scalar* key that a lower layer (a default or a
//!   file) already sets, or a declared top-level secret:
//!   `{PREFIX}_LOG_LEVEL` → `log_level`.
//!
//! Either form may end in `_FILE` to read the value from the named file
//! (`{PREFIX}_AUTH__HS256_SECRET_FILE`) when the key without `_file` is a
//! declared secret or already set by a lower layer, and the key with
//! `_file` is not.
//!
//! `{PREFIX}_ENV` chooses the environment. Anything else that merely starts
//! with `{PREFIX}_` is *not* under the prefix and is ignored: Kubernetes
//! service variables (`SAAS_API_SERVICE_HOST`, `SAAS_PORT_8080_TCP_ADDR`,
//! `SAAS_PORT=tcp://…`) never break start-up. The one exception is a name
//! that looks like a section with a single underscore (`SAAS_SERVER_ADDR`
//! when `server` is a section): it is reported as a probable typo.

use figment::value::{Dict, Value};

/// What a variable means to the loader.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvClass {
    /// `{PREFIX}_ENV`.
    Selector,
    /// A value for the key path.
    Key(Vec<String>),
    /// A file holding the value for the key path.
    File(Vec<String>),
    /// Under the prefix but not usable (empty segment, odd characters).
    Malformed(&'static str),
    /// Probably meant as a section key: the suggested variable name.
    Typo(String),
    /// A Kubernetes service variable.
    Kubernetes,
    /// Not under the prefix.
    Foreign,
}

/// What the lower layers (defaults and files) and the declared secrets say
/// about the shape of the configuration.
pub(crate) struct Shape<'a> {
    pub(crate) lower: &'a Dict,
    pub(crate) secrets: &'a [String],
}

impl Shape<'_> {
    fn exists(&self, path: &[String]) -> bool {
        let mut dict = self.lower;
        for (i, segment) in path.iter().enumerate() {
            match dict.get(segment) {
                Some(Value::Dict(_, inner)) => dict = inner,
                Some(_) => return i + 1 == path.len(),
                None => return false,
            }
        }
        true
    }

    fn is_secret(&self, path: &[String]) -> bool {
        let joined = path.join(".");
        self.secrets.contains(&joined)
    }

    fn is_top_scalar(&self, key: &str) -> bool {
        matches!(self.lower.get(key), Some(v) if !matches!(v, Value::Dict(..)))
    }

    fn sections(&self) -> impl Iterator<Item = &str> {
        self.lower
            .iter()
            .filter(|(_, v)| matches!(v, Value::Dict(..)))
            .map(|(k, _)| k.as_str())
            .chain(
                self.secrets
                    .iter()
                    .filter_map(|s| s.split_once('.').map(|(section, _)| section)),
            )
    }
}

/// Classifies one variable.
pub(crate) fn classify(prefix: &str, name: &str, value: &str, shape: &Shape<'_>) -> EnvClass {
    let Some(rest) = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
    else {
        return EnvClass::Foreign;
    };
    if rest.eq_ignore_ascii_case("ENV") {
        return EnvClass::Selector;
    }
    // Kubernetes injects `{SVC}_PORT=tcp://10.0.0.1:80` and friends for
    // every service; a service named like the prefix must not break us.
    if is_kubernetes(name) && (is_kubernetes_value(value) || !rest.contains("__")) {
        let lower = rest.to_ascii_lowercase();
        if !shape.is_top_scalar(&lower) || is_kubernetes_value(value) {
            return EnvClass::Kubernetes;
        }
    }
    if rest.contains("__") || rest.starts_with('_') {
        let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if segments.iter().any(|s| s.is_empty() || s.starts_with('_')) {
            return EnvClass::Malformed(
                "has an empty segment (`___` or a leading or trailing `__`)",
            );
        }
        if segments
            .iter()
            .any(|s| !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return EnvClass::Malformed("has characters other than letters, digits and `_`");
        }
        return key_or_file(segments, shape);
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || rest.is_empty() {
        return EnvClass::Foreign;
    }
    let lower = rest.to_ascii_lowercase();
    if shape.is_top_scalar(&lower) || shape.is_secret(std::slice::from_ref(&lower)) {
        return EnvClass::Key(vec![lower]);
    }
    if let Some(stripped) = lower.strip_suffix("_file")
        && (shape.is_top_scalar(stripped) || shape.is_secret(&[stripped.to_owned()]))
    {
        return EnvClass::File(vec![stripped.to_owned()]);
    }
    for section in shape.sections() {
        if lower == section {
            return EnvClass::Typo(format!("{prefix}_{rest}__<KEY>"));
        }
        if let Some(key) = lower
            .strip_prefix(section)
            .and_then(|k| k.strip_prefix('_'))
            && !key.is_empty()
        {
            return EnvClass::Typo(format!(
                "{prefix}_{}__{}",
                section.to_ascii_uppercase(),
                key.to_ascii_uppercase()
            ));
        }
    }
    EnvClass::Foreign
}

fn key_or_file(segments: Vec<String>, shape: &Shape<'_>) -> EnvClass {
    if let Some((last, parents)) = segments.split_last()
        && let Some(stripped) = last.strip_suffix("_file")
        && !stripped.is_empty()
        && !shape.exists(&segments)
    {
        let mut target = parents.to_vec();
        target.push(stripped.to_owned());
        if shape.is_secret(&target) || shape.exists(&target) {
            return EnvClass::File(target);
        }
    }
    EnvClass::Key(segments)
}

/// Kubernetes service variables: `{SVC}_SERVICE_HOST`, `{SVC}_SERVICE_PORT`,
/// `{SVC}_SERVICE_PORT_{NAME}`, `{SVC}_PORT`, `{SVC}_PORT_{N}_{PROTO}` and
/// `{SVC}_PORT_{N}_{PROTO}_{PROTO|PORT|ADDR}`.
pub(crate) fn is_kubernetes(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST")
        || name.ends_with("_SERVICE_PORT")
        || name.contains("_SERVICE_PORT_")
        || name.ends_with("_PORT")
    {
        return true;
    }
    let parts: Vec<&str> = name.split('_').collect();
    // ... _PORT _{N} _{PROTO} [_{FIELD}]
    for tail in [3, 4] {
        if parts.len() > tail {
            let t = &parts[parts.len() - tail..];
            let port_ok =
                t[0] == "PORT" && !t[1].is_empty() && t[1].bytes().all(|b| b.is_ascii_digit());
            let proto_ok = matches!(t[2], "TCP" | "UDP" | "SCTP");
            let field_ok = tail == 3 || matches!(t[3], "PROTO" | "PORT" | "ADDR");
            if port_ok && proto_ok && field_ok {
                return true;
            }
        }
    }
    false
}

fn is_kubernetes_value(value: &str) -> bool {
    ["tcp://", "udp://", "sctp://"]
        .iter()
        .any(|scheme| value.starts_with(scheme))
}

/// The variable name for a key path: `auth.hs256_secret` → `SAAS_AUTH__HS256_SECRET`.
pub(crate) fn var_name(prefix: &str, path: &[&str]) -> String {
    let mut name = String::from(prefix);
    name.push('_');
    name.push_str(&path.join("__").to_ascii_uppercase());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_dict() -> Dict {
        let toml = r#"
            log_level = "info"
            [server]
            addr = "127.0.0.1:3000"
            [tls]
            cert_file = "cert.pem"
        "#;
        crate::loader::parse_toml(toml).unwrap()
    }

    fn class(name: &str, value: &str) -> EnvClass {
        let lower = shape_dict();
        let secrets = vec!["auth.hs256_secret".to_owned(), "token".to_owned()];
        classify(
            "SAAS",
            name,
            value,
            &Shape {
                lower: &lower,
                secrets: &secrets,
            },
        )
    }

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn table() {
        use EnvClass::*;
        let cases = [
            ("SAAS_ENV", "production", Selector),
            ("SAAS_SERVER__ADDR", "x", Key(path("server.addr"))),
            ("SAAS_server__Addr", "x", Key(path("server.addr"))),
            ("SAAS_A__B__C_D", "x", Key(path("a.b.c_d"))),
            ("SAAS_AUTH__ISUER", "x", Key(path("auth.isuer"))),
            ("SAAS_LOG_LEVEL", "debug", Key(path("log_level"))),
            (
                "SAAS_AUTH__HS256_SECRET_FILE",
                "/s",
                File(path("auth.hs256_secret")),
            ),
            ("SAAS_SERVER__ADDR_FILE", "/s", File(path("server.addr"))),
            ("SAAS_TOKEN_FILE", "/s", File(path("token"))),
            ("SAAS_LOG_LEVEL_FILE", "/s", File(path("log_level"))),
            // the literal key exists: no indirection
            ("SAAS_TLS__CERT_FILE", "c.pem", Key(path("tls.cert_file"))),
            // unknown stripped key: literal (reported later as unknown)
            ("SAAS_X__Y_FILE", "/s", Key(path("x.y_file"))),
            (
                "SAAS__X",
                "x",
                Malformed("has an empty segment (`___` or a leading or trailing `__`)"),
            ),
            (
                "SAAS_X__",
                "x",
                Malformed("has an empty segment (`___` or a leading or trailing `__`)"),
            ),
            (
                "SAAS_X__Y-Z",
                "x",
                Malformed("has characters other than letters, digits and `_`"),
            ),
            (
                "SAAS_SERVER_ADDR",
                "x",
                Typo("SAAS_SERVER__ADDR".to_owned()),
            ),
            (
                "SAAS_AUTH_ISSUER",
                "x",
                Typo("SAAS_AUTH__ISSUER".to_owned()),
            ),
            ("SAAS_SERVER", "x", Typo("SAAS_SERVER__<KEY>".to_owned())),
            // Kubernetes service variables of services `saas`, `saas-api`, `saas-server`
            ("SAAS_SERVICE_HOST", "10.0.0.1", Kubernetes),
            ("SAAS_SERVICE_PORT", "80", Kubernetes),
            ("SAAS_SERVICE_PORT_HTTP", "80", Kubernetes),
            ("SAAS_PORT", "tcp://10.0.0.1:80", Kubernetes),
            ("SAAS_PORT_80_TCP", "tcp://10.0.0.1:80", Kubernetes),
            ("SAAS_PORT_80_TCP_ADDR", "10.0.0.1", Kubernetes),
            ("SAAS_API_SERVICE_HOST", "10.0.0.1", Kubernetes),
            ("SAAS_API_PORT_8080_TCP_PROTO", "tcp", Kubernetes),
            ("SAAS_SERVER_SERVICE_HOST", "10.0.0.1", Kubernetes),
            ("SAAS_SERVER_PORT", "tcp://10.0.0.2:80", Kubernetes),
            ("SAAS_API_KEY", "x", Foreign),
            ("SAAS_TOKEN", "x", Key(path("token"))),
            ("SAASY_SERVER__ADDR", "x", Foreign),
            ("OTHER", "x", Foreign),
            ("SAAS", "x", Foreign),
        ];
        for (name, value, expected) in cases {
            assert_eq!(class(name, value), expected, "{name}");
        }
    }

    #[test]
    fn kubernetes_pattern() {
        assert!(is_kubernetes("X_PORT_443_UDP_PORT"));
        assert!(!is_kubernetes("X_PORT_HTTP_TCP"));
        assert!(!is_kubernetes("X_SERVER__ADDR"));
    }

    #[test]
    fn var_names() {
        assert_eq!(
            var_name("SAAS", &["auth", "hs256_secret"]),
            "SAAS_AUTH__HS256_SECRET"
        );
        assert_eq!(var_name("SAAS", &["log_level"]), "SAAS_LOG_LEVEL");
    }
}
