-- Approvals (vault_service/usecases/approvals.py): requests to raise one spend cap of a key for
-- the rest of a window, and what became of them. An approved row is also the durable grant: a
-- Redis rebuild of the capped key restores the grant counters from the approved rows
-- (vault_service/store/rebuild.py). Times come from the vault's clock.
CREATE TABLE approvals (
    approval_id       text PRIMARY KEY,
    tenant_id         text NOT NULL,
    -- The key that was denied (or asked); it can never approve its own request.
    key_id            text NOT NULL REFERENCES keys (key_id),
    -- The key whose cap the grant raises: key_id itself or an ancestor.
    capped_key_id     text NOT NULL REFERENCES keys (key_id),
    quota             text NOT NULL,
    currency_code     text NOT NULL,
    -- "d20261202", "m202612", "life", or the agent run id (quota "run").
    window_id         text NOT NULL,
    agent_run_id      text NOT NULL DEFAULT '',
    amount_micros     bigint NOT NULL CHECK (amount_micros > 0),
    reason            text NOT NULL DEFAULT '',
    state             text NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
    granted_micros    bigint,
    create_time       timestamptz NOT NULL,
    expire_time       timestamptz NOT NULL,
    decide_time       timestamptz,
    decided_by        text NOT NULL DEFAULT '',
    decision_reason   text NOT NULL DEFAULT '',
    -- When the grant reverts (the window's reset); NULL: lasts as long as the window (a
    -- lifetime cap, a run).
    grant_end_time    timestamptz,
    requested_by      text NOT NULL
);
-- One open request per key, cap and window: a second denial returns the pending one.
CREATE UNIQUE INDEX approvals_one_pending ON approvals
    (key_id, capped_key_id, quota, currency_code, window_id) WHERE state = 'pending';
CREATE INDEX approvals_tenant ON approvals (tenant_id, create_time DESC, approval_id DESC);
CREATE INDEX approvals_grants ON approvals (capped_key_id) WHERE state = 'approved';

-- Signed links that were used (SHA-256 of the token, never the token): a link works once.
CREATE TABLE approval_links_used (
    link_sha256   bytea PRIMARY KEY,
    approval_id   text NOT NULL REFERENCES approvals (approval_id),
    use_time      timestamptz NOT NULL DEFAULT now()
);
