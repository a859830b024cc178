-- Usage webhooks (keyleash_usage_hooks): one signing secret per tenant, sealed like the alert
-- subscriptions' (AES-256-GCM under a key derived from the server pepper; the resource name
-- tenants/{tenant}/usageWebhookSecret is the associated data). Never listed back.
-- Self-contained (no other migration refers to it): renumber freely on merge.

CREATE TABLE usage_webhook_secrets (
    tenant_id      text PRIMARY KEY,
    sealed_secret  bytea NOT NULL,
    create_time    timestamptz NOT NULL DEFAULT now(),
    rotate_time    timestamptz NOT NULL DEFAULT now()
);
