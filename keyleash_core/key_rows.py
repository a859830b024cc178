"""Reading the `keys` table (owned by the vault, read by metering too): one column list, one
row-to-record mapping."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.policy import Policy
from keyleash_core.times import ms_from_datetime

KEY_COLUMNS = """key_id, tenant_id, parent_key_id, key_path, agent_id, label, scopes, policy::text,
    policy_version, state, create_time, expire_time, revoke_time, revoke_reason, metadata::text"""


def _ms(moment: datetime | None) -> int:
    return 0 if moment is None else ms_from_datetime(moment)


def record_from_row(row: Any) -> KeyRecord:
    """The KeyRecord of a row selected with KEY_COLUMNS."""
    return KeyRecord(
        key_id=row["key_id"],
        tenant_id=row["tenant_id"],
        parent_key_id=row["parent_key_id"] or "",
        key_path=tuple(row["key_path"]),
        agent_id=row["agent_id"],
        label=row["label"],
        scopes=tuple(row["scopes"]),
        policy=Policy.from_json(row["policy"]),
        policy_version=row["policy_version"],
        state=KeyState(row["state"]),
        create_time_ms=_ms(row["create_time"]),
        expire_time_ms=_ms(row["expire_time"]),
        revoke_time_ms=_ms(row["revoke_time"]),
        revoke_reason=row["revoke_reason"],
        metadata=json.loads(row["metadata"]),
    )
