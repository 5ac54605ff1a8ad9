//! Serving the router with graceful shutdown.

use std::io;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` on `listener` until `shutdown` receives a signal, then lets
/// in-flight requests finish.
///
/// # Errors
///
/// When the listener fails.
pub async fn serve(listener: TcpListener, app: Router, shutdown: ShutdownSignal) -> io::Result<()> {
    // The peer address feeds the audit trail's `source.ip`.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.recv())
    .await?;
    tracing::info!("server stopped");
    Ok(())
}

/// The signals that stop the server gracefully: `SIGTERM` and Ctrl-C
/// (`SIGINT`).
///
/// On Unix they are caught from the moment [`ShutdownSignal::install`]
/// returns. Install it before the app says it listens: a signal that arrives
/// after that (an orchestrator stopping a pod that has just started) then
/// always means a graceful stop that flushes the audit trail, never the
/// signal's default action, which ends the process at once.
#[derive(Debug)]
pub struct ShutdownSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Starts catching the signals.
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
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves when a signal arrives.
    pub async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = self.interrupt.recv() => tracing::info!("Ctrl-C received, shutting down"),
        }
        #[cfg(not(unix))]
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("Ctrl-C received, shutting down"),
            Err(error) => {
                tracing::error!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    }
}
