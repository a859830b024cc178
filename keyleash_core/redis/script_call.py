"""One call of a Lua script, as pure domain code builds it and a store adapter runs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScriptCall:
    """KEYS and ARGV of one script call (every key of one tenant, so one Redis Cluster slot)."""

    keys: list[str]
    args: list[str | bytes]
