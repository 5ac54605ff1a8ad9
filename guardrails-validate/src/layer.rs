//! A tower layer that validates a route's JSON body.
//!
//! [`ValidateJsonLayer<T>`] reads the body under the [`Config`]'s limits and
//! deadline, runs the [core](crate::json) on it, and either answers with the
//! problem (the inner service is not called) or calls the inner service with
//! the value in the request extensions as [`Validated<T>`] — and with the
//! original bytes as the body, for handlers that need them (signatures…).
//!
//! Works with any tower server whose request body type can be rebuilt from
//! [`Bytes`] (`axum::body::Body`, `http_body_util::Full<Bytes>`, …).
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use garde::Validate;
//! use guardrails_validate::{Validated, ValidateJsonLayer};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use serde::Deserialize;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! #[derive(Debug, Deserialize, Validate)]
//! struct Ping {
//!     #[garde(range(min = 1, max = 10))]
//!     count: u8,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(ValidateJsonLayer::<Ping>::new())
//!     .service_fn(|request: Request<Full<Bytes>>| async move {
//!         let ping = request.extensions().get::<Validated<Ping>>().unwrap();
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!("pong {}", ping.count)))))
//!     });
//!
//! let request = Request::post("/ping")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(br#"{"count":99}"#)))
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 422);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use garde::Validate;
use guardrails_core::{GuardBody, Problem};
use http::{Request, Response, request::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{ReadBody, read_body};
use crate::{Config, json, rejection_response};

/// A validated value, placed in the request extensions by
/// [`ValidateJsonLayer`]. Cheap to clone (one reference count).
pub struct Validated<T>(Arc<T>);

impl<T> Validated<T> {
    /// Wraps a value (for tests and other producers).
    pub fn new(value: T) -> Self {
        Self(Arc::new(value))
    }

    /// The shared value.
    pub fn into_arc(self) -> Arc<T> {
        self.0
    }

    /// The value, cloned only if it is shared.
    pub fn into_inner(self) -> T
    where
        T: Clone,
    {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl<T> Clone for Validated<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Deref for Validated<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for Validated<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Validated").field(&self.0).finish()
    }
}

/// Builds the response for a rejected request.
///
/// The default, [`ProblemResponse`], answers with the problem document
/// through [`rejection_response`] (with the `Rejection` extension, the metric
/// and the tracing event). Any `Fn(Problem) -> Response<GuardBody<B>>` works
/// too, for servers that answer differently — a gRPC service, say.
///
/// ```
/// use guardrails_core::{GuardBody, Problem};
/// use guardrails_validate::ValidateJsonLayer;
/// # #[derive(serde::Deserialize, garde::Validate)]
/// # struct Ping { #[garde(skip)] n: u8 }
///
/// let layer = ValidateJsonLayer::<Ping>::new().on_rejection(|problem: Problem| {
///     let mut response = http::Response::new(GuardBody::<String>::full(problem.title().to_owned()));
///     *response.status_mut() = problem.status();
///     response
/// });
/// ```
pub trait OnRejection<B> {
    /// The response for `problem`.
    fn on_rejection(&self, problem: Problem) -> Response<GuardBody<B>>;
}

/// The default [`OnRejection`]: the problem document, via
/// [`rejection_response`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ProblemResponse;

impl<B> OnRejection<B> for ProblemResponse {
    fn on_rejection(&self, problem: Problem) -> Response<GuardBody<B>> {
        rejection_response(problem)
    }
}

impl<B, F> OnRejection<B> for F
where
    F: Fn(Problem) -> Response<GuardBody<B>>,
{
    fn on_rejection(&self, problem: Problem) -> Response<GuardBody<B>> {
        self(problem)
    }
}

/// Validates a JSON body as `T`; see the [module documentation](self).
#[must_use]
pub struct ValidateJsonLayer<T: Validate, R = ProblemResponse> {
    config: Arc<Config>,
    context: Arc<T::Context>,
    on_rejection: R,
    _type: PhantomData<fn() -> T>,
}

impl<T: Validate> ValidateJsonLayer<T> {
    /// A layer with the default [`Config`] and the default garde context.
    pub fn new() -> Self
    where
        T::Context: Default,
    {
        Self::with_context(T::Context::default())
    }

    /// A layer with the default [`Config`] and `context` for garde.
    pub fn with_context(context: T::Context) -> Self {
        Self {
            config: Arc::new(Config::default()),
            context: Arc::new(context),
            on_rejection: ProblemResponse,
            _type: PhantomData,
        }
    }
}

impl<T: Validate, R> ValidateJsonLayer<T, R> {
    /// Replaces the configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Replaces how rejections are answered; see [`OnRejection`].
    pub fn on_rejection<R2>(self, on_rejection: R2) -> ValidateJsonLayer<T, R2> {
        ValidateJsonLayer {
            config: self.config,
            context: self.context,
            on_rejection,
            _type: PhantomData,
        }
    }
}

impl<T: Validate> Default for ValidateJsonLayer<T>
where
    T::Context: Default,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Validate, R: Clone> Clone for ValidateJsonLayer<T, R> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            context: Arc::clone(&self.context),
            on_rejection: self.on_rejection.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: Validate, R> fmt::Debug for ValidateJsonLayer<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateJsonLayer")
            .field("config", &self.config)
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<S, T: Validate, R: Clone> Layer<S> for ValidateJsonLayer<T, R> {
    type Service = ValidateJson<S, T, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ValidateJson {
            inner,
            config: Arc::clone(&self.config),
            context: Arc::clone(&self.context),
            on_rejection: self.on_rejection.clone(),
            _type: PhantomData,
        }
    }
}

