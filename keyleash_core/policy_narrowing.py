"""A policy narrowed by explicit fields: how a key minted from a template (or a provisioned vendor
key) gets its policy. Pure.

The template's limits all stay; explicit fields may only tighten them or add new ones: a rate
limit or spend cap of the same window replaces the template's only when it is at most as large
(new windows are added), a per-call or run cap at most the template's, narrowing lists within the
template's (patterns may narrow patterns), constraints per attribute likewise (new attributes
added), max_calls at most the template's. Anything wider raises ExceedsParent naming the field.
"""

from __future__ import annotations

from dataclasses import replace

from keyleash_core.money import Money
from keyleash_core.policy import (
    AttributeConstraint,
    ExceedsParent,
    Policy,
    RateLimit,
    SpendCap,
    check_within_parent,
)


def narrowed(base: Policy, explicit: Policy) -> Policy:
    """`base` with `explicit`'s fields applied; ExceedsParent when one would widen it."""
    result = replace(
        base,
        rate_limits=_rates(base.rate_limits, explicit.rate_limits),
        spend_caps=_caps(base.spend_caps, explicit.spend_caps),
        max_cost_per_call=_money_limit(
            "policy.max_cost_per_call", base.max_cost_per_call, explicit.max_cost_per_call
        ),
        run_spend_cap=_money_limit(
            "policy.run_spend_cap", base.run_spend_cap, explicit.run_spend_cap
        ),
        allowed_endpoints=explicit.allowed_endpoints or base.allowed_endpoints,
        allowed_vendors=explicit.allowed_vendors or base.allowed_vendors,
        constraints=_constraints(base.constraints, explicit.constraints),
        max_calls=explicit.max_calls or base.max_calls,
    )
    check_within_parent(result, base)  # lists, constraints, max_calls; limits checked above
    return result


def _rates(base: tuple[RateLimit, ...], explicit: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
    mine = {r.window_ms: r for r in explicit}
    for index, rate in enumerate(explicit):
        for theirs in base:
            if rate.window_ms == theirs.window_ms and rate.limit > theirs.limit:
                raise ExceedsParent(
                    f"policy.rate_limits[{index}]", f"exceeds the template's {theirs.limit}"
                )
    kept = [mine.pop(r.window_ms, r) for r in base]
    return (*kept, *(r for r in explicit if r.window_ms in mine))


def _caps(base: tuple[SpendCap, ...], explicit: tuple[SpendCap, ...]) -> tuple[SpendCap, ...]:
    mine = {c.window: c for c in explicit}
    for index, cap in enumerate(explicit):
        for theirs in base:
            if cap.window != theirs.window:
                continue
            if cap.limit.currency != theirs.limit.currency:
                raise ExceedsParent(f"policy.spend_caps[{index}]", "currency differs")
            if cap.limit.micros > theirs.limit.micros:
                raise ExceedsParent(
                    f"policy.spend_caps[{index}]", f"exceeds the template's {theirs.limit}"
                )
    kept = [mine.pop(c.window, c) for c in base]
    return (*kept, *(c for c in explicit if c.window in mine))


def _money_limit(path: str, base: Money | None, explicit: Money | None) -> Money | None:
    if explicit is None:
        return base
    if base is not None and (explicit.currency != base.currency or explicit.micros > base.micros):
        raise ExceedsParent(path, f"must be at most the template's {base}")
    return explicit


def _constraints(
    base: tuple[AttributeConstraint, ...], explicit: tuple[AttributeConstraint, ...]
) -> tuple[AttributeConstraint, ...]:
    mine = {c.attribute: c for c in explicit}
    kept = [mine.pop(c.attribute, c) for c in base]
    return (*kept, *(c for c in explicit if c.attribute in mine))
