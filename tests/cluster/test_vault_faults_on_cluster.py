"""tests/integration/test_vault_faults.py again, on the Redis Cluster (tests/cluster/conftest.py):
`own_redis` is a cluster of the test's own, killed and restarted whole."""

from tests.integration.test_vault_faults import *  # noqa: F403

# Kills Postgres under a Redis of its own making (standalone); the Redis topology plays no part.
del test_postgres_down_means_unavailable_then_recovery  # noqa: F821 (from the star import)
