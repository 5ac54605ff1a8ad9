//! Serving the router: one task per connection on hyper's HTTP/1 server,
//! with a time limit on every request head, the socket peer as axum's
//! `ConnectInfo`, and a graceful shutdown that is bounded.
//!
//! `axum::serve` would be shorter, but it sets no timer on hyper's
//! connections, so nothing limits how long a client may take to send a
//! request head: such a client holds its connection (and a file descriptor)
//! for as long as it likes, and at shutdown it holds the graceful stop, and
//! so the audit trail's final flush, until the orchestrator kills the
//! process. Here a head must arrive within [`HEADER_READ_TIMEOUT`], and at
//! shutdown connections get [`DRAIN_TIMEOUT`] to finish; requests still
//! running then are cancelled, which their audit records say, and only then
//! does [`serve`] return and the caller flush the trail.
//!
//! At most [`Limits::max_connections`] connections are served at once: at
//! the limit the server stops accepting, and new clients wait in the
//! kernel's listen backlog until a connection ends. Without it, enough idle
//! connections exhaust the process's file descriptors, and with them the
//! audit trail's next file. Clients still in the backlog at shutdown were
//! never accepted: their connections are reset, and no request of theirs
//! reached the app or its audit trail.
//!
//! HTTP/1.1 without upgrades: the app serves no WebSocket.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long a connection may wait for a request head (the request line and
/// headers) to arrive whole.
///
/// hyper starts this timer again when a response has been sent, so it is
/// also how long a kept-alive connection may stay idle: it is longer than
/// the idle timeouts of load balancers and client pools (AWS ALB: 60 s), so
/// that the server is never the side that closes a connection a peer is
/// about to reuse; it is what nginx uses for its keep-alive (75 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

/// How long the requests in flight get to finish once shutdown begins:
/// well inside the 30 s an orchestrator usually waits before it kills.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The default of [`Limits::max_connections`]; the app's setting
/// `server.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = crate::settings::DEFAULT_MAX_CONNECTIONS;

/// The limits [`serve`] holds connections to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most connections served at once (at least 1).
    pub max_connections: usize,
    /// How long the requests in flight get to finish once shutdown begins.
    pub drain: Duration,
}

impl Default for Limits {
    /// [`DEFAULT_MAX_CONNECTIONS`] and [`DRAIN_TIMEOUT`].
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            drain: DRAIN_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, at most
/// `limits.max_connections` connections at once; then stops accepting and
/// gives the connections `limits.drain` to finish their requests. Those
/// still open then are closed, and the requests they were serving cancelled
/// (the audit layer records them as `cancelled`).
///
/// Returns once every connection task has ended, with the number of
/// connections that had to be closed (0 when all finished in time).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) -> usize {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut connections = JoinSet::new();
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut at_limit = false;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first: at the limit, clients wait in the backlog.
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if !at_limit {
                    at_limit = true;
                    tracing::warn!(
                        max_connections,
                        "connection limit reached; new connections wait until one ends"
                    );
                }
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break, // never closed
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        if at_limit && slots.available_permits() > max_connections / 10 {
            at_limit = false;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Reap the connections that have ended.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before it was accepted: nothing to do.
            Err(error) if is_connection_error(&error) => continue,
            // Out of file descriptors or memory: wait for some to free up
            // rather than spin on the error.
            Err(error) => {
                tracing::error!(%error, "accept failed; retrying in a second");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        // The socket peer feeds the audit trail's `source.ip` (the app
        // trusts no proxy, so no forwarded header is believed).
        let service = app
            .clone()
            .map_request(move |mut request: http::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
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
    // New connections are refused from here on.
    drop(listener);
    let cut = match tokio::time::timeout(limits.drain, graceful.shutdown()).await {
        Ok(()) => 0,
        Err(_) => {
            while connections.try_join_next().is_some() {}
            connections.len()
        }
    };
    // Dropping the requests still running records them as cancelled; only
    // then may the caller flush the audit trail.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    if cut == 0 {
        tracing::info!("server stopped");
    } else {
        tracing::warn!(
            connections = cut,
            "server stopped; connections still open after the drain time were closed"
        );
    }
    cut
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The signals that stop the server gracefully: `SIGTERM` and Ctrl-C
/// (`SIGINT`; on Windows, Ctrl-C).
///
/// They are caught from the moment [`ShutdownSignal::install`] returns.
/// Install it before the app says it listens: a signal that arrives after
/// that (an orchestrator stopping a pod that has just started) then always
/// means a graceful stop that flushes the audit trail, never the signal's
/// default action, which ends the process at once.
#[derive(Debug)]
pub struct ShutdownSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl ShutdownSignal {
    /// Starts catching the signals. Needs a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When a signal handler cannot be installed.
    pub fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(windows)]
        {
            Ok(Self {
                ctrl_c: tokio::signal::windows::ctrl_c()?,
            })
        }
    }

    /// Resolves when a signal arrives.
    pub async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = self.interrupt.recv() => tracing::info!("Ctrl-C received, shutting down"),
        }
        #[cfg(windows)]
        {
            self.ctrl_c.recv().await;
            tracing::info!("Ctrl-C received, shutting down");
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    use super::ShutdownSignal;

    /// A SIGTERM that arrives after `install` and before anything waits is
    /// caught, and `recv` sees it: without the handler in place, the signal's
    /// default action would end this test process.
    #[tokio::test]
    async fn a_signal_between_install_and_recv_is_caught() {
        let signal = ShutdownSignal::install().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(10), signal.recv())
            .await
            .expect("the SIGTERM was not delivered to recv");
    }
}
