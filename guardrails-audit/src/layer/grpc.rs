//! gRPC statuses: a gRPC call answers HTTP 200 whatever its outcome, and
//! says it in `grpc-status`, in the headers of an answer without messages
//! ("trailers-only") or in the trailers after them.

use http::HeaderMap;
use serde_json::Value;

use crate::event::{AuditEvent, Category, Outcome};

/// What a response's head says of gRPC: read once per response, from one
/// look-up of `content-type` (and, for gRPC only, of `grpc-status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// Not gRPC (or gRPC without a status in its head that is judged by
    /// its head: gRPC-web, whose status travels inside the body, and any
    /// answer other than a plain 200).
    Plain,
    /// The status, in the headers of an answer without messages.
    Status(u32),
    /// A gRPC call over HTTP/2 (`application/grpc` or
    /// `application/grpc+…`) answered 200 without a guard's rejection: its
    /// status is still to come, in the trailers.
    AwaitsTrailers,
}

/// Reads [`Head`] from `response`.
pub(crate) fn head<B>(response: &http::Response<B>) -> Head {
    let headers = response.headers();
    let Some(rest) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.as_bytes().strip_prefix(b"application/grpc"))
    else {
        return Head::Plain;
    };
    if let Some(code) = code(headers) {
        return Head::Status(code);
    }
    let http2 = rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";");
    if http2
        && !headers.contains_key("grpc-status")
        && response.status() == http::StatusCode::OK
        && response
            .extensions()
            .get::<guardrails_core::Rejection>()
            .is_none()
    {
        Head::AwaitsTrailers
    } else {
        Head::Plain
    }
}

/// The `grpc-status` in `headers` (a trailers-only answer's headers, or
/// trailers), when it is a decimal code; anything else is not believed.
pub(crate) fn code(headers: &HeaderMap) -> Option<u32> {
    let code = headers.get("grpc-status")?.to_str().ok()?;
    (code.len() <= 10 && code.bytes().all(|b| b.is_ascii_digit()))
        .then(|| code.parse().ok())
        .flatten()
}

/// The category (when the code says more than the request's) and outcome of
/// a status code.
pub(crate) fn judge(code: u32) -> (Option<Category>, Outcome) {
    match code {
        0 => (None, Outcome::Success),
        16 => (Some(Category::Authn), Outcome::Failure),
        7 => (Some(Category::Authz), Outcome::Denied),
        _ => (None, Outcome::Failure),
    }
}

/// The reason code of a status code (a fixed set, low-cardinality).
pub(crate) fn reason(code: u32) -> &'static str {
    match code {
        1 => "grpc_cancelled",
        2 => "grpc_unknown",
        3 => "grpc_invalid_argument",
        4 => "grpc_deadline_exceeded",
        5 => "grpc_not_found",
        6 => "grpc_already_exists",
        7 => "grpc_permission_denied",
        8 => "grpc_resource_exhausted",
        9 => "grpc_failed_precondition",
        10 => "grpc_aborted",
        11 => "grpc_out_of_range",
        12 => "grpc_unimplemented",
        13 => "grpc_internal",
        14 => "grpc_unavailable",
        15 => "grpc_data_loss",
        16 => "grpc_unauthenticated",
        _ => "grpc_error",
    }
}

/// Completes the event of a call whose status came in the trailers
/// (`Some`), or never came (`None`: the stream ended or failed without it).
pub(crate) fn apply_trailers(event: &mut AuditEvent, code: Option<u32>, ended: &'static str) {
    match code {
        Some(code) => {
            let (category, outcome) = judge(code);
            if let Some(category) = category {
                event.category = category;
            }
            event.outcome = outcome;
            event.reason = (code != 0).then(|| reason(code).into());
            event
                .details
                .insert("grpc_status".into(), Value::from(code));
        }
        None => {
            event.outcome = Outcome::Unknown;
            event.reason = Some(ended.into());
        }
    }
}
