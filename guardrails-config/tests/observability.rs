//! One start-up event (environment and sources, no values). Every test here
//! installs its own scoped subscriber (tracing caches callsite interest
//! process-wide, so a test without one would race with the others).

mod support;

use std::io;
use std::sync::{Arc, Mutex};

use support::{Fixture, Settings};

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

fn capture(f: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // One capture at a time, with interest recomputed under this subscriber:
    // tracing's callsite cache and max level are process-wide.
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f();
    });
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn one_start_up_event_with_environment_and_sources_but_no_values() {
    let fx = Fixture::new();
    let logs = capture(|| {
        fx.loader(&[("APP_SERVER__WORKERS", "9")])
            .load::<Settings>()
            .unwrap();
    });
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 1, "{logs}");
    let line = lines[0];
    assert!(
        line.contains("INFO") && line.contains("configuration loaded"),
        "{line}"
    );
    assert!(line.contains("environment=\"development\""), "{line}");
    assert!(line.contains("default.toml (3 keys)"), "{line}");
    assert!(line.contains("development.toml (1 key)"), "{line}");
    assert!(line.contains("env APP_* (1 key)"), "{line}");
    assert!(
        line.contains("keys=4") && line.contains("secrets=1"),
        "{line}"
    );
    for value in ["127.0.0.1:3000", "app-dev", support::DEV_SECRET, "=9"] {
        assert!(!line.contains(value), "{value} in {line}");
    }
}

#[test]
fn warnings_and_rejections_are_logged_without_values() {
    let fx = Fixture::new();
    let logs = capture(|| {
        fx.loader(&[("APP_AUTH__ISUER", "sekrit-looking-value")])
            .load::<Settings>()
            .unwrap();
        fx.loader(&[("APP_SERVER__WORKERS", "sekrit-looking-value")])
            .load::<Settings>()
            .unwrap_err();
    });
    assert!(
        logs.contains("WARN") && logs.contains("did you mean APP_AUTH__ISSUER?"),
        "{logs}"
    );
    assert!(
        logs.contains("ERROR")
            && logs.contains("configuration rejected")
            && logs.contains("problems=1"),
        "{logs}"
    );
    assert!(!logs.contains("sekrit"));
}
