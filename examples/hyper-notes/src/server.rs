//! Serving the application with hyper: one task per connection, the socket
//! peer as the request's [`ClientIp`], and a graceful shutdown that lets
//! requests in flight finish.

use std::future::Future;
use std::time::Duration;

use guardrails_audit::ClientIp;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::App;

/// How long a slow client may take to send a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight get to finish once `shutdown` completes.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and waits up to [`DRAIN_TIMEOUT`] for the connections'
/// requests in flight. Returns whether every connection finished in time.
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) -> bool {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, a connection reset before it
                // was accepted…: the listener itself is fine.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
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
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's error.
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_ok()
}
