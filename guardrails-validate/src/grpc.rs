//! gRPC: violations as `google.rpc.BadRequest` field violations.
//!
//! [`to_status`] maps a problem to a `tonic::Status` whose binary details
//! (`grpc-status-details-bin`) are a `google.rpc.Status` carrying one
//! `google.rpc.BadRequest` — the shape `tonic-types` and every gRPC client
//! library's "rich error model" read. The protobuf encoding is written here
//! (a few length-delimited fields) rather than pulled in through
//! `tonic-types` and `prost`, which would more than double this crate's
//! dependency tree for four messages.
//!
//! Field paths follow the `google.rpc.BadRequest` convention: `lines[0].description`
//! for the pointer `/lines/0/description`.
//!
//! ```
//! use guardrails_core::{Problem, ProblemType, Violation};
//! use guardrails_validate::grpc::{BadRequest, to_status};
//!
//! let problem = Problem::new(ProblemType::VALIDATION_FAILED)
//!     .with_violation(Violation::new("/lines/0/quantity", "range.max", "must be at most 10000"));
//! let status = to_status(&problem);
//! assert_eq!(status.code(), tonic::Code::InvalidArgument);
//!
//! let details = BadRequest::from_status_details(status.details()).unwrap();
//! assert_eq!(details.field_violations[0].field, "lines[0].quantity");
//! assert_eq!(details.field_violations[0].reason, "range.max");
//! ```

use guardrails_core::Problem;
use http::StatusCode;
use tonic::{Code, Status};

const BAD_REQUEST_TYPE_URL: &str = "type.googleapis.com/google.rpc.BadRequest";

/// `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldViolation {
    /// Path to the field (`lines[0].description`).
    pub field: String,
    /// Human description.
    pub description: String,
    /// Stable machine code (the violation `code`).
    pub reason: String,
}

/// `google.rpc.BadRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BadRequest {
    /// The violations, in order.
    pub field_violations: Vec<FieldViolation>,
}

impl BadRequest {
    /// The violations of `problem`.
    pub fn from_problem(problem: &Problem) -> Self {
        Self {
            field_violations: problem
                .violations()
                .iter()
                .map(|v| FieldViolation {
                    field: field_path(&v.pointer),
                    description: v.detail.to_string(),
                    reason: v.code.to_string(),
                })
                .collect(),
        }
    }

    /// The protobuf encoding of this message.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_within(usize::MAX)
    }

    /// The protobuf encoding of the first violations that fit in `budget`
    /// bytes.
    fn encode_within(&self, budget: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for v in &self.field_violations {
            let mut fv = Vec::new();
            put_bytes(&mut fv, 1, v.field.as_bytes());
            put_bytes(&mut fv, 2, v.description.as_bytes());
            put_bytes(&mut fv, 3, v.reason.as_bytes());
            let before = out.len();
            put_bytes(&mut out, 1, &fv);
            if out.len() > budget {
                out.truncate(before);
                break;
            }
        }
        out
    }

    /// Decodes a `BadRequest` message.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut out = Self::default();
        for (field, value) in fields(bytes)? {
            if field == 1 {
                let mut v = FieldViolation::default();
                for (f, value) in fields(value)? {
                    let text = String::from_utf8(value.to_vec()).ok()?;
                    match f {
                        1 => v.field = text,
                        2 => v.description = text,
                        3 => v.reason = text,
                        _ => {}
                    }
                }
                out.field_violations.push(v);
            }
        }
        Some(out)
    }

    /// Finds the `BadRequest` in a `google.rpc.Status` (a `tonic::Status`'s
    /// details).
    pub fn from_status_details(details: &[u8]) -> Option<Self> {
        for (field, value) in fields(details)? {
            if field == 3 {
                let any = fields(value)?;
                let is_bad_request = any
                    .iter()
                    .any(|(f, v)| *f == 1 && *v == BAD_REQUEST_TYPE_URL.as_bytes());
                if is_bad_request {
                    let payload = any
                        .iter()
                        .find(|(f, _)| *f == 2)
                        .map_or(&[][..], |(_, v)| v);
                    return Self::decode(payload);
                }
            }
        }
        None
    }
}

/// Validates a decoded message with garde (see [`value`](crate::value)):
/// `Ok`, or the `InvalidArgument` status whose `BadRequest` details name
/// the violations (at most [`Config`](crate::Config)'s default 100), as
/// [`to_status`] maps the 422 problem.
///
/// ```
/// use garde::Validate;
/// use guardrails_validate::grpc::{BadRequest, check};
///
/// #[derive(Validate)]
/// struct CreateNote {
///     #[garde(length(chars, min = 1, max = 200))]
///     title: String,
/// }
///
/// let status = check(&CreateNote { title: String::new() }, &()).unwrap_err();
/// assert_eq!(status.code(), tonic::Code::InvalidArgument);
/// let details = BadRequest::from_status_details(status.details()).unwrap();
/// assert_eq!(details.field_violations[0].field, "title");
/// assert_eq!(details.field_violations[0].reason, "length.min");
/// ```
///
/// # Errors
///
/// The `InvalidArgument` status of the message's violations.
pub fn check<T>(message: &T, context: &T::Context) -> Result<(), Status>
where
    T: garde::Validate + ?Sized,
{
    crate::value::check(message, context, &crate::Config::default())
        .map_err(|problem| to_status(&problem))
}

