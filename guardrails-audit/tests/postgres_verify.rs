//! Verification from the database: every damage kind, caught and named with
//! its chain and first bad seq; the CLI's exit codes; an exported chain
//! verifies as a file.
#![cfg(feature = "postgres")]
// The CLI tests and their helpers need the `cli` feature too.
#![cfg_attr(not(feature = "cli"), allow(dead_code, unused_imports))]

mod common;

use std::process::Command;
use std::time::Duration;

use common::pg::{PgServer, as_owner};
use common::{KEY, awkward_events, key};
use guardrails_audit::chain::ChainHasher;
use guardrails_audit::sink::AuditSink;
use guardrails_audit::sink::postgres::{PostgresSink, migrate};
use guardrails_audit::verify::{Location, PgVerifyOptions, verify_postgres};
use guardrails_audit::{DamageKind, VerifyError, VerifyOptions, verify};
use secrecy::SecretString;
use serde_json::Value;
use tokio_postgres::Client;

macro_rules! server {
    () => {
        match PgServer::start().await {
            Some(server) => server,
            None => return,
        }
    };
}

/// Writes `n` events in batches of 7 to a new chain (checkpoint every 5)
/// and closes the sink; returns the chain id.
async fn write_chain(pg: &PgServer, key: Option<SecretString>, n: usize) -> String {
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    let mut sink = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
        .maybe_hmac_key(key)
        .checkpoint_every(5, Duration::from_secs(3600))
        .open()
        .await
        .unwrap();
    for batch in awkward_events(n).chunks(7) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
    sink.chain_id().to_owned()
}

fn options(hmac: bool) -> PgVerifyOptions {
    if hmac {
        PgVerifyOptions::new().key(key())
    } else {
        PgVerifyOptions::new()
    }
}

async fn damage(client: &Client, options: &PgVerifyOptions) -> (DamageKind, Option<u64>) {
    let error = verify_postgres(client, options)
        .await
        .expect_err("damage must be detected");
    let d = error
        .damage()
        .unwrap_or_else(|| panic!("not a damage: {error}"));
    (d.kind, d.seq)
}

#[tokio::test]
async fn a_chain_written_by_the_sink_verifies() {
    let pg = server!();
    let plain = write_chain(&pg, None, 20).await;
    let admin = pg.admin().await;
    let report = verify_postgres(&admin, &PgVerifyOptions::new().chain(&plain))
        .await
        .unwrap();
    assert_eq!(report.chains.len(), 1);
    let chain = &report.chains[0];
    assert_eq!(chain.chain_id.as_deref(), Some(plain.as_str()));
    // 20 events and the stop record.
    assert_eq!(chain.records, 21);
    assert_eq!((chain.first_seq, chain.last_seq), (Some(0), Some(20)));
    assert!(chain.cleanly_stopped);
    assert!(chain.checkpoints_checked >= 4, "{chain:?}");
    // All chains at once: a second chain appears.
    let second = write_chain(&pg, None, 3).await;
    let report = verify_postgres(&admin, &PgVerifyOptions::new())
        .await
        .unwrap();
    assert_eq!(report.chains.len(), 2);
    assert_eq!(report.records(), 21 + 4);
    assert!(
        report
            .chains
            .iter()
            .any(|c| c.chain_id.as_deref() == Some(second.as_str()))
    );
    // A chain that does not exist.
    assert!(matches!(
        verify_postgres(&admin, &PgVerifyOptions::new().chain("nope")).await,
        Err(VerifyError::UnknownChain { .. })
    ));
}

#[tokio::test]
async fn keyed_chain_needs_its_key() {
    let pg = server!();
    let chain = write_chain(&pg, Some(key()), 10).await;
    let admin = pg.admin().await;
    let report = verify_postgres(&admin, &options(true)).await.unwrap();
    assert_eq!(report.records(), 11);
    assert!(matches!(
        verify_postgres(&admin, &PgVerifyOptions::new()).await,
        Err(VerifyError::KeyRequired)
    ));
    let wrong = PgVerifyOptions::new().key(SecretString::from("not the key"));
    let error = verify_postgres(&admin, &wrong).await.unwrap_err();
    let d = error.damage().unwrap();
    assert_eq!((d.kind, d.seq), (DamageKind::WrongKey, Some(0)));
    assert_eq!(d.location.chain_id(), Some(chain.as_str()));
    // The right chain key, a wrong checkpoint key.
    let wrong_cp = options(true).checkpoint_key(SecretString::from("not the key"));
    assert_eq!(damage(&admin, &wrong_cp).await.0, DamageKind::WrongKey);
}

