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
