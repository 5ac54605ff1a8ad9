//! Production hardening: reusable checks the app applies to its own fields.
//!
//! [`Configuration::harden`](crate::Configuration::harden) receives a
//! [`Hardening`] in hardened environments (always `Production`; `Staging`
//! too with [`Loader::harden_in`](crate::Loader::harden_in)) and applies the
//! checks that fit its fields. Each check records a [`Finding`] naming the
//! key and the source of the value; nothing here ever prints a value.
//!
//! ```
//! use guardrails_config::{Configuration, Environment, Hardening, Loader, SecretPolicy};
//! use secrecy::SecretString;
//!
//! #[derive(Debug, serde::Deserialize, garde::Validate)]
//! struct Settings {
//!     #[garde(skip)]
//!     issuer: String,
//!     #[garde(skip)]
//!     signing_key: Option<SecretString>,
//!     #[garde(skip)]
//!     #[serde(default)]
//!     debug: bool,
//! }
//!
//! impl Configuration for Settings {
//!     const SECRET_KEYS: &'static [&'static str] = &["signing_key"];
//!     fn harden(&self, h: &mut Hardening<'_>) {
//!         h.external_url("issuer", Some(&self.issuer));
//!         h.secret("signing_key", self.signing_key.as_ref(), &SecretPolicy::hmac_key().required());
//!         h.no_debug("debug", self.debug);
//!     }
//! }
//!
//! let error = Loader::new("APP")
//!     .with_env_vars([
//!         ("APP_ENV", "production"),
//!         ("APP_ISSUER", "http://idp.example.com"),
//!         ("APP_SIGNING_KEY", "tiny-pw"),
//!         ("APP_DEBUG", "true"),
//!     ])
//!     .default_value("issuer", "")
//!     .default_value("debug", false)
//!     .load::<Settings>()
//!     .unwrap_err();
//! let keys: Vec<_> = error.keys().collect();
//! assert!(keys.contains(&"issuer") && keys.contains(&"signing_key") && keys.contains(&"debug"));
//! assert!(!error.to_string().contains("tiny-pw"));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::env::var_name;
use crate::{Environment, Finding, FindingKind, Rule, Severity, Source};

/// How strict a secret check is. Defaults: at least 16 bytes and an
/// estimated 48 bits of entropy, not required, warn unless read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretPolicy {
    required: bool,
    min_len: usize,
    min_entropy_bits: f64,
    prefer_file: bool,
    public: Vec<&'static str>,
}

impl Default for SecretPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretPolicy {
    /// At least 16 bytes, an estimated 48 bits of entropy, preferably from a file.
    pub fn new() -> Self {
        Self {
            required: false,
            min_len: 16,
            min_entropy_bits: 48.0,
            prefer_file: true,
            public: Vec::new(),
        }
    }

    /// For HMAC keys (HS256 secrets, audit chain keys): at least 32 bytes
    /// (RFC 7518 §3.2: the key must be at least as long as the hash output)
    /// and an estimated 96 bits of entropy — the estimate is conservative:
    /// 16 random bytes hex-encoded (32 characters) score about 120, a
    /// repeated word far less.
    pub fn hmac_key() -> Self {
        Self {
            min_len: 32,
            min_entropy_bits: 96.0,
            ..Self::new()
        }
    }

    /// The secret must be set.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The minimum length in bytes.
    #[must_use]
    pub fn min_len(mut self, bytes: usize) -> Self {
        self.min_len = bytes;
        self
    }

    /// The minimum estimated entropy in bits (see [`estimate_entropy_bits`]).
    #[must_use]
    pub fn min_entropy_bits(mut self, bits: f64) -> Self {
        self.min_entropy_bits = bits;
        self
    }

    /// A value the secret must never have because it is public: a
    /// development secret written in the application's source. It is
    /// refused wherever it comes from (hardening also refuses the values of
    /// the development profile files, but only when they are deployed
    /// alongside). Compared in constant time.
    ///
    /// ```
    /// use guardrails_config::SecretPolicy;
    ///
    /// const DEVELOPMENT_SECRET: &str = "dev-only-secret-published-in-the-repository";
    /// let policy = SecretPolicy::hmac_key().public_value(DEVELOPMENT_SECRET);
    /// # let _ = policy;
    /// ```
    #[must_use]
    pub fn public_value(mut self, value: &'static str) -> Self {
        self.public.push(value);
        self
    }

    /// Do not warn when the secret is not read from a `*_FILE` file.
    #[must_use]
    pub fn allow_non_file(mut self) -> Self {
        self.prefer_file = false;
        self
    }
}