#[tokio::test]
async fn modified_record_jsonb() {
    let pg = server!();
    for hmac in [false, true] {
        let chain = write_chain(&pg, hmac.then(key), 20).await;
        let admin = pg.admin().await;
        as_owner(
            &admin,
            "UPDATE audit_events SET record = jsonb_set(record, '{target,id}', '\"inv_X\"') \
             WHERE chain_id = $1 AND seq = 3",
            &chain,
        )
        .await;
        let error = verify_postgres(&admin, &options(hmac).chain(&chain))
            .await
            .unwrap_err();
        let d = error.damage().unwrap();
        assert_eq!((d.kind, d.seq), (DamageKind::Modified, Some(3)), "{d}");
        assert_eq!(
            d.location,
            Location::Row {
                chain_id: chain.clone(),
                seq: 3
            }
        );
        assert!(d.to_string().contains(&chain), "{d}");
    }
}

#[tokio::test]
async fn modified_record_rehashed_breaks_the_next_link() {
    // SHA-256: whoever edits the jsonb can recompute its hash (and the hash
    // column); the next record's link still names the old hash.
    let pg = server!();
    let chain = write_chain(&pg, None, 20).await;
    let admin = pg.admin().await;
    let row = admin
        .query_one(
            "SELECT record::text FROM audit_events WHERE chain_id = $1 AND seq = 6",
            &[&chain],
        )
        .await
        .unwrap();
    let mut record: Value = serde_json::from_str(row.get(0)).unwrap();
    record["target"]["id"] = Value::from("inv_forged");
    record["chain"].as_object_mut().unwrap().remove("hash");
    let hash = ChainHasher::sha256().hash_record(&record).unwrap();
    record["chain"]["hash"] = Value::from(hash.clone());
    admin
        .batch_execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        .await
        .unwrap();
    admin
        .execute(
            "UPDATE audit_events SET record = $2::text::jsonb, hash = $3, target_id = 'inv_forged' \
             WHERE chain_id = $1 AND seq = 6",
            &[&chain, &record.to_string(), &hash],
        )
        .await
        .unwrap();
    assert_eq!(
        damage(&admin, &options(false)).await,
        (DamageKind::Modified, Some(6))
    );
}

#[tokio::test]
async fn modified_column_only() {
    let pg = server!();
    for (column, sql) in [
        (
            "tenant",
            "UPDATE audit_events SET tenant = 'other' WHERE chain_id = $1 AND seq = 4",
        ),
        (
            "action",
            "UPDATE audit_events SET action = 'test.other' WHERE chain_id = $1 AND seq = 4",
        ),
        (
            "time",
            "UPDATE audit_events SET time = time - interval '1 hour' WHERE chain_id = $1 AND seq = 4",
        ),
        (
            "seq",
            "UPDATE audit_events SET seq = 1000 WHERE chain_id = $1 AND seq = 25",
        ),
    ] {
        let chain = write_chain(&pg, Some(key()), 25).await;
        let admin = pg.admin().await;
        as_owner(&admin, sql, &chain).await;
        let error = verify_postgres(&admin, &options(true).chain(&chain))
            .await
            .unwrap_err();
        let d = error.damage().unwrap();
        // The last row (the stop record) keeps its place: only its column lies.
        let seq = if column == "seq" { 25 } else { 4 };
        assert_eq!(
            (d.kind, d.seq),
            (DamageKind::Modified, Some(seq)),
            "{column}: {d}"
        );
        assert!(d.detail.contains(column), "{column}: {d}");
    }
}

#[tokio::test]
async fn deleted_middle_row() {
    let pg = server!();
    for hmac in [false, true] {
        let chain = write_chain(&pg, hmac.then(key), 20).await;
        let admin = pg.admin().await;
        as_owner(
            &admin,
            "DELETE FROM audit_events WHERE chain_id = $1 AND seq IN (5, 6)",
            &chain,
        )
        .await;
        assert_eq!(
            damage(&admin, &options(hmac).chain(&chain)).await,
            (DamageKind::Deleted, Some(5))
        );
    }
}

#[tokio::test]
async fn deleted_tail_is_truncation_against_a_checkpoint() {
    let pg = server!();
    for hmac in [false, true] {
        let chain = write_chain(&pg, hmac.then(key), 20).await;
        let admin = pg.admin().await;
        as_owner(
            &admin,
            "DELETE FROM audit_events WHERE chain_id = $1 AND seq >= 12",
            &chain,
        )
        .await;
        let error = verify_postgres(&admin, &options(hmac).chain(&chain))
            .await
            .unwrap_err();
        let d = error.damage().unwrap();
        assert_eq!((d.kind, d.seq), (DamageKind::Truncated, Some(12)), "{d}");
        assert_eq!(
            d.location,
            Location::Chain {
                chain_id: chain.clone()
            }
        );
    }
}

