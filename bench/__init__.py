"""Keyleash benchmark harness: `python -m bench` (see docs/PERFORMANCE.md)."""
