-- The transaction that recorded each request. A key rebuilt from a Postgres snapshot remembers
-- that snapshot, so settle.lua can tell whether the rebuild already counted an event.
ALTER TABLE billing_requests ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
