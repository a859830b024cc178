-- The durable key registry (vault). Redis only caches it.
CREATE TABLE keys (
    key_id              text PRIMARY KEY,
    tenant_id           text NOT NULL,
    parent_key_id       text REFERENCES keys (key_id),
    -- Root first, this key last: the chain every roll-up and cascade walks.
    key_path            text[] NOT NULL,
    depth               integer NOT NULL GENERATED ALWAYS AS (cardinality(key_path) - 1) STORED,
    agent_id            text NOT NULL,
    label               text NOT NULL DEFAULT '',
    scopes              text[] NOT NULL,
    policy              jsonb NOT NULL,
    -- Bumped on every policy change so caches built from an older policy are refused.
    policy_version      bigint NOT NULL DEFAULT 1,
    -- HMAC-SHA-256 of the secret under the server pepper; the secret itself is never stored.
    secret_hash         bytea NOT NULL UNIQUE,
    state               text NOT NULL CHECK (state IN ('active', 'frozen', 'revoked')),
    create_time         timestamptz NOT NULL,
    expire_time         timestamptz NOT NULL,
    revoke_time         timestamptz,
    revoke_reason       text NOT NULL DEFAULT '',
    metadata            jsonb NOT NULL DEFAULT '{}',
    minted_by           text NOT NULL,
    mint_request_id     text,
    mint_request_digest bytea,
    UNIQUE (minted_by, mint_request_id)
);
CREATE INDEX keys_tenant_create ON keys (tenant_id, create_time, key_id);
CREATE INDEX keys_parent ON keys (parent_key_id);
CREATE INDEX keys_path ON keys USING gin (key_path);

-- Every state change of a key: who, when, why.
CREATE TABLE key_events (
    event_id    bigserial PRIMARY KEY,
    key_id      text NOT NULL REFERENCES keys (key_id),
    tenant_id   text NOT NULL,
    action      text NOT NULL,
    actor       text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    event_time  timestamptz NOT NULL DEFAULT now(),
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX key_events_key ON key_events (key_id, event_id);

-- Paying accounts: the daily threshold that throttles a tenant when crossed.
CREATE TABLE tenants (
    tenant_id                 text PRIMARY KEY,
    daily_threshold_micros    bigint,
    daily_threshold_currency  text,
    -- An admin lifted the throttle on this UTC day: not throttled again that day until the
    -- spend crosses the threshold again after the lift.
    throttle_lifted_at        timestamptz,
    update_time               timestamptz NOT NULL DEFAULT now()
);
