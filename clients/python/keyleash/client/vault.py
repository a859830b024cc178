"""VaultService clients: `VaultClient` (asyncio) and `SyncVaultClient` (blocking).

Methods take the generated request message, or its fields as keywords, and return the generated
response. Every method also takes `timeout` (seconds; default: the client's) and `token` (a
bearer token for this call only, e.g. a key secret). Failures raise `keyleash.client.errors`
exceptions; a DENY decision is an answer, not an exception (see `raise_for_decision` / `guard`).

The code is in `_async/vault.py`; `_sync/vault.py` is generated from it by scripts/unasync.py.
"""

from keyleash.client._async.vault import VaultClient
from keyleash.client._sync.vault import SyncVaultClient

__all__ = ["SyncVaultClient", "VaultClient"]
