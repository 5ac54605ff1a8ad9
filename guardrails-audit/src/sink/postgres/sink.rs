//! The PostgreSQL sink; see the [module documentation](super).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, Socket, Statement, Transaction};

use super::PgError;
use super::encode::{Head, JsonbText, Rows, Unusable};
use super::outbox::{MAX_OUTBOX_RECORD_BYTES, Measured, OUTBOX_RELAY_BYTES, relay_plan};
use crate::chain::{ChainHasher, ZERO_HASH, same_hash};
use crate::event::{AuditEvent, Category, Outcome};
use crate::signing::{CheckpointSigner, Ed25519SigningKey};
use crate::sink::file::{
    ACTION_STOPPED, CHECKPOINT_SCHEMA, ForeignCheckpoint, OwnCheckpoint, checkpoint_line,
    checkpoint_signer, own_checkpoint,
};
use crate::sink::{AuditSink, SinkError, SinkFuture, WriteReceipt};

/// The action of the record that replaces an outbox row the sink cannot
/// relay as it is. Its `reason` says why: `not_an_audit_record`,
/// `columns_not_exact` (a column would not say what the record says: a
/// time with more than microseconds, a `status` beyond `int4`…) or
/// `too_large` (longer than [`MAX_OUTBOX_RECORD_BYTES`]). Its details name
/// the row (`outbox_id`) and its sizes in bytes (`stored_bytes`, and
/// `text_bytes` when it was measured); but for `too_large`, which is never
/// read, the start of the row's text is kept in `record`.
pub const ACTION_OUTBOX_REJECTED: &str = "audit.outbox_rejected";

/// The longest outbox text kept in an `audit.outbox_rejected` record.
const REJECTED_TEXT_CHARS: usize = 4096;

/// The columns of `audit_events` a sink writes, in [`COPY_TYPES`] order.
const COPY_EVENTS: &str = "COPY audit_events (chain_id, seq, prev, hash, id, time, action, \
     category, outcome, reason, actor, tenant, auth_method, target_type, target_id, source_ip, \
     request_id, method, route, status, duration_us, record) FROM STDIN (FORMAT binary)";

const COPY_TYPES: [Type; 22] = [
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT8,
    Type::JSONB,
];

/// How many events are encoded before their rows are handed to the `COPY`
/// stream: the server parses and indexes one chunk while the next is
/// hashed and encoded.
const COPY_CHUNK: usize = 256;

/// The name of the `UNIQUE (chain_id, seq)` constraint of `audit_events`.
const CHAIN_SEQ_CONSTRAINT: &str = "audit_events_chain_seq";

/// Locks the oldest `$1` outbox rows no other sink holds, and measures
/// them ([`Measured`]) without reading them: the stored size of each, and
/// the text's length of those not larger than `$2` when stored, while the
/// stored sizes measured add up to at most `$3` (a record that compresses
/// well takes longer to convert than its stored size suggests).
/// [`READ_OUTBOX`] then reads those the relay takes.
const TAKE_OUTBOX: &str = "SELECT id, stored, \
     CASE WHEN stored <= $2 AND measured <= $3 THEN octet_length(record::text) END \
     FROM (SELECT id, record, pg_column_size(record) AS stored, \
                  sum(pg_column_size(record)) FILTER (WHERE pg_column_size(record) <= $2) \
                      OVER (ORDER BY id) AS measured \
           FROM (SELECT id, record FROM audit_outbox ORDER BY id LIMIT $1 \
                 FOR UPDATE SKIP LOCKED) AS locked) AS sized \
     ORDER BY id";

const READ_OUTBOX: &str = "SELECT id, record::text FROM audit_outbox WHERE id = ANY($1)";

type ConnectFuture<'a> = Pin<
    Box<
        dyn Future<Output = Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>>
            + Send
            + 'a,
    >,
>;

/// Connects with a TLS choice, and drives the connection on the current
/// runtime (the pipeline's writer).
#[derive(Clone)]
struct Connector {
    connect: Arc<dyn for<'a> Fn(&'a Config) -> ConnectFuture<'a> + Send + Sync>,
    tls: bool,
}

impl Connector {
    fn new<T>(tls: T, encrypted: bool) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        Self {
            connect: Arc::new(move |config: &Config| -> ConnectFuture<'_> {
                let tls = tls.clone();
                Box::pin(async move {
                    let (client, connection) = config.connect(tls).await?;
                    let task = tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(target: "audit", %error, "audit database connection ended");
                        }
                    });
                    Ok((client, task))
                })
            }),
            tls: encrypted,
        }
    }
}

