"""Events that name an agent instead of a key: each agent resolved to one key of the URL's
tenant, over the Vault's ListKeys (agent_id filter) with the service credential.

The rule: among the agent's keys in the tenant that are live (STATE_ACTIVE: not frozen, revoked
or expired), the root-most one (least depth). An agent with no live key, or with several live
keys at that least depth (e.g. ProvisionAgent's one key per vendor), is refused (422) naming
the first event that named it: the sender must name the key_id. Nothing is cached between
deliveries: Metering records usage whatever the key's state (the usage happened), so a cached
answer would keep sending events to a key frozen or revoked since; each delivery asks once per
distinct agent, and a freeze, a revoke or a new key counts from the next delivery on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from keyleash.client import RetryPolicy, VaultClient
from keyleash.client.errors import KeyleashError
from keyleash.vault.v1 import vault_pb2
from keyleash_usage_hooks.events import UsageEvent
from keyleash_usage_hooks.settings import UsageHooksSettings

# Keys read per agent at most (one page is 1,000): past that the agent is refused as ambiguous.
MAX_KEYS_PER_AGENT = 10_000
# Agents resolved at once for one delivery (a batch may name up to 1,000).
RESOLVE_CONCURRENCY = 16


class AgentUnresolved(Exception):
    """An event names an agent that resolves to no single live key (422, nothing recorded)."""


class VaultUnavailable(Exception):
    """The Vault did not answer usefully: nothing was acknowledged (503)."""


def root_most_live_key(tenant_id: str, agent_id: str, keys: Sequence[vault_pb2.Key]) -> str:
    """The key id the rule picks (pure), or AgentUnresolved saying why none fits."""
    live = [key for key in keys if key.state == vault_pb2.Key.STATE_ACTIVE]
    if not live:
        seen = len(keys)
        if not seen:
            raise AgentUnresolved(f"agent {agent_id!r} has no key in tenant {tenant_id}")
        raise AgentUnresolved(
            f"agent {agent_id!r} has no active key in tenant {tenant_id} ({seen} frozen, revoked "
            "or expired); name the key_id to record against one of them"
        )
    least = min(key.depth for key in live)
    top = sorted(key.key_id for key in live if key.depth == least)
    if len(top) > 1:
        named = ", ".join(top[:3]) + (", ..." if len(top) > 3 else "")
        raise AgentUnresolved(
            f"agent {agent_id!r} has {len(top)} active keys at depth {least} in tenant "
            f"{tenant_id} ({named}); name the key_id instead"
        )
    return top[0]


class AgentKeys:
    """The Vault as the receiver uses it. Owns its client."""

    def __init__(self, settings: UsageHooksSettings) -> None:
        self._client = VaultClient(
            settings.vault_target,
            token=settings.service_token,
            timeout=settings.keyleash_timeout_seconds,
            retry=RetryPolicy(max_attempts=2, deadline=settings.keyleash_timeout_seconds),
        )

    async def close(self) -> None:
        await self._client.close()

    async def resolved(self, tenant_id: str, events: Sequence[UsageEvent]) -> list[UsageEvent]:
        """The events, each naming its key: agent_id events resolved, key_id events as sent."""
        first_event: dict[str, int] = {}
        for i, event in enumerate(events):
            if event.agent_id:
                first_event.setdefault(event.agent_id, i)
        if not first_event:
            return list(events)
        limit = asyncio.Semaphore(RESOLVE_CONCURRENCY)

        async def one(agent_id: str) -> tuple[str, str]:
            async with limit:
                try:
                    return agent_id, await self._key_of(tenant_id, agent_id)
                except AgentUnresolved as refused:
                    raise AgentUnresolved(
                        f"events[{first_event[agent_id]}].agent_id: {refused}"
                    ) from None

        keys = dict(await asyncio.gather(*(one(a) for a in first_event)))
        return [e._replace(key_id=keys[e.agent_id]) if e.agent_id else e for e in events]

    async def _key_of(self, tenant_id: str, agent_id: str) -> str:
        keys: list[vault_pb2.Key] = []
        try:
            async for key in self._client.iter_keys(
                tenant_id=tenant_id, agent_id=agent_id, page_size=1000
            ):
                keys.append(key)
                if len(keys) > MAX_KEYS_PER_AGENT:
                    raise AgentUnresolved(
                        f"agent {agent_id!r} has more than {MAX_KEYS_PER_AGENT} keys in tenant "
                        f"{tenant_id}; name the key_id instead"
                    )
        except KeyleashError as error:
            raise VaultUnavailable(f"ListKeys: {error}") from None
        return root_most_live_key(tenant_id, agent_id, keys)
