//! A throwaway PostgreSQL server for the integration tests.
//!
//! [`PgServer::start`] gives each test its own database:
//!
//! - when `GUARDRAILS_TEST_POSTGRES_URL` is set (a superuser URL), a fresh
//!   database on that server;
//! - otherwise its own cluster, from the server binaries found on the `PATH`
//!   or under `/usr/lib/postgresql/<version>/bin` (the newest): `initdb` runs
//!   once per machine into a template kept in cargo's test temp dir, each test
//!   copies it into its own temp dir and starts `postgres` on a free
//!   127.0.0.1 port (socket dir inside the temp dir, `fsync=on`,
//!   `synchronous_commit=on`, trust authentication on loopback). PostgreSQL
//!   refuses to run as root: as root, the files belong to `nobody` and the
//!   server tools run through `runuser -u nobody --`. Dropping the server
//!   stops it (`pg_ctl stop -m immediate`) and removes the directory.
//!
//! Without binaries the test is skipped with a printed reason, unless
//! `GUARDRAILS_REQUIRE_EXTERNAL=1` (CI), where it fails.
//!
//! [`PgServer::start_local`] always starts its own cluster (the URL is not
//! used), for tests that stop, restart or proxy the server: they run (or
//! fail under `GUARDRAILS_REQUIRE_EXTERNAL=1`) whether or not a URL is set,
//! rather than skipping quietly on an external server.
//!
//! [`PgServer::start_tls`] starts a local cluster with `ssl=on` and
//! `log_connections=on`, serving a certificate for `127.0.0.1` and
//! `localhost` signed by a throwaway CA made for the test with the `openssl`
//! command ([`PgServer::tls_ca_file`]; [`unrelated_ca`] makes a CA that
//! signed nothing). It always needs the local binaries and `openssl` (an
//! external server's TLS cannot be arranged): without them the test is
//! skipped, or fails under `GUARDRAILS_REQUIRE_EXTERNAL=1` (the Debian and
//! Ubuntu `postgresql` packages bring `openssl` along).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::{Client, NoTls};

/// The role the writer grants (`migrations/writer_role.sql`) are made for.
pub const WRITER_ROLE: &str = "audit_writer";
/// The writer role's password in tests (trust authentication ignores it
/// locally; an external server may check it).
pub const WRITER_PASSWORD: &str = "writer-password-do-not-print";

const WRITER_ROLE_SQL: &str = include_str!("../../migrations/writer_role.sql");

/// Who runs the server tools.
#[derive(Clone, Debug)]
enum RunAs {
    Me,
    /// `runuser -u <user> --`.
    User(&'static str),
}

#[derive(Debug)]
struct Binaries {
    dir: PathBuf,
    version: String,
}

/// A running test server with a fresh database.
#[derive(Debug)]
pub struct PgServer {
    local: Option<Local>,
    /// The external server's own URL (to drop the test database).
    external: Option<String>,
    /// Connection string (key=value or URL) of the superuser to `db`.
    admin: String,
    db: String,
    host: String,
    port: u16,
    /// The CA that signed the server certificate ([`PgServer::start_tls`]).
    tls_ca: Option<PathBuf>,
}

#[derive(Debug)]
struct Local {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: RunAs,
    opts: String,
}

fn run_as() -> RunAs {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if uid.as_deref() == Some("0") {
        RunAs::User("nobody")
    } else {
        RunAs::Me
    }
}

fn tool(run_as: &RunAs, bin: &Path, name: &str) -> Command {
    let exe = bin.join(name);
    match run_as {
        RunAs::Me => Command::new(exe),
        RunAs::User(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(exe);
            c
        }
    }
}

fn check(what: &str, output: std::io::Result<Output>) -> Result<(), String> {
    match output {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{what} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("{what} could not run: {e}")),
    }
}

fn chown(run_as: &RunAs, path: &Path) -> Result<(), String> {
    if let RunAs::User(user) = run_as {
        check(
            "chown",
            Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(path)
                .output(),
        )?;
    }
    Ok(())
}

/// The directory of `initdb`, `pg_ctl` and `postgres`: the `PATH` first,
/// then the newest `/usr/lib/postgresql/<version>/bin`.
fn find_binaries() -> Option<Binaries> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|t| dir.join(t).is_file())
    };
    let mut found = None;
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Symlinks (Debian's wrappers, /usr/local/bin links): use the
                // real directory, where the three tools sit together.
                let real = std::fs::canonicalize(&initdb)
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or(dir.clone());
                if complete(&real) {
                    found = Some(real);
                    break;
                }
                if complete(&dir) {
                    found = Some(dir);
                    break;
                }
            }
        }
    }
    if found.is_none() {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                complete(&bin).then_some((v, bin))
            })
            .collect();
        versions.sort();
        found = versions.pop().map(|(_, bin)| bin);
    }
    let dir = found?;
    let version = Command::new(dir.join("initdb"))
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect::<String>()
        })
        .unwrap_or_default();
    Some(Binaries { dir, version })
}

