"""Metering's adapters: Postgres (the billing stream) and Redis (settlement, tenant counters)."""
