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
//!
//! A connection without an open call is closed after [`FIRST_CALL_TIMEOUT`]
//! (before its first call) or [`IDLE_TIMEOUT`], so that clients that
//! connect and say nothing cannot hold the [`MAX_CONNECTIONS`] slots for
//! long. (They can still take them again and again: a deployment behind no
//! proxy would also cap the connections of one address.)

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// How long a new connection may go without starting a call: a client that
/// connects and says nothing (HTTP/2 has no handshake deadline of its own,
/// and pings start only after it) does not hold one of the
/// [`MAX_CONNECTIONS`] slots.
pub const FIRST_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may stay open without a call: a client's idle
/// channel is closed (it connects again for its next call).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The limits [`serve`] holds connections to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most connections served at once (at least 1).
    pub max_connections: usize,
    /// How long a new connection may go without starting a call.
    pub first_call: Duration,
    /// How long a connection may stay open without a call.
    pub idle: Duration,
    /// How long the calls in flight get to finish once shutdown begins.
    pub drain: Duration,
}

impl Default for Limits {
    /// [`MAX_CONNECTIONS`], [`FIRST_CALL_TIMEOUT`], [`IDLE_TIMEOUT`] and
    /// [`DRAIN_TIMEOUT`].
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            first_call: FIRST_CALL_TIMEOUT,
            idle: IDLE_TIMEOUT,
            drain: DRAIN_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and gives the connections `limits.drain` to finish their
/// calls; those still running then are cancelled (their audit records say
/// so). Returns, once every connection task has ended, whether all calls
/// finished in time.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) -> bool {
    let graceful = GracefulShutdown::new();
    let calls = Calls::default();
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
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
        let open = Arc::new(OpenCalls::new(limits.first_call, limits.idle));
        // gRPC is HTTP/2 only: no HTTP/1 for a client to stall in.
        let mut http = hyper_util::server::conn::auto::Builder::new(ConnectionCalls {
            calls: calls.clone(),
            open: Arc::clone(&open),
        })
        .http2_only();
        http.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(KEEPALIVE.0))
            .keep_alive_timeout(KEEPALIVE.1);
        let connection = http
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            tokio::select! {
                // A client that goes away mid-call is not the server's error.
                _ = connection => {}
                // Dropping the connection closes it: no call is open.
                () = open.idle() => {}
            }
            drop(slot);
        });
    }
    drop(listener);
    // Drained when every call has ended; a connection that is still in
    // HTTP/2's handshake (which a graceful close waits for) is no call.
    let drained = tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_ok()
        || calls.running() == 0;
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

    /// How many calls are still running.
    fn running(&self) -> usize {
        let mut tasks = self.tasks();
        while tasks.try_join_next().is_some() {}
        tasks.len()
    }

    /// Cancels the calls still running, and waits until they are dropped.
    async fn cancel(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks());
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// The calls open on one connection, and when the last one ended.
#[derive(Debug)]
struct OpenCalls {
    count: AtomicUsize,
    /// Whether a call was ever opened.
    used: AtomicBool,
    since: Mutex<Instant>,
    first_call: Duration,
    idle: Duration,
}

impl OpenCalls {
    fn new(first_call: Duration, idle: Duration) -> Self {
        Self {
            count: AtomicUsize::new(0),
            used: AtomicBool::new(false),
            since: Mutex::new(Instant::now()),
            first_call,
            idle,
        }
    }

    fn opened(&self) {
        self.count.fetch_add(1, AtomicOrdering::SeqCst);
        self.used.store(true, AtomicOrdering::SeqCst);
    }

    fn closed(&self) {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.count.fetch_sub(1, AtomicOrdering::SeqCst);
    }

