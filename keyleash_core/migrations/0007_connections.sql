-- Vendor connections (vault): a tenant's upstream credential for one vendor's API. The secret is
-- stored only sealed (AES-256-GCM envelope under KEYLEASH_SECRETS_KEY, see
-- the vault's domain/sealing.py); deleting a connection erases it and keeps the row as a
-- tombstone, so the name is never reused and an idempotent create retried later stays answered.
CREATE TABLE connections (
    tenant_id             text NOT NULL,
    connection_id         text NOT NULL,
    vendor                text NOT NULL,
    base_url              text NOT NULL DEFAULT '',
    sealed_secret         bytea,
    create_time           timestamptz NOT NULL,
    rotate_time           timestamptz,
    delete_time           timestamptz,
    created_by            text NOT NULL,
    create_request_id     text,
    -- HMAC under the key pepper of the whole CreateConnection request (which holds the secret):
    -- tells a retry from a different request without storing anything derived from the secret
    -- in the clear.
    create_request_digest bytea,
    PRIMARY KEY (tenant_id, connection_id),
    UNIQUE (created_by, create_request_id),
    CHECK ((delete_time IS NULL) = (sealed_secret IS NOT NULL))
);
-- The gateway's lookup: the oldest live connection of a tenant for a vendor.
CREATE INDEX connections_live ON connections (tenant_id, vendor, create_time)
    WHERE delete_time IS NULL;
