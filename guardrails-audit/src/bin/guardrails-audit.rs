//! `guardrails-audit`: verify a hash-chained audit trail (a JSON-lines file,
//! or the chains in PostgreSQL), and export records from PostgreSQL.
//!
//! ```text
//! guardrails-audit verify <FILE> [--key-file F [--previous-key-file F]...]
//!                                [--checkpoints F | --no-checkpoints]
//!                                [--checkpoint-key-file F | --checkpoint-public-key-file F]
//!                                [--rotated [--pruned]]
//! guardrails-audit verify --postgres [--chain ID] [--key-file F] [--checkpoints F]
//!                                [--checkpoint-key-file F | --checkpoint-public-key-file F]
//!                                [--postgres-url-file F]
//!                                [--postgres-ca-file F]
//! guardrails-audit export [--chain ID [--checkpoints-out F]]
//!                         [--tenant T] [--actor A] [--action A] [--request-id R]
//!                         [--since RFC3339] [--until RFC3339]
//!                         [--out F] [--postgres-url-file F] [--postgres-ca-file F]
//! ```
//!
//! The PostgreSQL commands (built with the `postgres` feature) read the
//! database URL from the `GUARDRAILS_AUDIT_POSTGRES_URL` environment variable
//! or from the file named by `--postgres-url-file`, never from the command
//! line (where other users of the machine could read it), and never print
//! it: errors name the host at most.
//!
//! Built with the `postgres-rustls` feature, they connect through rustls
//! (`guardrails_audit::sink::postgres::rustls_connector`): always TLS over
//! TCP (a server without TLS is refused; `sslmode=prefer`, the default, is
//! taken as `require`, so nobody on the network path can strip TLS), unless
//! the URL says `sslmode=disable` or names a Unix socket; the server
//! certificate and host name always verified against Mozilla's roots plus
//! the PEM CA certificates of `--postgres-ca-file F`. Without that feature the
//! connection is plain (no TLS: use a Unix socket, loopback or a trusted
//! network), a URL with `sslmode=require` is refused, and
//! `--postgres-ca-file` is an error.
//!
//! `export` writes one record per line, each the canonical JSON of the
//! stored record (as the file sink writes it). `--chain ID` exports one
//! whole chain in `seq` order (and `--checkpoints-out F` its checkpoints), a
//! file that `guardrails-audit verify` accepts; otherwise the records that
//! match the filters, in `(time, id)` order.
//!
//! Exit codes:
//!
//! - `0`: the trail is whole (a torn last line of a crashed writer that has
//!   not restarted is reported as a warning, not as damage);
//! - `1`: the trail is damaged; the first bad `seq` and the kind of damage
//!   (`modified`, `inserted`, `deleted`, `reordered`, `truncated`,
//!   `wrong_key`, `malformed`) are printed on standard error, and on standard
//!   output as `damage=<kind> seq=<seq>` (with ` chain=<id>` for a database
//!   chain);
//! - `2`: verification (or export) could not run (unreadable file or key, a
//!   keyed chain without `--key-file`, no database URL, a failed query, bad
//!   arguments).
//!
//! Key files hold the key as text; one trailing newline is ignored.
//!
//! `verify <FILE>` checks the trail against its checkpoints: the file named
//! by `--checkpoints`, else `<FILE>.checkpoints` (where the sink writes them
//! by default) when it exists, saying so on standard error. Without a
//! checkpoint file (none beside the trail, or `--no-checkpoints`) it warns
//! that truncation was not checked: records cut from the end of a trail are
//! found only through a checkpoint that names them. When the checkpoints
//! are unsigned (`sig_alg` `none`: a sink without a key), it warns that they
//! prove nothing against someone who can rewrite both files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use guardrails_audit::signing::Ed25519VerifyingKey;
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::verify::Location;
use guardrails_audit::{
    AuditEvent, AuditPipeline, Category, Outcome, VerifyError, VerifyOptions, verify,
};
use secrecy::SecretString;

