-- Every Authorize decision, allowed or denied, drained from the per-tenant Redis streams.
CREATE TABLE authorizations (
    decision_id        text NOT NULL,
    decision_time      timestamptz NOT NULL,
    tenant_id          text NOT NULL,
    key_id             text NOT NULL,
    -- Root first, the deciding key last: a key's subtree is `key_path @> ARRAY[key_id]`.
    key_path           text[] NOT NULL,
    parent_key_id      text NOT NULL DEFAULT '',
    agent_id           text NOT NULL DEFAULT '',
    agent_run_id       text NOT NULL DEFAULT '',
    trace_id           text NOT NULL DEFAULT '',
    scope              text NOT NULL DEFAULT '',
    vendor             text NOT NULL DEFAULT '',
    method             text NOT NULL DEFAULT '',
    path               text NOT NULL DEFAULT '',
    estimated_micros   bigint NOT NULL DEFAULT 0,
    currency_code      text NOT NULL DEFAULT '',
    decision           text NOT NULL CHECK (decision IN ('allow', 'deny')),
    deny_reason        text NOT NULL DEFAULT '',
    quota_subject      text NOT NULL DEFAULT '',
    quota              text NOT NULL DEFAULT '',
    quota_limit        bigint NOT NULL DEFAULT 0,
    quota_used         bigint NOT NULL DEFAULT 0,
    quota_remaining    bigint NOT NULL DEFAULT 0,
    reservation_id     text NOT NULL DEFAULT '',
    request_id         text NOT NULL DEFAULT '',
    record_time        timestamptz NOT NULL DEFAULT now(),
    -- The decision time is part of the key because unique keys of a partitioned table must
    -- include the partition key; a decision id always comes with the same time.
    PRIMARY KEY (decision_id, decision_time)
) PARTITION BY RANGE (decision_time);

CREATE TABLE authorizations_default PARTITION OF authorizations DEFAULT;
CREATE INDEX authorizations_time_brin ON authorizations USING brin (decision_time);
CREATE INDEX authorizations_tenant_time ON authorizations (tenant_id, decision_time);
CREATE INDEX authorizations_run ON authorizations (agent_run_id, decision_time)
    WHERE agent_run_id <> '';
CREATE INDEX authorizations_key_path ON authorizations USING gin (key_path);

-- What each attempted call finally cost: the decision beside the billing events that settled
-- its reservation (allowed calls); denied calls cost nothing.
CREATE VIEW authorization_ledger AS
SELECT a.*,
       COALESCE(b.settled_micros, 0) AS settled_micros,
       COALESCE(b.settled_events, 0) AS settled_events
FROM authorizations a
LEFT JOIN LATERAL (
    SELECT SUM(e.amount_micros) AS settled_micros, COUNT(*) AS settled_events
    FROM billing_events e
    WHERE a.reservation_id <> '' AND e.reservation_id = a.reservation_id
) b ON true;

-- Monthly partitions for any partitioned table keyed by time (see keyleash_ensure_partitions).
CREATE FUNCTION keyleash_ensure_monthly_partitions(
    parent text, time_column text, around timestamptz, months_ahead integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    month_start date;
    partition_name text;
    taken boolean;
BEGIN
    FOR i IN 0..months_ahead LOOP
        month_start := (date_trunc('month', around AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        partition_name := parent || '_' || to_char(month_start, 'YYYY_MM');
        IF to_regclass(partition_name) IS NULL THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= %L AND %I < %L)',
                           parent || '_default', time_column,
                           month_start::timestamp AT TIME ZONE 'UTC', time_column,
                           (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC')
                INTO taken;
            CONTINUE WHEN taken;  -- rows already landed in DEFAULT; leave them
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                partition_name, parent,
                month_start::timestamp AT TIME ZONE 'UTC',
                (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        END IF;
    END LOOP;
END $$;

-- Retention: drops the monthly partitions of `parent` that end before `older_than`.
CREATE FUNCTION keyleash_drop_partitions_before(parent text, older_than timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1] AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass AND c.relname <> parent || '_default'
    LOOP
        IF part.upper IS NOT NULL AND part.upper::timestamptz <= older_than THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;