#[tokio::test]
async fn every_row_deleted_is_truncation_of_a_registered_chain() {
    let pg = server!();
    let chain = write_chain(&pg, Some(key()), 8).await;
    let admin = pg.admin().await;
    as_owner(
        &admin,
        "DELETE FROM audit_events WHERE chain_id = $1",
        &chain,
    )
    .await;
    assert_eq!(
        damage(&admin, &options(true)).await,
        (DamageKind::Truncated, Some(0))
    );
}

#[tokio::test]
async fn deleted_head_is_truncation_at_seq_0() {
    let pg = server!();
    let chain = write_chain(&pg, Some(key()), 12).await;
    let admin = pg.admin().await;
    as_owner(
        &admin,
        "DELETE FROM audit_events WHERE chain_id = $1 AND seq < 3",
        &chain,
    )
    .await;
    assert_eq!(
        damage(&admin, &options(true)).await,
        (DamageKind::Truncated, Some(0))
    );
}

#[tokio::test]
async fn swapped_seqs_are_reordered() {
    let pg = server!();
    for hmac in [false, true] {
        let chain = write_chain(&pg, hmac.then(key), 20).await;
        let admin = pg.admin().await;
        // Three steps: the unique (chain_id, seq) is checked row by row.
        for sql in [
            "UPDATE audit_events SET seq = 1000000 WHERE chain_id = $1 AND seq = 8",
            "UPDATE audit_events SET seq = 8 WHERE chain_id = $1 AND seq = 9",
            "UPDATE audit_events SET seq = 9 WHERE chain_id = $1 AND seq = 1000000",
        ] {
            as_owner(&admin, sql, &chain).await;
        }
        assert_eq!(
            damage(&admin, &options(hmac).chain(&chain)).await,
            (DamageKind::Reordered, Some(8))
        );
    }
}

#[tokio::test]
async fn forged_row_is_inserted() {
    // A forged record for seq 7, linked and hashed correctly (possible with
    // SHA-256 only), next to the genuine one: the unique constraint had to
    // be dropped first, which only the table owner can do.
    let pg = server!();
    let chain = write_chain(&pg, None, 20).await;
    let admin = pg.admin().await;
    admin
        .batch_execute("ALTER TABLE audit_events DROP CONSTRAINT audit_events_chain_seq")
        .await
        .unwrap();
    let row = admin
        .query_one(
            "SELECT record::text FROM audit_events WHERE chain_id = $1 AND seq = 7",
            &[&chain],
        )
        .await
        .unwrap();
    let mut record: Value = serde_json::from_str(row.get(0)).unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    record["id"] = Value::from(id.clone());
    record["target"]["id"] = Value::from("inv_forged");
    record["chain"].as_object_mut().unwrap().remove("hash");
    let hash = ChainHasher::sha256().hash_record(&record).unwrap();
    record["chain"]["hash"] = Value::from(hash.clone());
    admin
        .execute(
            "INSERT INTO audit_events (chain_id, seq, prev, hash, id, time, action, category, \
               outcome, reason, actor, tenant, auth_method, target_type, target_id, source_ip, \
               request_id, method, route, status, duration_us, record) \
             SELECT chain_id, seq, prev, $3, $4::text::uuid, time, action, category, outcome, \
               reason, actor, tenant, auth_method, target_type, 'inv_forged', source_ip, \
               request_id, method, route, status, duration_us, $2::text::jsonb \
             FROM audit_events WHERE chain_id = $1 AND seq = 7",
            &[&chain, &record.to_string(), &hash, &id],
        )
        .await
        .unwrap();
    assert_eq!(
        damage(&admin, &options(false)).await,
        (DamageKind::Inserted, Some(7))
    );
}

#[tokio::test]
async fn rows_of_an_unregistered_chain_are_inserted() {
    let pg = server!();
    let chain = write_chain(&pg, None, 5).await;
    let admin = pg.admin().await;
    // Written around the sink, which registers its chain first.
    admin
        .batch_execute("ALTER TABLE audit_events DISABLE TRIGGER ALL")
        .await
        .unwrap();
    admin
        .execute(
            "INSERT INTO audit_events SELECT 'zz-unregistered', seq, prev, hash, \
               gen_random_uuid(), time, action, category, outcome, reason, actor, tenant, \
               auth_method, target_type, target_id, source_ip, request_id, method, route, \
               status, duration_us, record FROM audit_events WHERE chain_id = $1 AND seq = 2",
            &[&chain],
        )
        .await
        .unwrap();
    let error = verify_postgres(&admin, &PgVerifyOptions::new())
        .await
        .unwrap_err();
    let d = error.damage().unwrap();
    assert_eq!((d.kind, d.seq), (DamageKind::Inserted, Some(2)));
    assert_eq!(d.location.chain_id(), Some("zz-unregistered"));
}

