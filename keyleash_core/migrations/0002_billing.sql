-- The billing event stream (metering): append-only, the source of truth for spend.
CREATE TABLE billing_events (
    event_id             uuid NOT NULL,
    request_id           text NOT NULL,
    tenant_id            text NOT NULL,
    key_id               text NOT NULL,
    parent_key_id        text NOT NULL DEFAULT '',
    -- Root first, the spending key last: a key's spend with its descendants is
    -- `key_path @> ARRAY[key_id]`.
    key_path             text[] NOT NULL,
    agent_id             text NOT NULL DEFAULT '',
    agent_run_id         text NOT NULL DEFAULT '',
    trace_id             text NOT NULL DEFAULT '',
    kind                 text NOT NULL CHECK (kind IN ('charge', 'usage', 'refund', 'release')),
    currency_code        text NOT NULL,
    amount_micros        bigint NOT NULL,
    vendor               text NOT NULL DEFAULT '',
    endpoint             text NOT NULL DEFAULT '',
    model                text NOT NULL DEFAULT '',
    input_tokens         bigint NOT NULL DEFAULT 0,
    output_tokens        bigint NOT NULL DEFAULT 0,
    cached_input_tokens  bigint NOT NULL DEFAULT 0,
    reason               text NOT NULL DEFAULT '',
    cost_source          text NOT NULL DEFAULT '',
    vendor_request_id    text NOT NULL DEFAULT '',
    reservation_id       text NOT NULL DEFAULT '',
    attributes           jsonb NOT NULL DEFAULT '{}',
    occur_time           timestamptz NOT NULL,
    record_time          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, occur_time)
) PARTITION BY RANGE (occur_time);

CREATE TABLE billing_events_default PARTITION OF billing_events DEFAULT;
CREATE INDEX billing_events_time_brin ON billing_events USING brin (occur_time);
CREATE INDEX billing_events_tenant_time ON billing_events (tenant_id, occur_time);
CREATE INDEX billing_events_run ON billing_events (agent_run_id, occur_time) WHERE agent_run_id <> '';
CREATE INDEX billing_events_key_path ON billing_events USING gin (key_path);
CREATE INDEX billing_events_reservation ON billing_events (reservation_id) WHERE reservation_id <> '';

-- Idempotency ledger: a unique request_id cannot live on the partitioned table (its unique
-- keys must include the partition key), so it lives here, written in the same transaction.
CREATE TABLE billing_requests (
    request_id      text PRIMARY KEY,
    payload_digest  bytea NOT NULL,
    event_id        uuid NOT NULL,
    occur_time      timestamptz NOT NULL
);

-- Roll-up per tenant, UTC day and currency, updated in the same transaction as its events.
CREATE TABLE daily_spend (
    tenant_id      text NOT NULL,
    day            date NOT NULL,
    currency_code  text NOT NULL,
    amount_micros  bigint NOT NULL,
    event_count    bigint NOT NULL,
    PRIMARY KEY (tenant_id, day, currency_code)
);

CREATE FUNCTION keyleash_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER billing_events_append_only BEFORE UPDATE OR DELETE ON billing_events
    FOR EACH ROW EXECUTE FUNCTION keyleash_reject_change();

-- Monthly partitions from the month of `around` for `months_ahead` months; called at every
-- start-up so the next months exist before they are needed (the DEFAULT partition catches
-- anything else, e.g. back-dated events).
CREATE FUNCTION keyleash_ensure_partitions(around timestamptz, months_ahead integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    month_start date;
    partition_name text;
BEGIN
    FOR i IN 0..months_ahead LOOP
        month_start := (date_trunc('month', around AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        partition_name := 'billing_events_' || to_char(month_start, 'YYYY_MM');
        IF to_regclass(partition_name) IS NULL THEN
            IF EXISTS (SELECT 1 FROM billing_events_default
                       WHERE occur_time >= month_start AND occur_time < month_start + interval '1 month') THEN
                CONTINUE;  -- rows already landed in DEFAULT; leave them rather than fail start-up
            END IF;
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF billing_events FOR VALUES FROM (%L) TO (%L)',
                partition_name,
                month_start::timestamp AT TIME ZONE 'UTC',
                (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        END IF;
    END LOOP;
END $$;
