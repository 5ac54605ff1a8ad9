//! The guardrails on plain hyper and tower, without a framework: a small
//! multi-tenant notes API.
//!
//! The same layers as the axum example (`examples/saas-api`), put together
//! by hand, for servers that have no router of their own or a router of
//! their own making:
//!
//! ```text
//! hyper connection ─ ClientIp (the socket peer, per connection)
//!   └ AuditLayer    one event per request, route templates from routes::Templates,
//!                   DELETE /v1/notes/{id} fail-closed (Strict)
//!     └ AuthLayer   bearer JWT (HS256 here), /healthz public, deny by default
//!       └ CapturePrincipalLayer   the principal into the request's audit record
//!         └ Router  method + path → one tower stack per route:
//!             GET    /healthz        "ok"
//!             GET    /v1/notes       RequireLayer scope notes:read
//!             POST   /v1/notes       RequireLayer scope notes:write → ValidateJsonLayer<NewNote>
//!             DELETE /v1/notes/{id}  RequireLayer role admin, a `note.delete` domain event
//! ```
//!
//! What a framework would otherwise do, and this crate does in the open:
//!
//! - **Route templates** for the audit trail come from [`routes::Templates`],
//!   the same table the router dispatches with, through the audit layer's
//!   [`RouteResolver`](guardrails_audit::RouteResolver) (a closure over one
//!   shared string per route: no allocation per request).
//! - **The client address** is the socket peer, inserted per connection as
//!   [`ClientIp`](guardrails_audit::ClientIp) ([`server`]).
//! - **Request bodies**: hyper's `Incoming` is wrapped once in a
//!   [`GuardBody`], which can be rebuilt from
//!   bytes, so the validating layer can hand the bytes it read on.
//! - **Tenants** come from the token (`tenant` claim) only; the notes of
//!   one tenant are invisible to every other.
//!
//! ```no_run
//! use hyper_notes::{Notes, app, server};
//! # async fn run(auth: guardrails_auth::AuthLayer<guardrails_auth::jwt::JwtVerifier>,
//! #              auditor: guardrails_audit::Auditor) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
//! let app = app(auth, auditor, Notes::default());
//! let stop = async { let _ = tokio::signal::ctrl_c().await; };
//! server::serve(listener, app, stop, server::DRAIN_TIMEOUT).await;
//! # Ok(()) }
//! ```

pub mod notes;
pub mod routes;
pub mod server;
pub mod token;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use guardrails_audit::{AuditLayer, Auditor, CapturePrincipalLayer, DeliveryMode, RoutePolicy};
use guardrails_auth::AuthLayer;
use guardrails_auth::jwt::JwtVerifier;
use guardrails_core::GuardBody;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

pub use notes::{NewNote, Note, Notes};

/// The error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body of every route.
pub type ResBody = UnsyncBoxBody<Bytes, BoxError>;

/// The request body the routes see: hyper's, as a [`GuardBody`] (so that it
/// can be rebuilt from bytes) behind the audit layer's excerpt.
pub type ReqBody = guardrails_audit::layer::ExcerptBody<GuardBody<Incoming>>;

/// The response body of the whole application: a route's, inside the
/// audit and auth layers' bodies (each the inner body or a problem).
pub type AppBody = GuardBody<guardrails_audit::layer::AuditBody<GuardBody<ResBody>>>;

/// The whole application, as hyper serves it.
pub type App = BoxCloneSyncService<Request<Incoming>, Response<AppBody>, Infallible>;

/// How long a strict request waits for its audit record before it is
/// refused with 503.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The scope that lists notes.
pub const SCOPE_READ: &str = "notes:read";
/// The scope that creates notes.
pub const SCOPE_WRITE: &str = "notes:write";
/// The role that deletes notes.
pub const ROLE_ADMIN: &str = "admin";

/// The application: the guard stack around the [`routes::Router`].
///
/// `auth` is the deployment's authentication layer; `/healthz` is made
/// public here, everything else needs a valid token.
pub fn app(auth: AuthLayer<JwtVerifier>, auditor: Auditor, notes: Notes) -> App {
    let templates = routes::Templates::default();
    let audit = AuditLayer::new(auditor)
        .policy(
            RoutePolicy::new()
                .route(routes::Route::Note.template())
                .method(Method::DELETE)
                .mode(DeliveryMode::Strict),
        )
        .delivery_timeout(DELIVERY_TIMEOUT)
        .route_resolver(move |_: &Method, uri: &http::Uri, _: &http::Extensions| {
            templates.of(uri.path())
        });
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .map_request(|request: Request<Incoming>| request.map(GuardBody::new))
            .layer(audit)
            .layer(auth.public_path("/healthz"))
            .layer(CapturePrincipalLayer)
            .service(routes::Router::new(notes)),
    )
}

/// Any response whose body yields [`Bytes`], with the body boxed.
pub(crate) fn boxed<B>(response: Response<B>) -> Response<ResBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    response.map(|body| body.map_err(Into::into).boxed_unsync())
}