/// Configuration of a [`PostgresSink`]; `Debug` never shows the connection
/// string or a key.
///
/// ```no_run
/// use guardrails_audit::sink::postgres::PostgresSink;
/// use secrecy::SecretString;
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), guardrails_audit::sink::postgres::PgError> {
/// let sink = PostgresSink::builder(SecretString::from("postgresql://audit_writer:pw@db/app"))
///     .chain_id("api-1") // continue this instance's chain across restarts
///     .hmac_key(SecretString::from("a long random key from your secret store"))
///     .checkpoint_every(1000, Duration::from_secs(60))
///     .retry_for(Duration::from_secs(2))
///     .open()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct PostgresSinkBuilder {
    connector: Connector,
    conn: SecretString,
    chain_id: Option<String>,
    key: Option<SecretString>,
    checkpoint_key: Option<SecretString>,
    checkpoint_signing_key: Option<Ed25519SigningKey>,
    checkpoint_every_events: u64,
    checkpoint_every: Duration,
    retry_for: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    io_timeout: Duration,
    outbox_limit: i64,
    instance: Option<String>,
}

impl fmt::Debug for PostgresSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSinkBuilder")
            .field("conn", &"[REDACTED]")
            .field("tls", &self.connector.tls)
            .field("chain_id", &self.chain_id)
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field(
                "checkpoint_key",
                &self.checkpoint_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("checkpoint_signing_key", &self.checkpoint_signing_key)
            .field("checkpoint_every_events", &self.checkpoint_every_events)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("retry_for", &self.retry_for)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("io_timeout", &self.io_timeout)
            .field("outbox_limit", &self.outbox_limit)
            .field("instance", &self.instance)
            .finish()
    }
}

impl PostgresSinkBuilder {
    /// Continues (or starts) the chain `id` instead of a fresh UUIDv7 chain
    /// per [`build`](Self::build). Give each instance its own stable id
    /// (`host-1`, a pod name) to continue its chain across restarts; never
    /// give two running writers the same id (see the
    /// [module documentation](super)). 1 to 200 characters, no U+0000.
    pub fn chain_id(mut self, id: impl Into<String>) -> Self {
        self.chain_id = Some(id.into());
        self
    }

    /// Chains with HMAC-SHA-256 under `key` instead of plain SHA-256.
    pub fn hmac_key(mut self, key: SecretString) -> Self {
        self.key = Some(key);
        self
    }

    /// Chains with HMAC-SHA-256 when `key` is given.
    pub fn maybe_hmac_key(mut self, key: Option<SecretString>) -> Self {
        self.key = key;
        self
    }

    /// Signs checkpoints with this key (default: the chain key; unsigned,
    /// `"sig_alg":"none"`, without any key).
    pub fn checkpoint_key(mut self, key: SecretString) -> Self {
        self.checkpoint_key = Some(key);
        self
    }

    /// Signs checkpoints with this Ed25519 key instead of an HMAC key, so
    /// that they verify with its public half, which cannot sign
    /// ([`PgVerifyOptions::checkpoint_public_key`](crate::verify::postgres::PgVerifyOptions::checkpoint_public_key)).
    pub fn checkpoint_signing_key(mut self, key: Ed25519SigningKey) -> Self {
        self.checkpoint_signing_key = Some(key);
        self
    }

    /// A checkpoint every `events` records and every `interval` (when
    /// anything was written). Defaults: 1000 records, 60 seconds.
    pub fn checkpoint_every(mut self, events: u64, interval: Duration) -> Self {
        self.checkpoint_every_events = events.max(1);
        self.checkpoint_every = interval;
        self
    }

    /// How long a failed batch is retried (reconnecting, with exponential
    /// backoff) before the sink reports it failed. Default 2 seconds: a
    /// `Blocking` or `Strict` request waits at most about this long (plus
    /// one [`io_timeout`](Self::io_timeout)) before it gets its 500 or 503.
    pub fn retry_for(mut self, total: Duration) -> Self {
        self.retry_for = total;
        self
    }

