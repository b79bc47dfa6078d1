-- What an event said (UUIDv5 of its type and canonical data), so that a reused event_id with
-- other content or for another fare is told from a redelivery (SPEC §3). NULL for rows
-- written before this migration.
ALTER TABLE inbox ADD COLUMN fingerprint UUID;
