-- The read API lists a customer's ledger entries a page at a time, newest first
-- (GET /accounts/{customer_id}): this index serves a page without reading the whole ledger.
CREATE INDEX ledger_entries_customer ON ledger_entries (customer_id, id);
