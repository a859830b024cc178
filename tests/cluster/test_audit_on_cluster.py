"""tests/integration/test_audit.py again, on the Redis Cluster (tests/cluster/conftest.py): the
drainer finds and reads streams on every primary; `own_redis` is a cluster of the test's own."""

from tests.integration.test_audit import *  # noqa: F403

# One tenant, so one stream on one primary, and ~25 s: test_sigkill_of_the_drainer_... checks the
# same exactness here, and test_cluster.py drains tenants on every primary.
del test_ten_thousand_decisions_are_recorded_exactly  # noqa: F821 (from the star import)
