//! `grpc-notes`: the notes service on tonic.
//!
//! ```text
//! grpc-notes                       serve on NOTES_GRPC_ADDR (default 127.0.0.1:50051)
//! grpc-notes token SUB TENANT SCOPE [ROLE…]
//!                                  print a token, valid for an hour
//! ```
//!
//! Both read the HS256 secret from the file `NOTES_HS256_SECRET_FILE`: text
//! of at least 32 bytes, a final line break not counted
//! (`head -c 32 /dev/urandom | base64 > notes.key`). The audit trail goes to
//! `NOTES_AUDIT_PATH` (default `var/grpc-notes-audit.jsonl`), a
//! SHA-256-chained JSON-lines file that
//! `cargo run -p guardrails-audit --features cli -- verify FILE` checks.
//! A call, with a token in the metadata (grpcurl, or any gRPC client):
//!
//! ```text
//! grpcurl -plaintext -import-path examples/grpc-notes/proto -proto notes.proto \
//!   -H "authorization: Bearer $TOKEN" -d '{"title": "Groceries"}' \
//!   127.0.0.1:50051 notes.v1.Notes/CreateNote
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use grpc_notes::{Notes, app, server, token};
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{AuditPipeline, Observer};
use secrecy::SecretString;

const DEFAULT_ADDR: &str = "127.0.0.1:50051";
const DEFAULT_AUDIT_PATH: &str = "var/grpc-notes-audit.jsonl";
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

fn secret() -> Result<SecretString, String> {
    let path = std::env::var_os("NOTES_HS256_SECRET_FILE")
        .ok_or("NOTES_HS256_SECRET_FILE is not set: the HS256 secret's file (at least 32 bytes)")?;
    let mut text = std::fs::read_to_string(&path).map_err(|e| {
        // The error names the file, never its content.
        format!(
            "NOTES_HS256_SECRET_FILE: cannot read {}: {e}",
            path.display()
        )
    })?;
    // The final line break an editor or `echo` adds is not part of the
    // secret; cut in place, so that no copy is left behind.
    let len = text.trim_end_matches(['\r', '\n']).len();
    text.truncate(len);
    Ok(SecretString::from(text))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("grpc-notes: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode, String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secret = secret()?;
    if let Some(("token", rest)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        let [sub, tenant, scope, roles @ ..] = rest else {
            return Err("usage: grpc-notes token SUB TENANT SCOPE [ROLE…]".into());
        };
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        let token = token::issue(
            &secret,
            sub,
            tenant,
            scope,
            &roles,
            Duration::from_secs(3600),
        )
        .map_err(|e| format!("cannot sign the token: {e}"))?;
        println!("{token}");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.is_empty() {
        return Err("usage: grpc-notes [token SUB TENANT SCOPE [ROLE…]]".into());
    }
    let auth = token::auth_layer(&secret).map_err(|e| e.to_string())?;
    let addr: SocketAddr = std::env::var("NOTES_GRPC_ADDR")
        .unwrap_or_else(|_| DEFAULT_ADDR.to_owned())
        .parse()
        .map_err(|e| format!("NOTES_GRPC_ADDR: {e}"))?;
    let path = std::env::var_os("NOTES_AUDIT_PATH").unwrap_or_else(|| DEFAULT_AUDIT_PATH.into());
    let sink = JsonLinesSink::builder(&path)
        .open()
        .map_err(|e| format!("NOTES_AUDIT_PATH: {e}"))?;
    let (auditor, guard) = AuditPipeline::builder()
        .observer(Observer::new(
            "grpc-notes",
            env!("CARGO_PKG_VERSION"),
            format!("{}", std::process::id()),
        ))
        .spawn(sink)
        .map_err(|e| format!("audit writer: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // Tests and scripts read the address from this line.
    println!("listening on {local}");
    let app = app(auth, auditor, Notes::default());
    let drained = server::serve(listener, app, stop(), server::Limits::default()).await;
    if !drained {
        tracing::warn!("calls still running after the drain time were cancelled");
    }
    // Every call has ended (finished, or cancelled at the drain time) and
    // is recorded: flush every accepted audit event.
    let report = guard.shutdown(SHUTDOWN_TIMEOUT).await;
    println!(
        "audit trail flushed: {} written, {} lost",
        report.written,
        report.failed + report.dropped + report.unflushed
    );
    Ok(if drained && report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Ctrl-C, or `SIGTERM` on Unix.
async fn stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
