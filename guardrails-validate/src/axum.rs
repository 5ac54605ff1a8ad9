//! axum extractors: `Valid<Json<T>>`, `Valid<Query<T>>`, `Valid<Form<T>>`,
//! `Valid<Path<T>>`, and [`Validated<T>`](crate::Validated) from the layer.
//!
//! Each runs the same core as the rest of the crate — limits, strict
//! decoding, unknown fields, garde — and rejects with a
//! [`ValidationRejection`]: the problem document, a
//! [`Rejection`](guardrails_core::Rejection) in the response extensions, and
//! the rejection metric. axum's own `Json`, `Query`, `Form` and `Path` are
//! only used as markers: their (plain-text) rejections never happen.
//!
//! The limits come from a [`Config`] in the request extensions (add one per
//! route with `axum::Extension(config)`), or [`Config::default`]. The garde
//! context comes from the router state through [`ValidationContext`], which
//! is implemented for `()` for every state: rules without context need no
//! boilerplate at all.
//!
//! ```
//! use axum::{Json, Router, routing::post};
//! use garde::Validate;
//! use guardrails_validate::axum::Valid;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, Validate)]
//! struct NewTodo {
//!     #[garde(length(chars, min = 1, max = 100))]
//!     title: String,
//! }
//!
//! async fn create(Valid(Json(todo)): Valid<Json<NewTodo>>) -> String {
//!     todo.title
//! }
//!
//! #[derive(Clone)]
//! struct AppState;
//!
//! let app: Router = Router::new().route("/todos", post(create)).with_state(AppState);
//! ```
//!
//! A context of your own is built from the state:
//!
//! ```
//! use guardrails_validate::axum::ValidationContext;
//!
//! struct Limits { max_title: usize }
//! #[derive(Clone)]
//! struct AppState { max_title: usize }
//!
//! impl ValidationContext<AppState> for Limits {
//!     fn from_state(state: &AppState) -> Self {
//!         Limits { max_title: state.max_title }
//!     }
//! }
//! ```

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use garde::Validate;
use guardrails_core::{Problem, ProblemType, Violation};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::body::read_body;
use crate::{Config, Validated, json, rejection_response, urlencoded};

/// A validated extractor: `Valid<Json<T>>`, `Valid<Query<T>>`,
/// `Valid<Form<T>>` or `Valid<Path<T>>`; see the [module documentation](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct Valid<E>(pub E);

/// Builds the garde context of a rule set from the router state.
///
/// Implemented for `()` for every state; implement it for your own context
/// types.
pub trait ValidationContext<S>: Sized {
    /// The context for one request.
    fn from_state(state: &S) -> Self;
}

impl<S> ValidationContext<S> for () {
    fn from_state(_: &S) -> Self {}
}

/// The rejection of the extractors: a problem answered with
/// [`rejection_response`].
#[derive(Debug)]
pub struct ValidationRejection(pub Problem);

impl ValidationRejection {
    /// The problem.
    pub fn problem(&self) -> &Problem {
        &self.0
    }
}

impl From<Problem> for ValidationRejection {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

impl IntoResponse for ValidationRejection {
    fn into_response(self) -> Response {
        rejection_response(self.0)
    }
}

fn config_of(extensions: &http::Extensions) -> Config {
    extensions.get::<Config>().cloned().unwrap_or_default()
}

impl<S, T> FromRequest<S> for Valid<Json<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate + 'static,
    T::Context: ValidationContext<S>,
{
    type Rejection = ValidationRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = config_of(request.extensions());
        let (parts, body) = request.into_parts();
        json::check_json_headers(&parts.headers)?;
        crate::body::check_content_encoding(&parts.headers)?;
        let bytes = read_body(body, &parts.headers, &config).await?;
        let context = T::Context::from_state(state);
        Ok(Valid(Json(json::from_slice(&bytes, &config, &context)?)))
    }
}

impl<S, T> FromRequest<S> for Valid<Form<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
    T::Context: ValidationContext<S>,
{
    type Rejection = ValidationRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = config_of(request.extensions());
        let (parts, body) = request.into_parts();
        let content_type = json::single_content_type(&parts.headers)?;
        urlencoded::check_form_content_type(content_type)?;
        crate::body::check_content_encoding(&parts.headers)?;
        let bytes = read_body(body, &parts.headers, &config).await?;
        let context = T::Context::from_state(state);
        Ok(Valid(Form(urlencoded::from_form(
            content_type,
            &bytes,
            &config,
            &context,
        )?)))
    }
}

impl<S, T> FromRequestParts<S> for Valid<Query<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
    T::Context: ValidationContext<S>,
{
    type Rejection = ValidationRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let config = config_of(&parts.extensions);
        let context = T::Context::from_state(state);
        let query = parts.uri.query().unwrap_or_default();
        Ok(Valid(Query(urlencoded::from_query(
            query, &config, &context,
        )?)))
    }
}

impl<S, T> FromRequestParts<S> for Valid<Path<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
    T::Context: ValidationContext<S>,
{
    type Rejection = ValidationRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let config = config_of(&parts.extensions);
        let invalid = || {
            Problem::new(ProblemType::MALFORMED_REQUEST)
                .with_detail("the path is not valid percent-encoded UTF-8")
                .with_violation(Violation::new(
                    "/path",
                    "invalid_encoding",
                    "is not valid percent-encoded UTF-8",
                ))
        };
        if urlencoded::check_percent_encoding(parts.uri.path().as_bytes()).is_err() {
            return Err(invalid().into());
        }
        let params = match RawPathParams::from_request_parts(parts, state).await {
            Ok(params) => params,
            Err(axum::extract::rejection::RawPathParamsRejection::InvalidUtf8InPathParam(_)) => {
                return Err(invalid().into());
            }
            // The extractor is used on a route without parameters: a bug of
            // the application, not of the request.
            Err(_) => return Err(Problem::new(ProblemType::INTERNAL_ERROR).into()),
        };
        let context = T::Context::from_state(state);
        Ok(Valid(Path(urlencoded::from_path_params(
            params.iter(),
            &config,
            &context,
        )?)))
    }
}

/// Takes the value that [`ValidateJsonLayer`](crate::ValidateJsonLayer) put
/// in the request extensions; a 500 (without detail) when the layer is
/// missing on the route.
impl<S, T> FromRequestParts<S> for Validated<T>
where
    S: Send + Sync,
    T: Send + Sync + 'static,
{
    type Rejection = ValidationRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Validated<T>>()
            .cloned()
            .ok_or_else(|| Problem::new(ProblemType::INTERNAL_ERROR).into())
    }
}
