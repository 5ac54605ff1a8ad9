//! Serving the guarded service over HTTP/2 with hyper: one task per
//! connection, the socket peer as the request's [`ClientIp`], at most
//! [`MAX_CONNECTIONS`] connections, and a graceful shutdown that is
//! bounded.
//!
//! tonic's own `Server` would be shorter, but its graceful stop waits for
//! every connection to close, with no limit: one client that never answers
//! HTTP/2's closing handshake (or never ends a call) holds the stop, and so
//! the audit trail's final flush, until the orchestrator kills the process.
//! Here the connections get [`DRAIN_TIMEOUT`] to finish their calls; calls
//! still running then are cancelled, which their audit records say, and
//! only then does [`serve`] return and the caller flush the trail.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
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

/// How long the calls in flight get to finish once shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served at once; more wait in the kernel's listen
/// backlog until one ends. It stays below the 1024 open files a Linux
/// process usually gets, so that idle connections cannot take the file
/// descriptors the audit trail needs for its next file.
pub const MAX_CONNECTIONS: usize = 900;

/// How often an idle connection is pinged, and how long the answer may
/// take before the connection is closed: a peer that went away without a
/// word does not keep its connection.
const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(20));

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and gives the connections `drain` to finish their calls; those
/// still running then are cancelled (their audit records say so). Returns,
/// once every connection task has ended, whether all finished in time.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> bool {
    let graceful = GracefulShutdown::new();
    let calls = Calls::default();
    // gRPC is HTTP/2 only: no HTTP/1 for a client to stall in.
    let mut http = hyper_util::server::conn::auto::Builder::new(calls.clone()).http2_only();
    http.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(KEEPALIVE.0))
        .keep_alive_timeout(KEEPALIVE.1);
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
        // Reap the connections and calls that have ended.
        while connections.try_join_next().is_some() {}
        calls.reap();
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
        let connection = http
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            // A client that goes away mid-call is not the server's error.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_ok();
    // Calls still running are dropped here, which records them as
    // cancelled; only then may the caller flush the audit trail.
    calls.cancel().await;
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    // A call a connection started meanwhile.
    calls.cancel().await;
    drained
}

/// Where hyper runs the calls of every connection: HTTP/2 serves each
/// call (stream) in a task of its own, which ending its connection's task
/// does not end. Holding them here lets the drain cancel them too.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<JoinSet<()>>>);

impl Calls {
    fn tasks(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the calls that have ended.
    fn reap(&self) {
        let mut tasks = self.tasks();
        while tasks.try_join_next().is_some() {}
    }

    /// Cancels the calls still running, and waits until they are dropped.
    async fn cancel(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks());
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

impl<F> hyper::rt::Executor<F> for Calls
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, call: F) {
        self.tasks().spawn(call);
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
