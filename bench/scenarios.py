"""What `python -m bench` measures: its scenarios, the comparisons between them (the targets),
and the fixtures they need (keys minted through the services, baseline tables)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from bench import system
from bench.stats import Comparison, Target
from keyleash.vault.v1 import vault_pb2


@dataclass
class Scenario:
    name: str
    title: str
    kind: str
    unit: str = "calls"
    callers: int = 64
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""


COMPARISONS = [
    Comparison("authorize_allow", "grpc_floor_bare", Target("min", 0.7)),
    Comparison("grpc_floor_vault", "grpc_floor_bare", Target("min", 0.95)),
    Comparison("authorize_allow", "grpc_floor_vault", Target("min", 0.75)),
    Comparison("authorize_stream", "grpc_floor_vault", Target("min", 3.0)),
    Comparison("authorize_stream", "grpc_floor_bare", Target("report")),
    Comparison("authorize_batch", "grpc_floor_bare", Target("min", 3.0)),
    Comparison("authorize_deny", "authorize_allow", Target("min", 1.0)),
    Comparison("authorize_depth8", "authorize_depth0", Target("min", 0.9)),
    Comparison("authorize_depth4", "authorize_depth0", Target("report")),
    Comparison("authorize_depth1", "authorize_depth0", Target("report")),
    Comparison("lua_keyleash", "redis_seed", Target("min", 2.5)),
    Comparison("lua_keyleash", "limits_moving", Target("min", 0.9)),
    Comparison("lua_keyleash", "redis_ping", Target("report")),
    Comparison("lua_keyleash", "redis_evalsha", Target("report")),
    Comparison("lua_keyleash_evalsha", "limits_moving", Target("report")),
    Comparison("mint", "grpc_floor_vault", Target("min", 0.3)),
    Comparison("charge", "grpc_floor_metering", Target("min", 0.5)),
    Comparison("charge", "naive_insert", Target("min", 3.0)),
    Comparison("stream_usage", "pg_copy", Target("min", 0.25)),
    Comparison("authorize_many_keys", "authorize_few_keys", Target("max", 1.2), "slowdown"),
    Comparison("charge_large", "charge", Target("max", 1.3), "slowdown"),
    Comparison("authorize_audit_on", "authorize_audit_off", Target("min", 0.85)),
    Comparison("authorize_2proc", "authorize_1proc_8conn", Target("report")),
]

ALL = [
    "grpc_floor_bare", "grpc_floor_vault", "health_bare_1caller", "authorize_1caller",
    "grpc_floor_metering", "authorize_allow", "authorize_stream", "authorize_batch",
    "authorize_deny", "authorize_depth0", "authorize_depth1", "authorize_depth4",
    "authorize_depth8", "authorize_audit_off", "authorize_audit_on", "authorize_1proc_8conn",
    "authorize_2proc",
    "redis_ping", "redis_evalsha", "lua_keyleash", "lua_keyleash_evalsha", "redis_seed",
    "limits_moving",
    "mint", "naive_insert", "charge", "pg_copy", "stream_usage", "authorize_few_keys",
    "authorize_many_keys", "charge_large", "memory",
]  # fmt: skip


@dataclass
class Fixtures:
    """What the run loop needs of the fixtures beside the scenarios."""

    busy: vault_pb2.Policy
    lua_keys: list[Any]
    lua_records: list[Any]


def prepare(args: argparse.Namespace, sut: system.System) -> tuple[dict[str, Scenario], Fixtures]:
    """Mints the fixtures and describes every scenario over them."""
    sel = set(args.selected)
    vault = sut.services["vault"].address
    metering = sut.services["metering"].address
    busy = system.busy_policy()
    allow_keys = system.run_async(system.mint_keys(sut, "bench-allow", 1, busy))
    deny_policy = vault_pb2.Policy(
        rate_limits=[vault_pb2.RateLimit(limit=1, window={"seconds": 3600})]
    )
    deny_keys = system.run_async(system.mint_keys(sut, "bench-deny", 1, deny_policy))
    system.run_async(system.exhaust(sut, deny_keys[0].secret))
    lua_keys = system.run_async(system.mint_keys(sut, "bench-lua", 8, busy))
    charge_keys = system.run_async(system.mint_keys(sut, "bench-charge", 8, busy))
    lua_records = system.run_async(
        system.key_records(sut, "bench-lua", [k.key.key_id for k in lua_keys])
    )
    system.run_async(system.prepare_redis_baselines(sut, 8, 10_000_000))
    system.run_async(system.prepare_postgres_tables(sut))

    allow = [k.secret for k in allow_keys]
    # The depth curve: the last key of a chain of `depth` ancestors, all with the busy policy.
    depth_secrets = {
        depth: system.run_async(system.mint_chain(sut, f"bench-depth{depth}", depth, busy))[
            -1
        ].secret
        for depth in (0, 1, 4, 8)
        if f"authorize_depth{depth}" in sel
    }
    common = {"redis_url": sut.redis_url, "database_url": sut.database_url}
    c = args.callers

    def authorize(
        name: str, title: str, addresses: list[str], note: str = "", connections: int = 1
    ) -> Scenario:
        return Scenario(
            name, title, "authorize",
            params={
                "addresses": addresses, "secrets": allow, "expect": "allow",
                "connections": connections,
            },
            note=note, callers=c,
        )  # fmt: skip

    def health(name: str, title: str, addresses: list[str], callers: int = c) -> Scenario:
        return Scenario(name, title, "health", callers=callers, params={"addresses": addresses})

    bare = [sut.services["bare"].address] if "bare" in sut.services else []
    scenarios = {
        **{
            f"authorize_depth{depth}": Scenario(
                f"authorize_depth{depth}",
                f"Authorize ALLOW unary, key at depth {depth} (every ancestor: 2 rate + 2 spend"
                " windows)",
                "authorize",
                params={"addresses": [vault], "secrets": [secret], "expect": "allow"},
                callers=c,
            )
            for depth, secret in depth_secrets.items()
        },
        "grpc_floor_vault": health(
            "grpc_floor_vault", "gRPC floor: health Check, vault process", [vault]
        ),
        "grpc_floor_bare": health(
            "grpc_floor_bare",
            "bare floor: health Check, grpc.aio with no interceptors (bench/bare.py)",
            bare,
        ),
        "health_bare_1caller": health(
            "health_bare_1caller", "bare floor: health Check, 1 caller (latency)", bare, callers=1
        ),
        "authorize_1caller": Scenario(
            "authorize_1caller",
            "Authorize ALLOW unary, 1 caller (latency)",
            "authorize",
            callers=1,
            params={"addresses": [vault], "secrets": allow, "expect": "allow", "connections": 1},
        ),
        "grpc_floor_metering": health(
            "grpc_floor_metering", "gRPC floor: health Check, metering process", [metering]
        ),
        "authorize_allow": authorize(
            "authorize_allow", "Authorize ALLOW unary (1 key, 2 rate + 2 spend windows)", [vault]
        ),
        "authorize_stream": Scenario(
            "authorize_stream",
            "Authorize ALLOW via AuthorizeStream",
            "authorize_stream",
            unit="decisions",
            callers=8,
            params={"addresses": [vault], "secrets": allow, "window": 64},
            note="8 streams x 64 in flight",
        ),
        "authorize_batch": Scenario(
            "authorize_batch",
            "Authorize ALLOW via AuthorizeBatch",
            "authorize_batch",
            unit="decisions",
            callers=8,
            params={
                "addresses": [vault],
                "secrets": allow,
                "batch": 64,
                "service_token": sut.service_token,
            },
            note="8 callers x 64 decisions per message",
        ),
        "authorize_deny": Scenario(
            "authorize_deny",
            "Authorize DENY (rate-limited key)",
            "authorize",
            callers=c,
            params={"addresses": [vault], "secrets": [deny_keys[0].secret], "expect": "deny"},
        ),
        "authorize_audit_off": authorize(
            "authorize_audit_off",
            "Authorize ALLOW, vault with KEYLEASH_AUDIT=off",
            [sut.services["vault_noaudit"].address] if "vault_noaudit" in sut.services else [],
        ),
        "authorize_audit_on": authorize(
            "authorize_audit_on", "Authorize ALLOW, vault with audit on (right after off)", [vault]
        ),
        "authorize_1proc_8conn": authorize(
            "authorize_1proc_8conn",
            "Authorize ALLOW, 1 vault process, 8 connections per generator process",
            [vault],
            connections=8,
        ),
        "authorize_2proc": authorize(
            "authorize_2proc",
            "Authorize ALLOW, 2 vault processes sharing one port (SO_REUSEPORT)",
            [sut.services["vault2a"].address] if "vault2a" in sut.services else [],
            note="8 connections per generator process, spread by the kernel",
            connections=8,
        ),
        "redis_ping": Scenario(
            "redis_ping", "Redis PING (redis-py asyncio)", "redis_ping", callers=c, params=common
        ),
        "redis_evalsha": Scenario(
            "redis_evalsha",
            "Redis floor: EVALSHA 'return 1'",
            "redis_evalsha",
            callers=c,
            params=common,
        ),
        "lua_keyleash": Scenario(
            "lua_keyleash",
            "Keyleash authorize.lua from Python (build_plan + the vault's auto-pipelined link)",
            "lua_keyleash",
            callers=c,
            params={**common, "chains": [[r] for r in lua_records], "via": "link"},
            note="8 keys; state, 2 rate, 2 spend windows, hold; no audit record; as the vault"
            " calls it (ScriptBatcher over keyleash_core/redis/resp_link.py)",
        ),
        "lua_keyleash_evalsha": Scenario(
            "lua_keyleash_evalsha",
            "Keyleash authorize.lua from Python (build_plan + one redis-py EVALSHA per call)",
            "lua_keyleash",
            callers=c,
            params={**common, "chains": [[r] for r in lua_records], "via": "redis-py"},
            note="the same decision, one redis-py call each, as the seed recipe and limits call",
        ),
        "redis_seed": Scenario(
            "redis_seed",
            "seed recipe: MULTI ZREMRANGEBYSCORE/ZADD/ZCARD/EXPIRE + HGET",
            "redis_seed",
            callers=c,
            params={**common, "window_ms": 10_000, "keys": 8},
            note="8 keys, 10 s window",
        ),
        "limits_moving": Scenario(
            "limits_moving",
            "`limits` moving window hit (limits.aio, redispy)",
            "limits_moving",
            callers=c,
            params={**common, "limit": 10_000_000, "window_s": 10, "keys": 8},
            note="8 keys, 10 s window",
        ),
        "mint": Scenario(
            "mint",
            "MintKey (root keys)",
            "mint",
            callers=c,
            params={"addresses": [vault], "admin_token": sut.admin_token, "tenant": "bench-mint"},
        ),
        "naive_insert": Scenario(
            "naive_insert",
            "naive: one INSERT + commit per call",
            "naive_insert",
            callers=c,
            params=common,
            note="asyncpg, 64 connections in all",
        ),
        "charge": Scenario(
            "charge",
            "Charge unary, durable ack (small billing_events)",
            "charge",
            callers=c,
            params={
                "addresses": [metering],
                "service_token": sut.service_token,
                "key_ids": [k.key.key_id for k in charge_keys],
                "tenant": "bench-charge",
            },
        ),
        "pg_copy": Scenario(
            "pg_copy",
            "Postgres floor: asyncpg COPY, billing_events shape",
            "pg_copy",
            unit="rows",
            callers=4,
            params={**common, "batch": 512},
            note="4 connections x 512-row batches",
        ),
        "stream_usage": Scenario(
            "stream_usage",
            "StreamUsage ingest, durable ack",
            "stream_usage",
            unit="rows",
            callers=8,
            params={
                "addresses": [metering],
                "service_token": sut.service_token,
                "key_ids": [k.key.key_id for k in charge_keys],
                "window": 256,
                "model": "claude-haiku-4",
            },
            note="8 streams x 256 in flight",
        ),
    }
    scenarios["authorize_few_keys"] = authorize(
        "authorize_few_keys", "Authorize ALLOW, before the idle-key fill", [vault]
    )
    scenarios["authorize_many_keys"] = authorize(
        "authorize_many_keys",
        f"Authorize ALLOW with {args.keys:,} idle keys in Redis",
        [vault],
        note="--quick scale" if args.quick else "",
    )
    charge_large = dict(scenarios["charge"].__dict__)
    charge_large.update(
        name="charge_large",
        title=f"Charge unary with {args.rows:,} more billing_events rows",
        note="--quick scale" if args.quick else "",
    )
    scenarios["charge_large"] = Scenario(**charge_large)
    return scenarios, Fixtures(busy, lua_keys, lua_records)
