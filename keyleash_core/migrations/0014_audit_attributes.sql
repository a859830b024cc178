-- The audit keeps each call's attributes (the gateway's parameters: Stripe customer and
-- currency, Twilio to/from, an x402 payment's payee, asset, network, amount and nonce), so a
-- decision shows what it was about even when it was denied and no billing event exists.
ALTER TABLE authorizations ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}'::jsonb;

-- The view expands a.* when created: create it again to carry the new column.
DROP VIEW authorization_ledger;
CREATE VIEW authorization_ledger AS
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