    /// The first and the largest pause between retries (defaults 50 ms and
    /// 1 s; each pause doubles).
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff_min = first.max(Duration::from_millis(1));
        self.backoff_max = max.max(self.backoff_min);
        self
    }

    /// The longest one attempt (connect, or one batch's transaction) may
    /// take before it counts as failed. Default 5 seconds.
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many outbox rows one transaction moves into the chain (default
    /// 1000); 0 turns the relay off for this sink.
    pub fn outbox_relay(mut self, rows: usize) -> Self {
        self.outbox_limit = i64::try_from(rows).unwrap_or(i64::MAX);
        self
    }

    /// Connects through TLS with `tls`, any `tokio_postgres` TLS connector
    /// (for example `tokio_postgres_rustls::MakeRustlsConnect` or
    /// `postgres_native_tls::MakeTlsConnector`). Without it the sink uses
    /// `NoTls`: use that only on loopback, a Unix socket or a network you
    /// trust. With a connector, a server without TLS is refused: the
    /// default `sslmode=prefer` becomes `require` ([`require_tls`](super::require_tls)),
    /// so nobody on the network path can talk the sink out of TLS; only an
    /// explicit `sslmode=disable` (or a Unix socket) connects in the clear.
    pub fn tls<T>(mut self, tls: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        self.connector = Connector::new(tls, true);
        self
    }

    /// The instance name recorded with the chain in `audit_chains`.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Checks the configuration and returns the sink, without connecting:
    /// the sink connects on the pipeline's writer runtime at its first write
    /// or tick.
    ///
    /// # Errors
    ///
    /// [`PgError::InvalidConfig`] for a connection string that does not
    /// parse (see [`connection_config`](super::connection_config); the
    /// message never repeats it) or an invalid chain id.
    pub fn build(self) -> Result<PostgresSink, PgError> {
        if crate::chain::too_short(self.key.as_ref()) {
            return Err(PgError::InvalidConfig(
                "the chain key is shorter than 16 bytes",
            ));
        }
        if crate::chain::too_short(self.checkpoint_key.as_ref()) {
            return Err(PgError::InvalidConfig(
                "the checkpoint key is shorter than 16 bytes",
            ));
        }
        let mut config = super::connection_config(&self.conn)?;
        if self.connector.tls {
            super::require_tls(&mut config);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.io_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("guardrails-audit");
        }
        let chain_id = match self.chain_id {
            Some(id) => {
                let chars = id.chars().count();
                if !(1..=200).contains(&chars) || id.contains('\0') {
                    return Err(PgError::InvalidConfig(
                        "a chain id has 1 to 200 characters and no U+0000",
                    ));
                }
                id
            }
            None => uuid::Uuid::now_v7().to_string(),
        };
        let hasher = ChainHasher::new(self.key.as_ref());
        let signer = checkpoint_signer(
            self.checkpoint_signing_key,
            self.checkpoint_key.as_ref().or(self.key.as_ref()),
        );
        Ok(PostgresSink {
            connector: self.connector,
            config,
            chain_id,
            hasher,
            signer,
            instance: self.instance,
            checkpoint_every_events: self.checkpoint_every_events,
            checkpoint_every: self.checkpoint_every,
            retry_for: self.retry_for,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
            io_timeout: self.io_timeout,
            outbox_limit: self.outbox_limit,
            conn: None,
            head: None,
            in_doubt: None,
            durable: true,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            last_failure: None,
            stopped: false,
            rows: Rows::default(),
            scratch: Vec::with_capacity(4096),
        })
    }

    /// [`build`](Self::build), then connects once on the current runtime to
    /// check the server, the schema, the chain's algorithm and key
    /// (registering the chain), and disconnects: configuration mistakes
    /// surface at start-up rather than at the first event.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), plus [`PgError::Database`] or
    /// [`PgError::Timeout`] when the server cannot be reached or the schema
    /// is missing, [`PgError::Incompatible`] when an existing chain of this
    /// id uses another algorithm, does not verify with this key or has
    /// checkpoints signed another way, and [`PgError::BehindCheckpoints`]
    /// when it lost records its newest checkpoint names.
    pub async fn open(self) -> Result<PostgresSink, PgError> {
        let mut sink = self.build()?;
        sink.ensure_ready().await?;
        sink.conn = None;
        sink.head = None;
        Ok(sink)
    }
}

/// One connection with its prepared statements; dropping it closes it.
struct Conn {
    client: Client,
    copy: Statement,
    take_outbox: Statement,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The PostgreSQL sink; see the [module documentation](super).
pub struct PostgresSink {
    connector: Connector,
    config: Config,
    chain_id: String,
    hasher: ChainHasher,
    signer: Option<CheckpointSigner>,
    instance: Option<String>,
    checkpoint_every_events: u64,
    checkpoint_every: Duration,
    retry_for: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    io_timeout: Duration,
    outbox_limit: i64,
    conn: Option<Conn>,
    /// The chain head as committed; `None` until read from the database.
    head: Option<Head>,
    /// The seq and hash of the first event record of the current batch's
    /// last attempt, when that attempt failed after its `COMMIT` was sent:
    /// the commit may have succeeded although its acknowledgement was lost
    /// (or may still succeed). Kept until a look-up finds the record or a
    /// later attempt's `COPY` claimed the same seqs.
    in_doubt: Option<(i64, String)>,
    durable: bool,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    last_failure: Option<Instant>,
    stopped: bool,
    rows: Rows,
    scratch: Vec<u8>,
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("chain_id", &self.chain_id)
            .field("alg", &self.hasher.alg())
            .field("next_seq", &self.head.as_ref().map(|h| h.next_seq))
            .field("connected", &self.conn.is_some())
            .field("tls", &self.connector.tls)
            .field("retry_for", &self.retry_for)
            .finish_non_exhaustive()
    }
}

/// What one transaction wrote.
struct Written {
    /// The seq of the batch's first event.
    first_seq: u64,
}

