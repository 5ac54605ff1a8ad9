//! `guardrails-audit`: verify a hash-chained JSON-lines audit trail.
//!
//! ```text
//! guardrails-audit verify <FILE> [--key-file F] [--checkpoints F]
//!                                [--checkpoint-key-file F] [--rotated]
//! ```
//!
//! Exit codes:
//!
//! - `0`: the trail is whole (a torn last line of a crashed writer that has
//!   not restarted is reported as a warning, not as damage);
//! - `1`: the trail is damaged; the first bad `seq` and the kind of damage
//!   (`modified`, `inserted`, `deleted`, `reordered`, `truncated`,
//!   `wrong_key`, `malformed`) are printed on standard error, and on standard
//!   output as `damage=<kind> seq=<seq>`;
//! - `2`: verification could not run (unreadable file or key, a keyed chain
//!   without `--key-file`, bad arguments).
//!
//! Key files hold the key as text; one trailing newline is ignored.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use guardrails_audit::sink::file::JsonLinesSink;
use guardrails_audit::{
    AuditEvent, AuditPipeline, Category, Outcome, VerifyError, VerifyOptions, verify,
};
use secrecy::SecretString;

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
    Verify {
        /// The JSON-lines audit file.
        file: PathBuf,
        /// A file holding the HMAC chain key.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The checkpoint file to check against (e.g. `audit.jsonl.checkpoints`).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// A file holding the checkpoint key, when it is not the chain key.
        #[arg(long)]
        checkpoint_key_file: Option<PathBuf>,
        /// Also verify the rotated files `<FILE>.<20 digits>` as one chain.
        #[arg(long)]
        rotated: bool,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify {
            file,
            key_file,
            checkpoints,
            checkpoint_key_file,
            rotated,
        } => run_verify(&file, key_file, checkpoints, checkpoint_key_file, rotated),
        Command::WriteLoad {
            file,
            key_file,
            count,
            concurrency,
        } => write_load(&file, key_file.as_deref(), count, concurrency),
    }
}

fn run_verify(
    file: &Path,
    key_file: Option<PathBuf>,
    checkpoints: Option<PathBuf>,
    checkpoint_key_file: Option<PathBuf>,
    rotated: bool,
) -> ExitCode {
    let mut options = VerifyOptions::new().include_rotated(rotated);
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
    if let Some(path) = checkpoints {
        options = options.checkpoints(path);
    }
    match verify(file, &options) {
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
            if report.torn_tail {
                eprintln!(
                    "warning: the last line is torn: the writer crashed and has not reopened the file"
                );
            }
            ExitCode::SUCCESS
        }
        Err(VerifyError::Damaged(damage)) => {
            println!(
                "damage={} seq={}",
                damage.kind,
                damage.seq.map_or("-".into(), |s| s.to_string())
            );
            eprintln!("error: audit trail damaged: {damage}");
            ExitCode::from(1)
        }
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
