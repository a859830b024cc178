"""A key as both services see it: the registry entry cached in Redis and stored in Postgres."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from enum import Enum

from keyleash_core.policy import Policy


class KeyState(Enum):
    """Stored states; "expired" is derived from expire_time, never stored."""

    ACTIVE = "active"
    FROZEN = "frozen"
    REVOKED = "revoked"


@dataclass(frozen=True)
class KeyRecord:
    """One key. `key_path` is the chain root-first, ending with this key."""

    key_id: str
    tenant_id: str
    parent_key_id: str
    key_path: tuple[str, ...]
    agent_id: str
    label: str
    scopes: tuple[str, ...]
    policy: Policy
    policy_version: int
    state: KeyState
    create_time_ms: int
    expire_time_ms: int
    revoke_time_ms: int = 0
    revoke_reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return key_name(self.tenant_id, self.key_id)

    @property
    def depth(self) -> int:
        return len(self.key_path) - 1

    @property
    def ancestor_ids(self) -> tuple[str, ...]:
        """Nearest first: parent, grandparent, ..., root."""
        return tuple(reversed(self.key_path[:-1]))

    def with_policy(self, policy: Policy) -> KeyRecord:
        return replace(self, policy=policy, policy_version=self.policy_version + 1)

    def to_json(self) -> str:
        return json.dumps(
            {
                "key_id": self.key_id,
                "tenant_id": self.tenant_id,
                "parent_key_id": self.parent_key_id,
                "key_path": list(self.key_path),
                "agent_id": self.agent_id,
                "label": self.label,
                "scopes": list(self.scopes),
                "policy": self.policy.to_json(),
                "policy_version": self.policy_version,
                "state": self.state.value,
                "create_time_ms": self.create_time_ms,
                "expire_time_ms": self.expire_time_ms,
                "revoke_time_ms": self.revoke_time_ms,
                "revoke_reason": self.revoke_reason,
                "metadata": self.metadata,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> KeyRecord:
        data = json.loads(text)
        return cls(
            key_id=data["key_id"],
            tenant_id=data["tenant_id"],
            parent_key_id=data["parent_key_id"],
            key_path=tuple(data["key_path"]),
            agent_id=data["agent_id"],
            label=data["label"],
            scopes=tuple(data["scopes"]),
            policy=Policy.from_json(data["policy"]),
            policy_version=int(data["policy_version"]),
            state=KeyState(data["state"]),
            create_time_ms=int(data["create_time_ms"]),
            expire_time_ms=int(data["expire_time_ms"]),
            revoke_time_ms=int(data["revoke_time_ms"]),
            revoke_reason=data["revoke_reason"],
            metadata=dict(data["metadata"]),
        )


def key_name(tenant_id: str, key_id: str) -> str:
    return f"tenants/{tenant_id}/keys/{key_id}"


# Tenant ids enter Redis key names (inside the {hash tag}) and SCAN patterns, so they are
# confined to characters with no meaning there: lowercase letters, digits and "._-".
TENANT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
TENANT_ID_RULE = (
    'lowercase letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63'
)
# Key ids are minted by the vault ("k_" + hex); a name may carry nothing else.
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_tenant_id(value: str) -> bool:
    return TENANT_ID_PATTERN.fullmatch(value) is not None


ANY_TENANT = "-"  # "tenants/-/keys/{key_id}" (AIP-159): key ids are unique across tenants


def parse_key_name(name: str, *, any_tenant: bool = False) -> tuple[str, str] | None:
    """(tenant_id, key_id) of "tenants/{t}/keys/{k}", or None when malformed (including a
    tenant id outside TENANT_ID_PATTERN). With `any_tenant`, the tenant may be "-"."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != "keys":
        return None
    tenant_ok = is_tenant_id(parts[1]) or (any_tenant and parts[1] == ANY_TENANT)
    if not tenant_ok or KEY_ID_PATTERN.fullmatch(parts[3]) is None:
        return None
    return parts[1], parts[3]