impl PostgresSink {
    /// Configures a sink for the server at `conn`: a URL
    /// (`postgresql://user:password@host:5432/db`) or a key-value string
    /// (`host=… user=… password=… dbname=…`), kept secret.
    pub fn builder(conn: SecretString) -> PostgresSinkBuilder {
        PostgresSinkBuilder {
            connector: Connector::new(NoTls, false),
            conn,
            chain_id: None,
            key: None,
            checkpoint_key: None,
            checkpoint_signing_key: None,
            checkpoint_every_events: 1000,
            checkpoint_every: Duration::from_secs(60),
            retry_for: Duration::from_secs(2),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            io_timeout: Duration::from_secs(5),
            outbox_limit: 1000,
            instance: None,
        }
    }

    /// The chain id this sink writes.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The seq the next record gets, when the head has been read.
    pub fn next_seq(&self) -> Option<u64> {
        self.head.as_ref().map(|h| h.next_seq)
    }

    fn reset(&mut self) {
        self.conn = None;
        self.head = None;
        self.last_failure = Some(Instant::now());
    }

    /// Connects, registers the chain and reads its head, as needed.
    async fn ensure_ready(&mut self) -> Result<(), PgError> {
        if self.conn.is_none() {
            let conn = tokio::time::timeout(self.io_timeout, self.connect())
                .await
                .map_err(|_| PgError::Timeout {
                    operation: "connect",
                })??;
            self.conn = Some(conn);
        }
        if self.head.is_none() {
            let head = tokio::time::timeout(self.io_timeout, self.read_head())
                .await
                .map_err(|_| PgError::Timeout {
                    operation: "read chain head",
                })??;
            self.head = Some(head);
        }
        Ok(())
    }

    async fn connect(&mut self) -> Result<Conn, PgError> {
        let (client, task) = match (self.connector.connect)(&self.config).await {
            Ok(pair) => pair,
            Err(error) => {
                metrics::counter!("guardrails_audit_postgres_connects_total", "result" => "error")
                    .increment(1);
                return Err(PgError::db("connect")(error));
            }
        };
        metrics::counter!("guardrails_audit_postgres_connects_total", "result" => "ok")
            .increment(1);
        let alg = self.hasher.alg().as_str();
        client
            .execute(
                "INSERT INTO audit_chains (chain_id, alg, instance) VALUES ($1, $2, $3) \
                 ON CONFLICT (chain_id) DO NOTHING",
                &[&self.chain_id, &alg, &self.instance],
            )
            .await
            .map_err(PgError::db("register chain"))?;
        let stored: String = client
            .query_one(
                "SELECT alg FROM audit_chains WHERE chain_id = $1",
                &[&self.chain_id],
            )
            .await
            .map_err(PgError::db("read chain"))?
            .get(0);
        if stored != alg {
            return Err(PgError::Incompatible(
                "the chain is registered with another algorithm",
            ));
        }
        let commit: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .map_err(PgError::db("read synchronous_commit"))?
            .get(0);
        self.durable = commit != "off";
        let copy = client
            .prepare(COPY_EVENTS)
            .await
            .map_err(PgError::db("prepare copy"))?;
        let take_outbox = client
            .prepare(TAKE_OUTBOX)
            .await
            .map_err(PgError::db("prepare outbox"))?;
        Ok(Conn {
            client,
            copy,
            take_outbox,
            task,
        })
    }

    /// The committed head of the chain; its last record must verify with
    /// this sink's key, and the chain must hold the record its newest
    /// checkpoint names ([`check_checkpointed`](Self::check_checkpointed)).
    async fn read_head(&mut self) -> Result<Head, PgError> {
        let conn = self.conn.as_ref().ok_or(PgError::Closed)?;
        // The checkpoint first: it commits with the records it names, so a
        // head read after it is at least that far, even while another
        // writer of this chain id commits.
        let checkpoint = self.newest_checkpoint(&conn.client).await?;
        let head = self.read_last_record(&conn.client).await?;
        if let Some(checkpoint) = checkpoint {
            self.check_checkpointed(&conn.client, &checkpoint, &head)
                .await?;
        }
        Ok(head)
    }

