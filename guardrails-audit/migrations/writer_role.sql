-- The least privilege a guardrails-audit writer needs, for a role you create:
--
--   CREATE ROLE audit_writer LOGIN PASSWORD '...';   -- or a certificate
--
-- Run as the owner of the tables, after migrate(). The writer can append
-- records and read its chain head; it cannot change or remove a record
-- (no UPDATE, DELETE or TRUNCATE privilege, and the triggers refuse them
-- even for roles that have it). It may delete from the outbox only, which is
-- how the sink moves committed outbox rows into its chain.
GRANT SELECT, INSERT ON audit_chains, audit_events, audit_checkpoints TO audit_writer;
GRANT SELECT, INSERT, DELETE ON audit_outbox TO audit_writer;
-- SELECT ... FOR UPDATE SKIP LOCKED (how several sinks share the outbox)
-- needs an UPDATE privilege on some column; a trigger refuses every UPDATE.
GRANT UPDATE (created_at) ON audit_outbox TO audit_writer;

-- An application that only records through the outbox (record_in) needs:
--   GRANT INSERT ON audit_outbox TO app_role;