/// The initialized template cluster (once per machine and target dir).
fn template(bins: &Binaries, run_as: &RunAs) -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let template = root.join(format!("pg-template-{}", bins.version));
    if template.join("PG_VERSION").is_file() {
        return Ok(template);
    }
    std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
    // initdb runs as the unprivileged user, which may not reach the target
    // dir: initialize in /tmp, then copy.
    let work = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    chown(run_as, work.path())?;
    let data = work.path().join("data");
    check(
        "initdb",
        tool(run_as, &bins.dir, "initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ])
            .output(),
    )?;
    let staging = root.join(format!(
        "pg-template-{}.{}",
        bins.version,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    check(
        "copy template",
        Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(&staging)
            .output(),
    )?;
    if std::fs::rename(&staging, &template).is_err() {
        // Another test binary won the race.
        let _ = std::fs::remove_dir_all(&staging);
    }
    if template.join("PG_VERSION").is_file() {
        Ok(template)
    } else {
        Err("the template cluster is incomplete".to_owned())
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);
/// A database name of its own for each test of this process.
fn new_db_name() -> String {
    format!(
        "guardrails_test_{}_{}",
        std::process::id(),
        DB_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

static TEMPLATE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn skip_or_fail(reason: &str) -> Option<PgServer> {
    assert!(
        !super::require_external(),
        "GUARDRAILS_REQUIRE_EXTERNAL=1 but no PostgreSQL server: {reason} (run .ci/setup-external)"
    );
    eprintln!("SKIPPED: {reason} (run .ci/setup-external, or set GUARDRAILS_TEST_POSTGRES_URL)");
    None
}

/// Replaces the database of a URL or key=value connection string.
fn with_dbname(conn: &str, db: &str) -> String {
    if let Some(scheme_end) = conn.find("://") {
        let rest = &conn[scheme_end + 3..];
        let (before_query, query) = match rest.find('?') {
            Some(q) => (&rest[..q], &rest[q..]),
            None => (rest, ""),
        };
        let authority = before_query.split('/').next().unwrap_or("");
        format!("{}{authority}/{db}{query}", &conn[..scheme_end + 3])
    } else {
        format!("{conn} dbname={db}")
    }
}

/// Runs `sql` (with `$1` the chain id) as the superuser with the
/// append-only triggers disabled: what only the tables' owner can do.
pub async fn as_owner(admin: &Client, sql: &str, chain: &str) {
    admin
        .batch_execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        .await
        .unwrap();
    admin.execute(sql, &[&chain]).await.unwrap();
    admin
        .batch_execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
        .await
        .unwrap();
}

/// Connects and drives the connection on the current runtime.
pub async fn connect(conn: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The test server's TLS files.
#[derive(Debug)]
struct ServerTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn openssl(dir: &Path, what: &str, args: &[&str]) -> Result<(), String> {
    check(
        &format!("openssl ({what})"),
        Command::new("openssl").current_dir(dir).args(args).output(),
    )
}

/// A self-signed CA (P-256, valid for two days) in `dir`: `<name>.crt` and
/// `<name>.key`.
fn make_ca(dir: &Path, name: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        "CA",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN=guardrails test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    Ok(dir.join(crt))
}

/// A throwaway CA that signed nothing the test servers use: a CA file that
/// does not match. Returns its certificate (PEM) in `dir`.
///
/// # Errors
///
/// When `openssl` fails.
pub fn unrelated_ca(dir: &Path) -> Result<PathBuf, String> {
    make_ca(dir, "unrelated-ca")
}

/// A CA and a server certificate for `127.0.0.1` and `localhost` signed by
/// it, in `dir`; the key is readable by its owner only (PostgreSQL insists).
fn make_server_tls(dir: &Path) -> Result<ServerTls, String> {
    let ca = make_ca(dir, "ca")?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| format!("write server.ext: {e}"))?;
    openssl(
        dir,
        "server key",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    )?;
    openssl(
        dir,
        "server certificate",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    )?;
    let key = dir.join("server.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod server.key: {e}"))?;
    }
    Ok(ServerTls {
        ca,
        cert: dir.join("server.crt"),
        key,
    })
}

impl PgServer {
    /// A server with a fresh database, or `None` (after a printed reason)
    /// when no server can be had and CI does not require one.
    ///
    /// # Panics
    ///
    /// When a server cannot be started, or none exists under
    /// `GUARDRAILS_REQUIRE_EXTERNAL=1`.
    pub async fn start() -> Option<Self> {
        let db = new_db_name();
        if let Ok(url) = std::env::var("GUARDRAILS_TEST_POSTGRES_URL") {
            let admin = connect(&url)
                .await
                .unwrap_or_else(|e| panic!("GUARDRAILS_TEST_POSTGRES_URL: cannot connect: {e}"));
            admin
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .await
                .unwrap();
            let config: tokio_postgres::Config = url.parse().unwrap();
            let (host, port) = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => (h.clone(), 5432),
                _ => ("127.0.0.1".to_owned(), 5432),
            };
            let port = config.get_ports().first().copied().unwrap_or(port);
            return Some(Self {
                local: None,
                admin: with_dbname(&url, &db),
                external: Some(url),
                db,
                host,
                port,
                tls_ca: None,
            });
        }
        Self::launch(db, false).await
    }

    /// A fresh database on a local cluster of its own, which the test may
    /// [`stop`](Self::stop), [`restart`](Self::restart) or reach by its
    /// [`port`](Self::port) through a proxy; `None` (after a printed reason)
    /// without the server binaries, unless CI requires them.
    /// `GUARDRAILS_TEST_POSTGRES_URL` is not used.
    ///
    /// # Panics
    ///
    /// When the server cannot be started, or the binaries are missing under
    /// `GUARDRAILS_REQUIRE_EXTERNAL=1`.
    pub async fn start_local() -> Option<Self> {
        let db = new_db_name();
        Self::launch(db, false).await
    }

    /// A local cluster with `ssl=on` (TLS 1.2 and 1.3 offered, plain
    /// connections still accepted) and `log_connections=on`, serving a
    /// certificate for `127.0.0.1` and `localhost` signed by a throwaway CA
    /// ([`tls_ca_file`](Self::tls_ca_file)); `None` (after a printed reason)
    /// without the server binaries or the `openssl` command, unless CI
    /// requires them. `GUARDRAILS_TEST_POSTGRES_URL` is not used.
    ///
    /// # Panics
    ///
    /// When the certificates cannot be made or the server cannot be
    /// started, or the tools are missing under
    /// `GUARDRAILS_REQUIRE_EXTERNAL=1`.
    pub async fn start_tls() -> Option<Self> {
        let db = new_db_name();
        if !openssl_available() {
            return skip_or_fail("no `openssl` command to make the test certificates");
        }
        Self::launch(db, true).await
    }

    async fn launch(db: String, tls: bool) -> Option<Self> {
        let Some(bins) = find_binaries() else {
            return skip_or_fail(
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on the PATH or under /usr/lib/postgresql",
            );
        };
        let run_as = run_as();
        let template = TEMPLATE
            .get_or_init(|| template(&bins, &run_as))
            .clone()
            .unwrap_or_else(|e| panic!("PostgreSQL template cluster: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).unwrap();
        check(
            "copy cluster",
            Command::new("cp")
                .arg("-a")
                .arg(&template)
                .arg(&data)
                .output(),
        )
        .unwrap();
        let tls_files = if tls {
            let files = make_server_tls(&dir.path().join("tls"))
                .unwrap_or_else(|e| panic!("test certificates: {e}"));
            Some(files)
        } else {
            None
        };
        chown(&run_as, dir.path()).unwrap();
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port().unwrap();
            let mut opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=200",
                sock.display()
            );
            if let Some(files) = &tls_files {
                opts.push_str(&format!(
                    " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c log_connections=on",
                    files.cert.display(),
                    files.key.display()
                ));
            }
            match ctl(
                &run_as,
                &bins.dir,
                dir.path(),
                &opts,
                &["start", "-t", "60"],
            ) {
                Ok(()) => {
                    let local = Local {
                        dir,
                        bin: bins.dir.clone(),
                        run_as,
                        opts,
                    };
                    let base = format!("host=127.0.0.1 port={port} user=postgres");
                    let admin = connect(&format!("{base} dbname=postgres")).await.unwrap();
                    admin
                        .batch_execute(&format!("CREATE DATABASE {db}"))
                        .await
                        .unwrap();
                    return Some(Self {
                        local: Some(local),
                        external: None,
                        admin: format!("{base} dbname={db}"),
                        db,
                        host: "127.0.0.1".to_owned(),
                        port,
                        tls_ca: tls_files.as_ref().map(|f| f.ca.clone()),
                    });
                }
                // Most likely the port was taken meanwhile: try another.
                Err(e) => last_error = e,
            }
        }
        panic!("PostgreSQL did not start: {last_error}");
    }

    /// The superuser connection string of the test database (no password).
    pub fn admin_conn(&self) -> &str {
        &self.admin
    }

    /// The server's TCP port on its host.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA that signed the server certificate (servers
    /// from [`start_tls`](Self::start_tls)).
    pub fn tls_ca_file(&self) -> Option<&Path> {
        self.tls_ca.as_deref()
    }

    /// The server log so far (local clusters), e.g. the `connection
    /// authorized: ... SSL enabled` lines of a [`start_tls`](Self::start_tls)
    /// server.
    pub fn server_log(&self) -> Option<String> {
        let local = self.local.as_ref()?;
        std::fs::read_to_string(local.dir.path().join("server.log")).ok()
    }

    /// The server log's "connection authorized" lines of the connections
    /// that gave `application_name` (a local cluster logs connections; an
    /// external server gives none).
    pub fn authorized_connections(&self, application_name: &str) -> Vec<String> {
        let needle = format!("application_name={application_name}");
        self.server_log()
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("connection authorized") && l.contains(&needle))
            .map(str::to_owned)
            .collect()
    }

    /// A URL for `user` with `password` to the test database.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!(
            "postgresql://{user}:{password}@{}:{}/{}",
            self.host, self.port, self.db
        )
    }

    /// A superuser client of the test database.
    pub async fn admin(&self) -> Client {
        connect(&self.admin).await.unwrap()
    }

    fn local(&self) -> &Local {
        self.local
            .as_ref()
            .expect("restart/stop need a local cluster (PgServer::start_local)")
    }

    /// `pg_ctl restart -m fast`: every connection is closed.
    pub fn restart(&self) {
        self.local()
            .ctl(&["restart", "-m", "fast", "-t", "60"])
            .unwrap();
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&self) {
        self.local()
            .ctl(&["stop", "-m", "fast", "-t", "60"])
            .unwrap();
    }

    /// `pg_ctl start` after [`stop`](Self::stop).
    pub fn start_again(&self) {
        self.local().ctl(&["start", "-t", "60"]).unwrap();
    }

    /// Creates (if needed) the `audit_writer` login role and applies
    /// `migrations/writer_role.sql` in the test database (run after
    /// `migrate`); returns the writer's URL.
    pub async fn create_writer_role(&self) -> String {
        self.create_writer_role_named(WRITER_ROLE).await
    }

    /// [`create_writer_role`](Self::create_writer_role) for a role named
    /// `role` (one per instance), with the same password.
    pub async fn create_writer_role_named(&self, role: &str) -> String {
        static ROLE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _serialized = ROLE.lock().await;
        let admin = self.admin().await;
        admin
            .batch_execute(&format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                     CREATE ROLE {role} LOGIN PASSWORD '{WRITER_PASSWORD}';
                   END IF;
                 END $$;"
            ))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("GRANT CONNECT ON DATABASE {} TO {role}", self.db))
            .await
            .unwrap();
        admin
            .batch_execute(&WRITER_ROLE_SQL.replace(WRITER_ROLE, role))
            .await
            .unwrap();
        self.url_as(role, WRITER_PASSWORD)
    }
}

impl Drop for PgServer {
    /// On an external server, drops the test database (from a thread with
    /// its own runtime: a drop cannot await).
    fn drop(&mut self) {
        let Some(url) = self.external.clone() else {
            return;
        };
        let db = self.db.clone();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = connect(&url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

fn ctl(run_as: &RunAs, bin: &Path, dir: &Path, opts: &str, args: &[&str]) -> Result<(), String> {
    let data = dir.join("data");
    let log = dir.join("server.log");
    let result = check(
        "pg_ctl",
        tool(run_as, bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-w")
            .arg("-o")
            .arg(opts)
            .args(args)
            .output(),
    );
    result.map_err(|e| {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("{e}\nserver log:\n{tail}")
    })
}

impl Local {
    fn ctl(&self, args: &[&str]) -> Result<(), String> {
        ctl(&self.run_as, &self.bin, self.dir.path(), &self.opts, args)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // The TempDir then removes the directory.
        let _ = self.ctl(&["stop", "-m", "immediate", "-t", "30"]);
    }
}
