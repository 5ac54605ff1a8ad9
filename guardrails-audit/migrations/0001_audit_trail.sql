-- guardrails-audit PostgreSQL schema, version 1.
--
-- Applied by `guardrails_audit::sink::postgres::migrate()`, inside one
-- transaction under an advisory lock, and recorded in
-- guardrails_audit_migrations; never edit a shipped migration, add the next.
--
-- Every table that holds evidence is append-only: BEFORE UPDATE OR DELETE row
-- triggers and a BEFORE TRUNCATE statement trigger raise. A table owner or a
-- superuser can still drop the triggers; the hash chain and the signed
-- checkpoints exist so that such a change is detected by verify().

-- One row per chain: a writer instance registers its chain before its first
-- record, so that a chain whose records were all removed is still known.
CREATE TABLE audit_chains (
    chain_id    text        PRIMARY KEY CHECK (length(chain_id) BETWEEN 1 AND 200),
    alg         text        NOT NULL CHECK (alg IN ('sha256', 'hmac-sha256')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    instance    text
);

-- The audit trail: the event's columns for queries, the chain columns, and
-- the whole record (exactly what was hashed, with chain.hash) as jsonb.
CREATE TABLE audit_events (
    -- No foreign key to audit_chains: a per-row RI check (and row lock) is
    -- the most expensive part of a bulk insert; verify() reports records of
    -- unregistered chains instead.
    chain_id     text        NOT NULL,
    seq          bigint      NOT NULL CHECK (seq >= 0),
    -- Lower-case hex of 32 bytes (decode() refuses other characters; lower()
    -- under the "C" collation folds ASCII only, without the locale's wide
    -- character path): cheaper per inserted row than a regular expression.
    prev         text        NOT NULL CHECK (octet_length(prev) = 64
                                             AND length(decode(prev, 'hex')) = 32
                                             AND prev = lower(prev COLLATE "C")),
    hash         text        NOT NULL CHECK (octet_length(hash) = 64
                                             AND length(decode(hash, 'hex')) = 32
                                             AND hash = lower(hash COLLATE "C")),
    id           uuid        NOT NULL,
    time         timestamptz NOT NULL,
    action       text        NOT NULL,
    category     text        NOT NULL,
    outcome      text        NOT NULL,
    reason       text,
    actor        text,
    tenant       text,
    auth_method  text,
    target_type  text,
    target_id    text,
    source_ip    text,
    request_id   text,
    method       text,
    route        text,
    status       integer,
    duration_us  bigint,
    record       jsonb       NOT NULL,
    -- The identity of a record is its chain position. Event ids are not
    -- unique here: a record is never refused (and its batch with it) because
    -- an application recorded the same event twice.
    CONSTRAINT audit_events_chain_seq UNIQUE (chain_id, seq)
);

-- The queries an operator runs, all paginated by (time, id).
CREATE INDEX audit_events_tenant_time ON audit_events (tenant, time, id);
CREATE INDEX audit_events_actor_time ON audit_events (actor, time, id);
CREATE INDEX audit_events_time ON audit_events (time, id);
CREATE INDEX audit_events_request_id ON audit_events (request_id)
    WHERE request_id IS NOT NULL;

-- Signed checkpoints, one JSON object each in the same format as the file
-- sink's checkpoint lines (guardrails.audit.checkpoint/1).
CREATE TABLE audit_checkpoints (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id    text        NOT NULL,
    seq         bigint      NOT NULL,
    hash        text        NOT NULL,
    time        timestamptz NOT NULL DEFAULT now(),
    record      jsonb       NOT NULL
);
CREATE INDEX audit_checkpoints_chain ON audit_checkpoints (chain_id, seq);

-- The transactional outbox: record_in() inserts here inside the
-- application's own transaction; the sink moves committed rows into a chain
-- (DELETE ... and INSERT INTO audit_events in one transaction).
CREATE TABLE audit_outbox (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    record      jsonb       NOT NULL
);

CREATE FUNCTION guardrails_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'guardrails-audit: % on % is not allowed: the audit trail is append-only',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION guardrails_audit_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION guardrails_audit_append_only();

CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION guardrails_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION guardrails_audit_append_only();

-- Outbox rows may be inserted and, once relayed, deleted; never changed.
-- (The writer holds a column UPDATE privilege only because row locks,
-- SELECT ... FOR UPDATE SKIP LOCKED, require one.)
CREATE TRIGGER audit_outbox_no_update
    BEFORE UPDATE ON audit_outbox
    FOR EACH ROW EXECUTE FUNCTION guardrails_audit_append_only();

CREATE TRIGGER audit_chains_append_only
    BEFORE UPDATE OR DELETE ON audit_chains
    FOR EACH ROW EXECUTE FUNCTION guardrails_audit_append_only();
CREATE TRIGGER audit_chains_no_truncate
    BEFORE TRUNCATE ON audit_chains
    FOR EACH STATEMENT EXECUTE FUNCTION guardrails_audit_append_only();
