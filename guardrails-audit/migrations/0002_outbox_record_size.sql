-- guardrails-audit PostgreSQL schema, version 2: outbox records are bounded
-- where they are written.
--
-- record_in() refuses records longer than MAX_OUTBOX_RECORD_BYTES (64 KiB as
-- text and as jsonb); a row inserted into audit_outbox by other means (the
-- application role may insert) is now refused by the database too, so the
-- cost of a huge record falls on whoever writes it, not on the sinks that
-- relay the outbox under their batches' I/O timeout. NOT VALID: rows already
-- in the outbox are not checked here; a sink rejects those that are too
-- large, unread (audit.outbox_rejected, reason too_large).
-- The constraint is added under a brief exclusive lock; rather than queue
-- every record_in() and relay behind a long application transaction that
-- holds the table, the migration gives up after a few seconds (migrate()
-- fails, nothing is changed; run it again).
SET LOCAL lock_timeout = '5s';

ALTER TABLE audit_outbox
    ADD CONSTRAINT audit_outbox_record_size
    CHECK (greatest(octet_length(record::text), pg_column_size(record)) <= 65536) NOT VALID;
