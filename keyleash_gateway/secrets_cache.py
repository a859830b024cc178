"""Connection secrets kept in the gateway's memory, so an allowed call costs one Vault call
(Authorize) instead of two, while a rotated secret is still used from the very next call.

Each secret is kept with the tenant's connections version AccessConnectionSecret read before
it (the vault's store/connection_versions.py: a version is renewed after every change to the
tenant's connections committed, and absent while one is being made). Authorize answers the
version current when it decided; a kept secret is used only when the two are equal and not
empty, else it is read again. Keyed by a digest of the vault key (never the key itself); the
secrets live only here, in this process's memory, as they did for one call before.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from keyleash_gateway.keyleash import Upstream

MAX_ENTRIES = 10_000


def _slot(key: str, vendor: str) -> bytes:
    return hashlib.sha256(f"{vendor}\x1f{key}".encode()).digest()


class SecretsCache:
    """One per process; the event loop serializes every use (no awaits inside)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[bytes, Upstream] = OrderedDict()

    def kept(self, key: str, vendor: str) -> Upstream | None:
        """The secret kept for the key's calls to `vendor`, whatever its version."""
        return self._entries.get(_slot(key, vendor))

    def usable(self, kept: Upstream | None, authorized_version: str) -> Upstream | None:
        """`kept` when Authorize's version says it is still the connection's current secret."""
        if kept is None or not authorized_version or kept.version != authorized_version:
            return None
        return kept

    def keep(self, key: str, vendor: str, upstream: Upstream) -> None:
        slot = _slot(key, vendor)
        if not upstream.version:
            self._entries.pop(slot, None)  # unknown version: nothing to check it against
            return
        self._entries[slot] = upstream
        self._entries.move_to_end(slot)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def forget(self, key: str, vendor: str) -> None:
        self._entries.pop(_slot(key, vendor), None)
