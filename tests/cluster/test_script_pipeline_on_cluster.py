"""Pipelined and auto-pipelined script calls, on the cluster (see tests/integration)."""

from tests.integration.test_script_pipeline import *  # noqa: F403
