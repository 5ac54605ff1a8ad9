-- guardrails-audit PostgreSQL schema, version 3: every chain records the
-- role that registered it.
--
-- Every writer role may insert records and checkpoints into every chain: an
-- instance that turned hostile could append a record that does not verify
-- at another chain's next seq (its sink then refuses its head) or, holding
-- the same chain key, one that does (it writes in the other's name). With
-- one login role per instance, migrations/chain_owners.sql (not applied by
-- migrate(): it costs every insert statement a check) lets each role append
-- only to the chains it registered, using the column and the function
-- below. Chains registered before this version (registered_by NULL) stay
-- open to every writer role. Ownership is by role name: a renamed role loses
-- its chains, and a new role given a dropped role's name takes them.
SET LOCAL lock_timeout = '5s';

ALTER TABLE audit_chains ADD COLUMN registered_by text;

-- Whoever registers a chain owns it; the column is not the inserter's to set.
CREATE FUNCTION guardrails_audit_register_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.registered_by := current_user;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_chains_registered_by
    BEFORE INSERT ON audit_chains
    FOR EACH ROW EXECUTE FUNCTION guardrails_audit_register_chain();

-- Refuses an insert statement that adds rows to a chain this role did not
-- register: one registered by another role, or not registered at all (a
-- chain id taken before its instance registers it). Chains registered
-- before this version (registered_by NULL) take rows from every role. A
-- statement-level trigger over the statement's rows: row-level security
-- does not apply to COPY, which the sink writes with.
CREATE FUNCTION guardrails_audit_own_chains() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1
        FROM (SELECT DISTINCT chain_id FROM new_rows) AS n
        WHERE NOT EXISTS (
            SELECT 1 FROM audit_chains AS c
            WHERE c.chain_id = n.chain_id
              AND (c.registered_by IS NULL OR c.registered_by = current_user)
        )
    ) THEN
        RAISE EXCEPTION 'guardrails-audit: % may append only to the audit chains it registered',
            current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;

-- The functions run with the inserting role's rights: their names resolve in
-- this schema only, never in a temporary table of the same name that the
-- role created (temporary schemas come first in the default search path).
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.guardrails_audit_own_chains() SET search_path = pg_catalog, %I, pg_temp',
        current_schema(), current_schema());
    EXECUTE format(
        'ALTER FUNCTION %I.guardrails_audit_register_chain() SET search_path = pg_catalog, %I, pg_temp',
        current_schema(), current_schema());
END;
$$;
