//! The tracing sink: target `audit`, one event per record, the record as
//! canonical JSON so control characters of input cannot reach a terminal.

use std::fmt;
use std::sync::{Arc, Mutex};

use guardrails_audit::sink::{AuditSink, TracingSink};
use guardrails_audit::{AuditEvent, Category, Outcome};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(String, String)>>>);

struct RecordField(Option<String>);

impl Visit for RecordField {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "record" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut visitor = RecordField(None);
        event.record(&mut visitor);
        if let Some(record) = visitor.0 {
            self.0
                .lock()
                .unwrap()
                .push((event.metadata().target().to_owned(), record));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn one_tracing_event_per_record_on_target_audit() {
    let capture = Capture::default();
    let events = vec![
        AuditEvent::new("user.login", Category::Authn).with_outcome(Outcome::Success),
        AuditEvent::new("note", Category::System).with_detail("text", "\u{1b}[2Jline\r\nforged"),
    ];
    tracing::subscriber::with_default(capture.clone(), || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(TracingSink::new().write_batch(&events))
            .unwrap();
    });
    let seen = capture.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (target, record) in &seen {
        assert_eq!(target, "audit");
        let value: serde_json::Value = serde_json::from_str(record).unwrap();
        assert_eq!(value["schema"], "guardrails.audit/1");
        assert!(!record.chars().any(char::is_control), "{record:?}");
    }
    assert!(seen[1].1.contains("\\u001b[2Jline\\r\\nforged"));
}
