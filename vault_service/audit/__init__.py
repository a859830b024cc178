"""The per-call audit: decisions drained from Redis streams into Postgres, and queried there."""
