//! The guardrails on a tonic gRPC service: a small multi-tenant notes
//! service.
//!
//! The same layers as the axum and hyper examples, in front of tonic's
//! generated service, answering as gRPC does (a status, not a problem
//! document):
//!
//! ```text
//! hyper HTTP/2 connection ─ ClientIp (the socket peer, per connection)
//!   └ AuditLayer    one event per call, the call's method path as route template,
//!                   its grpc-status as outcome; DeleteNote fail-closed (Strict)
//!     └ AuthLayer   bearer JWT in the `authorization` metadata, deny by default,
//!                   rejections as UNAUTHENTICATED / PERMISSION_DENIED (GrpcResponder)
//!       └ CapturePrincipalLayer   the principal into the call's audit record
//!         └ NotesServer   the generated router over [`Notes`]:
//!             CreateNote   scope notes:write, message checked with garde → INVALID_ARGUMENT
//!                          with google.rpc.BadRequest details
//!             ListNotes    scope notes:read, a server stream (its status in the trailers)
//!             DeleteNote   role admin, a `note.delete` domain event
//! ```
//!
//! - **The rules of a message** are garde attributes the build script puts
//!   on the generated type (`build.rs`), checked in one call,
//!   [`guardrails_validate::grpc::check`], which answers the status every
//!   gRPC client's rich error model reads.
//! - **Outcomes**: a gRPC call answers HTTP 200 whatever happens; the audit
//!   layer reads `grpc-status` from the headers of an error answered at
//!   once, and from the trailers of a streamed answer (its record waits
//!   for them). On a strict call the trailers in turn wait until that
//!   record is durable; a call whose record fails ends `INTERNAL`.
//! - **Tenants** come from the token (`tenant` claim) only.
//! - **Serving**: hyper's HTTP/2 server with a bounded graceful stop
//!   ([`server`]), so that the calls still running at the drain time are
//!   cancelled, and recorded as such, before the trail is flushed.
//!
//! ```no_run
//! use grpc_notes::{Notes, app, server, token};
//! # async fn run(auditor: guardrails_audit::Auditor, secret: secrecy::SecretString)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! let app = app(token::auth_layer(&secret)?, auditor, Notes::default());
//! let stop = async { let _ = tokio::signal::ctrl_c().await; };
//! server::serve(listener, app, stop, server::Limits::default()).await;
//! # Ok(()) }
//! ```

pub mod notes;
pub mod server;
pub mod token;

/// The generated messages, server and client of `proto/notes.proto`.
#[allow(
    missing_docs,
    unused_qualifications,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::clone_on_ref_ptr
)]
pub mod pb {
    tonic::include_proto!("notes.v1");
}

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use guardrails_audit::layer::AuditBody;
use guardrails_audit::{
    AuditLayer, Auditor, CapturePrincipalLayer, Category, DeliveryMode, RoutePolicy,
};
use guardrails_auth::AuthLayer;
use guardrails_auth::jwt::JwtVerifier;
use guardrails_core::GuardBody;
use http::{Request, Response};
use hyper::body::Incoming;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

pub use notes::Notes;

/// The scope that lists notes.
pub const SCOPE_READ: &str = "notes:read";
/// The scope that creates notes.
pub const SCOPE_WRITE: &str = "notes:write";
/// The role that deletes notes.
pub const ROLE_ADMIN: &str = "admin";

/// The calls of the service, as the audit trail records their route.
pub const CALLS: [&str; 3] = [
    "/notes.v1.Notes/CreateNote",
    "/notes.v1.Notes/ListNotes",
    "/notes.v1.Notes/DeleteNote",
];

/// The largest message a call may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How long a strict call waits for its attempt record before it is
/// refused with `UNAVAILABLE`, and for its completion record before it ends
/// `INTERNAL` instead of its own status.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The route templates of [`CALLS`], one shared string each, so that a
/// call's template allocates nothing; any other path has none.
#[derive(Clone, Debug)]
struct Templates([Arc<str>; 3]);

impl Templates {
    fn new() -> Self {
        Self(CALLS.map(Arc::from))
    }

    fn of(&self, path: &str) -> Option<Arc<str>> {
        self.0.iter().find(|t| ***t == *path).map(Arc::clone)
    }
}

/// The response body of the whole application: tonic's, inside the audit
/// and auth layers' bodies (each the inner body or a rejection).
pub type AppBody = GuardBody<AuditBody<GuardBody<tonic::body::Body>>>;

/// The whole application, as hyper serves it.
pub type App = BoxCloneSyncService<Request<Incoming>, Response<AppBody>, Infallible>;

/// The application: the guard stack around the generated service over
/// `notes`.
///
/// Calls need a valid token: there is no public call.
pub fn app(auth: AuthLayer<JwtVerifier>, auditor: Auditor, notes: Notes) -> App {
    let templates = Templates::new();
    let audit = AuditLayer::new(auditor)
        // Every call is a POST: the one that only reads says so.
        .policy(
            RoutePolicy::new()
                .route(CALLS[1])
                .category(Category::DataRead),
        )
        .policy(
            RoutePolicy::new()
                .route(CALLS[2])
                .mode(DeliveryMode::Strict),
        )
        .delivery_timeout(DELIVERY_TIMEOUT)
        .route_resolver(
            move |_: &http::Method, uri: &http::Uri, _: &http::Extensions| templates.of(uri.path()),
        );
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(audit)
            .layer(auth)
            .layer(CapturePrincipalLayer)
            // A note is at most about 11 KB: tonic's default limit of a
            // decoded message, 4 MiB, would let each call buffer that much.
            .service(
                pb::notes_server::NotesServer::new(notes)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            ),
    )
}
