"""Proto <-> domain for the vault, with the request validation that names the bad field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from keyleash.vault.v1 import vault_pb2
from keyleash_core.errors import InvalidArgument
from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import AttributeConstraint, Policy, RateLimit, SpendCap, SpendWindow
from keyleash_core.reasons import DenyReason
from keyleash_core.times import timestamp_from_ms
from keyleash_core.validation import MAX_LIST, duration_ms, money, strings, text, timestamp_ms
from keyleash_core.wire import money_to_proto
from vault_service.domain.checks import CallRequest
from vault_service.usecases.authorize import Decision

MIN_WINDOW_MS = 1000
MAX_WINDOW_MS = 31 * 24 * 3600 * 1000

_WINDOWS = {
    vault_pb2.SpendCap.WINDOW_ROLLING_24H: SpendWindow.ROLLING_24H,
    vault_pb2.SpendCap.WINDOW_CALENDAR_DAY: SpendWindow.CALENDAR_DAY,
    vault_pb2.SpendCap.WINDOW_CALENDAR_MONTH: SpendWindow.CALENDAR_MONTH,
    vault_pb2.SpendCap.WINDOW_LIFETIME: SpendWindow.LIFETIME,
}
_WINDOWS_BACK = {v: k for k, v in _WINDOWS.items()}
_STATES = {
    KeyState.ACTIVE: vault_pb2.Key.STATE_ACTIVE,
    KeyState.FROZEN: vault_pb2.Key.STATE_FROZEN,
    KeyState.REVOKED: vault_pb2.Key.STATE_REVOKED,
}
STATE_FILTERS = {
    vault_pb2.Key.STATE_UNSPECIFIED: "",
    vault_pb2.Key.STATE_ACTIVE: "active",
    vault_pb2.Key.STATE_FROZEN: "frozen",
    vault_pb2.Key.STATE_REVOKED: "revoked",
}


def policy_from_proto(p: vault_pb2.Policy, path: str = "policy") -> Policy:
    rates = []
    if len(p.rate_limits) > 8:
        raise InvalidArgument(f"{path}.rate_limits", "at most 8")
    for i, r in enumerate(p.rate_limits):
        where = f"{path}.rate_limits[{i}]"
        if not 1 <= r.limit <= 1_000_000_000:
            raise InvalidArgument(f"{where}.limit", "between 1 and 1e9")
        window = duration_ms(r.window, f"{where}.window")
        if not MIN_WINDOW_MS <= window <= MAX_WINDOW_MS:
            raise InvalidArgument(f"{where}.window", "between 1 second and 31 days")
        rates.append(RateLimit(r.limit, window))
    caps = []
    if len(p.spend_caps) > 8:
        raise InvalidArgument(f"{path}.spend_caps", "at most 8")
    for i, c in enumerate(p.spend_caps):
        where = f"{path}.spend_caps[{i}]"
        if c.window not in _WINDOWS:
            raise InvalidArgument(f"{where}.window", "one of the WINDOW_* values")
        caps.append(SpendCap(money(c.limit, f"{where}.limit"), _WINDOWS[c.window]))
    constraints = []
    for i, constraint in enumerate(p.constraints):
        where = f"{path}.constraints[{i}]"
        constraints.append(
            AttributeConstraint(
                text(constraint.attribute, f"{where}.attribute", required=True, limit=128),
                strings(list(constraint.allowed_values), f"{where}.allowed_values", limit=1000),
            )
        )
    for i, endpoint in enumerate(p.allowed_endpoints):
        method, _, route = endpoint.partition(" ")
        if not method or not route.startswith("/"):
            raise InvalidArgument(f"{path}.allowed_endpoints[{i}]", 'like "POST /v1/charges"')
    if p.max_calls < 0:
        raise InvalidArgument(f"{path}.max_calls", "must not be negative")
    return Policy(
        rate_limits=tuple(rates),
        spend_caps=tuple(caps),
        max_cost_per_call=(
            money(p.max_cost_per_call, f"{path}.max_cost_per_call")
            if p.HasField("max_cost_per_call")
            else None
        ),
        run_spend_cap=(
            money(p.run_spend_cap, f"{path}.run_spend_cap") if p.HasField("run_spend_cap") else None
        ),
        allowed_endpoints=strings(list(p.allowed_endpoints), f"{path}.allowed_endpoints"),
        allowed_vendors=strings(list(p.allowed_vendors), f"{path}.allowed_vendors"),
        constraints=tuple(constraints),
        max_calls=p.max_calls,
        approval_on_denial=p.approval_on_denial,
    )


def policy_to_proto(policy: Policy) -> vault_pb2.Policy:
    out = vault_pb2.Policy(
        allowed_endpoints=policy.allowed_endpoints,
        allowed_vendors=policy.allowed_vendors,
        max_calls=policy.max_calls,
        approval_on_denial=policy.approval_on_denial,
    )
    for r in policy.rate_limits:
        window = duration_pb2.Duration()
        window.FromMilliseconds(r.window_ms)
        out.rate_limits.add(limit=r.limit, window=window)
    for c in policy.spend_caps:
        out.spend_caps.add(limit=money_to_proto(c.limit), window=_WINDOWS_BACK[c.window])
    for a in policy.constraints:
        out.constraints.add(attribute=a.attribute, allowed_values=a.allowed_values)
    if policy.max_cost_per_call is not None:
        out.max_cost_per_call.CopyFrom(money_to_proto(policy.max_cost_per_call))
    if policy.run_spend_cap is not None:
        out.run_spend_cap.CopyFrom(money_to_proto(policy.run_spend_cap))
    return out


def key_to_proto(record: KeyRecord, now_ms: int) -> vault_pb2.Key:
    state = _STATES[record.state]
    if record.state is KeyState.ACTIVE and record.expire_time_ms <= now_ms:
        state = vault_pb2.Key.STATE_EXPIRED
    key = vault_pb2.Key(
        name=record.name,
        key_id=record.key_id,
        tenant_id=record.tenant_id,
        parent_key_id=record.parent_key_id,
        agent_id=record.agent_id,
        label=record.label,
        scopes=record.scopes,
        policy=policy_to_proto(record.policy),
        state=state,
        create_time=timestamp_from_ms(record.create_time_ms),
        expire_time=timestamp_from_ms(record.expire_time_ms),
        revoke_reason=record.revoke_reason,
        metadata=record.metadata,
        depth=record.depth,
    )
    if record.revoke_time_ms:
        key.revoke_time.CopyFrom(timestamp_from_ms(record.revoke_time_ms))
    return key


def call_from_proto(r: vault_pb2.AuthorizeRequest) -> CallRequest:
    if len(r.attributes) > MAX_LIST:
        raise InvalidArgument("attributes", f"at most {MAX_LIST} entries")
    return CallRequest(
        scope=text(r.scope, "scope", required=True, limit=256),
        vendor=text(r.vendor, "vendor", limit=256),
        method=text(r.method, "method", limit=16),
        path=text(r.path, "path", limit=2048),
        estimated_cost=money(r.estimated_cost, "estimated_cost")
        if r.HasField("estimated_cost")
        else None,
        agent_run_id=text(r.agent_run_id, "agent_run_id", limit=256),
        attributes={
            text(k, "attributes", limit=128): text(v, f"attributes[{k}]")
            for k, v in r.attributes.items()
        },
        request_id=text(r.request_id, "request_id", limit=256),
    )


def decision_to_proto(
    d: Decision, out: vault_pb2.AuthorizeResponse | None = None
) -> vault_pb2.AuthorizeResponse:
    """The decision as a response; filled into `out` when given (an element a batch response
    added, so it is not copied in afterwards). Only fields that differ from their defaults are
    set: each set of a field costs, and a batch converts thousands per second."""
    out = vault_pb2.AuthorizeResponse() if out is None else out
    out.decision = vault_pb2.DECISION_ALLOW if d.allowed else vault_pb2.DECISION_DENY
    if d.reason is not None:
        out.reason = deny_reason(d.reason)
    out.message = d.message
    out.key_id = d.key_id
    out.tenant_id = d.tenant_id
    if d.reservation_id:
        out.reservation_id = d.reservation_id
    out.decision_id = d.decision_id
    if d.approval:
        out.approval = d.approval
    if d.connections_version:
        out.connections_version = d.connections_version
    quotas = out.quotas
    for q in d.quotas:
        status = quotas.add(
            subject=q.subject, quota=q.quota, unit=q.unit, limit=q.limit, used=q.used,
            remaining=q.remaining,
        )  # fmt: skip
        if q.reset_ms:
            # What Timestamp.FromMilliseconds does, a third of its cost (one per window).
            reset = status.reset_time
            reset.seconds, milliseconds = divmod(q.reset_ms, 1000)
            reset.nanos = milliseconds * 1_000_000
    if d.retry_after_ms > 0:
        out.retry_after.FromMilliseconds(d.retry_after_ms)
    return out


# Built at import, so a DenyReason the proto lacks fails the service's start, not a call.
_DENY_REASONS: dict[DenyReason, vault_pb2.DenyReason] = {
    reason: getattr(vault_pb2, "DENY_REASON_" + reason.value) for reason in DenyReason
}


def deny_reason(reason: DenyReason | None) -> vault_pb2.DenyReason:
    """The proto's DenyReason (None: unspecified)."""
    if reason is None:
        return vault_pb2.DENY_REASON_UNSPECIFIED
    return _DENY_REASONS[reason]


