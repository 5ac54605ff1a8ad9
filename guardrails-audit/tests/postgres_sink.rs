//! The PostgreSQL sink against a real server (see `common/pg.rs`): schema
//! migrations, concurrent writers, a restart under load, the writer role's
//! limits, the outbox, NUL handling, secrets in `Debug`.
#![cfg(feature = "postgres")]

mod common;

use common::pg::PgServer;
use guardrails_audit::sink::postgres::{SCHEMA_VERSION, migrate};

macro_rules! server {
    () => {
        match PgServer::start().await {
            Some(server) => server,
            None => return,
        }
    };
}

#[tokio::test]
async fn migrate_twice_is_a_no_op() {
    let pg = server!();
    let mut admin = pg.admin().await;
    let first = migrate(&mut admin).await.unwrap();
    assert_eq!(first.applied, vec![1]);
    assert_eq!(first.version, SCHEMA_VERSION);
    let second = migrate(&mut admin).await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(second.version, SCHEMA_VERSION);
    let rows = admin
        .query(
            "SELECT version, name, applied_at <= now() FROM guardrails_audit_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    assert_eq!(rows[0].get::<_, String>(1), "audit_trail");
    assert!(rows[0].get::<_, bool>(2));
    for table in [
        "audit_chains",
        "audit_events",
        "audit_checkpoints",
        "audit_outbox",
    ] {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = $1",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "{table}");
    }
}
