"""GetKeyUsage: the plan handed to key_usage.lua (read-only) and reading its answer.

The same windows Authorize checks (keyleash_core.windows, the chain's rate limits and call
counts), read without consuming anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from keyleash_core.keyrecord import KeyRecord
from keyleash_core.redis import keyspace
from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.windows import spend_checks
from vault_service.domain.decision import Quota


@dataclass(frozen=True)
class UsageOutcome:
    """The script's answer: the quotas of each link of the chain, or which link is missing
    (0 = the tenant, i = chain[i-1])."""

    quotas_by_link: list[list[Quota]] = field(default_factory=list)
    missing_index: int = -1


def usage_plan(chain: Sequence[KeyRecord], agent_run_id: str, now_ms: int) -> ScriptCall:
    """KEYS and ARGV of key_usage.lua for the chain (the key first, then its ancestors).

    Without an agent_run_id there is no run to read, so the run caps are left out.
    """
    tenant_id = chain[0].tenant_id
    keys = [
        keyspace.tenant(tenant_id),
        *(keyspace.key(tenant_id, r.key_id) for r in chain),
        *(keyspace.rate(tenant_id, r.key_id) for r in chain),
    ]
    link_of = {r.name: i + 1 for i, r in enumerate(chain)}  # Lua indexes from 1
    spends = []
    for check in spend_checks(chain, agent_run_id, now_ms):
        if check.is_run and not agent_run_id:
            continue
        indexes = []
        for name in check.keys:
            keys.append(name)
            indexes.append(len(keys))
        keys.append(check.grant_key)
        spends.append(
            {
                "g": len(keys),
                "link": link_of[check.subject],
                "kind": check.kind,
                "k": indexes,
                "lim": check.limit_micros,
                "cur": check.currency,
                "subj": check.subject,
                "q": check.quota,
                "reset": check.reset_ms,
                "fb": check.first_bucket,
            }
        )
    links = [
        {
            "name": r.name,
            "rates": [[x.limit, x.window_ms, x.quota_name] for x in r.policy.rate_limits],
            "calls": r.policy.max_calls,
        }
        for r in chain
    ]
    plan = {"chain": links, "spends": spends}
    return ScriptCall(keys=keys, args=[str(now_ms), orjson.dumps(plan)])


def parse_usage(raw: bytes | str, chain_length: int) -> UsageOutcome:
    data = orjson.loads(raw)
    if data["r"] == "M":
        return UsageOutcome(missing_index=int(data["idx"]))
    by_link: list[list[Quota]] = [[] for _ in range(chain_length)]
    rows = data.get("quotas") or []
    for row in rows if isinstance(rows, list) else []:  # cjson encodes an empty table as {}
        by_link[int(row[0]) - 1].append(
            Quota(row[1], row[2], row[3], int(row[4]), int(row[5]), int(row[6]), int(row[7]))
        )
    return UsageOutcome(quotas_by_link=by_link)
