-- payment-service's schema: fares it registered, the outbox of events it emits, the inbox of
-- events it acted on, and the payment gateway simulator's own records.

CREATE TABLE fares (
    fare_id             TEXT PRIMARY KEY,
    request_event_id    UUID NOT NULL,
    correlation_id      UUID NOT NULL,
    -- UUIDv5 of the request's canonical data: tells an identical duplicate from a conflicting
    -- one without storing the payment token.
    request_fingerprint UUID NOT NULL,
    customer_id         TEXT,
    amount_minor        BIGINT CHECK (amount_minor > 0),
    currency            TEXT,
    status              TEXT NOT NULL CHECK (status IN (
                            'rejected', 'pre_authorised', 'pre_auth_failed', 'charged',
                            'charge_failed', 'pre_auth_released', 'refunding', 'refunded', 'refund_failed',
                            'collected', 'failed', 'needs_attention')),
    authorisation_id    TEXT,
    charge_id           TEXT,
    refund_id           TEXT,
    failure_reason      TEXT,
    compensations       TEXT[] NOT NULL DEFAULT '{}',
    -- a refund the gateway refused is retried later, off the consumer's path
    refund_attempts     INT NOT NULL DEFAULT 0,
    next_refund_at      TIMESTAMPTZ,
    -- the event that started the pending compensation (causation of what it emits)
    compensation_cause  UUID,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX fares_status ON fares (status);
CREATE INDEX fares_refund_due ON fares (next_refund_at) WHERE status = 'refunding';

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

-- The payment gateway simulator stands for an external system: it writes outside the
-- service's transactions, and remembers every completed operation by its idempotency key so a
-- retried call returns the first answer instead of moving money again.
CREATE TABLE gateway_operations (
    idempotency_key TEXT PRIMARY KEY,
    fare_id         TEXT NOT NULL,
    operation       TEXT NOT NULL CHECK (operation IN ('pre_authorise', 'capture', 'release', 'refund')),
    approved        BOOLEAN NOT NULL,
    reference       TEXT,
    decline_reason  TEXT,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX gateway_operations_fare_id ON gateway_operations (fare_id);
