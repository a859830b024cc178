-- A decision's settled cost counts only the billing events of the key that placed its
-- reservation (in its tenant): a reservation id named by another key's Charge (refused since
-- this migration, but possibly recorded before it) is never shown as this decision's cost.
CREATE OR REPLACE VIEW authorization_ledger AS
SELECT a.*,
       COALESCE(b.settled_micros, 0) AS settled_micros,
       COALESCE(b.settled_events, 0) AS settled_events
FROM authorizations a
LEFT JOIN LATERAL (
    SELECT SUM(e.amount_micros) AS settled_micros, COUNT(*) AS settled_events
    FROM billing_events e
    WHERE a.reservation_id <> '' AND e.reservation_id = a.reservation_id
      AND e.tenant_id = a.tenant_id AND e.key_id = a.key_id
) b ON true;

-- Charge asks whether a key placed a reservation Redis no longer holds (expired or lost).
CREATE INDEX authorizations_reservation ON authorizations (reservation_id)
    WHERE reservation_id <> '';
