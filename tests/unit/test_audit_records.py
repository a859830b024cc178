"""Audit stream entries -> authorizations rows (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import Policy
from vault_service.audit.records import COLUMNS, entry_to_row
from vault_service.domain.checks import CallRequest
from vault_service.domain.decision import audit_request, denial_verdict

ME = KeyRecord(
    key_id="k2", tenant_id="acme", parent_key_id="k1", key_path=("k1", "k2"), agent_id="bot",
    label="", scopes=("s",), policy=Policy(), policy_version=1, state=KeyState.ACTIVE,
    create_time_ms=0, expire_time_ms=10**13,
)  # fmt: skip


def call(path: str = "/v1/charges", run: str = "run-1") -> CallRequest:
    return CallRequest(
        scope="payments.write", vendor="stripe", method="POST", path=path,
        estimated_cost=Money("USD", 250_000), agent_run_id=run, attributes={}, request_id="r-9",
    )  # fmt: skip


def test_a_denial_entry_becomes_its_row() -> None:
    raw = {
        b"v": denial_verdict("d_1", 1_764_331_200_000, "SCOPE_DENIED").encode(),
        b"q": audit_request(ME, call(), "ab" * 16).encode(),
    }
    row = dict(zip(COLUMNS, entry_to_row(raw), strict=True))
    assert row["decision_id"] == "d_1"
    assert row["decision_time"] == datetime.fromtimestamp(1_764_331_200, tz=UTC)
    assert row["decision"] == "deny" and row["deny_reason"] == "SCOPE_DENIED"
    assert row["key_path"] == ["k1", "k2"] and row["parent_key_id"] == "k1"
    assert row["estimated_micros"] == 250_000 and row["currency_code"] == "USD"
    assert row["trace_id"] == "ab" * 16 and row["request_id"] == "r-9"


def test_an_entry_of_the_earlier_one_field_per_column_format_still_drains() -> None:
    fields = {
        "decision_id": "d_2", "time_ms": "1000", "decision": "A", "reason": "",
        "quota_limit": "100", "quota_used": "7", "quota_remaining": "93", "tenant_id": "acme",
        "key_id": "k2", "key_path": "k1,k2", "estimated_micros": "5", "currency": "USD",
    }  # fmt: skip
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    row = dict(zip(COLUMNS, entry_to_row(raw), strict=True))
    assert row["decision"] == "allow" and row["quota_used"] == 7 and row["key_id"] == "k2"


@given(st.text(), st.text())
def test_any_request_text_survives_the_round_trip(path: str, run: str) -> None:
    # Lua's cjson writes the verdict; Python's json the request part: both must read back.
    verdict = json.dumps(["d_3", "5", "A", "", "keys/x", "rpm", "10", "1", "9", "r_1"])
    raw = {b"v": verdict.encode(), b"q": audit_request(ME, call(path, run), "").encode()}
    row = dict(zip(COLUMNS, entry_to_row(raw), strict=True))
    assert row["path"] == path and row["agent_run_id"] == run
    assert row["quota_subject"] == "keys/x" and row["reservation_id"] == "r_1"