/// The service of [`ValidateJsonLayer`]; see the [module documentation](self).
pub struct ValidateJson<S, T: Validate, R = ProblemResponse> {
    inner: S,
    config: Arc<Config>,
    context: Arc<T::Context>,
    on_rejection: R,
    _type: PhantomData<fn() -> T>,
}

impl<S, T: Validate> ValidateJson<S, T> {
    /// Wraps `inner` with the default configuration and garde context.
    pub fn new(inner: S) -> Self
    where
        T::Context: Default,
    {
        ValidateJsonLayer::<T>::new().layer(inner)
    }

    /// A layer producing this service.
    pub fn layer() -> ValidateJsonLayer<T>
    where
        T::Context: Default,
    {
        ValidateJsonLayer::new()
    }
}

impl<S, T: Validate, R> ValidateJson<S, T, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, T: Validate, R: Clone> Clone for ValidateJson<S, T, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            context: Arc::clone(&self.context),
            on_rejection: self.on_rejection.clone(),
            _type: PhantomData,
        }
    }
}

impl<S: fmt::Debug, T: Validate, R> fmt::Debug for ValidateJson<S, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateJson")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, T, R, ReqBody, ResBody> Service<Request<ReqBody>> for ValidateJson<S, T, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    T: DeserializeOwned + Validate + Send + Sync + 'static,
    R: OnRejection<ResBody> + Clone,
    ReqBody: Body + From<Bytes>,
{
    type Response = Response<GuardBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, T, R, ReqBody, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let checked = json::check_json_headers(&parts.headers)
            .and_then(|()| crate::body::check_content_encoding(&parts.headers));
        if let Err(problem) = checked {
            return ResponseFuture {
                state: State::Rejected {
                    response: Some(self.on_rejection.on_rejection(problem)),
                },
            };
        }
        let inner = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, inner);
        ResponseFuture {
            state: State::Reading {
                read: read_body(body, &parts.headers, &self.config),
                parts: Some(parts),
                inner: Some(inner),
                config: Arc::clone(&self.config),
                context: Arc::clone(&self.context),
                on_rejection: self.on_rejection.clone(),
            },
        }
    }
}

pin_project! {
    /// Response future of [`ValidateJson`].
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, T, R, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
        T: Validate,
    {
        #[pin]
        state: State<S, T, R, ReqBody, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, T, R, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
        T: Validate,
    {
        Reading {
            #[pin]
            read: ReadBody<ReqBody>,
            parts: Option<Parts>,
            inner: Option<S>,
            config: Arc<Config>,
            context: Arc<T::Context>,
            on_rejection: R,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<Response<GuardBody<ResBody>>>,
        },
    }
}

impl<S, T, R, ReqBody, ResBody> fmt::Debug for ResponseFuture<S, T, R, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
    T: Validate,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, T, R, ReqBody, ResBody> Future for ResponseFuture<S, T, R, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    T: DeserializeOwned + Validate + Send + Sync + 'static,
    R: OnRejection<ResBody>,
    ReqBody: Body + From<Bytes>,
{
    type Output = Result<Response<GuardBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Reading {
                    read,
                    parts,
                    inner,
                    config,
                    context,
                    on_rejection,
                } => {
                    let result = ready!(read.poll(cx));
                    let (Some(mut parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        return Poll::Pending; // polled after completion
                    };
                    let validated = result.and_then(|bytes| {
                        json::from_slice::<T>(&bytes, config, context).map(|value| (value, bytes))
                    });
                    match validated {
                        Ok((value, bytes)) => {
                            parts.extensions.insert(Validated::new(value));
                            let future =
                                inner.call(Request::from_parts(parts, ReqBody::from(bytes)));
                            this.state.set(State::Calling { future });
                        }
                        Err(problem) => {
                            let response = on_rejection.on_rejection(problem);
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(GuardBody::new)));
                }
                StateProj::Rejected { response } => {
                    return match response.take() {
                        Some(response) => Poll::Ready(Ok(response)),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}
