-- Optional hardening for a trail shared by instances that do not trust each
-- other: each chain may then be appended to only by the role that registered
-- it (schema version 3 records it in audit_chains.registered_by), and a
-- chain id no role registered takes no rows. Give each instance a login role
-- of its own, with the privileges of writer_role.sql (not a shared group
-- role: every member may SET ROLE to it; nor credentials that create a new
-- role per lease, whose chains a later lease could not continue).
--
-- What it does not stop: a hostile instance can still hold a transaction
-- that inserted a row at another chain's next seq without committing it (the
-- check runs at the end of the statement), which makes the other sink's
-- insert wait on the unique index until its I/O timeout; and it can delete
-- or lock outbox rows, as every writer role may (the relay needs it).
--
-- Chains registered before schema version 3 (registered_by NULL) stay open
-- to every role; the owner can give them an owner:
--
--   BEGIN;
--   ALTER TABLE audit_chains DISABLE TRIGGER audit_chains_append_only;
--   UPDATE audit_chains SET registered_by = 'audit_writer_a' WHERE chain_id = 'host-1';
--   ALTER TABLE audit_chains ENABLE TRIGGER audit_chains_append_only;
--   COMMIT;
--
-- Run as the owner of the tables, after migrate(). It costs every insert
-- statement into audit_events and audit_checkpoints a check of its rows:
-- about 5 to 10 % of the PostgreSQL sink's throughput on the development
-- machine (benches/README.md). Chains registered before schema version 3
-- stay open to every writer role. The owner of the tables can drop these
-- triggers, as any other: the hash chain and the checkpoints kept off the
-- database are what detect the owner's changes.
DROP TRIGGER IF EXISTS audit_events_own_chains ON audit_events;
CREATE TRIGGER audit_events_own_chains
    AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION guardrails_audit_own_chains();

DROP TRIGGER IF EXISTS audit_checkpoints_own_chains ON audit_checkpoints;
CREATE TRIGGER audit_checkpoints_own_chains
    AFTER INSERT ON audit_checkpoints
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION guardrails_audit_own_chains();
