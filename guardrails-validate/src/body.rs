//! Reading a request body under a size limit and a deadline.
//!
//! [`read_body`] (a named future, [`ReadBody`]) rejects before reading when
//! `Content-Length` or the body's size hint is over the limit, enforces the
//! limit again while streaming (chunked bodies have no length), and answers
//! 408 when the whole body has not arrived by the deadline — so a slow client
//! cannot hold a connection and a buffer forever.
//!
//! ```
//! use bytes::Bytes;
//! use guardrails_validate::{Config, body::read_body};
//! use http_body_util::Full;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let config = Config::default().max_body_bytes(4);
//! let headers = http::HeaderMap::new();
//! let ok = read_body(Full::new(Bytes::from_static(b"1234")), &headers, &config).await.unwrap();
//! assert_eq!(&ok[..], b"1234");
//! let err = read_body(Full::new(Bytes::from_static(b"12345")), &headers, &config).await.unwrap_err();
//! assert_eq!(err.status(), 413);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use guardrails_core::{Problem, ProblemType};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::Body;
use pin_project_lite::pin_project;

use crate::Config;

pin_project! {
    /// Future of [`read_body`]: the whole body, or a problem.
    #[must_use = "futures do nothing unless polled"]
    pub struct ReadBody<B> {
        #[pin]
        body: B,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        limit: usize,
        // When the deadline falls; the timer itself is only armed when the
        // body first has to wait, so buffered bodies never touch the timer.
        due: Option<tokio::time::Instant>,
        timeout_ms: u128,
        first: Option<Bytes>,
        rest: Option<BytesMut>,
        early: Option<Problem>,
        done: bool,
    }
}

impl<B> std::fmt::Debug for ReadBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadBody")
            .field("limit", &self.limit)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// The 413 problem for a body over `limit` bytes.
pub fn too_large(limit: usize) -> Problem {
    let problem = Problem::new(ProblemType::PAYLOAD_TOO_LARGE)
        .with_detail(format!("the request body exceeds {limit} bytes"));
    problem
        .clone()
        .with_extension("max_bytes", limit)
        .unwrap_or(problem)
}

/// Checks that the body is not content-coded (`Content-Encoding` absent or
/// `identity`): this crate does not decompress, and a compressed body must
/// not reach a JSON parser as if it were text. Put a decompression layer
/// with its own limits in front to accept compressed bodies.
///
/// # Errors
///
/// A 415 problem (RFC 7694) naming the encodings accepted.
pub fn check_content_encoding(headers: &HeaderMap) -> Result<(), Problem> {
    for value in headers.get_all(http::header::CONTENT_ENCODING) {
        let identity = value.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .all(|c| c.is_empty() || c.eq_ignore_ascii_case("identity"))
        });
        if !identity {
            return Err(Problem::new(ProblemType::UNSUPPORTED_MEDIA_TYPE)
                .with_detail("content-coded bodies are not accepted; send it uncompressed"));
        }
    }
    Ok(())
}

/// Checks `Content-Length` against the limit, before anything is read.
///
/// # Errors
///
/// 413 when the declared length is over `config`'s limit; 400
/// `malformed-request` when the header is not a single decimal number.
pub fn check_content_length(headers: &HeaderMap, config: &Config) -> Result<Option<u64>, Problem> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let parsed = value
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok());
    let Some(length) = parsed else {
        return Err(Problem::new(ProblemType::MALFORMED_REQUEST)
            .with_detail("the Content-Length header is not a valid length"));
    };
    if values.any(|other| other != value) {
        return Err(Problem::new(ProblemType::MALFORMED_REQUEST)
            .with_detail("the request has conflicting Content-Length headers"));
    }
    if length > config.max_body_bytes as u64 {
        return Err(too_large(config.max_body_bytes));
    }
    Ok(Some(length))
}

/// Reads the whole of `body` under `config`'s size limit and read deadline;
/// see the [module documentation](self).
///
/// The deadline needs a Tokio runtime with its time driver; outside one it is
/// not enforced.
pub fn read_body<B: Body>(body: B, headers: &HeaderMap, config: &Config) -> ReadBody<B> {
    let limit = config.max_body_bytes;
    let mut early = check_content_length(headers, config).err();
    if early.is_none() && body.size_hint().lower() > limit as u64 {
        early = Some(too_large(limit));
    }
    let due = match config.read_timeout {
        Some(timeout) if early.is_none() => tokio::time::Instant::now().checked_add(timeout),
        _ => None,
    };
    ReadBody {
        body,
        deadline: None,
        due,
        limit,
        timeout_ms: config.read_timeout.map_or(0, |t| t.as_millis()),
        first: None,
        rest: None,
        early,
        done: false,
    }
}

impl<B: Body> Future for ReadBody<B> {
    type Output = Result<Bytes, Problem>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if *this.done {
            return Poll::Pending;
        }
        if let Some(problem) = this.early.take() {
            *this.done = true;
            return Poll::Ready(Err(problem));
        }
        loop {
            let frame = match this.body.as_mut().poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    if this.deadline.is_none()
                        && let Some(due) = this.due.take()
                        && tokio::runtime::Handle::try_current().is_ok()
                    {
                        this.deadline.set(Some(tokio::time::sleep_until(due)));
                    }
                    if let Some(deadline) = this.deadline.as_mut().as_pin_mut() {
                        ready!(deadline.poll(cx));
                        *this.done = true;
                        return Poll::Ready(Err(Problem::new(ProblemType::REQUEST_TIMEOUT)
                            .with_detail(format!(
                                "the request body was not received within {} ms",
                                this.timeout_ms
                            ))));
                    }
                    return Poll::Pending;
                }
            };
            match frame {
                None => {
                    *this.done = true;
                    let bytes = match (this.first.take(), this.rest.take()) {
                        (_, Some(rest)) => rest.freeze(),
                        (Some(first), None) => first,
                        (None, None) => Bytes::new(),
                    };
                    return Poll::Ready(Ok(bytes));
                }
                Some(Err(_)) => {
                    *this.done = true;
                    return Poll::Ready(Err(Problem::new(ProblemType::MALFORMED_BODY)
                        .with_detail("the request body could not be read")));
                }
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue; // trailers
                    };
                    let have = this.first.as_ref().map_or(0, Bytes::len)
                        + this.rest.as_ref().map_or(0, BytesMut::len);
                    if have + data.remaining() > *this.limit {
                        *this.done = true;
                        return Poll::Ready(Err(too_large(*this.limit)));
                    }
                    let chunk = data.copy_to_bytes(data.remaining());
                    if let Some(rest) = this.rest.as_mut() {
                        rest.extend_from_slice(&chunk);
                    } else if let Some(first) = this.first.take() {
                        let mut rest = BytesMut::with_capacity(first.len() + chunk.len());
                        rest.extend_from_slice(&first);
                        rest.extend_from_slice(&chunk);
                        *this.rest = Some(rest);
                    } else {
                        *this.first = Some(chunk);
                    }
                }
            }
        }
    }
}
