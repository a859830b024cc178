"""The blocking clients, generated from `_async/` by scripts/unasync.py (this file is not).

Import them from `keyleash.client`.
"""
