"""Usage webhook senders: `UsageWebhookSender` (asyncio) and `SyncUsageWebhookSender`
(blocking), for agent runtimes whose LLM calls do not pass through the Keyleash gateway.

    with SyncUsageWebhookSender("http://localhost:8085", "acme", secret) as sender:
        sender.send({"id": "evt_1", "key_id": key_id, "model": "gpt-4o", "input_tokens": 1200})
        sender.send({"id": "evt_2", "agent_id": "support-bot", "model": "gpt-4o"})

The code is in `_async/usage_hooks.py`; `_sync/usage_hooks.py` is generated from it by
scripts/unasync.py.
"""

from keyleash.client._async.usage_hooks import UsageWebhookSender
from keyleash.client._sync.usage_hooks import SyncUsageWebhookSender
from keyleash.client._usage_delivery import (
    Backoff,
    UsageEvent,
    UsageWebhookError,
    UsageWebhookResult,
)

__all__ = [
    "Backoff",
    "SyncUsageWebhookSender",
    "UsageEvent",
    "UsageWebhookError",
    "UsageWebhookResult",
    "UsageWebhookSender",
]
