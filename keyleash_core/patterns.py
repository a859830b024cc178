"""The patterns of a policy's narrowing lists: what a value or endpoint matches, and whether
one pattern allows nothing beyond another (so a child key may narrow its parent's patterns).

Attribute values: "+1*" matches by prefix, "*@acme.com" by suffix, anything else exactly.
Endpoints: "POST /v1/charges" or "GET /v1/customers/*": the method exactly (or "*"), "*" one
non-empty path segment.
"""

from __future__ import annotations

from collections.abc import Sequence


def _kind(pattern: str) -> tuple[str, str]:
    """("prefix"|"suffix"|"exact", the fixed part)."""
    if len(pattern) > 1 and pattern.endswith("*"):
        return "prefix", pattern[:-1]
    if len(pattern) > 1 and pattern.startswith("*"):
        return "suffix", pattern[1:]
    return "exact", pattern


def value_allowed(pattern: str, value: str) -> bool:
    kind, fixed = _kind(pattern)
    if kind == "prefix":
        return value.startswith(fixed)
    if kind == "suffix":
        return value.endswith(fixed)
    return value == fixed


def value_pattern_within(child: str, parent: str) -> bool:
    """Whether every value `child` matches is matched by `parent` ("+1415*" within "+1*")."""
    child_kind, child_fixed = _kind(child)
    if child_kind == "exact":
        return value_allowed(parent, child_fixed)
    parent_kind, parent_fixed = _kind(parent)
    if child_kind != parent_kind:
        return False  # a prefix pattern matches values of any ending, and the other way round
    if child_kind == "prefix":
        return child_fixed.startswith(parent_fixed)
    return child_fixed.endswith(parent_fixed)


def endpoint_matches(pattern: str, method: str, path: str) -> bool:
    pattern_method, _, pattern_path = pattern.partition(" ")
    if pattern_method != "*" and pattern_method.upper() != method.upper():
        return False
    wanted = pattern_path.strip("/").split("/")
    actual = path.split("?", 1)[0].strip("/").split("/")
    if len(wanted) != len(actual):
        return False
    return all((w == "*" and a != "") or w == a for w, a in zip(wanted, actual, strict=True))


def endpoint_pattern_within(child: str, parent: str) -> bool:
    """Whether every call `child` allows is allowed by `parent` ("GET /v1/customers/cus_1"
    within "GET /v1/customers/*", "POST /v1/x" within "* /v1/x")."""
    child_method, _, child_path = child.partition(" ")
    parent_method, _, parent_path = parent.partition(" ")
    if parent_method != "*" and parent_method.upper() != child_method.upper():
        return False
    wanted = parent_path.strip("/").split("/")
    mine = child_path.strip("/").split("/")
    if len(wanted) != len(mine):
        return False
    return all(w == "*" or w == m for w, m in zip(wanted, mine, strict=True))


def uncovered(child: Sequence[str], parent: Sequence[str], *, endpoints: bool = False) -> list[str]:
    """The patterns of `child` that some value or call outside every `parent` pattern matches."""
    within = endpoint_pattern_within if endpoints else value_pattern_within
    return sorted({c for c in child if not any(within(c, p) for p in parent)})
