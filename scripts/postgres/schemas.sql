-- Per-database layout: one schema per service, owned by that service's role (roles.sql).
-- Idempotent; run as the admin superuser while connected to the database: by scripts/stack on
-- `wildrydes`, by docker-compose's postgres entrypoint as 02-schemas.sql, and by the
-- integration tests (include_str!) on each per-test database. Plain SQL in one simple-query
-- call: no psql meta-commands.
--
-- Result: payment_service can use and create objects in schema `payment` only,
-- accounting_service in schema `accounting` only; nobody else but the superuser can use either,
-- schema `public` is closed to everybody, and wildrydes_auditor may read (SELECT) every table of
-- both schemas, present and future, and write nothing.

CREATE SCHEMA IF NOT EXISTS payment AUTHORIZATION payment_service;
ALTER SCHEMA payment OWNER TO payment_service;
REVOKE ALL ON SCHEMA payment FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS accounting AUTHORIZATION accounting_service;
ALTER SCHEMA accounting OWNER TO accounting_service;
REVOKE ALL ON SCHEMA accounting FROM PUBLIC;

REVOKE ALL ON SCHEMA public FROM PUBLIC;

GRANT USAGE ON SCHEMA payment, accounting TO wildrydes_auditor;
GRANT SELECT ON ALL TABLES IN SCHEMA payment, accounting TO wildrydes_auditor;
ALTER DEFAULT PRIVILEGES FOR ROLE payment_service IN SCHEMA payment
    GRANT SELECT ON TABLES TO wildrydes_auditor;
ALTER DEFAULT PRIVILEGES FOR ROLE accounting_service IN SCHEMA accounting
    GRANT SELECT ON TABLES TO wildrydes_auditor;

DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format(
        'GRANT CONNECT ON DATABASE %I TO payment_service, accounting_service, wildrydes_auditor',
        current_database()
    );
END
$$;
