//! Turning a problem into a rejection response: `Rejection` extension,
//! metric and tracing event.

use bytes::Bytes;
use guardrails_core::{Problem, ProblemType, Rejection, RejectionCategory};
use http::Response;

/// Every code this crate produces; anything else (a garde `custom` code…)
/// is reported as `other`, so metric labels stay bounded.
const KNOWN_CODES: &[&str] = &[
    "syntax",
    "bom",
    "invalid_utf8",
    "depth_exceeded",
    "string_too_long",
    "number_too_long",
    "too_many_items",
    "too_many_members",
    "duplicate_key",
    "lone_surrogate",
    "nul_character",
    "invalid_encoding",
];

/// The static, low-cardinality reason for `problem`: the code of a 400's
/// violation (`syntax`, `duplicate_key`, …), or the kind of the problem
/// (`validation_failed`, `payload_too_large`, `unsupported_media_type`,
/// `request_timeout`, `malformed_body`, `malformed_request`), or `other`.
///
/// ```
/// use guardrails_core::{Problem, ProblemType};
/// assert_eq!(guardrails_validate::reason(&Problem::new(ProblemType::PAYLOAD_TOO_LARGE)), "payload_too_large");
/// ```
pub fn reason(problem: &Problem) -> &'static str {
    if problem.status() == http::StatusCode::BAD_REQUEST
        && let Some(first) = problem.violations().first()
        && let Some(code) = KNOWN_CODES.iter().find(|c| **c == first.code)
    {
        return code;
    }
    let kinds: [(ProblemType, &'static str); 6] = [
        (ProblemType::VALIDATION_FAILED, "validation_failed"),
        (ProblemType::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (
            ProblemType::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (ProblemType::REQUEST_TIMEOUT, "request_timeout"),
        (ProblemType::MALFORMED_BODY, "malformed_body"),
        (ProblemType::MALFORMED_REQUEST, "malformed_request"),
    ];
    kinds
        .iter()
        .find(|(t, _)| problem.is(*t))
        .map_or("other", |(_, r)| r)
}

fn problem_type(problem: &Problem) -> ProblemType {
    ProblemType::ALL
        .iter()
        .copied()
        .find(|t| problem.is(*t))
        .unwrap_or(ProblemType::MALFORMED_REQUEST)
}

/// The response for a validation rejection: the problem document, a
/// [`Rejection`] of category `Validation` in its extensions, the
/// `guardrails_validate_rejections_total{status, code}` counter, and a debug
/// `tracing` event (with the status and reason only).
///
/// ```
/// use guardrails_core::{Problem, ProblemType, Rejection};
/// let response = guardrails_validate::rejection_response::<bytes::Bytes>(
///     Problem::new(ProblemType::UNSUPPORTED_MEDIA_TYPE),
/// );
/// assert_eq!(response.status(), 415);
/// let why = response.extensions().get::<Rejection>().unwrap();
/// assert_eq!(why.reason(), "unsupported_media_type");
/// ```
pub fn rejection_response<B: From<Bytes>>(problem: Problem) -> Response<B> {
    let reason = reason(&problem);
    let status = problem.status();
    let kind = problem_type(&problem);
    record(status, reason);
    let mut response = problem.into_http_response::<B>();
    Rejection::new(RejectionCategory::Validation, reason, kind)
        .insert_into(response.extensions_mut());
    response
}

pub(crate) fn record(status: http::StatusCode, reason: &'static str) {
    tracing::debug!(
        status = status.as_u16(),
        reason,
        "guardrails.validate.rejected"
    );
    metrics::counter!(
        "guardrails_validate_rejections_total",
        "status" => status.as_str().to_owned(),
        "code" => reason,
    )
    .increment(1);
}