    /// Resolves once the connection has had no open call for `first_call`
    /// (before its first call) or `idle`.
    async fn idle(&self) {
        loop {
            let limit = if self.used.load(AtomicOrdering::SeqCst) {
                self.idle
            } else {
                self.first_call
            };
            let since = *self.since.lock().unwrap_or_else(PoisonError::into_inner);
            let quiet = since.elapsed();
            if self.count.load(AtomicOrdering::SeqCst) == 0 && quiet >= limit {
                return;
            }
            // Look again when the limit may have passed (or in a while, when
            // a call is open).
            tokio::time::sleep(limit.saturating_sub(quiet).max(self.first_call / 10)).await;
        }
    }
}

/// One connection's calls: run among the server's [`Calls`], counted in
/// the connection's [`OpenCalls`].
#[derive(Clone)]
struct ConnectionCalls {
    calls: Calls,
    open: Arc<OpenCalls>,
}

/// Counts a call as closed when its task ends or is dropped.
struct CallOpen(Arc<OpenCalls>);

impl Drop for CallOpen {
    fn drop(&mut self) {
        self.0.closed();
    }
}

impl<F> hyper::rt::Executor<F> for ConnectionCalls
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, call: F) {
        self.open.opened();
        let open = CallOpen(Arc::clone(&self.open));
        let mut tasks = self.calls.tasks();
        // Forget the calls that have ended: a client may keep one
        // connection for days, with no accept to reap them.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            call.await;
            drop(open);
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(calls: &Calls) -> ConnectionCalls {
        ConnectionCalls {
            calls: calls.clone(),
            open: Arc::new(OpenCalls::new(FIRST_CALL_TIMEOUT, IDLE_TIMEOUT)),
        }
    }

    /// Waits until no call of `connection` is open.
    async fn all_closed(connection: &ConnectionCalls) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while connection.open.count.load(AtomicOrdering::SeqCst) != 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the calls did not end");
    }

    #[tokio::test]
    async fn ended_calls_are_forgotten_when_the_next_call_starts() {
        let calls = Calls::default();
        let connection = connection(&calls);
        for _ in 0..100 {
            hyper::rt::Executor::execute(&connection, async {});
        }
        all_closed(&connection).await;
        // A long-lived connection, no accept in between: the next call
        // reaps the hundred that ended.
        hyper::rt::Executor::execute(&connection, std::future::pending::<()>());
        assert_eq!(calls.tasks().len(), 1);
        assert_eq!(connection.open.count.load(AtomicOrdering::SeqCst), 1);
        calls.cancel().await;
    }

    #[tokio::test]
    async fn reaping_forgets_ended_calls_and_keeps_running_ones() {
        let calls = Calls::default();
        let connection = connection(&calls);
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        hyper::rt::Executor::execute(&connection, async {
            let _ = finished.await;
        });
        for _ in 0..10 {
            hyper::rt::Executor::execute(&connection, async {});
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while connection.open.count.load(AtomicOrdering::SeqCst) != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the short calls did not end");
        calls.reap();
        assert_eq!(calls.tasks().len(), 1, "only the running call is kept");
        assert_eq!(calls.running(), 1);
        finish.send(()).unwrap();
        all_closed(&connection).await;
        assert_eq!(calls.running(), 0);
    }

    #[tokio::test]
    async fn cancelling_drops_running_calls_and_closes_them() {
        let calls = Calls::default();
        let connection = connection(&calls);
        let dropped = Arc::new(AtomicUsize::new(0));
        struct CountsDrop(Arc<AtomicUsize>);
        impl Drop for CountsDrop {
            fn drop(&mut self) {
                self.0.fetch_add(1, AtomicOrdering::SeqCst);
            }
        }
        for _ in 0..3 {
            let guard = CountsDrop(Arc::clone(&dropped));
            hyper::rt::Executor::execute(&connection, async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
        }
        assert_eq!(calls.running(), 3);
        calls.cancel().await;
        // Dropped (an audited call records itself as cancelled), and no
        // longer counted as open on its connection.
        assert_eq!(dropped.load(AtomicOrdering::SeqCst), 3);
        assert_eq!(connection.open.count.load(AtomicOrdering::SeqCst), 0);
        assert_eq!(calls.running(), 0);
    }
}
