//! Serving the application with hyper: one task per connection, the socket
//! peer as the request's [`ClientIp`], and a graceful shutdown that lets
//! requests in flight finish, then cancels the ones that do not, so that
//! every request is in the audit trail (a cancelled one as `cancelled`)
//! before the trail is flushed. At most [`MAX_CONNECTIONS`] connections are
//! served at once; clients still waiting in the listen backlog at shutdown
//! were never accepted, so no request of theirs reached the app.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use guardrails_audit::ClientIp;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::App;

/// How long a connection may wait for a request head to arrive whole.
///
/// hyper starts this timer again when a response has been sent, so it is
/// also how long a kept-alive connection may stay idle: longer than the idle
/// timeouts of load balancers and client pools (AWS ALB: 60 s), so that the
/// server never closes a connection a peer is about to reuse (nginx's
/// keep-alive default, 75 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

/// How long requests in flight get to finish once shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served at once; more wait in the kernel's listen
/// backlog until one ends. It stays below the 1024 open files a Linux
/// process usually gets, so that idle connections cannot take the file
/// descriptors the audit trail needs for its next file.
pub const MAX_CONNECTIONS: usize = 900;

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and gives the connections' requests in flight `drain` to
/// finish; those still running then are cancelled (their audit records say
/// so). Returns, once every connection task has ended, whether all finished
/// within `drain`.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> bool {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first: at the limit, clients wait in the backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Reap the connections that have ended.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before it was accepted: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            // Out of file descriptors or memory: wait for some to free up.
            Err(e) => {
                tracing::error!(error = %e, "accept failed; retrying in a second");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        // The socket peer, for the audit trail's `source.ip` (no proxy is
        // trusted, so no forwarded header is believed).
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ClientIp(peer.ip()));
                request
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            // A client that goes away mid-request is not the server's error.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_ok();
    // Requests still running are dropped here, which records them as
    // cancelled; only then may the caller flush the audit trail.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    drained
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
