-- Alerts (metering_service/alerts): webhook subscriptions, the facts already announced, and the
-- outbox of deliveries. Facts are derived from committed billing_events, key_events,
-- authorizations and tenants by a scanner; nothing on the hot path writes here.
-- Self-contained (no other migration refers to it): renumber freely on merge.

CREATE TABLE alert_subscriptions (
    subscription_id  text PRIMARY KEY,
    tenant_id        text NOT NULL,
    url              text NOT NULL,
    -- The whsec_ signing secret, AES-256-GCM under a key derived from the server pepper; the
    -- subscription's name is the associated data. Never returned after creation.
    sealed_secret    bytea NOT NULL,
    event_types      text[] NOT NULL,
    format           text NOT NULL CHECK (format IN ('standard', 'slack')),
    create_time      timestamptz NOT NULL DEFAULT now(),
    request_id       text,
    request_digest   bytea,
    UNIQUE (tenant_id, request_id)
);
CREATE INDEX alert_subscriptions_tenant ON alert_subscriptions (tenant_id, create_time);

-- Every fact announced, once: the UNIQUE key makes a crossing exactly-once however many
-- scanners see it at the same time.
CREATE TABLE alert_facts (
    tenant_id    text NOT NULL,
    fact_key     text NOT NULL,
    event_id     text NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, fact_key)
);

-- The outbox: one row per (subscription, event), written in the fact's transaction.
CREATE TABLE alert_deliveries (
    delivery_id      bigserial PRIMARY KEY,
    tenant_id        text NOT NULL,
    subscription_id  text NOT NULL REFERENCES alert_subscriptions (subscription_id)
                         ON DELETE CASCADE,
    event_id         text NOT NULL,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    create_time      timestamptz NOT NULL DEFAULT now(),
    deliver_time     timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_tenant ON alert_deliveries (tenant_id, delivery_id);

-- What the scanner reads every pass: a tenant's recent key events.
CREATE INDEX key_events_tenant_time ON key_events (tenant_id, event_time);