#[tokio::test]
async fn a_large_chain_verifies_across_pages() {
    // More rows than one page of the verifier (2000), and damage beyond
    // the first page.
    let pg = server!();
    let chain = write_bulk_chain(&pg, 4500).await;
    let admin = pg.admin().await;
    let report = verify_postgres(&admin, &options(true)).await.unwrap();
    assert_eq!(report.records(), 4501);
    as_owner(
        &admin,
        "DELETE FROM audit_events WHERE chain_id = $1 AND seq = 3001",
        &chain,
    )
    .await;
    assert_eq!(
        damage(&admin, &options(true)).await,
        (DamageKind::Deleted, Some(3001))
    );
}

/// `conn` (a URL or key/value pairs) to the test server, which has no TLS,
/// with `sslmode=disable`: the CLI built with `postgres-rustls` never falls
/// back to the clear on its own.
fn plain(conn: &str) -> String {
    if conn.starts_with("postgres") {
        let separator = if conn.contains('?') { '&' } else { '?' };
        format!("{conn}{separator}sslmode=disable")
    } else {
        format!("{conn} sslmode=disable")
    }
}

fn cli(args: &[&str], url: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guardrails-audit"));
    command.args(args);
    command.env_remove("GUARDRAILS_AUDIT_POSTGRES_URL");
    if let Some(url) = url {
        command.env("GUARDRAILS_AUDIT_POSTGRES_URL", url);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn cli_verify_exit_codes_and_secrets() {
    let pg = server!();
    let chain = write_chain(&pg, Some(key()), 20).await;
    let writer_url = plain(&pg.create_writer_role().await);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let key_arg = key_file.to_str().unwrap();

    // Whole, through the variable, as the writer role (SELECT is enough).
    let (code, out, err) = cli(
        &["verify", "--postgres", "--key-file", key_arg],
        Some(&writer_url),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("ok chain={chain} records=21")),
        "{out}"
    );
    assert!(out.contains("ok chains=1 records=21"), "{out}");

    // Through a URL file, one chain.
    let url_file = dir.path().join("url");
    std::fs::write(&url_file, format!("{writer_url}\n")).unwrap();
    let (code, out, _) = cli(
        &[
            "verify",
            "--postgres",
            "--chain",
            &chain,
            "--key-file",
            key_arg,
            "--postgres-url-file",
            url_file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");

    // No URL at all, or an unreachable server: 2, and the password is
    // never printed.
    let (code, _, err) = cli(&["verify", "--postgres", "--key-file", key_arg], None);
    assert_eq!(code, 2);
    assert!(err.contains("GUARDRAILS_AUDIT_POSTGRES_URL"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = format!("postgresql://someone:hunter2-secret@127.0.0.1:{port}/db");
    let (code, out, err) = cli(
        &["verify", "--postgres", "--key-file", key_arg],
        Some(&unreachable),
    );
    assert_eq!(code, 2);
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(
        !err.contains("hunter2") && !out.contains("hunter2"),
        "{err}"
    );
    let (code, _, err) = cli(
        &["verify", "--postgres", "--key-file", key_arg],
        Some("postgresql://u:hunter2-secret@127.0.0.1:notaport/db"),
    );
    assert_eq!(code, 2);
    assert!(!err.contains("hunter2"), "{err}");
    // Built with TLS, the CLI does not fall back to the clear when the
    // server has none (or someone on the path says so): only an explicit
    // `sslmode=disable` connects without it.
    #[cfg(feature = "postgres-rustls")]
    {
        let (code, out, err) = cli(
            &["verify", "--postgres", "--key-file", key_arg],
            Some(pg.admin_conn()),
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("cannot connect"), "{err}");
    }
    let (code, _, err) = cli(&["verify", "--postgres"], Some(&writer_url));
    assert_eq!(code, 2, "a keyed chain without a key");
    assert!(!err.contains(common::pg::WRITER_PASSWORD), "{err}");

    // A chain id from the database is printed without its terminal controls.
    let mut sink = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
        .hmac_key(key())
        .chain_id("evil\u{1b}[2J")
        .open()
        .await
        .unwrap();
    sink.write_batch(&awkward_events(1)).await.unwrap();
    sink.close().await.unwrap();
    let (code, out, err) = cli(
        &["verify", "--postgres", "--key-file", key_arg],
        Some(&writer_url),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok chain=evil\\x1B[2J records=2"), "{out}");
    assert!(!out.contains('\u{1b}') && !err.contains('\u{1b}'));

    // Damaged.
    let admin = pg.admin().await;
    as_owner(
        &admin,
        "DELETE FROM audit_events WHERE chain_id = $1 AND seq = 5",
        &chain,
    )
    .await;
    let (code, out, err) = cli(
        &["verify", "--postgres", "--key-file", key_arg],
        Some(&writer_url),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.trim(), format!("damage=deleted seq=5 chain={chain}"));
    assert!(err.contains("deleted at seq 5"), "{err}");
    assert!(!err.contains(common::pg::WRITER_PASSWORD), "{err}");
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn exported_chain_verifies_as_a_file() {
    let pg = server!();
    for hmac in [false, true] {
        let chain = write_chain(&pg, hmac.then(key), 30).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.jsonl");
        let checkpoints = dir.path().join("export.checkpoints");
        let (code, _, err) = cli(
            &[
                "export",
                "--chain",
                &chain,
                "--out",
                file.to_str().unwrap(),
                "--checkpoints-out",
                checkpoints.to_str().unwrap(),
            ],
            Some(&plain(pg.admin_conn())),
        );
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("exported 31 record(s)"), "{err}");
        let file_options = VerifyOptions::new().checkpoints(&checkpoints);
        let file_options = if hmac {
            file_options.key(key())
        } else {
            file_options
        };
        let report = verify(&file, &file_options).unwrap();
        assert_eq!(report.records, 31);
        assert_eq!(report.chain_id.as_deref(), Some(chain.as_str()));
        assert!(report.checkpoints_checked >= 5, "{report:?}");
        assert!(report.cleanly_stopped);
        // The same lines to standard output.
        let (code, out, _) = cli(
            &["export", "--chain", &chain],
            Some(&plain(pg.admin_conn())),
        );
        assert_eq!(code, 0);
        assert_eq!(out, std::fs::read_to_string(&file).unwrap());
        // A cut export is caught by the file verifier against the checkpoints.
        let lines: Vec<&str> = out.lines().take(17).collect();
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        assert_eq!(
            verify(&file, &file_options)
                .unwrap_err()
                .damage()
                .unwrap()
                .kind,
            DamageKind::Truncated
        );
    }
}

/// The application name the TLS tests give the CLI's connections, to find
/// them in the server log.
const CLI_TLS_APP_NAME: &str = "guardrails-audit-cli-tls-test";

#[cfg(all(feature = "cli", feature = "postgres-rustls"))]
#[tokio::test]
async fn cli_verify_and_export_over_verified_tls() {
    let Some(pg) = PgServer::start_tls().await else {
        return;
    };
    let chain = write_chain(&pg, Some(key()), 10).await;
    let url = format!(
        "{}?sslmode=require&application_name={CLI_TLS_APP_NAME}",
        pg.create_writer_role().await
    );
    let ca = pg.tls_ca_file().unwrap().to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let key_arg = key_file.to_str().unwrap();

    // The test CA: verified, whole.
    let (code, out, err) = cli(
        &[
            "verify",
            "--postgres",
            "--key-file",
            key_arg,
            "--postgres-ca-file",
            &ca,
        ],
        Some(&url),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("ok chain={chain} records=11")),
        "{out}"
    );
    let (code, out, err) = cli(
        &["export", "--chain", &chain, "--postgres-ca-file", &ca],
        Some(&url),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 11);
    // Both connections were TLS, as the server logged them.
    let authorized = pg.authorized_connections(CLI_TLS_APP_NAME);
    assert_eq!(authorized.len(), 2, "{authorized:?}");
    for line in &authorized {
        assert!(line.contains("SSL enabled"), "{line}");
    }

    // A CA that did not sign the server's certificate, and Mozilla's roots
    // alone: 2, naming the host and the certificate problem, never the URL
    // or the password.
    let unrelated = common::pg::unrelated_ca(dir.path()).unwrap();
    for ca_args in [
        vec!["--postgres-ca-file", unrelated.to_str().unwrap()],
        vec![],
    ] {
        let mut args = vec!["verify", "--postgres", "--key-file", key_arg];
        args.extend(&ca_args);
        let (code, out, err) = cli(&args, Some(&url));
        assert_eq!(code, 2, "{ca_args:?}: {out}{err}");
        assert!(
            err.contains("cannot connect to PostgreSQL at 127.0.0.1"),
            "{err}"
        );
        assert!(err.contains("certificate"), "{err}");
        // Said once, not again by the driver error's own prefix.
        assert!(!err.contains("connect failed"), "{err}");
        for text in [&out, &err] {
            assert!(!text.contains(common::pg::WRITER_PASSWORD), "{text}");
            assert!(!text.contains(&url), "{text}");
            assert!(!text.contains(CLI_TLS_APP_NAME), "{text}");
        }
    }
    // Refused before any connection: still two.
    let authorized = pg.authorized_connections(CLI_TLS_APP_NAME);
    assert_eq!(authorized.len(), 2, "{authorized:?}");

    // A CA file that is not one: 2, naming the file.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let (code, _, err) = cli(
        &[
            "verify",
            "--postgres",
            "--postgres-ca-file",
            garbage.to_str().unwrap(),
        ],
        Some(&url),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--postgres-ca-file: CA file") && err.contains("holds no PEM certificate"),
        "{err}"
    );
}

/// Without `postgres-rustls` the CLI has no TLS: `sslmode=require` is
/// refused rather than used in plain text, and a CA file is an error.
#[cfg(all(feature = "cli", not(feature = "postgres-rustls")))]
#[tokio::test]
async fn cli_without_tls_refuses_sslmode_require() {
    let Some(pg) = PgServer::start_tls().await else {
        return;
    };
    write_chain(&pg, None, 3).await;
    let url = format!(
        "{}?sslmode=require&application_name={CLI_TLS_APP_NAME}",
        pg.create_writer_role().await
    );
    let (code, out, err) = cli(&["verify", "--postgres"], Some(&url));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("cannot connect to PostgreSQL at 127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains(common::pg::WRITER_PASSWORD), "{err}");
    let authorized = pg.authorized_connections(CLI_TLS_APP_NAME);
    assert!(authorized.is_empty(), "{authorized:?}");
    let ca = pg.tls_ca_file().unwrap().to_str().unwrap().to_owned();
    let (code, _, err) = cli(
        &["verify", "--postgres", "--postgres-ca-file", &ca],
        Some(&url),
    );
    assert_eq!(code, 2);
    assert!(err.contains("postgres-rustls"), "{err}");
    // Plain (sslmode=prefer, the default) still works.
    let plain = url.replace("sslmode=require", "sslmode=prefer");
    let (code, out, err) = cli(&["verify", "--postgres"], Some(&plain));
    assert_eq!(code, 0, "{out}{err}");
}

/// Checkpoints in the database signed with Ed25519 verify with the public
/// key alone; another key's, or none, does not.
#[tokio::test]
async fn ed25519_checkpoints_verify_with_the_public_key() {
    use guardrails_audit::signing::Ed25519SigningKey;
    let pg = server!();
    let signing = common::ed25519_key();
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    let mut sink = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
        .hmac_key(key())
        .checkpoint_signing_key(signing.clone())
        .checkpoint_every(5, Duration::from_secs(3600))
        .open()
        .await
        .unwrap();
    for batch in awkward_events(12).chunks(7) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
    let with_public = options(true).checkpoint_public_key(signing.verifying_key());
    let report = verify_postgres(&admin, &with_public).await.unwrap();
    assert!(report.chains[0].checkpoints_checked >= 3, "{report:?}");
    assert!(matches!(
        verify_postgres(&admin, &options(true)).await,
        Err(VerifyError::PublicKeyRequired)
    ));
    let stored: String = admin
        .query_one(
            "SELECT record::text FROM audit_checkpoints ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        stored.contains(r#""sig_alg": "ed25519""#) || stored.contains(r#""sig_alg":"ed25519""#),
        "{stored}"
    );
    let other = Ed25519SigningKey::from_pkcs8_pem(&SecretString::from(
        "-----BEGIN PRIVATE KEY-----\n\
         MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n\
         -----END PRIVATE KEY-----\n",
    ))
    .unwrap();
    let with_other = options(true).checkpoint_public_key(other.verifying_key());
    assert_eq!(damage(&admin, &with_other).await.0, DamageKind::WrongKey);
}

/// Writes `n` events in batches of 500 to a new HMAC chain and closes the
/// sink; returns the chain id.
async fn write_bulk_chain(pg: &PgServer, n: u64) -> String {
    let mut admin = pg.admin().await;
    migrate(&mut admin).await.unwrap();
    let mut sink = PostgresSink::builder(SecretString::from(pg.admin_conn().to_owned()))
        .hmac_key(key())
        .open()
        .await
        .unwrap();
    let events: Vec<_> = (0..n)
        .map(|i| {
            guardrails_audit::AuditEvent::new("test.bulk", guardrails_audit::Category::System)
                .with_detail("i", i)
        })
        .collect();
    for batch in events.chunks(500) {
        sink.write_batch(batch).await.unwrap();
    }
    sink.close().await.unwrap();
    sink.chain_id().to_owned()
}

#[tokio::test]
async fn a_row_hidden_at_a_page_boundary_is_inserted() {
    // The owner drops the unique constraint and adds a second row with the
    // seq and id of the 2000th (the last of the verifier's first page): a
    // reader paging by (seq, id) returns one of the two, whichever comes
    // first. Here a copy of it, so that either one verifies; a copy with
    // forged columns would be found only when the order puts it first.
    let pg = server!();
    let chain = write_bulk_chain(&pg, 2100).await;
    let admin = pg.admin().await;
    admin
        .batch_execute("ALTER TABLE audit_events DROP CONSTRAINT audit_events_chain_seq")
        .await
        .unwrap();
    as_owner(
        &admin,
        "INSERT INTO audit_events SELECT * FROM audit_events WHERE chain_id = $1 AND seq = 1999",
        &chain,
    )
    .await;
    assert_eq!(
        damage(&admin, &options(true)).await,
        (DamageKind::Inserted, Some(1999))
    );
    // The export pages the same way (1000 rows, so a page ends there too):
    // it refuses to write a file that would verify clean without the row.
    #[cfg(feature = "cli")]
    {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.jsonl");
        let (code, out, err) = cli(
            &["export", "--chain", &chain, "--out", file.to_str().unwrap()],
            Some(&plain(pg.admin_conn())),
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains("2102 rows") && err.contains("2101 of them"),
            "{err}"
        );
        // No file that would pass for a whole export is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

#[tokio::test]
async fn a_row_with_a_negative_seq_is_damage() {
    // The owner drops the seq check and adds a row below seq 0, which a
    // reader starting at seq 0 never sees, while queries show it.
    let pg = server!();
    let chain = write_chain(&pg, Some(key()), 10).await;
    let admin = pg.admin().await;
    admin
        .batch_execute("ALTER TABLE audit_events DROP CONSTRAINT audit_events_seq_check")
        .await
        .unwrap();
    as_owner(
        &admin,
        "INSERT INTO audit_events SELECT chain_id, -2, prev, hash, gen_random_uuid(), time, \
           'invoice.delete', category, outcome, reason, 'alice', 'acme', auth_method, \
           target_type, target_id, source_ip, request_id, method, route, status, duration_us, \
           record FROM audit_events WHERE chain_id = $1 AND seq = 3",
        &chain,
    )
    .await;
    let error = verify_postgres(&admin, &options(true))
        .await
        .expect_err("a row below seq 0 must be found");
    let d = error.damage().unwrap_or_else(|| panic!("{error}"));
    // Named as what it is, not as damage of the genuine row it copies.
    assert_eq!((d.kind, d.seq), (DamageKind::Inserted, None), "{d}");
    assert_eq!(
        d.location,
        Location::Chain {
            chain_id: chain.clone()
        }
    );
}

/// The chains' checkpoints as the lines of a file kept off the database.
async fn keep_checkpoints(admin: &Client, chains: &[&str], path: &std::path::Path) {
    let mut lines = String::new();
    for chain in chains {
        for row in admin
            .query(
                "SELECT record::text FROM audit_checkpoints WHERE chain_id = $1 ORDER BY id",
                &[chain],
            )
            .await
            .unwrap()
        {
            // As `psql -At -c "SELECT record::text …"` copies them: the
            // jsonb's own text form, not the canonical one.
            lines.push_str(row.get(0));
            lines.push('\n');
        }
    }
    std::fs::write(path, lines).unwrap();
}

#[tokio::test]
async fn a_tail_cut_with_its_checkpoints_is_found_by_checkpoints_kept_elsewhere() {
    let pg = server!();
    let chain = write_chain(&pg, Some(key()), 20).await;
    let admin = pg.admin().await;
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.checkpoints");
    keep_checkpoints(&admin, &[&chain], &kept).await;
    // The owner removes the newest records and every checkpoint naming
    // them: the database alone no longer shows it.
    as_owner(
        &admin,
        "DELETE FROM audit_events WHERE chain_id = $1 AND seq >= 10",
        &chain,
    )
    .await;
    admin
        .batch_execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
        .await
        .unwrap();
    admin
        .execute(
            "DELETE FROM audit_checkpoints WHERE chain_id = $1 AND seq >= 10",
            &[&chain],
        )
        .await
        .unwrap();
    let report = verify_postgres(&admin, &options(true)).await.unwrap();
    assert_eq!(report.records(), 10, "the database alone hides the cut");
    let error = verify_postgres(&admin, &options(true).checkpoints(&kept))
        .await
        .unwrap_err();
    let d = error.damage().unwrap_or_else(|| panic!("{error}"));
    assert_eq!((d.kind, d.seq), (DamageKind::Truncated, Some(10)), "{d}");
    assert_eq!(d.location.chain_id(), Some(chain.as_str()));

    // The CLI: without a kept copy it says what it did not check.
    #[cfg(feature = "cli")]
    {
        let key_file = dir.path().join("key");
        std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
        let key_arg = key_file.to_str().unwrap();
        let url = plain(pg.admin_conn());
        let (code, out, err) = cli(&["verify", "--postgres", "--key-file", key_arg], Some(&url));
        assert_eq!(code, 0, "{out}{err}");
        assert!(err.contains("--checkpoints"), "{err}");
        let (code, out, err) = cli(
            &[
                "verify",
                "--postgres",
                "--key-file",
                key_arg,
                "--checkpoints",
                kept.to_str().unwrap(),
            ],
            Some(&url),
        );
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains(&format!("damage=truncated seq=10 chain={chain}")),
            "{out}"
        );
    }
}

#[tokio::test]
async fn a_chain_removed_whole_is_found_by_checkpoints_kept_elsewhere() {
    let pg = server!();
    let gone = write_chain(&pg, Some(key()), 12).await;
    let kept_chain = write_chain(&pg, Some(key()), 6).await;
    let admin = pg.admin().await;
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.checkpoints");
    keep_checkpoints(&admin, &[&gone, &kept_chain], &kept).await;
    // Whole chain, checked against its kept checkpoints: whole; also when
    // the copying job wrote them all again (each copy checked once).
    let report = verify_postgres(&admin, &options(true).checkpoints(&kept))
        .await
        .unwrap();
    assert_eq!(report.records(), 13 + 7);
    let twice = dir.path().join("twice.checkpoints");
    std::fs::write(&twice, std::fs::read_to_string(&kept).unwrap().repeat(2)).unwrap();
    verify_postgres(&admin, &options(true).checkpoints(&twice))
        .await
        .unwrap();
    for table in ["audit_events", "audit_checkpoints", "audit_chains"] {
        admin
            .batch_execute(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .await
            .unwrap();
    }
    for sql in [
        "DELETE FROM audit_events WHERE chain_id = $1",
        "DELETE FROM audit_checkpoints WHERE chain_id = $1",
        "DELETE FROM audit_chains WHERE chain_id = $1",
    ] {
        admin.execute(sql, &[&gone]).await.unwrap();
    }
    let report = verify_postgres(&admin, &options(true)).await.unwrap();
    assert_eq!(report.chains.len(), 1, "the database alone hides the loss");
    let error = verify_postgres(&admin, &options(true).checkpoints(&kept))
        .await
        .unwrap_err();
    let d = error.damage().unwrap_or_else(|| panic!("{error}"));
    assert_eq!((d.kind, d.seq), (DamageKind::Truncated, Some(0)), "{d}");
    assert_eq!(
        d.location,
        Location::Chain {
            chain_id: gone.clone()
        }
    );
    // The gone chain asked for by its id: gone, not unknown.
    let error = verify_postgres(&admin, &options(true).checkpoints(&kept).chain(&gone))
        .await
        .unwrap_err();
    let d = error.damage().unwrap_or_else(|| panic!("{error}"));
    assert_eq!((d.kind, d.seq), (DamageKind::Truncated, Some(0)), "{d}");
    // Only the other chain asked for: its kept checkpoints alone count.
    let report = verify_postgres(&admin, &options(true).checkpoints(&kept).chain(&kept_chain))
        .await
        .unwrap();
    assert_eq!(report.records(), 7);
    // A kept line that does not verify with the checkpoint key is damage
    // of the kept file, not a verdict on the database.
    let copied = std::fs::read_to_string(&kept).unwrap();
    let forged = copied.replacen("\"seq\": ", "\"seq\": 1", 1);
    assert_ne!(forged, copied);
    std::fs::write(&kept, forged).unwrap();
    let error = verify_postgres(&admin, &options(true).checkpoints(&kept))
        .await
        .unwrap_err();
    let d = error.damage().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(d.kind, DamageKind::WrongKey, "{d}");
    assert_eq!(d.location.file(), Some(kept.as_path()));
}
