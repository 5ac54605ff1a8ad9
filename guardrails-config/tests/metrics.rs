//! With the `metrics` feature: `guardrails_config_loads_total`, labelled by
//! environment and outcome only (bounded).
#![cfg(feature = "metrics")]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use support::{Fixture, Settings};

#[derive(Default)]
struct Counts(Mutex<Vec<(String, Arc<Count>)>>);

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }

    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let mut counts = self.0.lock().unwrap();
        let count = match counts.iter().find(|(n, _)| *n == name) {
            Some((_, c)) => Arc::clone(c),
            None => {
                let c = Arc::new(Count::default());
                counts.push((name, Arc::clone(&c)));
                c
            }
        };
        Counter::from_arc(count)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn loads_are_counted_by_environment_and_outcome() {
    let fx = Fixture::new();
    let recorder = Counts::default();
    metrics::with_local_recorder(&recorder, || {
        fx.loader(&[]).load::<Settings>().unwrap();
        fx.loader(&[]).load::<Settings>().unwrap();
        fx.production(&[("APP_AUDIT__PATH", "")])
            .load::<Settings>()
            .unwrap_err();
    });
    let counts: Vec<(String, u64)> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(n, c)| (n.clone(), c.0.load(Ordering::SeqCst)))
        .collect();
    assert!(
        counts.contains(&(
            "guardrails_config_loads_total{environment=development,outcome=ok}".to_owned(),
            2
        )),
        "{counts:?}"
    );
    assert!(
        counts.contains(&(
            "guardrails_config_loads_total{environment=production,outcome=invalid}".to_owned(),
            1
        )),
        "{counts:?}"
    );
}
