"""Every Redis key name Keyleash uses. All keys of a tenant carry the hash tag {tenant_id}, so
one decision touches one Redis Cluster slot."""

from __future__ import annotations


def _tag(tenant_id: str) -> str:
    return "kl:{" + tenant_id + "}"


def secret_index(secret_hash_hex: str) -> str:
    """secret hash -> "tenant_id/key_id"; read only on a process-cache miss, so not slotted."""
    return f"kl:secret:{secret_hash_hex}"


def tenant(tenant_id: str) -> str:
    """Hash: throttle flag, threshold and today's spend of a tenant."""
    return _tag(tenant_id) + ":tenant"


def connections_version(tenant_id: str) -> str:
    """String: an opaque version of the tenant's vendor connections, renewed after every change
    (and deleted while one is being made). Absent means unknown: nobody may trust a cached secret.
    """
    return _tag(tenant_id) + ":connections"


def key(tenant_id: str, key_id: str) -> str:
    """Hash: state, expiry, policy version, lifetime call count and the cached key record."""
    return f"{_tag(tenant_id)}:k:{key_id}"


def rate(tenant_id: str, key_id: str) -> str:
    """Sorted set: one member per admitted call, scored by its time in ms (exact sliding window)."""
    return f"{_tag(tenant_id)}:rate:{key_id}"


def authorize_memo(tenant_id: str, key_id: str, request_id: str) -> str:
    """String: the first decision for a request_id, so a retry is decided once."""
    return f"{_tag(tenant_id)}:authz:{key_id}:{request_id}"


def reservation(tenant_id: str, reservation_id: str) -> str:
    """Hash: a hold placed by Authorize: the windows it touched and the estimate it holds."""
    return f"{_tag(tenant_id)}:res:{reservation_id}"


def rolling_spend(tenant_id: str, key_id: str, currency: str) -> tuple[str, str]:
    """Hash of minute buckets (plus the running total) and the sorted index of its buckets."""
    base = f"{_tag(tenant_id)}:sr:{key_id}:{currency}"
    return base, base + ":idx"


def period_spend(tenant_id: str, key_id: str, currency: str, period: str) -> str:
    """String counter of micros for one calendar period ("d20261128", "m202611") or "life"."""
    return f"{_tag(tenant_id)}:sp:{key_id}:{currency}:{period}"


def settled_event(tenant_id: str, event_id: str) -> str:
    """String: present once a billing event's effect on the counters was applied (settle.lua)."""
    return f"{_tag(tenant_id)}:settled:{event_id}"


def run_spend(tenant_id: str, key_id: str, currency: str, agent_run_id: str) -> str:
    """String counter of micros one agent run spent under a key (with its descendants)."""
    return f"{_tag(tenant_id)}:run:{key_id}:{currency}:{agent_run_id}"


def audit_stream(tenant_id: str) -> str:
    """Stream: one entry per Authorize decision of the tenant, until the drainer commits it."""
    return _tag(tenant_id) + ":audit"


AUDIT_TENANTS = "kl:audit:tenants"
"""Set of tenants whose audit stream the drainers read (added once per tenant and process)."""


def spend_grant(tenant_id: str, key_id: str, currency: str, quota: str, window_id: str) -> str:
    """Hash of what approvals add to one spend cap of a key (a field per approval id, "total"
    their sum, in micros), for one window only ("d20261202", "m202612", "life" or a run id):
    the next window reads another key."""
    return f"{_tag(tenant_id)}:grant:{key_id}:{currency}:{quota}:{window_id}"
