"""A key's policy as plain data, its JSON form (Postgres and the Redis cache), and the rule that a
child never gets more than its parent. Pure: no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

from keyleash_core.money import Money
from keyleash_core.patterns import uncovered


class SpendWindow(Enum):
    """How a spend cap's window is measured (UTC)."""

    ROLLING_24H = "rolling_24h"
    CALENDAR_DAY = "calendar_day"
    CALENDAR_MONTH = "calendar_month"
    LIFETIME = "lifetime"


@dataclass(frozen=True)
class RateLimit:
    limit: int
    window_ms: int

    @property
    def quota_name(self) -> str:
        seconds, millis = divmod(self.window_ms, 1000)
        return f"rate/{seconds}s" if not millis else f"rate/{self.window_ms}ms"


@dataclass(frozen=True)
class SpendCap:
    limit: Money
    window: SpendWindow

    @property
    def quota_name(self) -> str:
        return f"spend/{self.window.value}"


@dataclass(frozen=True)
class AttributeConstraint:
    attribute: str
    allowed_values: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """What a key may do. Empty collections mean "no limit of that kind"."""

    rate_limits: tuple[RateLimit, ...] = ()
    spend_caps: tuple[SpendCap, ...] = ()
    max_cost_per_call: Money | None = None
    run_spend_cap: Money | None = None
    allowed_endpoints: tuple[str, ...] = ()
    allowed_vendors: tuple[str, ...] = ()
    constraints: tuple[AttributeConstraint, ...] = ()
    max_calls: int = 0
    # A budget denial opens an approval request (vault approvals).
    approval_on_denial: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @cached_property
    def cap_currencies(self) -> frozenset[str]:
        """Every currency a cap (spend, run, per call) is in; read on every decision, so
        computed once per policy (a policy never changes: a new version is a new object)."""
        found = {cap.limit.currency for cap in self.spend_caps}
        for cap in (self.run_spend_cap, self.max_cost_per_call):
            if cap is not None:
                found.add(cap.currency)
        return frozenset(found)

    def to_json(self) -> str:
        return json.dumps(
            {
                "rate_limits": [[r.limit, r.window_ms] for r in self.rate_limits],
                "spend_caps": [
                    [c.limit.currency, c.limit.micros, c.window.value] for c in self.spend_caps
                ],
                "max_cost_per_call": _money_json(self.max_cost_per_call),
                "run_spend_cap": _money_json(self.run_spend_cap),
                "allowed_endpoints": list(self.allowed_endpoints),
                "allowed_vendors": list(self.allowed_vendors),
                "constraints": [[c.attribute, list(c.allowed_values)] for c in self.constraints],
                "max_calls": self.max_calls,
                # Only when set, so the JSON of policies without it is unchanged.
                **({"approval_on_denial": True} if self.approval_on_denial else {}),
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        return cls(
            rate_limits=tuple(RateLimit(int(n), int(ms)) for n, ms in data["rate_limits"]),
            spend_caps=tuple(
                SpendCap(Money(cur, int(micros)), SpendWindow(window))
                for cur, micros, window in data["spend_caps"]
            ),
            max_cost_per_call=_money_from_json(data["max_cost_per_call"]),
            run_spend_cap=_money_from_json(data["run_spend_cap"]),
            allowed_endpoints=tuple(data["allowed_endpoints"]),
            allowed_vendors=tuple(data["allowed_vendors"]),
            constraints=tuple(
                AttributeConstraint(name, tuple(values)) for name, values in data["constraints"]
            ),
            max_calls=int(data["max_calls"]),
            approval_on_denial=bool(data.get("approval_on_denial", False)),
        )


def _money_json(money: Money | None) -> list[object] | None:
    return None if money is None else [money.currency, money.micros]


def _money_from_json(data: list[object] | None) -> Money | None:
    return None if data is None else Money(str(data[0]), int(str(data[1])))


class ExceedsParent(Exception):
    """A child policy asks for more than its parent has; `field` names what."""

    def __init__(self, field_path: str, detail: str) -> None:
        super().__init__(f"{field_path}: {detail}")
        self.field = field_path
        self.detail = detail


def check_within_parent(child: Policy, parent: Policy) -> None:
    """Raises ExceedsParent unless every limit of `child` is at most the parent's.

    A parent limit the child does not restate is inherited, not widened: rate limits, call
    counts and spend caps of every ancestor keep applying to the child's calls, because each
    decision checks and consumes the whole chain (roll-up).
    Lists that narrow (endpoints, vendors, constraint values) must allow nothing the parent's
    do not: each child entry equals a parent entry or is a narrower pattern of one ("+1415*"
    within "+1*", "*-ops@acme.com" within "*@acme.com", "GET /v1/customers/cus_1" within
    "GET /v1/customers/*"). An empty list means "any", so a child may only leave one empty when
    the parent's is empty too.
    """
    _check_rates(child, parent)
    _check_caps(child, parent)
    _check_money_limit(
        "policy.max_cost_per_call", child.max_cost_per_call, parent.max_cost_per_call
    )
    _check_money_limit("policy.run_spend_cap", child.run_spend_cap, parent.run_spend_cap)
    _check_subset(
        "policy.allowed_endpoints",
        child.allowed_endpoints,
        parent.allowed_endpoints,
        uncovered(child.allowed_endpoints, parent.allowed_endpoints, endpoints=True),
    )
    _check_subset(
        "policy.allowed_vendors",
        child.allowed_vendors,
        parent.allowed_vendors,
        sorted(set(child.allowed_vendors) - set(parent.allowed_vendors)),
    )
    child_constraints = {c.attribute: c for c in child.constraints}
    for parent_constraint in parent.constraints:
        mine = child_constraints.get(parent_constraint.attribute)
        if mine is not None:
            _check_subset(
                f"policy.constraints[{parent_constraint.attribute}]",
                mine.allowed_values,
                parent_constraint.allowed_values,
                uncovered(mine.allowed_values, parent_constraint.allowed_values),
            )
    if parent.max_calls and (child.max_calls == 0 or child.max_calls > parent.max_calls):
        raise ExceedsParent("policy.max_calls", f"must be between 1 and {parent.max_calls}")


def _check_rates(child: Policy, parent: Policy) -> None:
    for index, mine in enumerate(child.rate_limits):
        for theirs in parent.rate_limits:
            if mine.window_ms == theirs.window_ms and mine.limit > theirs.limit:
                raise ExceedsParent(
                    f"policy.rate_limits[{index}]",
                    f"{mine.limit} per {mine.window_ms} ms exceeds the parent's {theirs.limit}",
                )


def _check_caps(child: Policy, parent: Policy) -> None:
    for index, mine in enumerate(child.spend_caps):
        for theirs in parent.spend_caps:
            same_window = mine.window == theirs.window
            if same_window and mine.limit.currency != theirs.limit.currency:
                raise ExceedsParent(
                    f"policy.spend_caps[{index}]", "currency differs from the parent's"
                )
            if same_window and mine.limit.micros > theirs.limit.micros:
                raise ExceedsParent(
                    f"policy.spend_caps[{index}]", f"exceeds the parent's {theirs.limit}"
                )


def _check_money_limit(path: str, child: Money | None, parent: Money | None) -> None:
    if parent is None:
        return
    if child is None:
        raise ExceedsParent(path, f"must be set, at most the parent's {parent}")
    if child.currency != parent.currency or child.micros > parent.micros:
        raise ExceedsParent(path, f"must be at most the parent's {parent}")


def _check_subset(
    path: str, child: tuple[str, ...], parent: tuple[str, ...], extra: list[str]
) -> None:
    """`extra`: the child's entries the parent's do not cover (patterns may narrow patterns)."""
    if not parent:
        return
    if not child:
        raise ExceedsParent(path, "must be a subset of the parent's (the parent restricts it)")
    if extra:
        raise ExceedsParent(path, f"not allowed for the parent: {', '.join(extra)}")
