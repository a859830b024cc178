"""Vault store adapters: the Postgres key registry and the Redis hot state."""
