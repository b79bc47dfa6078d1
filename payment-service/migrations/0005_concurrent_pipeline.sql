-- A fare's pre-authorisation is asked of the gateway outside any transaction: the fare is
-- registered first, `pre_authorising`, and the gateway's answer recorded after.
ALTER TABLE fares DROP CONSTRAINT fares_status_check;
ALTER TABLE fares ADD CONSTRAINT fares_status_check CHECK (status IN (
    'rejected', 'pre_authorising', 'pre_authorised', 'pre_auth_failed', 'charged', 'charge_failed',
    'releasing', 'pre_auth_released', 'release_failed',
    'refunding', 'refunded', 'refund_failed',
    'collected', 'failed', 'needs_attention'));

-- The pruner deletes inbox rows older than the retention window: a BRIN index finds them
-- cheaply on a table written in time order, and costs next to nothing to keep up.
CREATE INDEX inbox_processed_at ON inbox USING brin (processed_at);
