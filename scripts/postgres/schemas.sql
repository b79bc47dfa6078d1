-- Per-database layout: one schema per service, owned by that service's role (roles.sql).
-- Idempotent; run as the admin superuser while connected to the database: by scripts/stack on
-- `wildrydes`, by docker-compose's postgres entrypoint as 02-schemas.sql, and by the
-- integration tests (include_str!) on each per-test database. Plain SQL in one simple-query
-- call: no psql meta-commands.
--
-- Result: payment_service can use and create objects in schema `payment` only,
-- accounting_service in schema `accounting` only; nobody else but the superuser can use either,
-- and schema `public` is closed to everybody.

CREATE SCHEMA IF NOT EXISTS payment AUTHORIZATION payment_service;
ALTER SCHEMA payment OWNER TO payment_service;
REVOKE ALL ON SCHEMA payment FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS accounting AUTHORIZATION accounting_service;
ALTER SCHEMA accounting OWNER TO accounting_service;
REVOKE ALL ON SCHEMA accounting FROM PUBLIC;

REVOKE ALL ON SCHEMA public FROM PUBLIC;

DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format(
        'GRANT CONNECT ON DATABASE %I TO payment_service, accounting_service',
        current_database()
    );
END
$$;
