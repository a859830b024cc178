"""The pure part of a decision: scope, endpoint, vendor, attributes, per-call cost, currency.

Run over the cached policy of the key and its ancestors before the one Redis script. A cost in
another currency than a cap is checked (and held) in the cap's currency: `converted` carries the
estimate in every currency the chain's caps are in (keyleash_core.fx, rounded up); a cap whose
currency it lacks (no rate for the pair) denies the call with FX_RATE_UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from keyleash_core.keyrecord import KeyRecord
from keyleash_core.money import Money
from keyleash_core.patterns import endpoint_matches, value_allowed
from keyleash_core.reasons import DenyReason


class CallRequest(NamedTuple):
    """What an agent is about to do, as Authorize describes it (a named tuple: one is built per
    decision, a third of the cost of a frozen dataclass)."""

    scope: str
    vendor: str
    method: str
    path: str
    estimated_cost: Money | None
    agent_run_id: str
    attributes: Mapping[str, str]
    request_id: str


@dataclass(frozen=True)
class PureDenial:
    reason: DenyReason
    message: str
    subject: str


def constraint_met(allowed_values: Sequence[str], value: str | None) -> bool:
    """Whether an attribute value meets a constraint. A value of several lines is several
    values (e.g. every recipient of one email): each must be allowed."""
    if value is None:
        return False
    return all(any(value_allowed(p, v) for p in allowed_values) for v in value.split("\n"))


def check_call(
    chain: Sequence[KeyRecord], call: CallRequest, converted: Mapping[str, int] | None = None
) -> PureDenial | None:
    """The first policy of the chain (key first, then ancestors) that forbids the call, if any.

    `converted`: the estimated cost in each currency it converts into (None: its own only)."""
    cost = call.estimated_cost
    amounts = dict(converted or {})
    if cost is not None:
        amounts[cost.currency] = cost.micros
    for record in chain:
        denial = _check_one(record, call) or _check_costs(record, call, amounts)
        if denial is not None:
            return denial
    return None


def _check_one(record: KeyRecord, call: CallRequest) -> PureDenial | None:
    policy, name = record.policy, record.name
    if call.scope not in record.scopes:
        return PureDenial(
            DenyReason.SCOPE_DENIED, f"scope {call.scope!r} is not granted to {name}", name
        )
    if policy.allowed_endpoints and not any(
        endpoint_matches(p, call.method, call.path) for p in policy.allowed_endpoints
    ):
        return PureDenial(
            DenyReason.ENDPOINT_DENIED,
            f"{call.method} {call.path} is not an allowed endpoint of {name}",
            name,
        )
    if policy.allowed_vendors and call.vendor not in policy.allowed_vendors:
        return PureDenial(
            DenyReason.VENDOR_DENIED, f"vendor {call.vendor!r} is not allowed for {name}", name
        )
    for constraint in policy.constraints:
        value = call.attributes.get(constraint.attribute)
        if not constraint_met(constraint.allowed_values, value):
            return PureDenial(
                DenyReason.CONSTRAINT_DENIED,
                f"attribute {constraint.attribute}={value!r} is not allowed for {name}",
                name,
            )
    return None


def _check_costs(
    record: KeyRecord, call: CallRequest, amounts: Mapping[str, int]
) -> PureDenial | None:
    cost, policy, name = call.estimated_cost, record.policy, record.name
    if cost is None or cost.micros <= 0:
        return None
    caps = [c.limit for c in policy.spend_caps]
    caps += [c for c in (policy.run_spend_cap, policy.max_cost_per_call) if c is not None]
    for cap in caps:
        if cap.currency not in amounts:
            return PureDenial(
                DenyReason.FX_RATE_UNKNOWN,
                f"estimated cost in {cost.currency} but {name} caps spend in {cap.currency}, "
                f"and the FX table has no {cost.currency}/{cap.currency} rate",
                name,
            )
    per_call = policy.max_cost_per_call
    if per_call is not None and amounts[per_call.currency] > per_call.micros:
        return PureDenial(
            DenyReason.PER_CALL_CAP_EXCEEDED,
            f"estimated {cost} exceeds {per_call} per call for {name}",
            name,
        )
    return None
