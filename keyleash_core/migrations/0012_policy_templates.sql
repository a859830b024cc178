-- Policy templates (vault): a tenant's named starting points for keys. The shipped templates
-- live in the code (vault_service/domain/starter_templates.json), not here. A deleted
-- template's row is removed; keys minted from it keep their own copy of the policy.
CREATE TABLE policy_templates (
    tenant_id       text NOT NULL,
    template_id     text NOT NULL,
    body            jsonb NOT NULL,
    create_time     timestamptz NOT NULL,
    created_by      text NOT NULL,
    request_id      text,
    request_digest  bytea,
    PRIMARY KEY (tenant_id, template_id),
    UNIQUE (created_by, request_id)
);

-- ProvisionAgent: the keys one request minted, in order, so a retry returns the same keys.
CREATE TABLE provisionings (
    minted_by       text NOT NULL,
    request_id      text NOT NULL,
    request_digest  bytea NOT NULL,
    key_ids         text[] NOT NULL,
    create_time     timestamptz NOT NULL,
    PRIMARY KEY (minted_by, request_id)
);