/// A rough estimate of a secret's entropy: its length times the Shannon
/// entropy of its byte distribution. It catches the obviously weak
/// (`aaaaaaaa…`, `abababab…`, short words); it cannot prove strength.
///
/// ```
/// use guardrails_config::estimate_entropy_bits;
///
/// assert_eq!(estimate_entropy_bits("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0.0);
/// assert!(estimate_entropy_bits("q8Zr3vN0xKp2LmA7bT5wYc9HdE1gUf4s") > 128.0);
/// ```
pub fn estimate_entropy_bits(secret: &str) -> f64 {
    let bytes = secret.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    #[allow(clippy::cast_precision_loss, reason = "lengths are small")]
    let len = bytes.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum();
    per_byte * len
}

/// A development value that must not reach a hardened environment.
pub(crate) struct Reference {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) source: Source,
}

/// The checks of one hardening pass; see the [module docs](self).
pub struct Hardening<'a> {
    environment: Environment,
    prefix: &'a str,
    sources: &'a BTreeMap<String, Source>,
    references: &'a [Reference],
    findings: Vec<Finding>,
}

impl fmt::Debug for Hardening<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hardening")
            .field("environment", &self.environment)
            .field("findings", &self.findings)
            .finish_non_exhaustive()
    }
}

impl<'a> Hardening<'a> {
    pub(crate) fn new(
        environment: Environment,
        prefix: &'a str,
        sources: &'a BTreeMap<String, Source>,
        references: &'a [Reference],
    ) -> Self {
        Self {
            environment,
            prefix,
            sources,
            references,
            findings: Vec::new(),
        }
    }

    pub(crate) fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    /// The (hardened) environment being loaded.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The source that set `key`, if any did.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.sources.get(key)
    }

    /// The findings recorded so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    fn record(&mut self, severity: Severity, rule: Rule, key: &str, message: String) {
        let source = self.sources.get(key).cloned();
        self.findings.push(Finding::new(
            severity,
            FindingKind::Hardening(rule),
            Some(key.to_owned()),
            source,
            message,
        ));
    }

    fn file_var(&self, key: &str) -> String {
        let path: Vec<&str> = key.split('.').collect();
        format!("{}_FILE", var_name(self.prefix, &path))
    }

    /// Checks a secret against `policy`: present if required, long enough,
    /// enough estimated entropy, not from a code default, `default.toml` or a
    /// development profile file, not equal to a development value or to one
    /// of the policy's [public values](SecretPolicy::public_value), and (a
    /// warning) read from a `*_FILE` secret file.
    pub fn secret(&mut self, key: &str, value: Option<&SecretString>, policy: &SecretPolicy) {
        let Some(value) = value else {
            if policy.required {
                let message = format!(
                    "is required in {}; set it with {}",
                    self.environment,
                    self.file_var(key)
                );
                self.record(Severity::Error, Rule::Required, key, message);
            }
            return;
        };
        let secret = value.expose_secret();
        let source = self.sources.get(key).cloned();
        match &source {
            Some(Source::Default) => self.record(
                Severity::Error,
                Rule::DevelopmentSecret,
                key,
                "comes from a built-in default; a secret must be set for this deployment".to_owned(),
            ),
            Some(src @ Source::File { profile: None, .. }) => self.record(
                Severity::Error,
                Rule::DevelopmentSecret,
                key,
                format!("comes from {src}, which every environment reads; a secret must be set for this deployment"),
            ),
            Some(src) if src.is_development_file() => self.record(
                Severity::Error,
                Rule::DevelopmentSecret,
                key,
                format!("came from a development profile file ({src})"),
            ),
            _ => {
                let reused = self.references.iter().find(|r| {
                    bool::from(r.value.as_bytes().ct_eq(secret.as_bytes()))
                });
                if let Some(r) = reused {
                    let origin = if r.source.is_development_file() {
                        "came from a development profile file"
                    } else {
                        "came from a development default"
                    };
                    let message = format!(
                        "{origin}: it is the value of `{}` in {}; never reuse a development secret",
                        r.key, r.source
                    );
                    self.record(Severity::Error, Rule::DevelopmentSecret, key, message);
                }
            }
        }
        if policy
            .public
            .iter()
            .any(|public| bool::from(public.as_bytes().ct_eq(secret.as_bytes())))
        {
            self.record(
                Severity::Error,
                Rule::DevelopmentSecret,
                key,
                "is a public value (a development secret published with the application); a secret must be set for this deployment".to_owned(),
            );
        }
        if secret.len() < policy.min_len {
            let message = format!("is shorter than {} bytes", policy.min_len);
            self.record(Severity::Error, Rule::SecretLength, key, message);
        } else if estimate_entropy_bits(secret) < policy.min_entropy_bits {
            let message = format!(
                "has too little entropy (estimated below {} bits); use random bytes, hex or base64 encoded",
                policy.min_entropy_bits
            );
            self.record(Severity::Error, Rule::SecretEntropy, key, message);
        }
        if policy.prefer_file && !matches!(source, Some(Source::SecretFile { .. })) {
            let message = format!(
                "is not read from a secret file; prefer {} (a mounted Docker or Kubernetes secret)",
                self.file_var(key)
            );
            self.record(Severity::Warning, Rule::SecretNotFromFile, key, message);
        }
    }

    /// Checks that an external URL uses `https` and embeds no credentials.
    /// Outside `Production`, `http` to a loopback host (`localhost`,
    /// `127.0.0.0/8`, `[::1]`) is allowed. `None` passes (use
    /// [`Hardening::require`] for presence).
    pub fn external_url(&mut self, key: &str, value: Option<&str>) {
        let Some(url) = value else { return };
        let problem = match url_parts(url) {
            None => Some("is not an absolute URL (https://host/...)".to_owned()),
            Some((_, _, true)) => Some("must not embed credentials (user:password@)".to_owned()),
            Some((scheme, host, false)) => {
                if scheme.eq_ignore_ascii_case("https") && !host.is_empty() {
                    None
                } else if scheme.eq_ignore_ascii_case("http") && is_loopback(host) {
                    self.environment.is_production().then(|| {
                        "must use https (plain http to loopback is allowed only outside production)"
                            .to_owned()
                    })
                } else {
                    Some("must use https".to_owned())
                }
            }
        };
        if let Some(message) = problem {
            self.record(Severity::Error, Rule::InsecureUrl, key, message);
        }
    }

    /// Checks that a debug flag is off.
    pub fn no_debug(&mut self, key: &str, enabled: bool) {
        if enabled {
            let message = format!("debug mode must be off in {}", self.environment);
            self.record(Severity::Error, Rule::DebugEnabled, key, message);
        }
    }

    /// Checks that no CORS origin is a wildcard (`*`, `https://*.example.com`)
    /// or `null`.
    pub fn no_wildcard_cors<S: AsRef<str>>(&mut self, key: &str, origins: &[S]) {
        let wildcard = origins.iter().any(|o| {
            let o = o.as_ref().trim();
            o.contains('*') || o.eq_ignore_ascii_case("null")
        });
        if wildcard {
            let message = "must list explicit origins, not a wildcard or `null`".to_owned();
            self.record(Severity::Error, Rule::WildcardCors, key, message);
        }
    }

    /// Records an error unless `present`: `what` says what is needed
    /// (`"an audit destination"`).
    pub fn require(&mut self, key: &str, present: bool, what: &str) {
        if !present {
            let message = format!("{what} is required in {}", self.environment);
            self.record(Severity::Error, Rule::Required, key, message);
        }
    }

    /// Records an error of an app-defined rule. The message must not
    /// contain the value.
    pub fn error(&mut self, rule: &'static str, key: &str, message: impl Into<String>) {
        self.record(Severity::Error, Rule::Custom(rule), key, message.into());
    }

    /// Records a warning of an app-defined rule. The message must not
    /// contain the value.
    pub fn warn(&mut self, rule: &'static str, key: &str, message: impl Into<String>) {
        self.record(Severity::Warning, Rule::Custom(rule), key, message.into());
    }
}

