//! guardrails-validate against its raw baseline, in the same run:
//!
//! - `core/*`: the saas-api invoice body (~300 bytes) through
//!   `json::from_slice` (pre-scan, serde_ignored, garde with coded messages)
//!   against plain `serde_json::from_slice` + `garde::Validate::validate`;
//! - `prescan/*`: the structural pre-scan alone, in bytes per second, on a
//!   ~1 MiB document of invoices and on a ~1 MiB string-heavy document;
//! - `layer/*`: one request through `ValidateJsonLayer` (body read under
//!   limits, validation, extensions) against a raw tower service that
//!   collects the body and runs serde_json + garde itself;
//! - `error_path/*`: a hostile 256 KiB body (two 64 KiB keys, then arrays
//!   of 9 000 numbers) answered with a 422 (several violations in document
//!   order) and, cut short, with a 400 naming the pointer of the syntax
//!   error, against `serde_json::from_slice::<IgnoredAny>` on the same
//!   bytes: the pointer work must stay linear in the body.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use garde::Validate;
use guardrails_validate::{Config, ValidateJsonLayer, Validated, json, scan};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceBuilder, ServiceExt};

// The real saas-api body type, with its garde rules (email, currency
// pattern, calendar date, 1..=100 lines with bounded fields, memo).
use saas_api::invoices::NewInvoice;

const INVOICE: &str = r#"{"customer_email":"billing@example.com","currency":"EUR","due_date":"2026-12-31","lines":[{"description":"Seats, annual plan","quantity":3,"unit_price_cents":1500},{"description":"Premium support","quantity":1,"unit_price_cents":9900},{"description":"Onboarding","quantity":2,"unit_price_cents":25000}],"memo":"Thank you for your business."}"#;

fn core(c: &mut Criterion) {
    let bytes = INVOICE.as_bytes();
    let config = Config::default();
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("raw_serde_json_garde", |b| {
        b.iter(|| {
            let value: NewInvoice = serde_json::from_slice(black_box(bytes)).unwrap();
            value.validate().unwrap();
            value
        });
    });
    group.bench_function("guardrails_validate", |b| {
        b.iter(|| json::from_slice::<NewInvoice>(black_box(bytes), &config, &()).unwrap());
    });
    let lenient = Config::default().unknown_fields(guardrails_validate::UnknownFields::Ignore);
    group.bench_function("guardrails_validate_lenient", |b| {
        b.iter(|| json::from_slice::<NewInvoice>(black_box(bytes), &lenient, &()).unwrap());
    });
    group.bench_function("prescan_only", |b| {
        b.iter(|| scan::prescan(black_box(bytes), &config).unwrap());
    });
    group.finish();
}

/// The core against the baseline interleaved in chunks of 64 calls, so that
/// both see the same machine load; prints the ratio of the totals.
fn core_interleaved(c: &mut Criterion) {
    let bytes = INVOICE.as_bytes();
    let config = Config::default();
    let raw = || {
        let value: NewInvoice = serde_json::from_slice(black_box(bytes)).unwrap();
        value.validate().unwrap();
        black_box(value);
    };
    let ours = || {
        black_box(json::from_slice::<NewInvoice>(black_box(bytes), &config, &()).unwrap());
    };
    let mut raw_total = Duration::ZERO;
    let mut ours_total = Duration::ZERO;
    // Per-chunk ratios: their median is less swayed than the totals by a
    // burst of background load landing on one side only.
    let mut ratios: Vec<f64> = Vec::new();
    c.bench_function("core/interleaved_guardrails_validate", |b| {
        b.iter_custom(|iters| {
            let mut mine = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = (iters - done).min(64);
                let start = Instant::now();
                for _ in 0..n {
                    raw();
                }
                let raw_chunk = start.elapsed();
                raw_total += raw_chunk;
                let start = Instant::now();
                for _ in 0..n {
                    ours();
                }
                let ours_chunk = start.elapsed();
                mine += ours_chunk;
                if n == 64 {
                    ratios.push(
                        ours_chunk.as_secs_f64() / raw_chunk.as_secs_f64().max(f64::MIN_POSITIVE),
                    );
                }
                done += n;
            }
            ours_total += mine;
            mine
        });
    });
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "core/interleaved ratio (guardrails / raw serde_json + garde): {:.3} of the totals, \
         {median:.3} median of {} chunks of 64",
        ours_total.as_secs_f64() / raw_total.as_secs_f64().max(f64::MIN_POSITIVE),
        ratios.len()
    );
}

