-- The read API lists the fares in one status a page at a time, oldest first, each page
-- starting after the (created_at, fare_id) of the last one (GET /fares?status=…): this index
-- serves a page without sorting every fare in the status. It replaces its prefix fares_status.
CREATE INDEX fares_status_created ON fares (status, created_at, fare_id);
DROP INDEX fares_status;
