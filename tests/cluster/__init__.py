"""The cluster run: integration tests again on a local Redis Cluster (see conftest.py)."""