    /// The newest checkpoint of this chain, which must be signed the way
    /// this sink signs and verify with its key: the sink writes no other,
    /// so another is a change of key or a forgery.
    async fn newest_checkpoint(&self, client: &Client) -> Result<Option<OwnCheckpoint>, PgError> {
        let row = client
            .query_opt(
                "SELECT seq, hash, record::text FROM audit_checkpoints WHERE chain_id = $1 \
                 ORDER BY seq DESC, id DESC LIMIT 1",
                &[&self.chain_id],
            )
            .await
            .map_err(PgError::db("read newest checkpoint"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (column_seq, column_hash): (i64, String) = (row.get(0), row.get(1));
        let value = serde_json::from_str::<Value>(row.get(2))
            .ok()
            .filter(|v| v.get("schema").and_then(Value::as_str) == Some(CHECKPOINT_SCHEMA))
            .ok_or(PgError::Incompatible(
                "the chain's newest checkpoint is not a checkpoint",
            ))?;
        let checkpoint = own_checkpoint(value, self.signer.as_ref()).map_err(|foreign| {
            PgError::Incompatible(match foreign {
                ForeignCheckpoint::SignedAnotherWay => {
                    "the chain's checkpoints are signed another way (HMAC, Ed25519 or none) \
                     than this sink signs; to change it, start a new chain (another chain id)"
                }
                ForeignCheckpoint::DoesNotVerify => {
                    "the chain's newest checkpoint does not verify with this sink's checkpoint \
                     key: the key changed (start a new chain, another chain id) or the \
                     checkpoint was forged"
                }
            })
        })?;
        if checkpoint.chain_id != self.chain_id {
            return Err(PgError::Incompatible(
                "the chain's newest checkpoint names another chain: it was forged",
            ));
        }
        // The row is found by its `seq` column, which no signature covers:
        // an old checkpoint copied into a row with a higher `seq` would
        // otherwise stand in for the newest one.
        if i64::try_from(checkpoint.seq).ok() != Some(column_seq) || checkpoint.hash != column_hash
        {
            return Err(PgError::Incompatible(
                "the chain's newest checkpoint row disagrees with its signed record: it was \
                 copied or forged",
            ));
        }
        Ok(Some(checkpoint))
    }

    /// Refuses a chain, ending at `head`, that does not hold the record its
    /// newest checkpoint names.
    async fn check_checkpointed(
        &self,
        client: &Client,
        checkpoint: &OwnCheckpoint,
        head: &Head,
    ) -> Result<(), PgError> {
        let seq = checkpoint.seq;
        if seq >= head.next_seq {
            return Err(PgError::BehindCheckpoints(format!(
                "a checkpoint names seq {seq}, but the chain ends {}: committed records were \
                 removed",
                match head.next_seq.checked_sub(1) {
                    Some(last) => format!("at seq {last}"),
                    None => "before seq 0".to_owned(),
                }
            )));
        }
        let stored: Option<String> = client
            .query_opt(
                "SELECT hash FROM audit_events WHERE chain_id = $1 AND seq = $2",
                &[&self.chain_id, &i64::try_from(seq).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(PgError::db("read checkpointed record"))?
            .map(|row| row.get(0));
        match stored {
            Some(hash) if same_hash(&hash, &checkpoint.hash) => Ok(()),
            Some(_) => Err(PgError::BehindCheckpoints(format!(
                "the record at seq {seq} is not the one its checkpoint names"
            ))),
            None => Err(PgError::BehindCheckpoints(format!(
                "the record at seq {seq}, which a checkpoint names, was removed"
            ))),
        }
    }

    /// The chain's last record, which must verify with this sink's key.
    async fn read_last_record(&self, client: &Client) -> Result<Head, PgError> {
        let row = client
            .query_opt(
                "SELECT seq, hash, record::text FROM audit_events WHERE chain_id = $1 \
                 AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
                &[&self.chain_id],
            )
            .await
            .map_err(PgError::db("read chain head"))?;
        let Some(row) = row else {
            return Ok(Head {
                next_seq: 0,
                hash: ZERO_HASH.to_owned(),
            });
        };
        // A NULL (the owner dropped the NOT NULL constraints) is an error,
        // not a panic.
        let (seq, hash, record): (i64, String, String) = (
            row.try_get(0).map_err(PgError::db("read chain head"))?,
            row.try_get(1).map_err(PgError::db("read chain head"))?,
            row.try_get(2).map_err(PgError::db("read chain head"))?,
        );
        let record: Value = serde_json::from_str(&record)
            .map_err(|_| PgError::Incompatible("the chain's last record is not JSON"))?;
        let computed = self.hasher.hash_record(&record)?;
        if !same_hash(&computed, &hash) {
            return Err(PgError::Incompatible(
                "the chain's last record does not verify with this key",
            ));
        }
        // A record verifies wherever it is copied: it must also be the
        // record of this chain at this row's seq, with this row's hash.
        let chain = record.get("chain");
        let field = |name: &str| chain.and_then(|c| c.get(name));
        let in_place = field("id").and_then(Value::as_str) == Some(self.chain_id.as_str())
            && field("seq").and_then(Value::as_i64) == Some(seq)
            && field("hash").and_then(Value::as_str) == Some(hash.as_str());
        if !in_place {
            return Err(PgError::Incompatible(
                "the chain's last row holds a record of another chain or seq",
            ));
        }
        Ok(Head {
            next_seq: u64::try_from(seq).unwrap_or(0) + 1,
            hash,
        })
    }

    /// Writes `batch` (possibly empty) after the committed outbox rows, with
    /// a checkpoint when one is due or `checkpoint` names a reason, in one
    /// transaction; retried with backoff until `retry_for` is spent.
    async fn write_retrying(
        &mut self,
        batch: &[AuditEvent],
        checkpoint: Option<&'static str>,
    ) -> Result<Written, PgError> {
        // A doubt left by an earlier batch is settled by the head read at
        // reconnection: its records, if committed, precede this batch's.
        self.in_doubt = None;
        let deadline = Instant::now() + self.retry_for;
        let mut pause = self.backoff_min;
        loop {
            let result = match tokio::time::timeout(
                self.io_timeout,
                self.attempt(batch, checkpoint),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(PgError::Timeout {
                    operation: "write batch",
                }),
            };
            let error = match result {
                Ok(written) => return Ok(written),
                Err(error) => error,
            };
            self.reset();
            if !error.is_retryable() || Instant::now() + pause > deadline {
                return Err(error);
            }
            metrics::counter!("guardrails_audit_postgres_retries_total").increment(1);
            tracing::warn!(
                target: "audit",
                chain_id = %self.chain_id,
                %error,
                retry_in_ms = pause.as_millis() as u64,
                "audit database write failed; retrying"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.backoff_max);
        }
    }

    async fn attempt(
        &mut self,
        batch: &[AuditEvent],
        checkpoint: Option<&'static str>,
    ) -> Result<Written, PgError> {
        self.ensure_ready().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(PgError::Closed);
        };
        if let Some((seq, hash)) = self.in_doubt.clone() {
            // The previous attempt of this batch may have committed after
            // all: then its first record is at its seq, with its hash (the
            // encoding is deterministic), and nothing is written again.
            let found = conn
                .client
                .query_opt(
                    "SELECT hash FROM audit_events WHERE chain_id = $1 AND seq = $2",
                    &[&self.chain_id, &seq],
                )
                .await
                .map_err(PgError::db("look for a committed batch"))?;
            // Not found is not settled yet: the server may still be
            // completing that COMMIT (a slow disk, a synchronous standby)
            // after the connection that sent it was dropped. The doubt
            // stays until this attempt's COPY has claimed the same seqs
            // (the unique index waits for that transaction and refuses
            // the COPY if it commits), or a later look-up finds it.
            if found.is_some_and(|row| same_hash(row.get::<_, &str>(0), &hash)) {
                self.in_doubt = None;
                // The head was read before this commit landed: read it again
                // before the next batch, which would otherwise collide with
                // this batch's records and be taken for another writer's.
                self.head = None;
                metrics::counter!("guardrails_audit_postgres_recovered_batches_total").increment(1);
                tracing::info!(
                    target: "audit",
                    chain_id = %self.chain_id,
                    seq,
                    "audit batch was committed before its acknowledgement was lost"
                );
                return Ok(Written {
                    first_seq: u64::try_from(seq).unwrap_or(0),
                });
            }
        }
        let mut head = self.head.clone().ok_or(PgError::Closed)?;
        let tx = conn
            .client
            .transaction()
            .await
            .map_err(PgError::db("begin"))?;
        self.rows.clear();
        let mut outbox_ids: Vec<i64> = Vec::new();
        if self.outbox_limit > 0 {
            let max = i32::try_from(MAX_OUTBOX_RECORD_BYTES).unwrap_or(i32::MAX);
            let budget = i64::try_from(OUTBOX_RELAY_BYTES).unwrap_or(i64::MAX);
            let taken = tx
                .query(&conn.take_outbox, &[&self.outbox_limit, &max, &budget])
                .await
                .map_err(PgError::db("read outbox"))?;
            let bytes = |size: i32| usize::try_from(size).unwrap_or(usize::MAX);
            let plan = relay_plan(taken.iter().map(|row| Measured {
                id: row.get(0),
                stored: bytes(row.get(1)),
                text: row.get::<_, Option<i32>>(2).map(bytes),
            }));
            let read: Vec<i64> = plan.iter().filter(|r| r.fits()).map(|r| r.id).collect();
            let mut texts: HashMap<i64, String> = HashMap::with_capacity(read.len());
            if !read.is_empty() {
                for row in tx
                    .query(READ_OUTBOX, &[&read])
                    .await
                    .map_err(PgError::db("read outbox"))?
                {
                    texts.insert(row.get(0), row.get(1));
                }
            }
            for row in plan {
                let text = match texts.remove(&row.id) {
                    Some(text) => Some(text),
                    None if !row.fits() => None,
                    // Cannot be: the row is locked by this transaction.
                    None => continue,
                };
                outbox_ids.push(row.id);
                let relayed = match text.as_deref().map(serde_json::from_str::<Value>) {
                    None => Err(Unusable::TooLarge),
                    Some(Ok(Value::Object(mut map))) => {
                        // Possibly a row written by hand, not by `record_in`.
                        crate::event::escape_raw_record(&mut map);
                        self.rows
                            .push_record(&self.hasher, &self.chain_id, &mut head, map)
                    }
                    Some(_) => Err(Unusable::NotAnAuditRecord),
                };
                if let Err(why) = relayed {
                    let rejected = outbox_rejected(row, why, text.as_deref());
                    self.rows.push_event(
                        &self.hasher,
                        &self.chain_id,
                        &mut head,
                        &rejected,
                        &mut self.scratch,
                    )?;
                }
            }
        }
        let relayed = self.rows.len();
        let first_seq = head.next_seq;
        if relayed > 0 || !batch.is_empty() {
            let copied = copy_rows(
                &tx,
                &conn.copy,
                Encoder {
                    hasher: &self.hasher,
                    chain_id: &self.chain_id,
                    head: &mut head,
                    scratch: &mut self.scratch,
                },
                &mut self.rows,
                batch,
            )
            .await;
            if let Err(error) = copied {
                // With a doubt pending, the record at the seq is most likely
                // the late commit of this batch's earlier attempt: the
                // retry's look-up settles it, no other writer is involved.
                if self.in_doubt.is_none() && violates_chain_seq(&error) {
                    drop(tx);
                    if let Some(seq) =
                        conflicting_seq(&conn.client, &self.chain_id, &self.rows).await?
                    {
                        metrics::counter!("guardrails_audit_postgres_chain_conflicts_total")
                            .increment(1);
                        tracing::error!(
                            target: "audit",
                            chain_id = %self.chain_id,
                            seq,
                            "another writer appends to this audit chain; give every writer its own chain id"
                        );
                        return Err(PgError::ChainConflict { seq });
                    }
                }
                return Err(error);
            }
            // The COPY holds the seqs from the head on, which the attempt in
            // doubt held too: that transaction ended without committing.
            self.in_doubt = None;
        }
        let written = self.rows.len();
        if !outbox_ids.is_empty() {
            tx.execute(
                "DELETE FROM audit_outbox WHERE id = ANY($1)",
                &[&outbox_ids],
            )
            .await
            .map_err(PgError::db("delete relayed outbox rows"))?;
        }
        let since = self.since_checkpoint + written as u64;
        let reason = checkpoint.or_else(|| {
            let interval = since > 0 && self.last_checkpoint.elapsed() >= self.checkpoint_every;
            if since >= self.checkpoint_every_events {
                Some("count")
            } else if interval {
                Some("interval")
            } else {
                None
            }
        });
        if let Some(reason) = reason
            && head.next_seq > 0
        {
            let line = checkpoint_line(
                self.signer.as_ref(),
                &self.chain_id,
                head.next_seq - 1,
                &head.hash,
                reason,
            )?;
            let record = String::from_utf8_lossy(&line);
            let seq = i64::try_from(head.next_seq - 1).unwrap_or(i64::MAX);
            tx.execute(
                "INSERT INTO audit_checkpoints (chain_id, seq, hash, record) \
                 VALUES ($1, $2, $3, $4::text::jsonb)",
                &[&self.chain_id, &seq, &head.hash, &record.as_ref()],
            )
            .await
            .map_err(PgError::db("write checkpoint"))?;
        }
        // From here on the outcome may be unknown until the database is read.
        if written > relayed {
            self.in_doubt = Some((self.rows.seq[relayed], self.rows.hash[relayed].clone()));
        }
        tx.commit().await.map_err(PgError::db("commit"))?;
        self.in_doubt = None;
        self.head = Some(head);
        if reason.is_some() {
            self.since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        } else {
            self.since_checkpoint = since;
        }
        if relayed > 0 {
            metrics::counter!("guardrails_audit_postgres_outbox_relayed_total")
                .increment(relayed as u64);
        }
        Ok(Written { first_seq })
    }

    async fn write_events(&mut self, batch: &[AuditEvent]) -> Result<WriteReceipt, SinkError> {
        if self.stopped {
            return Err(SinkError::Unavailable("the PostgreSQL sink is closed"));
        }
        let written = self.write_retrying(batch, None).await?;
        Ok(WriteReceipt {
            first_seq: Some(written.first_seq),
            durable: self.durable,
        })
    }

    async fn maintain(&mut self) -> Result<(), SinkError> {
        if self.stopped {
            return Ok(());
        }
        // While the server is away, try again at most every backoff_max:
        // a tick must not hold the writer in connection attempts.
        if self.conn.is_none()
            && self
                .last_failure
                .is_some_and(|at| at.elapsed() < self.backoff_max)
        {
            return Ok(());
        }
        let result = match tokio::time::timeout(self.io_timeout, self.attempt(&[], None)).await {
            Ok(result) => result,
            Err(_) => Err(PgError::Timeout { operation: "tick" }),
        };
        if let Err(error) = result {
            self.reset();
            return Err(error.into());
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), SinkError> {
        if self.stopped {
            return Ok(());
        }
        let event =
            AuditEvent::new(ACTION_STOPPED, Category::System).with_outcome(Outcome::Success);
        let result = self
            .write_retrying(std::slice::from_ref(&event), Some("shutdown"))
            .await;
        self.stopped = true;
        self.conn = None;
        result.map(|_| ()).map_err(SinkError::from)
    }
}

/// The record that takes the place of an outbox row the sink cannot relay
/// as it is (`why`), so that the row leaves the outbox without being lost:
/// its id, its sizes and the start of its `text` when it was read.
fn outbox_rejected(row: Measured, why: Unusable, text: Option<&str>) -> AuditEvent {
    let mut event = AuditEvent::new(ACTION_OUTBOX_REJECTED, Category::System)
        .with_outcome(Outcome::Failure)
        .with_reason(why.reason())
        .with_detail("outbox_id", row.id)
        .with_detail("stored_bytes", row.stored);
    if let Some(size) = row.text {
        event = event.with_detail("text_bytes", size);
    }
    if let Some(text) = text {
        let kept: String = text.chars().take(REJECTED_TEXT_CHARS).collect();
        event = event.with_detail("record", kept);
    }
    crate::event::escape_raw_controls(&mut event);
    event
}

/// What chains events after the head.
struct Encoder<'a> {
    hasher: &'a ChainHasher,
    chain_id: &'a str,
    head: &'a mut Head,
    scratch: &'a mut Vec<u8>,
}

/// Streams `rows` (the relayed outbox records), then the events of `batch`
/// as they are chained and encoded, into one `COPY … FROM STDIN (FORMAT
/// binary)`: the server works on a chunk while the next one is encoded.
/// `rows` ends up holding every row written.
async fn copy_rows(
    tx: &Transaction<'_>,
    copy: &Statement,
    encoder: Encoder<'_>,
    rows: &mut Rows,
    batch: &[AuditEvent],
) -> Result<(), PgError> {
    let sink = tx
        .copy_in::<_, bytes::Bytes>(copy)
        .await
        .map_err(PgError::db("copy events"))?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &COPY_TYPES));
    let mut sent = 0;
    let mut events = batch.chunks(COPY_CHUNK);
    loop {
        for i in sent..rows.len() {
            let record = JsonbText(&rows.record[i]);
            writer
                .as_mut()
                .write(&[
                    &encoder.chain_id,
                    &rows.seq[i],
                    &rows.prev[i],
                    &rows.hash[i],
                    &rows.id[i],
                    &rows.time[i],
                    &rows.action[i],
                    &rows.category[i],
                    &rows.outcome[i],
                    &rows.reason[i],
                    &rows.actor[i],
                    &rows.tenant[i],
                    &rows.auth_method[i],
                    &rows.target_type[i],
                    &rows.target_id[i],
                    &rows.source_ip[i],
                    &rows.request_id[i],
                    &rows.method[i],
                    &rows.route[i],
                    &rows.status[i],
                    &rows.duration_us[i],
                    &record,
                ])
                .await
                .map_err(PgError::db("copy events"))?;
        }
        sent = rows.len();
        let Some(chunk) = events.next() else { break };
        for event in chunk {
            rows.push_event(
                encoder.hasher,
                encoder.chain_id,
                encoder.head,
                event,
                encoder.scratch,
            )?;
        }
    }
    let copied = writer.finish().await.map_err(PgError::db("copy events"))?;
    if copied != rows.len() as u64 {
        return Err(PgError::Incompatible(
            "the server stored another number of rows than were sent",
        ));
    }
    Ok(())
}

/// Whether `error` is a second record at a `(chain_id, seq)`.
fn violates_chain_seq(error: &PgError) -> bool {
    let PgError::Database { driver, .. } = error else {
        return false;
    };
    driver.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(CHAIN_SEQ_CONSTRAINT)
    })
}

