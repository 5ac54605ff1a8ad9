//! The binary serves `GET /healthz` on loopback and stops cleanly on SIGTERM.

mod common;

use std::time::Duration;

#[tokio::test]
async fn serves_healthz_and_stops_on_sigterm() {
    let mut app = common::start(common::command());

    let reply = common::get(&app.url("/healthz")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"ok");

    let metrics = common::get(&app.url("/metrics")).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );

    let status = app.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let output = app.output_to_end().join("\n");
    assert!(output.contains("SIGTERM received"), "{output}");
    assert!(output.contains("server stopped"), "{output}");
}

/// A `SIGTERM` sent as soon as the app says it listens (an orchestrator
/// stopping a pod that just started) is a graceful stop that closes the
/// audit trail, never the signal's default action.
#[test]
fn sigterm_right_after_listening_stops_gracefully() {
    for _ in 0..5 {
        let cmd = common::command();
        let trail = cmd
            .get_current_dir()
            .unwrap()
            .join("var")
            .join("audit.jsonl");
        let mut app = common::start(cmd);
        let status = app.terminate(Duration::from_secs(10));
        assert!(status.success(), "exit status {status:?}");
        let output = app.output_to_end().join("\n");
        assert!(output.contains("SIGTERM received"), "{output}");
        let trail = std::fs::read_to_string(&trail).unwrap();
        assert!(
            trail
                .lines()
                .last()
                .is_some_and(|l| l.contains("\"action\":\"audit.stopped\"")),
            "{trail}"
        );
    }
}

#[test]
fn invalid_listen_address_fails_before_listening() {
    let output = common::command()
        .env("SAAS_SERVER__ADDR", "not-an-address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("SAAS_SERVER__ADDR"), "{text}");
    assert!(!text.contains("listening on"), "{text}");
}
