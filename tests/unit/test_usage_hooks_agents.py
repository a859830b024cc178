"""The receiver's rule for events naming an agent (pure, table-driven): which key of the agent's
keys an event records against, and why an agent resolves to none."""

from __future__ import annotations

import json

import pytest

from keyleash.vault.v1 import vault_pb2
from keyleash_usage_hooks.agents import AgentUnresolved, root_most_live_key
from keyleash_usage_hooks.events import EventsInvalid, parse_events

ACTIVE, FROZEN = vault_pb2.Key.STATE_ACTIVE, vault_pb2.Key.STATE_FROZEN
REVOKED, EXPIRED = vault_pb2.Key.STATE_REVOKED, vault_pb2.Key.STATE_EXPIRED


def key(key_id: str, depth: int = 0, state: vault_pb2.Key.State = ACTIVE) -> vault_pb2.Key:
    return vault_pb2.Key(key_id=key_id, depth=depth, state=state)


@pytest.mark.parametrize(
    ("keys", "picked"),
    [
        ([key("k1")], "k1"),
        ([key("child", 1), key("root", 0), key("grandchild", 2)], "root"),
        ([key("root", 0, FROZEN), key("child", 1)], "child"),
        ([key("a", 0, REVOKED), key("b", 0, EXPIRED), key("c", 2)], "c"),
    ],
)
def test_the_root_most_active_key_is_picked(keys: list[vault_pb2.Key], picked: str) -> None:
    assert root_most_live_key("acme", "bot", keys) == picked


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "agent 'bot' has no key in tenant acme"),
        ([key("a", 0, FROZEN), key("b", 1, REVOKED)], r"no active key in tenant acme \(2 frozen"),
        ([key("b"), key("a"), key("c", 1)], r"2 active keys at depth 0 in tenant acme \(a, b\)"),
        ([key(f"k{i}") for i in range(5)], r"\(k0, k1, k2, \.\.\.\); name the key_id instead"),
    ],
)
def test_no_single_active_key_is_refused(keys: list[vault_pb2.Key], message: str) -> None:
    with pytest.raises(AgentUnresolved, match=message):
        root_most_live_key("acme", "bot", keys)


def test_an_event_names_a_key_or_an_agent() -> None:
    events = [
        {"id": "e1", "key_id": "k_1", "model": "m"},
        {"id": "e2", "agent_id": "bot", "model": "m"},
    ]
    by_key, by_agent = parse_events(json.dumps({"events": events}), "acme")
    assert (by_key.key_id, by_key.agent_id) == ("k_1", "")
    assert (by_agent.key_id, by_agent.agent_id) == ("", "bot")
    for fields in ({"key_id": "k", "agent_id": "a"}, {}, {"agent_id": 3}, {"agent_id": "x" * 257}):
        with pytest.raises(EventsInvalid, match=r"events\[0\]"):
            parse_events(json.dumps({"events": [{"id": "e", "model": "m", **fields}]}), "acme")
