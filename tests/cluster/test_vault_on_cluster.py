"""tests/integration/test_vault*.py again, on the Redis Cluster (tests/cluster/conftest.py)."""

from tests.integration.test_vault import *  # noqa: F403
from tests.integration.test_vault_stores import *  # noqa: F403