/// `(scheme, host, has_userinfo)` of an absolute URL.
fn url_parts(url: &str) -> Option<(&str, &str, bool)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((_, hostport)) => (true, hostport),
        None => (false, authority),
    };
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split_once(']').map_or(v6, |(h, _)| h)
    } else {
        hostport.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme, host, userinfo))
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        assert_eq!(
            url_parts("https://a.example/x"),
            Some(("https", "a.example", false))
        );
        assert_eq!(url_parts("http://u:p@h:80/"), Some(("http", "h", true)));
        assert_eq!(
            url_parts("http://[::1]:8080/jwks"),
            Some(("http", "::1", false))
        );
        assert_eq!(url_parts("example.com"), None);
        assert_eq!(url_parts("https:///path"), None);
        assert!(is_loopback("127.0.0.2") && is_loopback("LOCALHOST") && is_loopback("a.localhost"));
        assert!(is_loopback("::1") && is_loopback("0:0:0:0:0:0:0:1"));
        assert!(!is_loopback("::2") && !is_loopback("::ffff:10.0.0.1"));
        assert!(!is_loopback("localhost.example.com") && !is_loopback("10.0.0.1"));
    }

    #[test]
    fn policies_accept_random_values_and_reject_repetitive_ones() {
        let hmac = SecretPolicy::hmac_key().min_entropy_bits;
        assert!(estimate_entropy_bits("3f9a0c7e5b21d84c6e0f1a9b2c7d3e85") >= hmac);
        assert!(estimate_entropy_bits("passwordpasswordpasswordpassword") < hmac);
        let plain = SecretPolicy::new().min_entropy_bits;
        assert!(estimate_entropy_bits("Kp4vN8xQ2mWz7Ld9") >= plain);
        assert!(estimate_entropy_bits("aaaabbbbccccdddd") < plain);
    }

    #[test]
    fn entropy() {
        assert_eq!(estimate_entropy_bits(""), 0.0);
        assert!((estimate_entropy_bits("abababab") - 8.0).abs() < 1e-9);
        assert!(estimate_entropy_bits("0123456789abcdef0123456789abcdef") >= 128.0);
    }
}
