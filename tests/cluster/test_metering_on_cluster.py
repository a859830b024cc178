"""tests/integration/test_metering*.py again, on the Redis Cluster (tests/cluster/conftest.py)."""

from tests.integration.test_metering import *  # noqa: F403
from tests.integration.test_metering_settle import *  # noqa: F403

# Counts Postgres transactions per charge and waits ~20 s for the statistics: no Redis in it.
del test_group_commit_needs_well_under_one_transaction_per_charge  # noqa: F821 (from the star import)