/// How the PostgreSQL commands connect, for `--help`.
#[cfg(feature = "postgres-rustls")]
const POSTGRES_TLS_HELP: &str = "PostgreSQL TLS: rustls, always over TCP (a server without TLS \
is refused; sslmode=prefer, the default, is taken as require), unless the URL says \
sslmode=disable or names a Unix socket; the server certificate and host name are always \
verified, against Mozilla's roots plus --postgres-ca-file.";
/// How the PostgreSQL commands connect, for `--help`.
#[cfg(not(feature = "postgres-rustls"))]
const POSTGRES_TLS_HELP: &str = "PostgreSQL TLS: none in this build (built without the \
`postgres-rustls` feature): the connection is plain, a URL with sslmode=require is refused, \
and --postgres-ca-file is an error. Use a Unix socket, loopback or a trusted network.";

#[derive(Debug, Parser)]
#[command(
    name = "guardrails-audit",
    version,
    about = "Verify guardrails audit trails"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a trail: exit 0 when whole, 1 when damaged, 2 when it cannot be verified.
    #[command(after_help = POSTGRES_TLS_HELP)]
    Verify {
        /// The JSON-lines audit file (not with --postgres).
        #[arg(required_unless_present = "postgres")]
        file: Option<PathBuf>,
        /// Verify the chains stored in PostgreSQL instead of a file (URL from
        /// GUARDRAILS_AUDIT_POSTGRES_URL or --postgres-url-file).
        #[arg(long, conflicts_with_all = ["file", "no_checkpoints", "rotated"])]
        postgres: bool,
        /// With --postgres: only this chain (default: every chain).
        #[arg(long, requires = "postgres")]
        chain: Option<String>,
        /// A file holding the HMAC chain key.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// A file holding a key the trail was chained with before
        /// --key-file's (a key rotation, `audit.key_changed`); repeat it
        /// for each earlier key, oldest first.
        #[arg(long, requires = "key_file", conflicts_with = "postgres")]
        previous_key_file: Vec<PathBuf>,
        /// The checkpoint file to check against (default: `<FILE>.checkpoints`,
        /// when it exists). With --postgres: checkpoints kept off the
        /// database (a copy of `audit_checkpoints`, or `export
        /// --checkpoints-out`), which reveal records removed together with
        /// their checkpoints in the database, and chains removed whole.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// Do not check against any checkpoint file, not even
        /// `<FILE>.checkpoints`: truncation is then not checked.
        #[arg(long, conflicts_with = "checkpoints")]
        no_checkpoints: bool,
        /// A file holding the checkpoint key, when it is not the chain key.
        #[arg(long)]
        checkpoint_key_file: Option<PathBuf>,
        /// A PEM file holding the Ed25519 public key of the checkpoints'
        /// signing key (`-----BEGIN PUBLIC KEY-----`).
        #[arg(long)]
        checkpoint_public_key_file: Option<PathBuf>,
        /// Also verify the rotated files `<FILE>.<20 digits>` as one chain.
        #[arg(long)]
        rotated: bool,
        /// With --rotated: the oldest rotated files were removed on purpose
        /// (retention), so the trail may start after seq 0.
        #[arg(long, requires = "rotated")]
        pruned: bool,
        /// A file holding the PostgreSQL URL (instead of GUARDRAILS_AUDIT_POSTGRES_URL).
        #[arg(long, requires = "postgres")]
        postgres_url_file: Option<PathBuf>,
        /// With --postgres: a PEM file of CA certificates trusted for the
        /// database's TLS certificate, besides Mozilla's roots (needs the
        /// `postgres-rustls` feature).
        #[arg(long, requires = "postgres")]
        postgres_ca_file: Option<PathBuf>,
    },
    /// Export records from PostgreSQL as JSON lines (URL from
    /// GUARDRAILS_AUDIT_POSTGRES_URL or --postgres-url-file).
    #[command(after_help = POSTGRES_TLS_HELP)]
    Export(ExportArgs),
    /// Test helper: write events in blocking mode, printing `ack <seq>` for
    /// each durable one.
    #[command(hide = true)]
    WriteLoad {
        file: PathBuf,
        #[arg(long)]
        key_file: Option<PathBuf>,
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: u64,
    },
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// One whole chain in seq order (a file the verifier accepts); not with filters.
    #[arg(long, conflicts_with_all = ["tenant", "actor", "action", "request_id", "since", "until"])]
    chain: Option<String>,
    /// With --chain: also write the chain's checkpoints to this file.
    #[arg(long, requires = "chain")]
    checkpoints_out: Option<PathBuf>,
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only this actor (subject).
    #[arg(long)]
    actor: Option<String>,
    /// Only this action.
    #[arg(long)]
    action: Option<String>,
    /// Only this request id.
    #[arg(long)]
    request_id: Option<String>,
    /// Only records at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only records before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A file holding the PostgreSQL URL (instead of GUARDRAILS_AUDIT_POSTGRES_URL).
    #[arg(long)]
    postgres_url_file: Option<PathBuf>,
    /// A PEM file of CA certificates trusted for the database's TLS
    /// certificate, besides Mozilla's roots (needs the `postgres-rustls`
    /// feature).
    #[arg(long)]
    postgres_ca_file: Option<PathBuf>,
}

