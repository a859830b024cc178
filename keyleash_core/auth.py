"""Credentials: `authorization: Bearer <token>` metadata.

Admin and service tokens are configured as SHA-256 hashes and compared in constant time; key
secrets ("vk_...") are resolved by the vault.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from keyleash_core.errors import Unauthenticated

ADMIN = "admin"
SERVICE = "service"
KEY = "key"


@dataclass(frozen=True)
class Credential:
    """A bearer token the caller presented, classified. `token` is a key secret for KEY."""

    kind: str
    token: str
    actor: str  # how audit rows name the caller; never the token itself


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for name, value in metadata or ():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _matches(digest: str, accepted: frozenset[str]) -> bool:
    # Compare against every accepted hash so the time taken does not depend on which matched.
    found = False
    for candidate in accepted:
        found |= hmac.compare_digest(digest, candidate)
    return found


def classify(
    metadata: Iterable[tuple[str, str | bytes]] | None,
    admin_hashes: frozenset[str],
    service_hashes: frozenset[str],
) -> Credential:
    """The caller's credential, or Unauthenticated when there is none or it is not accepted."""
    token = bearer_token(metadata)
    if token is None:
        raise Unauthenticated("missing credential: send `authorization: Bearer <token>`")
    digest = token_sha256(token)
    if token.startswith("vk_"):
        # A digest prefix names the key holder in audit rows without revealing the secret.
        return Credential(KEY, token, f"key:{digest[:16]}")
    if _matches(digest, admin_hashes):
        return Credential(ADMIN, token, f"admin:{digest[:12]}")
    if _matches(digest, service_hashes):
        return Credential(SERVICE, token, f"service:{digest[:12]}")
    raise Unauthenticated("credential not accepted")
