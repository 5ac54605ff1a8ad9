//! The routes: one table that both the router and the audit trail's route
//! templates read, and one tower stack per route.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use guardrails_auth::{require_role, require_scope};
use guardrails_core::{Problem, ProblemType};
use guardrails_validate::{Config, ValidateJsonLayer};
use http::{HeaderValue, Method, Request, Response};
use http_body_util::Full;
use tower::util::{BoxCloneSyncService, Oneshot};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

use crate::notes::{self, NewNote, Notes};
use crate::{ROLE_ADMIN, ReqBody, ResBody, SCOPE_READ, SCOPE_WRITE, boxed};

/// A route of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`.
    Health,
    /// `GET` and `POST /v1/notes`.
    Notes,
    /// `DELETE /v1/notes/{id}`.
    Note,
}

impl Route {
    /// The route's template, as the audit trail records it.
    pub fn template(self) -> &'static str {
        match self {
            Self::Health => "/healthz",
            Self::Notes => "/v1/notes",
            Self::Note => "/v1/notes/{id}",
        }
    }

    /// The methods the route answers (`HEAD` with `GET`).
    pub fn allow(self) -> &'static str {
        match self {
            Self::Health => "GET, HEAD",
            Self::Notes => "GET, HEAD, POST",
            Self::Note => "DELETE",
        }
    }
}

/// The route a path names, whatever the method; `None` for any other path.
pub fn route(path: &str) -> Option<Route> {
    match path {
        "/healthz" => Some(Route::Health),
        "/v1/notes" => Some(Route::Notes),
        _ => path
            .strip_prefix("/v1/notes/")
            .filter(|id| notes::is_id(id))
            .map(|_| Route::Note),
    }
}

/// The route templates as the audit trail records them, one shared string
/// per route, so that resolving a request's template allocates nothing.
#[derive(Clone, Debug)]
pub struct Templates([Arc<str>; 3]);

impl Default for Templates {
    fn default() -> Self {
        Self([Route::Health, Route::Notes, Route::Note].map(|r| Arc::from(r.template())))
    }
}

impl Templates {
    /// The template of the path's route, also when the method is not
    /// allowed there (the record then says 405 for it); `None` for a path
    /// that is no route.
    pub fn of(&self, path: &str) -> Option<Arc<str>> {
        route(path).map(|r| Arc::clone(&self.0[r as usize]))
    }
}

type RouteService = BoxCloneSyncService<Request<ReqBody>, Response<ResBody>, Infallible>;

/// Dispatches a request to its route's stack: 404 for a path that is no
/// route, 405 (with `Allow`) for a method the route does not answer.
#[derive(Clone)]
pub struct Router {
    health: RouteService,
    list: RouteService,
    create: RouteService,
    delete: RouteService,
    fallback: RouteService,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

/// A requirement's name is a constant of this crate: valid.
#[expect(clippy::expect_used, reason = "constant, valid names")]
fn valid<T>(layer: Result<T, guardrails_auth::require::InvalidName>) -> T {
    layer.expect("a valid scope or role name")
}

/// The validation of `POST /v1/notes`: a note is at most about 40 KB of
/// JSON, and a client gets 5 seconds to send it (the defaults, 1 MiB and 30
/// seconds, are for any API).
pub fn note_limits() -> Config {
    Config::default()
        .max_body_bytes(64 * 1024)
        .read_timeout(Some(Duration::from_secs(5)))
}

impl Router {
    /// The routes over `notes`.
    pub fn new(notes: Notes) -> Self {
        let health = service_fn(|_: Request<ReqBody>| async {
            Ok::<_, Infallible>(boxed(Response::new(Full::new(Bytes::from_static(b"ok")))))
        });
        let list = ServiceBuilder::new()
            .map_response(boxed)
            .layer(valid(require_scope(SCOPE_READ)))
            .service_fn({
                let notes = notes.clone();
                move |request| {
                    let notes = notes.clone();
                    async move { Ok::<_, Infallible>(notes::list(&notes, &request)) }
                }
            });
        let create = ServiceBuilder::new()
            .map_response(boxed)
            .layer(valid(require_scope(SCOPE_WRITE)))
            .layer(ValidateJsonLayer::<NewNote>::new().config(note_limits()))
            .service_fn({
                let notes = notes.clone();
                move |request| {
                    let notes = notes.clone();
                    async move { Ok::<_, Infallible>(notes::create(&notes, &request)) }
                }
            });
        let delete = ServiceBuilder::new()
            .map_response(boxed)
            .layer(valid(require_role(ROLE_ADMIN)))
            .service_fn(move |request| {
                let notes = notes.clone();
                async move { Ok::<_, Infallible>(notes::delete(&notes, request).await) }
            });
        let fallback = service_fn(|request: Request<ReqBody>| async move {
            Ok::<_, Infallible>(not_routed(request.uri().path()))
        });
        Self {
            health: BoxCloneSyncService::new(health),
            list: BoxCloneSyncService::new(list),
            create: BoxCloneSyncService::new(create),
            delete: BoxCloneSyncService::new(delete),
            fallback: BoxCloneSyncService::new(fallback),
        }
    }

    fn pick(&self, method: &Method, path: &str) -> &RouteService {
        match (route(path), method) {
            (Some(Route::Health), &Method::GET | &Method::HEAD) => &self.health,
            (Some(Route::Notes), &Method::GET | &Method::HEAD) => &self.list,
            (Some(Route::Notes), &Method::POST) => &self.create,
            (Some(Route::Note), &Method::DELETE) => &self.delete,
            _ => &self.fallback,
        }
    }
}

/// 404 for a path that is no route, 405 with `Allow` for a route's path.
fn not_routed(path: &str) -> Response<ResBody> {
    let Some(route) = route(path) else {
        return boxed(Problem::new(ProblemType::NOT_FOUND).into_http_response::<Full<Bytes>>());
    };
    let mut response =
        boxed(Problem::new(ProblemType::METHOD_NOT_ALLOWED).into_http_response::<Full<Bytes>>());
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(route.allow()));
    response
}

impl Service<Request<ReqBody>> for Router {
    type Response = Response<ResBody>;
    type Error = Infallible;
    // The route's own (boxed) future, not boxed again.
    type Future = Oneshot<RouteService, Request<ReqBody>>;

    #[inline]
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each route's stack is made ready when it is called.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        self.pick(request.method(), request.uri().path())
            .clone()
            .oneshot(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_for_routing_and_templates() {
        let rows: &[(&str, Option<Route>)] = &[
            ("/healthz", Some(Route::Health)),
            ("/v1/notes", Some(Route::Notes)),
            (
                "/v1/notes/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                Some(Route::Note),
            ),
            ("/v1/notes/", None),
            ("/v1/notes/x/y", None),
            ("/v1/notes/../healthz", None),
            ("/healthz/", None),
            ("/v1/notes/0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", None),
            ("/", None),
        ];
        for (path, want) in rows {
            assert_eq!(route(path), *want, "{path}");
            assert_eq!(
                Templates::default().of(path).as_deref(),
                want.map(Route::template),
                "{path}"
            );
        }
    }
}
