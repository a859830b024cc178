"""MeteringService clients: `MeteringClient` (asyncio) and `SyncMeteringClient` (blocking).

Same conventions as the vault clients (request message or keyword fields; `timeout`, `token`).
Charge, RecordUsage and StreamUsage items get a fresh `request_id` when it is empty (the server
requires one, and it is what makes their retries safe) and the current `agent_run()` id when
`agent_run_id` is empty.

The code is in `_async/metering.py`; `_sync/metering.py` is generated from it by
scripts/unasync.py.
"""

from keyleash.client._async.metering import MeteringClient
from keyleash.client._sync.metering import SyncMeteringClient

__all__ = ["MeteringClient", "SyncMeteringClient"]
