-- Cluster-wide login roles of the two services, and of the auditor (`fares audit`), which
-- may read both schemas and write nothing. Idempotent; run as the admin superuser
-- (wildrydes_admin) by scripts/stack, and by docker-compose's postgres entrypoint as
-- /docker-entrypoint-initdb.d/01-roles.sql. Per-database objects are in schemas.sql.
--
-- Each service connects as its own role and sees only its own schema (search_path below);
-- schemas.sql makes each role the owner of that schema and nothing else.
--
-- Run it once per cluster, not concurrently: two sessions altering the same role at the same
-- moment may fail with "tuple concurrently updated".

DO $$
BEGIN
    CREATE ROLE payment_service;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

DO $$
BEGIN
    CREATE ROLE accounting_service;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

ALTER ROLE payment_service
    LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD 'payment_service';
ALTER ROLE payment_service SET search_path = payment;

ALTER ROLE accounting_service
    LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD 'accounting_service';
ALTER ROLE accounting_service SET search_path = accounting;

-- `fares audit` reads both services' state to check SPEC §6; it never writes (read-only
-- transactions by default, and only SELECT granted in schemas.sql).
DO $$
BEGIN
    CREATE ROLE wildrydes_auditor;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

ALTER ROLE wildrydes_auditor
    LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD 'wildrydes_auditor';
ALTER ROLE wildrydes_auditor SET default_transaction_read_only = on;
