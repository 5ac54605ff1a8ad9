//! Helpers for end-to-end tests: run the real `saas-api` binary on a loopback
//! port and talk to it with a real HTTP client.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a subset")]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A running `saas-api` process; killed when dropped.
pub struct App {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every line the process printed (stdout and stderr), as it comes.
    pub lines: mpsc::Receiver<String>,
}

/// A fresh, empty working directory for one run of the binary, under
/// cargo's per-target temporary directory, so that relative paths such as
/// the default audit file (`var/audit.jsonl`) are never shared between tests
/// running in parallel.
pub fn fresh_workdir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    SWEPT.call_once(|| remove_stale_workdirs(root));
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = root.join(format!("saas-api-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a working directory");
    dir
}

/// Removes the working directories of earlier test processes that have
/// ended (`saas-api-<pid>-<n>` where no process `<pid>` runs any more), so
/// that repeated runs do not pile them up; those of running tests stay.
fn remove_stale_workdirs(root: &std::path::Path) {
    // Without /proc, whether a process runs is unknown: keep everything.
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("saas-api-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive =
            pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The `saas-api` command with a clean, loopback-only environment, run in a
/// [`fresh_workdir`] (the app still finds its `config/` directory next to its
/// manifest).
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_saas-api"));
    cmd.current_dir(fresh_workdir());
    for (key, _) in std::env::vars() {
        if key.starts_with("SAAS_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("SAAS_SERVER__ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `cmd` and waits until it logs the address it listens on.
#[allow(
    clippy::zombie_processes,
    reason = "`App` waits for the child when dropped"
)]
pub fn start(mut cmd: Command) -> App {
    let mut child = cmd.spawn().expect("spawn saas-api");
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                    return App { child, addr, lines };
                }
                seen.push(line);
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    panic!(
        "saas-api did not start listening; output:\n{}",
        seen.join("\n")
    );
}

impl App {
    /// Sends `SIGTERM` and waits (at most `timeout`) for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "saas-api did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line printed so far.
    pub fn drain_output(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Every line not read yet, up to the end of the process's output: call
    /// it once the process has exited (waits at most 10 s for the readers).
    pub fn output_to_end(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
            }
        }
        panic!(
            "the output of saas-api did not end; so far:\n{}",
            lines.join("\n")
        );
    }

    /// The URL of `path` on this app.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read whole.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Sends `request` with hyper's client over a real loopback connection.
pub async fn send(request: http::Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.expect("HTTP request");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.expect("read body").to_bytes(),
    }
}

/// `GET url`.
pub async fn get(url: &str) -> Reply {
    send(
        http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

/// A development token printed by `saas-api token ARGS…`.
pub fn token(args: &[&str]) -> String {
    let out = command()
        .arg("token")
        .args(args)
        .output()
        .expect("run saas-api token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A request with a bearer token and, when given, a JSON body.
pub fn authorized(
    method: &str,
    url: &str,
    token: &str,
    body: Option<&str>,
) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    b.body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .unwrap()
}
