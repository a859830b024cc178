"""The async clients: the source of the blocking ones in `_sync/`.

`python scripts/unasync.py` writes `_sync/` from these files; a unit test fails when it is stale.
Import the clients from `keyleash.client`.
"""
