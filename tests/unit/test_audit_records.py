"""Audit stream entries as the drainer hands them to Postgres (pure)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import Policy
from keyleash_core.reasons import DenyReason
from vault_service.audit.records import entry_parts
from vault_service.domain.checks import CallRequest
from vault_service.domain.decision import (
    AUDIT_REQUEST_FIELDS,
    AUDIT_VERDICT_FIELDS,
    audit_request,
    denial_verdict,
)

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


def named(parts: tuple[str, str]) -> dict[str, str]:
    verdict, request = (json.loads(p) for p in parts)
    return dict(zip(AUDIT_VERDICT_FIELDS, verdict, strict=True)) | dict(
        zip(AUDIT_REQUEST_FIELDS, request, strict=True)
    )


def test_a_denial_entry_passes_through_in_field_order() -> None:
    raw = {
        b"v": denial_verdict("d_1", 1_764_331_200_000, DenyReason.SCOPE_DENIED).encode(),
        b"q": audit_request(ME, call(), "ab" * 16).encode(),
    }
    fields = named(entry_parts(raw))
    assert fields["decision_id"] == "d_1" and fields["time_ms"] == "1764331200000"
    assert fields["decision"] == "D" and fields["reason"] == "SCOPE_DENIED"
    assert fields["key_path"] == "k1,k2" and fields["parent_key_id"] == "k1"
    assert fields["estimated_micros"] == "250000" and fields["currency"] == "USD"
    assert fields["trace_id"] == "ab" * 16 and fields["request_id"] == "r-9"


def test_an_entry_of_the_earlier_one_field_per_column_format_is_converted() -> None:
    fields = {"decision_id": "d_2", "time_ms": "1000", "decision": "A", "quota_used": "7",
              "tenant_id": "acme", "key_id": "k2", "key_path": "k1,k2"}  # fmt: skip
    converted = named(entry_parts({k.encode(): v.encode() for k, v in fields.items()}))
    assert {k: converted[k] for k in fields} == fields
    assert converted["reservation_id"] == "" and converted["request_id"] == ""


@given(st.text(), st.text())
def test_any_request_text_survives_the_round_trip(path: str, run: str) -> None:
    raw = {
        b"v": denial_verdict("d_3", 5, DenyReason.RATE_LIMITED).encode(),
        b"q": audit_request(ME, call(path, run), "").encode(),
    }
    fields = named(entry_parts(raw))
    assert fields["path"] == path and fields["agent_run_id"] == run
