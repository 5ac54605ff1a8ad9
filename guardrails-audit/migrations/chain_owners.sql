-- Optional hardening for a trail shared by instances that do not trust each
-- other: each chain may then be appended to only by the role that registered
-- it (schema version 3 records it in audit_chains.registered_by). Give each
-- instance a login role of its own, with the privileges of writer_role.sql.
--
-- Run as the owner of the tables, after migrate(). It costs every insert
-- statement into audit_events and audit_checkpoints a check of its rows:
-- about 5 to 10 % of the PostgreSQL sink's throughput on the development
-- machine (benches/README.md). Chains registered before schema version 3
-- stay open to every writer role. The owner of the tables can drop these
-- triggers, as any other: the hash chain and the checkpoints kept off the
-- database are what detect the owner's changes.
CREATE TRIGGER audit_events_own_chains
    AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION guardrails_audit_own_chains();

CREATE TRIGGER audit_checkpoints_own_chains
    AFTER INSERT ON audit_checkpoints
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION guardrails_audit_own_chains();
