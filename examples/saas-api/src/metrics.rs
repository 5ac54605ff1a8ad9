//! `GET /metrics`: the guardrail metrics in Prometheus text exposition.
//!
//! The guardrails record through the `metrics` facade; this module installs
//! the Prometheus recorder once and renders its registry on request.

use std::sync::OnceLock;

use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global Prometheus recorder (once per process) and returns
/// its handle; `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "metrics recorder not installed; /metrics will be empty");
                None
            }
        })
        .clone()
}

/// `GET /metrics`.
pub async fn render() -> Response {
    let body = install().map(|handle| handle.render()).unwrap_or_default();
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
