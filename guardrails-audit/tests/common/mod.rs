//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{AuditEvent, Category, Outcome};
use secrecy::SecretString;
use serde_json::json;

pub const KEY: &str = "test-chain-key-0123456789abcdef";

pub fn key() -> SecretString {
    SecretString::from(KEY)
}

/// RFC 8410's example Ed25519 private key, in PEM.
pub const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
    MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
    -----END PRIVATE KEY-----\n";

/// The signing key of [`ED25519_PEM`].
pub fn ed25519_key() -> guardrails_audit::signing::Ed25519SigningKey {
    guardrails_audit::signing::Ed25519SigningKey::from_pkcs8_pem(&SecretString::from(ED25519_PEM))
        .unwrap()
}

/// Events with awkward content: unicode keys that sort differently in UTF-16,
/// control characters, ANSI escapes, emoji, nested details, big integers.
pub fn awkward_events(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            AuditEvent::new("test.event", Category::DataWrite)
                .with_outcome(if i % 3 == 0 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                })
                .with_target("invoice", format!("inv_{i}"))
                .with_detail("i", i as u64)
                .with_detail("\u{fb33}", "hebrew")
                .with_detail("\u{1d11e}", "clef")
                .with_detail(
                    "text",
                    "line\r\nbreak \u{1b}[31mred\u{1b}[0m \"quoted\" \\ é € 😀 \u{0}\u{7f}",
                )
                .with_detail(
                    "nested",
                    json!({"b": [1, -2, true, null], "a": {"z": "", "A": 9007199254740991_i64}}),
                )
                .with_detail("float", 0.5)
        })
        .collect()
}

/// Writes `n` events in batches of 7 to a new trail and closes it.
pub async fn write_trail(path: &Path, key: Option<SecretString>, n: usize, checkpoint_every: u64) {
    let mut builder = JsonLinesSink::builder(path)
        .checkpoint_every(checkpoint_every, std::time::Duration::from_secs(3600));
    if let Some(key) = key {
        builder = builder.hmac_key(key);
    }
    let mut sink = builder.open().unwrap();
    let events = awkward_events(n);
    for batch in events.chunks(7) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
}

/// Reopens the keyed trail at `path` (with [`key`]), as a restarted writer.
#[allow(dead_code, reason = "not every test file reopens a keyed trail")]
pub fn reopen_keyed(path: &Path) -> JsonLinesSink {
    JsonLinesSink::builder(path).hmac_key(key()).open().unwrap()
}

pub fn checkpoints_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".checkpoints");
    PathBuf::from(p)
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// Whether external tools must be present (CI) rather than skipped.
pub fn require_external() -> bool {
    std::env::var("GUARDRAILS_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}

/// Python with the `rfc8785` package, or `None` (after a note) when missing
/// and not required.
pub fn python_with_rfc8785() -> Option<String> {
    python_with(&["rfc8785"])
}

/// Python that can import every one of `modules` (PyPI packages installed
/// by `.ci/setup-external`), or `None` (after a note) when there is none and
/// external tools are not required.
pub fn python_with(modules: &[&str]) -> Option<String> {
    let import = format!("import {}", modules.join(", "));
    for python in ["python3", "python"] {
        let ok = std::process::Command::new(python)
            .args(["-c", &import])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python.to_owned());
        }
    }
    assert!(
        !require_external(),
        "GUARDRAILS_REQUIRE_EXTERNAL=1 but python3 cannot `{import}` (run .ci/setup-external)"
    );
    eprintln!("SKIPPED: python3 cannot `{import}` (run .ci/setup-external)");
    None
}

#[cfg(feature = "postgres")]
pub mod pg;