fn read_key(path: &Path) -> Result<SecretString, String> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(format!("key file {} is empty", path.display()));
    }
    Ok(SecretString::from(text))
}

fn read_public_key(path: &Path) -> Result<Ed25519VerifyingKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read public key file {}: {e}", path.display()))?;
    Ed25519VerifyingKey::from_public_key_pem(&text)
        .map_err(|e| format!("public key file {}: {e}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify {
            postgres: true,
            chain,
            key_file,
            checkpoints,
            checkpoint_key_file,
            checkpoint_public_key_file,
            postgres_url_file,
            postgres_ca_file,
            ..
        } => pg::verify(
            chain,
            checkpoints,
            key_file.as_deref(),
            checkpoint_key_file.as_deref(),
            checkpoint_public_key_file.as_deref(),
            postgres_url_file.as_deref(),
            postgres_ca_file.as_deref(),
        ),
        Command::Verify {
            file,
            key_file,
            previous_key_file,
            checkpoints,
            no_checkpoints,
            checkpoint_key_file,
            checkpoint_public_key_file,
            rotated,
            pruned,
            ..
        } => match file {
            Some(file) => run_verify(
                &file,
                (key_file, previous_key_file),
                (checkpoints, no_checkpoints),
                (checkpoint_key_file, checkpoint_public_key_file),
                (rotated, pruned),
            ),
            None => {
                eprintln!("error: a FILE or --postgres is needed");
                ExitCode::from(2)
            }
        },
        Command::Export(args) => pg::export(&args),
        Command::WriteLoad {
            file,
            key_file,
            count,
            concurrency,
        } => write_load(&file, key_file.as_deref(), count, concurrency),
    }
}

/// A chain id read from the trail, as printed: a tampered trail must not
/// put terminal controls on the operator's screen.
fn printable(id: &str) -> String {
    guardrails_audit::event::sanitize(id, 256)
}

/// Prints a damage report and returns exit code 1.
fn report_damage(damage: &guardrails_audit::Damage) -> ExitCode {
    let chain = damage
        .location
        .chain_id()
        .map(|id| format!(" chain={}", printable(id)))
        .unwrap_or_default();
    println!(
        "damage={} seq={}{chain}",
        damage.kind,
        damage.seq.map_or("-".into(), |s| s.to_string())
    );
    eprintln!("error: audit trail damaged: {damage}");
    ExitCode::from(1)
}

/// The checkpoint file to verify `file` against: the one named, else the
/// sink's default `<FILE>.checkpoints` when it exists (said on standard
/// error); without one, a warning that truncation is not checked.
fn checkpoint_file(file: &Path, named: Option<PathBuf>, none: bool) -> Option<PathBuf> {
    const UNCHECKED: &str = "truncation (records cut from the end of the trail) was not checked";
    if named.is_some() {
        return named;
    }
    if none {
        eprintln!("warning: --no-checkpoints: {UNCHECKED}");
        return None;
    }
    let mut default = file.as_os_str().to_owned();
    default.push(".checkpoints");
    let default = PathBuf::from(default);
    // A file that cannot be looked at is used all the same: verification
    // then says why it cannot be read.
    if default.try_exists().unwrap_or(true) {
        eprintln!(
            "note: checking against the checkpoint file {} (next to the trail; \
             --checkpoints F names another, --no-checkpoints skips it)",
            default.display()
        );
        Some(default)
    } else {
        eprintln!(
            "warning: no checkpoint file ({} does not exist, and --checkpoints was not given): \
             {UNCHECKED}",
            default.display()
        );
        None
    }
}

