-- Compensations (release and refund) are retried off the consumer's path within a budget of
-- time, not of attempts (SPEC §4): the refund columns become the columns of either
-- compensation, with the deadline after which it is given up (database clock).
-- A release now has its own states: `releasing` (retried) and `release_failed`.

ALTER TABLE fares DROP CONSTRAINT fares_status_check;
ALTER TABLE fares ADD CONSTRAINT fares_status_check CHECK (status IN (
    'rejected', 'pre_authorised', 'pre_auth_failed', 'charged', 'charge_failed',
    'releasing', 'pre_auth_released', 'release_failed',
    'refunding', 'refunded', 'refund_failed',
    'collected', 'failed', 'needs_attention'));

ALTER TABLE fares RENAME COLUMN refund_attempts TO compensation_attempts;
ALTER TABLE fares RENAME COLUMN next_refund_at TO next_compensation_at;
-- when the pending compensation is given up (RefundFailed / ReleaseFailed)
ALTER TABLE fares ADD COLUMN compensation_deadline TIMESTAMPTZ;
UPDATE fares SET compensation_deadline = now() + interval '6 hours' WHERE status = 'refunding';

DROP INDEX fares_refund_due;
CREATE INDEX fares_compensation_due ON fares (next_compensation_at)
    WHERE status IN ('releasing', 'refunding');

-- What an event said (UUIDv5 of its type and canonical data), so that a reused event_id with
-- other content or for another fare is told from a redelivery (SPEC §3). NULL for rows
-- written before this migration.
ALTER TABLE inbox ADD COLUMN fingerprint UUID;
