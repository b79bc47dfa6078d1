-- Every attempt of a compensation (release, refund), for operators and for the proof that no
-- two attempts of one fare ever ran at once (one claim at a time, whatever the instances).

-- when the attempt under way was claimed (database clock); NULL when none is
ALTER TABLE fares ADD COLUMN compensation_claimed_at TIMESTAMPTZ;

CREATE TABLE compensation_attempts (
    fare_id     TEXT NOT NULL REFERENCES fares (fare_id),
    operation   TEXT NOT NULL CHECK (operation IN ('release', 'refund')),
    attempt     INT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- approved, refused (tried again later) or given_up (the budget was spent)
    outcome     TEXT NOT NULL CHECK (outcome IN ('approved', 'refused', 'given_up')),
    detail      TEXT,
    PRIMARY KEY (fare_id, operation, attempt)
);