/// The most bytes of `BadRequest` a status carries: the details travel
/// base64-encoded in the `grpc-status-details-bin` header, and HTTP/2
/// clients commonly refuse header lists over 16 KiB (hyper's default) with
/// a protocol error, which would hide the status itself.
pub const MAX_DETAILS_BYTES: usize = 8 * 1024;

/// The gRPC status for `problem`: `InvalidArgument` for 400/415/422,
/// `ResourceExhausted` for 413, `DeadlineExceeded` for 408, with the
/// problem's detail as message and its violations as `BadRequest` details
/// (the first ones, as many as fit in [`MAX_DETAILS_BYTES`]).
/// A server error (`Unavailable` for 503, `Internal` otherwise) carries its
/// title only, as its HTTP form does: never the detail or violations.
pub fn to_status(problem: &Problem) -> Status {
    if problem.is_server_error() {
        let code = if problem.status() == StatusCode::SERVICE_UNAVAILABLE {
            Code::Unavailable
        } else {
            Code::Internal
        };
        return Status::new(code, problem.title());
    }
    let code = match problem.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
        StatusCode::REQUEST_TIMEOUT => Code::DeadlineExceeded,
        _ => Code::InvalidArgument,
    };
    let message = problem.detail().unwrap_or(problem.title()).to_owned();
    let mut any = Vec::new();
    put_bytes(&mut any, 1, BAD_REQUEST_TYPE_URL.as_bytes());
    put_bytes(
        &mut any,
        2,
        &BadRequest::from_problem(problem).encode_within(MAX_DETAILS_BYTES),
    );
    let mut status = Vec::new();
    put_varint_field(&mut status, 1, code as u64);
    put_bytes(&mut status, 2, message.as_bytes());
    put_bytes(&mut status, 3, &any);
    Status::with_details(code, message, status.into())
}

/// `/lines/0/description` → `lines[0].description`.
pub fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&token);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn get_varint(bytes: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*i)?;
        *i += 1;
        v |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The length-delimited fields of a message (varint fields are skipped).
fn fields(bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let key = get_varint(bytes, &mut i)?;
        match key & 7 {
            0 => {
                get_varint(bytes, &mut i)?;
            }
            2 => {
                let len = usize::try_from(get_varint(bytes, &mut i)?).ok()?;
                let value = bytes.get(i..i.checked_add(len)?)?;
                i += len;
                out.push((key >> 3, value));
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths() {
        assert_eq!(field_path(""), "");
        assert_eq!(field_path("/a"), "a");
        assert_eq!(field_path("/lines/10/x~1y"), "lines[10].x/y");
        assert_eq!(field_path("/0"), "[0]");
    }

    #[test]
    fn round_trips() {
        let br = BadRequest {
            field_violations: vec![FieldViolation {
                field: "a".repeat(200),
                description: "d".into(),
                reason: "r".into(),
            }],
        };
        assert_eq!(BadRequest::decode(&br.encode()), Some(br));
        assert_eq!(BadRequest::decode(&[0xFF]), None);
    }

    #[test]
    fn details_stay_within_their_budget_and_keep_the_first_violations() {
        use guardrails_core::{ProblemType, Violation};
        // 100 violations under 1 KiB pointers: about 100 KiB of details.
        let violations: Vec<Violation> = (0..100)
            .map(|i| {
                Violation::new(
                    format!("/{}/{i}", "k".repeat(1000)),
                    "required",
                    "is required",
                )
            })
            .collect();
        let problem = Problem::new(ProblemType::VALIDATION_FAILED).with_violations(violations);
        let status = to_status(&problem);
        assert!(
            status.details().len() <= MAX_DETAILS_BYTES + 256,
            "{}",
            status.details().len()
        );
        let kept = BadRequest::from_status_details(status.details())
            .unwrap()
            .field_violations;
        assert!((5..100).contains(&kept.len()), "{}", kept.len());
        for (i, v) in kept.iter().enumerate() {
            assert!(v.field.ends_with(&format!("[{i}]")), "{}", v.field);
        }
    }

    #[test]
    fn server_errors_carry_their_title_only() {
        use guardrails_core::{ProblemType, Violation};
        for (kind, code) in [
            (ProblemType::INTERNAL_ERROR, Code::Internal),
            (ProblemType::AUDIT_UNAVAILABLE, Code::Unavailable),
        ] {
            let problem = Problem::new(kind)
                .with_detail("db at 10.0.0.7 refused: password authentication failed")
                .with_violations(vec![Violation::new("/x", "internal", "stack trace")]);
            let status = to_status(&problem);
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), kind.title());
            assert!(status.details().is_empty());
        }
        // A client error keeps its detail and violations.
        let problem = Problem::new(ProblemType::VALIDATION_FAILED)
            .with_detail("the request has 1 invalid value")
            .with_violations(vec![Violation::new("/a", "required", "is required")]);
        let status = to_status(&problem);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "the request has 1 invalid value");
        assert!(BadRequest::from_status_details(status.details()).is_some());
    }
}
