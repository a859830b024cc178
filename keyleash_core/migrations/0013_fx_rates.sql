-- Exchange rates an admin set (SetExchangeRate), global to the deployment, over the shipped
-- table (keyleash_core/fx/rates.json). Append-only: the newest revision of a pair is in force,
-- and the highest revision names the table's version ("<shipped version>+r<revision>").
CREATE TABLE fx_rates (
    revision        bigserial PRIMARY KEY,
    base_currency   text NOT NULL,
    quote_currency  text NOT NULL,
    rate_ppb        bigint NOT NULL CHECK (rate_ppb > 0),
    set_by          text NOT NULL DEFAULT '',
    create_time     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fx_rates_pair ON fx_rates (base_currency, quote_currency, revision DESC);

-- A billing event in another currency than a cap of its key chain carries its amount in every
-- such currency, converted at the rate in force when it was recorded:
-- {"USD": {"micros": 1080000, "rate": "1.08", "version": "2026-12-01"}}. Spend windows rebuilt
-- from billing_events count it in a cap's currency from here.
ALTER TABLE billing_events ADD COLUMN converted jsonb NOT NULL DEFAULT '{}';
