-- The pruner deletes inbox rows older than the retention window: a BRIN index finds them
-- cheaply on a table written in time order, and costs next to nothing to keep up.
CREATE INDEX inbox_processed_at ON inbox USING brin (processed_at);