fn prescan(c: &mut Criterion) {
    let mut invoices = String::from("[");
    while invoices.len() < 1024 * 1024 - INVOICE.len() {
        invoices.push_str(INVOICE);
        invoices.push(',');
    }
    invoices.push_str(INVOICE);
    invoices.push(']');
    let mut strings = String::from("[");
    let long = "lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat(40);
    while strings.len() < 1024 * 1024 {
        strings.push('"');
        strings.push_str(&long);
        strings.push_str("\",");
    }
    strings.push_str("\"\"]");
    let config = Config::default()
        .max_array_len(1_000_000)
        .max_body_bytes(8 * 1024 * 1024);
    let mut group = c.benchmark_group("prescan");
    for (name, doc) in [("invoices_1MiB", &invoices), ("strings_1MiB", &strings)] {
        group.throughput(Throughput::Bytes(doc.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| scan::prescan(black_box(doc.as_bytes()), &config).unwrap());
        });
        group.bench_function(format!("{name}_serde_json_ignored_any"), |b| {
            b.iter(|| {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(doc.as_bytes())).unwrap()
            });
        });
    }
    group.finish();
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let created = || {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::CREATED;
        response
    };
    let mut guarded = ServiceBuilder::new()
        .layer(ValidateJsonLayer::<NewInvoice>::new())
        .service_fn(move |request: Request<Full<Bytes>>| async move {
            let invoice = request.extensions().get::<Validated<NewInvoice>>().unwrap();
            black_box(invoice.lines.len());
            Ok::<_, Infallible>(created())
        });
    let mut raw = tower::service_fn(move |request: Request<Full<Bytes>>| async move {
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        let invoice: NewInvoice = match serde_json::from_slice(&bytes) {
            Ok(invoice) => invoice,
            Err(_) => return Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))),
        };
        if invoice.validate().is_err() {
            return Ok(Response::new(Full::new(Bytes::new())));
        }
        black_box(invoice.lines.len());
        Ok(created())
    });
    let request = || {
        Request::post("/v1/tenants/acme/invoices")
            .header("content-type", "application/json")
            .header("content-length", INVOICE.len())
            .body(Full::new(Bytes::from_static(INVOICE.as_bytes())))
            .unwrap()
    };
    let mut group = c.benchmark_group("layer");
    group.bench_function("raw_service", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let service = raw.ready().await.unwrap();
                let response = service.call(request()).await.unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            });
        });
    });
    group.bench_function("validate_json_layer", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let service = guarded.ready().await.unwrap();
                let response = service.call(request()).await.unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            });
        });
    });
    group.finish();
}

fn error_path(c: &mut Criterion) {
    let key = "k".repeat(60 * 1024);
    let items = vec!["0"; 9_000].join(",");
    let arrays = vec![format!("[{items}]"); 7].join(",");
    let body = format!(r#"{{"{key}":{{"{key}":[{arrays}]}},"currency":"euro"}}"#);
    let cut = &body[..body.len() - 1];
    let config = Config::default();
    // The app's type: the long member is unknown, the currency invalid, the
    // required members missing.
    let problem = json::from_slice::<NewInvoice>(body.as_bytes(), &config, &()).unwrap_err();
    assert_eq!(problem.status().as_u16(), 422);
    assert!(problem.violations().len() > 1);
    let problem = json::from_slice::<NewInvoice>(cut.as_bytes(), &config, &()).unwrap_err();
    assert_eq!(problem.status().as_u16(), 400);
    let mut group = c.benchmark_group("error_path");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("serde_json_ignored_any", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(body.as_bytes())).unwrap()
        });
    });
    group.bench_function("guardrails_422_in_document_order", |b| {
        b.iter(|| json::from_slice::<NewInvoice>(black_box(body.as_bytes()), &config, &()).err());
    });
    group.bench_function("guardrails_400_with_pointer", |b| {
        b.iter(|| json::from_slice::<NewInvoice>(black_box(cut.as_bytes()), &config, &()).err());
    });
    group.finish();
}

criterion_group!(benches, core, core_interleaved, prescan, layer, error_path);
criterion_main!(benches);