/// After a refused `COPY` (its transaction rolled back): the first seq of
/// `rows` that the chain holds with another hash, i.e. that another writer
/// appended. `None` when every stored record in the range is this sink's
/// own (then the refusal is retried like any database error: the head is
/// read again, and nothing is written twice at one seq).
async fn conflicting_seq(
    client: &Client,
    chain_id: &str,
    rows: &Rows,
) -> Result<Option<u64>, PgError> {
    let (Some(first), Some(last)) = (rows.seq.first(), rows.seq.last()) else {
        return Ok(None);
    };
    let existing = client
        .query(
            "SELECT seq, hash FROM audit_events WHERE chain_id = $1 AND seq BETWEEN $2 AND $3 \
             ORDER BY seq",
            &[&chain_id, first, last],
        )
        .await
        .map_err(PgError::db("compare existing records"))?;
    for row in existing {
        let seq: i64 = row.get(0);
        // A NULL hash (a constraint the owner dropped) is no record of ours.
        let hash: &str = row
            .try_get::<_, Option<&str>>(1)
            .ok()
            .flatten()
            .unwrap_or("");
        let index = usize::try_from(seq.saturating_sub(*first)).unwrap_or(usize::MAX);
        let ours = rows.hash.get(index).map(String::as_str).unwrap_or("");
        if !same_hash(ours, hash) {
            return Ok(Some(u64::try_from(seq).unwrap_or(0)));
        }
    }
    Ok(None)
}

impl AuditSink for PostgresSink {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn write_batch<'a>(&'a mut self, batch: &'a [AuditEvent]) -> SinkFuture<'a, WriteReceipt> {
        Box::pin(self.write_events(batch))
    }

    fn tick(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(self.maintain())
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(self.stop())
    }
}
