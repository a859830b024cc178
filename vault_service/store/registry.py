"""Postgres side of the vault: the durable key registry and its audit trail (key_events)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from keyleash_core.key_rows import KEY_COLUMNS, record_from_row
from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.policy import Policy
from keyleash_core.postgres import run_db, transaction
from keyleash_core.times import datetime_from_ms

_COLUMNS = KEY_COLUMNS


class KeyRegistry:
    """The keys and key_events tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(
        self,
        record: KeyRecord,
        secret_hash: bytes,
        *,
        minted_by: str,
        request_id: str,
        request_digest: bytes,
    ) -> bool:
        """Stores a new key and its mint event; False when (minted_by, request_id) exists."""
        async with transaction(self._pool) as con:
            inserted = await _insert_key(
                con, record, secret_hash, minted_by, request_id, request_digest
            )
            if not inserted:
                return False
            await self._event(con, record, "mint", minted_by, "", {"request_id": request_id})
            return True

    async def insert_provisioned(
        self,
        keys: Sequence[tuple[KeyRecord, bytes]],
        *,
        minted_by: str,
        request_id: str,
        request_digest: bytes,
    ) -> bool:
        """Stores every key (with its secret hash) and their mint events in one transaction,
        all or none; False when this (minted_by, request_id) already provisioned."""
        async with transaction(self._pool) as con:
            claimed = await con.fetchval(
                """INSERT INTO provisionings (minted_by, request_id, request_digest, key_ids,
                       create_time) VALUES ($1, $2, $3, $4, now())
                   ON CONFLICT DO NOTHING RETURNING true""",
                minted_by, request_id, request_digest, [r.key_id for r, _ in keys],
            )  # fmt: skip
            if not claimed:
                return False
            for index, (record, secret_hash) in enumerate(keys):
                await _insert_key(con, record, secret_hash, minted_by, "", b"")
                details = {"provision_request_id": request_id, "index": index}
                await self._event(con, record, "mint", minted_by, "", details)
            return True

    async def find_provisioned(
        self, minted_by: str, request_id: str
    ) -> tuple[list[KeyRecord], bytes] | None:
        """The keys a ProvisionAgent request minted, in order, and that request's digest."""
        row = await run_db(
            lambda: self._pool.fetchrow(
                "SELECT key_ids, request_digest FROM provisionings"
                " WHERE minted_by = $1 AND request_id = $2",
                minted_by,
                request_id,
            )
        )
        if row is None:
            return None
        found = await self.get_many(list(row["key_ids"]))
        return [found[k] for k in row["key_ids"]], bytes(row["request_digest"])

    async def find_mint(self, minted_by: str, request_id: str) -> tuple[KeyRecord, bytes] | None:
        row = await run_db(
            lambda: self._pool.fetchrow(
                f"SELECT {_COLUMNS}, mint_request_digest FROM keys"
                " WHERE minted_by = $1 AND mint_request_id = $2",
                minted_by,
                request_id,
            )
        )
        return None if row is None else (record_from_row(row), bytes(row["mint_request_digest"]))

    async def get(self, key_id: str) -> KeyRecord | None:
        row = await run_db(
            lambda: self._pool.fetchrow(f"SELECT {_COLUMNS} FROM keys WHERE key_id = $1", key_id)
        )
        return None if row is None else record_from_row(row)

    async def get_by_hash(self, secret_hash: bytes) -> KeyRecord | None:
        row = await run_db(
            lambda: self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM keys WHERE secret_hash = $1", secret_hash
            )
        )
        return None if row is None else record_from_row(row)

    async def get_many(self, key_ids: Sequence[str]) -> dict[str, KeyRecord]:
        rows = await run_db(
            lambda: self._pool.fetch(
                f"SELECT {_COLUMNS} FROM keys WHERE key_id = ANY($1::text[])", list(key_ids)
            )
        )
        return {row["key_id"]: record_from_row(row) for row in rows}

    async def revoke_subtree(
        self, record: KeyRecord, actor: str, reason: str, now_ms: int
    ) -> list[KeyRecord]:
        """Revokes the key and every descendant not yet revoked; returns them, the key first."""
        async with transaction(self._pool) as con:
            rows = await con.fetch(
                f"""UPDATE keys SET state = 'revoked', revoke_time = $2, revoke_reason = $3
                    WHERE key_path @> ARRAY[$1]::text[] AND state <> 'revoked'
                    RETURNING {_COLUMNS}""",
                record.key_id,
                datetime_from_ms(now_ms),
                reason,
            )
            revoked = sorted((record_from_row(r) for r in rows), key=lambda r: r.depth)
            for item in revoked:
                action = "revoke" if item.key_id == record.key_id else "revoke_cascade"
                await self._event(con, item, action, actor, reason, {"root": record.key_id})
            return revoked

    async def set_state(
        self, record: KeyRecord, state: KeyState, actor: str, reason: str
    ) -> KeyRecord | None:
        """Freeze/unfreeze: only from the expected state; None when the key moved meanwhile."""
        async with transaction(self._pool) as con:
            row = await con.fetchrow(
                f"""UPDATE keys SET state = $2 WHERE key_id = $1 AND state = $3
                    RETURNING {_COLUMNS}""",
                record.key_id,
                state.value,
                record.state.value,
            )
            if row is None:
                return None
            updated = record_from_row(row)
            action = "freeze" if state is KeyState.FROZEN else "unfreeze"
            await self._event(con, updated, action, actor, reason, {})
            return updated

    async def update_policy(
        self, record: KeyRecord, policy: Policy, actor: str, reason: str
    ) -> KeyRecord | None:
        """Replaces the policy if nobody changed it since `record` was read (optimistic)."""
        async with transaction(self._pool) as con:
            row = await con.fetchrow(
                f"""UPDATE keys SET policy = $2::jsonb, policy_version = policy_version + 1
                    WHERE key_id = $1 AND policy_version = $3 RETURNING {_COLUMNS}""",
                record.key_id,
                policy.to_json(),
                record.policy_version,
            )
            if row is None:
                return None
            updated = record_from_row(row)
            await self._event(
                con,
                updated,
                "update_policy",
                actor,
                reason,
                {"policy": json.loads(policy.to_json())},
            )
            return updated

    async def list(
        self,
        *,
        tenant_id: str,
        within_key_id: str,
        parent_key_id: str,
        label_prefix: str,
        state: str,
        after: tuple[datetime, str] | None,
        limit: int,
        agent_id: str = "",
    ) -> list[tuple[KeyRecord, datetime]]:
        """Keys in creation order after the `after` cursor; `within_key_id` limits to a subtree."""
        rows = await run_db(
            lambda: self._pool.fetch(
                f"""SELECT {_COLUMNS} FROM keys
                    WHERE tenant_id = $1
                      AND ($2 = '' OR key_path @> ARRAY[$2]::text[])
                      AND ($3 = '' OR parent_key_id = $3)
                      AND ($4 = '' OR starts_with(label, $4))
                      AND ($5 = '' OR state = $5)
                      AND ($6::timestamptz IS NULL OR (create_time, key_id) > ($6, $7))
                      AND ($9 = '' OR agent_id = $9)
                    ORDER BY create_time, key_id LIMIT $8""",
                tenant_id,
                within_key_id,
                parent_key_id,
                label_prefix,
                state,
                after[0] if after else None,
                after[1] if after else "",
                limit,
                agent_id,
            )
        )
        return [(record_from_row(r), r["create_time"]) for r in rows]

    async def _event(
        self,
        con: Any,
        record: KeyRecord,
        action: str,
        actor: str,
        reason: str,
        details: dict[str, Any],
    ) -> None:
        await con.execute(
            """INSERT INTO key_events (key_id, tenant_id, action, actor, reason, details)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
            record.key_id,
            record.tenant_id,
            action,
            actor,
            reason,
            json.dumps(details),
        )

    async def events(self, key_id: str, after_event_id: int, limit: int) -> Sequence[Any]:
        """The key's key_events rows after `after_event_id`, oldest first."""
        return await run_db(
            lambda: self._pool.fetch(
                """SELECT event_id, action, actor, reason, event_time, details::text AS details
                   FROM key_events WHERE key_id = $1 AND event_id > $2
                   ORDER BY event_id LIMIT $3""",
                key_id,
                after_event_id,
                limit,
            )
        )


async def _insert_key(
    con: Any,
    record: KeyRecord,
    secret_hash: bytes,
    minted_by: str,
    request_id: str,
    request_digest: bytes,
) -> bool:
    """One keys row; False when (minted_by, request_id) exists (an empty id never conflicts)."""
    inserted = await con.fetchval(
        """INSERT INTO keys (key_id, tenant_id, parent_key_id, key_path, agent_id, label,
               scopes, policy, policy_version, secret_hash, state, create_time,
               expire_time, metadata, minted_by, mint_request_id, mint_request_digest)
           VALUES ($1, $2, NULLIF($3, ''), $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12,
                   $13, $14::jsonb, $15, NULLIF($16, ''), $17)
           ON CONFLICT (minted_by, mint_request_id) DO NOTHING
           RETURNING true""",
        record.key_id, record.tenant_id, record.parent_key_id, list(record.key_path),
        record.agent_id, record.label, list(record.scopes), record.policy.to_json(),
        record.policy_version, secret_hash, record.state.value,
        datetime_from_ms(record.create_time_ms), datetime_from_ms(record.expire_time_ms),
        json.dumps(record.metadata), minted_by, request_id, request_digest or None,
    )  # fmt: skip
    return bool(inserted)
