//! The server's graceful stop, in process on loopback: a client that never
//! finishes its request head or body cannot hold the stop (and so the audit
//! trail's final flush) past the drain time, and a request cut at the drain
//! time is in the trail as `cancelled`.

use std::time::{Duration, Instant};

use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{AuditPipeline, VerifyOptions, verify};
use saas_api::auth::{self, TokenArgs};
use saas_api::invoices::Store;
use saas_api::{app, server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `router` on loopback until the sender is used; the task returns
/// what [`server::serve`] does.
async fn spawn_server(
    router: axum::Router,
    limits: server::Limits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<usize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(
        listener,
        router,
        async move {
            let _ = stopped.await;
        },
        limits,
    ));
    (addr, stop, served)
}

#[tokio::test]
async fn stalled_clients_cannot_hold_the_stop_and_cut_requests_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (auditor, guard) = AuditPipeline::builder()
        .spawn(JsonLinesSink::builder(&path).open().unwrap())
        .unwrap();
    let router = app::audited_router(
        Store::default(),
        auditor,
        auth::development_layer().unwrap(),
    );
    let drain = Duration::from_millis(300);
    let (addr, stop, served) = spawn_server(
        router,
        server::Limits {
            drain,
            ..server::Limits::default()
        },
    )
    .await;

    // A kept-alive connection that has finished its request: closed at once.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: saas\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &answer[..n]
    );

    // A request head that never ends.
    let mut head = TcpStream::connect(addr).await.unwrap();
    head.write_all(b"GET /healthz HTTP/1.1\r\nhost: saas\r\n")
        .await
        .unwrap();

    // An authorized request whose body never comes.
    let token = auth::development_token(&TokenArgs {
        sub: "carol".into(),
        tenant: "acme".into(),
        scope: "invoices:write".into(),
        roles: Vec::new(),
        ttl: 600,
    })
    .unwrap();
    let mut body = TcpStream::connect(addr).await.unwrap();
    body.write_all(
        format!(
            "POST /v1/tenants/acme/invoices HTTP/1.1\r\nhost: saas\r\n\
             authorization: Bearer {token}\r\ncontent-type: application/json\r\n\
             content-length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Give the server time to start reading both.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopping = Instant::now();
    stop.send(()).unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("the stalled clients held the stop")
        .unwrap();
    assert!(stopping.elapsed() >= drain, "{:?}", stopping.elapsed());
    assert_eq!(cut, 2, "the stalled head and the stalled body are cut");
    // The idle connection was closed by the server.
    assert_eq!(idle.read(&mut answer).await.unwrap(), 0);

    let report = guard.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");
    drop((head, body));
    verify(&path, &VerifyOptions::default()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let requests: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["action"] == "http.request")
        .collect();
    assert_eq!(requests.len(), 2, "{text}");
    assert_eq!(requests[0]["request"]["route"], "/healthz");
    assert_eq!(requests[0]["request"]["status"], 200);
    let cancelled = &requests[1];
    assert_eq!(cancelled["request"]["method"], "POST", "{cancelled}");
    assert_eq!(cancelled["reason"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["actor"]["subject"], "carol", "{cancelled}");
    // The socket peer, from the connection.
    assert_eq!(cancelled["source"]["ip"], "127.0.0.1", "{cancelled}");
}

/// Reads one response's status line from `stream`, or `None` when none
/// comes within `wait`.
async fn status_line(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut answer = [0; 512];
    let n = tokio::time::timeout(wait, stream.read(&mut answer))
        .await
        .ok()?
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    Some(text.lines().next().unwrap_or("").to_owned())
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_ends() {
    let router = app::router(Store::default(), auth::development_layer().unwrap());
    let (addr, stop, served) = spawn_server(
        router,
        server::Limits {
            max_connections: 2,
            drain: Duration::from_millis(300),
        },
    )
    .await;
    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: saas\r\n\r\n";

    // Two kept-alive connections hold both slots.
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream.write_all(GET).await.unwrap();
        let status = status_line(stream, Duration::from_secs(5)).await;
        assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    }
    // A third waits in the backlog: connected, not served.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(GET).await.unwrap();
    assert_eq!(
        status_line(&mut third, Duration::from_millis(500)).await,
        None,
        "served past the limit"
    );
    // One ends: the third is served.
    drop(first);
    let status = status_line(&mut third, Duration::from_secs(5)).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    // The slots still turn over: the second ends, a fourth is served.
    drop(second);
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    fourth.write_all(GET).await.unwrap();
    let status = status_line(&mut fourth, Duration::from_secs(5)).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));

    stop.send(()).unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("the server did not stop")
        .unwrap();
    assert_eq!(cut, 0, "kept-alive idle connections close at once");
}