def authorization_to_proto(row: Any) -> vault_pb2.Authorization:
    """One row of the authorization_ledger view."""
    out = vault_pb2.Authorization(
        decision_id=row["decision_id"],
        tenant_id=row["tenant_id"],
        key_id=row["key_id"],
        parent_key_id=row["parent_key_id"],
        agent_id=row["agent_id"],
        agent_run_id=row["agent_run_id"],
        trace_id=row["trace_id"],
        scope=row["scope"],
        vendor=row["vendor"],
        method=row["method"],
        path=row["path"],
        decision=vault_pb2.DECISION_ALLOW
        if row["decision"] == "allow"
        else vault_pb2.DECISION_DENY,
        reason=deny_reason(DenyReason(row["deny_reason"]) if row["deny_reason"] else None),
        reservation_id=row["reservation_id"],
        request_id=row["request_id"],
        settled_events=row["settled_events"],
    )
    out.decision_time.FromDatetime(row["decision_time"])
    attributes = row["attributes"]
    if attributes:
        found = json.loads(attributes) if isinstance(attributes, str) else attributes
        out.attributes.update({str(k): str(v) for k, v in found.items()})
    if row["currency_code"]:
        out.estimated_cost.CopyFrom(
            money_to_proto(Money(row["currency_code"], row["estimated_micros"]))
        )
        out.settled_cost.CopyFrom(
            money_to_proto(Money(row["currency_code"], int(row["settled_micros"])))
        )
    if row["quota"]:
        out.quota.CopyFrom(
            vault_pb2.QuotaStatus(
                subject=row["quota_subject"],
                quota=row["quota"],
                limit=row["quota_limit"],
                used=row["quota_used"],
                remaining=row["quota_remaining"],
            )
        )
    return out


def utc(value: timestamp_pb2.Timestamp, path: str) -> datetime:
    return datetime.fromtimestamp(timestamp_ms(value, path) / 1000, tz=UTC)
