-- accounting-service's schema: customer accounts, the append-only ledger, credits it could
-- not make, the outbox of events it emits and the inbox of events it acted on.

CREATE TABLE accounts (
    customer_id   TEXT NOT NULL,
    currency      TEXT NOT NULL,
    balance_minor BIGINT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, currency)
);

CREATE TABLE ledger_entries (
    id                  BIGSERIAL PRIMARY KEY,
    customer_id         TEXT NOT NULL,
    currency            TEXT NOT NULL,
    -- one entry per fare: a second credit for the same fare is impossible
    fare_id             TEXT NOT NULL UNIQUE,
    amount_minor        BIGINT NOT NULL CHECK (amount_minor > 0),
    balance_after_minor BIGINT NOT NULL,
    charge_event_id     UUID NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (customer_id, currency) REFERENCES accounts (customer_id, currency)
);

-- The ledger is append-only: entries are never changed or removed.
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only';
END;
$$;
CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

CREATE TABLE credit_failures (
    fare_id         TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    reason          TEXT NOT NULL,
    charge_event_id UUID NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    message_key  TEXT,
    payload      BYTEA NOT NULL,
    headers      JSONB NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_message_key ON outbox (message_key);

CREATE TABLE inbox (
    event_id         UUID PRIMARY KEY,
    event_type       TEXT NOT NULL,
    fare_id          TEXT NOT NULL,
    source_topic     TEXT NOT NULL,
    source_partition INT NOT NULL,
    source_offset    BIGINT NOT NULL,
    processed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inbox_fare_id ON inbox (fare_id);