/// Whether `result` failed because the checkpoints at `path` could not be
/// checked with the keys given (not because of the trail).
fn unverifiable_checkpoints(
    result: &Result<guardrails_audit::VerifyReport, VerifyError>,
    path: &Path,
) -> bool {
    match result {
        Err(VerifyError::KeyRequired | VerifyError::PublicKeyRequired) => true,
        Err(VerifyError::Damaged(damage)) => {
            damage.kind == guardrails_audit::DamageKind::WrongKey
                && matches!(&damage.location, Location::Line { file, .. } if file == path)
        }
        _ => false,
    }
}

fn run_verify(
    file: &Path,
    (key_file, previous_key_files): (Option<PathBuf>, Vec<PathBuf>),
    (checkpoints, no_checkpoints): (Option<PathBuf>, bool),
    (checkpoint_key_file, checkpoint_public_key_file): (Option<PathBuf>, Option<PathBuf>),
    (rotated, pruned): (bool, bool),
) -> ExitCode {
    let mut options = VerifyOptions::new()
        .include_rotated(rotated)
        .allow_pruned(pruned);
    if let Some(path) = checkpoint_public_key_file {
        match read_public_key(&path) {
            Ok(key) => options = options.checkpoint_public_key(key),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    }
    for (path, checkpoint) in [(key_file, false), (checkpoint_key_file, true)] {
        if let Some(path) = path {
            match read_key(&path) {
                Ok(key) if checkpoint => options = options.checkpoint_key(key),
                Ok(key) => options = options.key(key),
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    for path in previous_key_files {
        match read_key(&path) {
            Ok(key) => options = options.previous_key(key),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    }
    let named = checkpoints.is_some();
    let result = match checkpoint_file(file, checkpoints, no_checkpoints) {
        Some(path) => {
            let result = verify(file, &options.clone().checkpoints(&path));
            // The file next to the trail was not asked for: when its
            // checkpoints are signed with a key that was not given, say so
            // and verify the chain alone, rather than fail (a wrong key
            // would read as tampering).
            if !named && unverifiable_checkpoints(&result, &path) {
                let alone = verify(file, &options);
                // A key the chain itself needs is that error, not the
                // checkpoints'.
                if !matches!(alone, Err(VerifyError::KeyRequired)) {
                    eprintln!(
                        "warning: the checkpoints of {} are signed with a key that was not \
                         given (--checkpoint-key-file, or --checkpoint-public-key-file for \
                         Ed25519): truncation (records cut from the end of the trail) was not \
                         checked",
                        path.display()
                    );
                }
                alone
            } else {
                result
            }
        }
        None => verify(file, &options),
    };
    match result {
        Ok(report) => {
            println!(
                "ok records={} first_seq={} last_seq={} recoveries={} checkpoints_checked={} cleanly_stopped={}",
                report.records,
                report.first_seq.map_or("-".into(), |s| s.to_string()),
                report.last_seq.map_or("-".into(), |s| s.to_string()),
                report.recoveries,
                report.checkpoints_checked,
                report.cleanly_stopped
            );
            if report.key_changes > 0 {
                eprintln!(
                    "note: the trail's key changed {} time(s) (audit.key_changed records)",
                    report.key_changes
                );
            }
            if report.torn_tail {
                eprintln!(
                    "warning: the last line is torn: the writer crashed and has not reopened the file"
                );
            }
            if report.active_missing {
                eprintln!(
                    "warning: {} does not exist: only its rotated files were verified",
                    file.display()
                );
            }
            if report.unsigned_checkpoints > 0 {
                eprintln!(
                    "warning: the checkpoints are unsigned ({} of them, sig_alg none): they prove \
                     nothing against someone who can rewrite both the trail and the checkpoint file",
                    report.unsigned_checkpoints
                );
            }
            if report.cut_checkpoints > 0 {
                eprintln!(
                    "warning: {} line(s) of the checkpoint file are cut writes (a crash or a failed write), not checkpoints",
                    report.cut_checkpoints
                );
            }
            ExitCode::SUCCESS
        }
        Err(VerifyError::Damaged(damage)) => report_damage(&damage),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn write_load(file: &Path, key_file: Option<&Path>, count: u64, concurrency: u64) -> ExitCode {
    let key = match key_file.map(read_key).transpose() {
        Ok(key) => key,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let sink = match JsonLinesSink::builder(file).maybe_hmac_key(key).open() {
        Ok(sink) => sink,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let (auditor, guard) = match AuditPipeline::builder().spawn(sink) {
            Ok(pair) => pair,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        };
        let mut tasks = Vec::new();
        for worker in 0..concurrency.max(1) {
            let auditor = auditor.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = worker;
                while n < count {
                    let event = AuditEvent::new("load.write", Category::System)
                        .with_outcome(Outcome::Success)
                        .with_detail("n", n);
                    match auditor.record_durable(event).await {
                        Ok(receipt) => {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "ack {}", receipt.seq.unwrap_or(u64::MAX));
                            let _ = out.flush();
                        }
                        Err(error) => {
                            eprintln!("error: {error}");
                            return;
                        }
                    }
                    n += concurrency.max(1);
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let report = guard.shutdown(Duration::from_secs(10)).await;
        if report.is_complete() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

/// The PostgreSQL commands.
#[cfg(feature = "postgres")]
mod pg {
    use std::io::{BufWriter, Write};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    use guardrails_audit::VerifyError;
    use guardrails_audit::query::{self, AuditQuery, MAX_LIMIT, QueryError};
    use guardrails_audit::sink::postgres::PgError;
    use guardrails_audit::verify::{PgVerifyOptions, verify_postgres};
    use secrecy::SecretString;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    use tokio_postgres::config::Host;

    use super::{ExportArgs, printable, read_key, read_public_key, report_damage};

    /// The variable that holds the database URL.
    const URL_VAR: &str = "GUARDRAILS_AUDIT_POSTGRES_URL";

    fn fail(message: impl std::fmt::Display) -> ExitCode {
        eprintln!("error: {message}");
        ExitCode::from(2)
    }

    /// The URL from the file or the variable; never from the command line.
    fn url(file: Option<&Path>) -> Result<SecretString, String> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => std::env::var(URL_VAR).map_err(|_| {
                format!("no database URL: set {URL_VAR} or use --postgres-url-file")
            })?,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err("the database URL is empty".into());
        }
        Ok(SecretString::from(text.to_owned()))
    }

    /// The TLS connector: rustls, verifying, with the CA file.
    #[cfg(feature = "postgres-rustls")]
    fn tls(
        ca_file: Option<&Path>,
    ) -> Result<guardrails_audit::sink::postgres::MakeRustlsConnect, String> {
        guardrails_audit::sink::postgres::rustls_connector(ca_file)
            .map_err(|e| format!("--postgres-ca-file: {e}"))
    }

    /// No TLS in this build: a CA file is an error.
    #[cfg(not(feature = "postgres-rustls"))]
    fn tls(ca_file: Option<&Path>) -> Result<tokio_postgres::NoTls, String> {
        match ca_file {
            Some(_) => Err(
                "--postgres-ca-file: this guardrails-audit was built without TLS \
                 (the `postgres-rustls` feature)"
                    .to_owned(),
            ),
            None => Ok(tokio_postgres::NoTls),
        }
    }

    /// Connects; errors name the host at most, never the URL.
    async fn connect(
        url: &SecretString,
        ca_file: Option<&Path>,
    ) -> Result<tokio_postgres::Client, String> {
        let tls = tls(ca_file)?;
        // The parser's messages may quote parts of the URL: not shown.
        let config = guardrails_audit::sink::postgres::connection_config(url)
            .map_err(|e| format!("the database URL: {e}"))?;
        // Nobody on the network path may talk the CLI out of TLS.
        #[cfg(feature = "postgres-rustls")]
        let config = {
            let mut config = config;
            guardrails_audit::sink::postgres::require_tls(&mut config);
            config
        };
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "the default host".to_owned(),
        };
        // `PgError` names the server's message and SQLSTATE, or the causes
        // of a driver error (a refused connection, a certificate error),
        // never the server's DETAIL; none of them holds the URL.
        let (client, connection) = config.connect(tls).await.map_err(|driver| {
            let error = PgError::Database {
                operation: "connect",
                driver,
            };
            format!("cannot connect to PostgreSQL at {host}: {}", error.reason())
        })?;
        tokio::spawn(async move {
            if let Err(driver) = connection.await {
                let error = PgError::Database {
                    operation: "connection",
                    driver,
                };
                eprintln!("error: {error}");
            }
        });
        Ok(client)
    }

    fn runtime() -> Result<tokio::runtime::Runtime, String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    }

    pub(super) fn verify(
        chain: Option<String>,
        checkpoints: Option<PathBuf>,
        key_file: Option<&Path>,
        checkpoint_key_file: Option<&Path>,
        checkpoint_public_key_file: Option<&Path>,
        url_file: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> ExitCode {
        let mut options = PgVerifyOptions::new();
        if let Some(chain) = chain {
            options = options.chain(chain);
        }
        match checkpoints {
            Some(path) => options = options.checkpoints(path),
            None => eprintln!(
                "note: checked against the database's own checkpoints only; records removed \
                 together with their checkpoints, or a chain removed whole, are found with \
                 --checkpoints F (a copy kept off the database)"
            ),
        }
        if let Some(path) = checkpoint_public_key_file {
            match read_public_key(path) {
                Ok(key) => options = options.checkpoint_public_key(key),
                Err(message) => return fail(message),
            }
        }
        for (path, checkpoint) in [(key_file, false), (checkpoint_key_file, true)] {
            if let Some(path) = path {
                match read_key(path) {
                    Ok(key) if checkpoint => options = options.checkpoint_key(key),
                    Ok(key) => options = options.key(key),
                    Err(message) => return fail(message),
                }
            }
        }
        let url = match url(url_file) {
            Ok(url) => url,
            Err(message) => return fail(message),
        };
        let runtime = match runtime() {
            Ok(rt) => rt,
            Err(message) => return fail(message),
        };
        runtime.block_on(async move {
            let client = match connect(&url, ca_file).await {
                Ok(client) => client,
                Err(message) => return fail(message),
            };
            match verify_postgres(&client, &options).await {
                Ok(report) => {
                    for chain in &report.chains {
                        println!(
                            "ok chain={} records={} last_seq={} checkpoints_checked={} cleanly_stopped={}",
                            chain.chain_id.as_deref().map_or("-".into(), printable),
                            chain.records,
                            chain.last_seq.map_or("-".into(), |s| s.to_string()),
                            chain.checkpoints_checked,
                            chain.cleanly_stopped
                        );
                        if chain.unsigned_checkpoints > 0 {
                            eprintln!(
                                "warning: chain {}: the checkpoints are unsigned ({} of them, \
                                 sig_alg none): they prove nothing against someone who can \
                                 rewrite the database",
                                chain.chain_id.as_deref().map_or("-".into(), printable),
                                chain.unsigned_checkpoints
                            );
                        }
                    }
                    println!(
                        "ok chains={} records={}",
                        report.chains.len(),
                        report.records()
                    );
                    ExitCode::SUCCESS
                }
                Err(VerifyError::Damaged(damage)) => report_damage(&damage),
                Err(error) => fail(error),
            }
        })
    }

    fn time_arg(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, String> {
        value
            .map(|v| {
                OffsetDateTime::parse(v, &Rfc3339)
                    .map_err(|_| format!("--{name} is not an RFC 3339 time: {v:?}"))
            })
            .transpose()
    }

    /// Writes `value` as one canonical JSON line.
    fn write_line(out: &mut dyn Write, value: &serde_json::Value) -> Result<(), String> {
        let mut line =
            guardrails_audit::jcs::to_vec(value).map_err(|e| format!("a stored record: {e}"))?;
        line.push(b'\n');
        out.write_all(&line).map_err(|e| format!("write: {e}"))
    }

    pub(super) fn export(args: &ExportArgs) -> ExitCode {
        let (since, until) = match (
            time_arg("since", args.since.as_deref()),
            time_arg("until", args.until.as_deref()),
        ) {
            (Ok(since), Ok(until)) => (since, until),
            (Err(message), _) | (_, Err(message)) => return fail(message),
        };
        let url = match url(args.postgres_url_file.as_deref()) {
            Ok(url) => url,
            Err(message) => return fail(message),
        };
        // Written to a temporary file beside it (readable by its owner
        // only) and renamed into place once whole: a refused export leaves
        // no file that would pass for one (the temporary file is removed
        // when dropped).
        let partial = match &args.out {
            Some(path) => {
                let dir = path
                    .parent()
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                match tempfile::NamedTempFile::new_in(dir) {
                    Ok(file) => Some(file),
                    Err(e) => return fail(format!("cannot create {}: {e}", path.display())),
                }
            }
            None => None,
        };
        let mut out: Box<dyn Write> = match &partial {
            Some(file) => Box::new(BufWriter::new(file.as_file())),
            None => Box::new(BufWriter::new(std::io::stdout().lock())),
        };
        let runtime = match runtime() {
            Ok(rt) => rt,
            Err(message) => return fail(message),
        };
        let result = runtime.block_on(async {
            let client = connect(&url, args.postgres_ca_file.as_deref()).await?;
            let db = |e: QueryError| e.to_string();
            let mut count = 0_u64;
            if let Some(chain) = &args.chain {
                // Every row of the chain, as stored: a row the schema should
                // have refused (a second one at a seq, a negative seq) is
                // written too, for the file verifier to report.
                let mut after = None;
                let mut last_seq = None;
                loop {
                    let page = query::read_chain(&client, chain, after, MAX_LIMIT)
                        .await
                        .map_err(db)?;
                    for event in &page.records {
                        write_line(&mut out, &event.record)?;
                        count += 1;
                        last_seq = Some(event.seq);
                    }
                    match page.next {
                        Some(cursor) => after = Some(cursor),
                        None => break,
                    }
                }
                if count == 0 && !query::chain_ids(&client).await.map_err(db)?.contains(chain) {
                    return Err(format!("no chain {chain:?} in the database"));
                }
                // Rows the pages could not return: an export that verifies
                // clean must hold every row.
                let stored = query::count_chain_rows(&client, chain, last_seq)
                    .await
                    .map_err(db)?;
                if stored != count {
                    return Err(format!(
                        "the chain holds {stored} rows up to its last record, {count} of them \
                         exported: the others share a seq and id with a row exported, or have \
                         no seq (the table's constraints were dropped); the export is \
                         incomplete, and `verify --postgres` names the damage"
                    ));
                }
                if let Some(path) = &args.checkpoints_out {
                    let checkpoints = query::read_checkpoints(&client, chain).await.map_err(db)?;
                    let mut file = std::fs::File::create(path)
                        .map(BufWriter::new)
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                    for checkpoint in &checkpoints {
                        write_line(&mut file, checkpoint)?;
                    }
                    file.flush().map_err(|e| format!("write: {e}"))?;
                }
            } else {
                let mut q = AuditQuery::new().limit(MAX_LIMIT);
                let filters = [
                    (
                        &args.tenant,
                        AuditQuery::tenant as fn(AuditQuery, String) -> AuditQuery,
                    ),
                    (&args.actor, AuditQuery::actor),
                    (&args.action, AuditQuery::action),
                    (&args.request_id, AuditQuery::request_id),
                ];
                for (value, filter) in filters {
                    if let Some(value) = value {
                        q = filter(q, value.clone());
                    }
                }
                if let Some(since) = since {
                    q = q.since(since);
                }
                if let Some(until) = until {
                    q = q.until(until);
                }
                loop {
                    let page = q.fetch(&client).await.map_err(db)?;
                    for event in &page.records {
                        write_line(&mut out, &event.record)?;
                        count += 1;
                    }
                    match page.next {
                        Some(cursor) => q = q.after(cursor),
                        None => break,
                    }
                }
            }
            out.flush().map_err(|e| format!("write: {e}"))?;
            Ok::<_, String>(count)
        });
        drop(out);
        let result = match (result, partial, &args.out) {
            (Ok(count), Some(partial), Some(path)) => partial
                .persist(path)
                .map(|_| count)
                .map_err(|e| format!("cannot write {}: {}", path.display(), e.error)),
            (result, _, _) => result,
        };
        match result {
            Ok(count) => {
                eprintln!("exported {count} record(s)");
                ExitCode::SUCCESS
            }
            Err(message) => fail(message),
        }
    }
}

/// The PostgreSQL commands need the `postgres` feature.
#[cfg(not(feature = "postgres"))]
mod pg {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    use super::ExportArgs;

    fn unavailable() -> ExitCode {
        eprintln!("error: this guardrails-audit was built without the `postgres` feature");
        ExitCode::from(2)
    }

    pub(super) fn verify(
        _chain: Option<String>,
        _checkpoints: Option<PathBuf>,
        _key_file: Option<&Path>,
        _checkpoint_key_file: Option<&Path>,
        _checkpoint_public_key_file: Option<&Path>,
        _url_file: Option<&Path>,
        _ca_file: Option<&Path>,
    ) -> ExitCode {
        unavailable()
    }

    pub(super) fn export(_args: &ExportArgs) -> ExitCode {
        unavailable()
    }
}
