"""Credentials: `authorization: Bearer <token>` metadata.

Admin and service tokens are configured as SHA-256 hashes and compared in constant time; key
secrets ("vk_...") are resolved by the vault.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from keyleash_core.errors import Unauthenticated


class CredentialKind(StrEnum):
    """Who is calling: an operator (admin token), a Keyleash component such as the gateway
    (service token), or an agent holding a vault key."""

    ADMIN = "admin"
    SERVICE = "service"
    KEY = "key"


ADMIN = CredentialKind.ADMIN
SERVICE = CredentialKind.SERVICE
KEY = CredentialKind.KEY


@dataclass(frozen=True)
class Credential:
    """A bearer token the caller presented, classified. `token` is a key secret for KEY."""

    kind: CredentialKind
    token: str
    actor: str  # how audit rows name the caller; never the token itself


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for name, value in metadata or ():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def secret_hash(pepper: bytes, secret: str) -> bytes:
    """The stored form of a key secret: HMAC-SHA-256 under the server pepper (both services)."""
    return hmac.digest(pepper, secret.encode("utf-8"), "sha256")  # one-shot: the C fast path


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


class FailedAttemptLimiter:
    """Slows credential guessing: a peer with too many failed credentials in a window is refused
    (RESOURCE_EXHAUSTED) until the window passes. Peers that authenticate are never counted.

    Per process, in memory: replicas each count their own share, which still bounds a guesser
    to replicas x limit attempts per window without adding a store call to any request.
    """

    def __init__(self, limit: int = 30, window_seconds: float = 60.0, clock: Any = None) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock or time.monotonic
        self._failures: dict[str, list[float]] = {}

    @staticmethod
    def peer_host(peer: str) -> str:
        """ "ipv4:10.0.0.1:5555" -> "ipv4:10.0.0.1" (the port changes per connection)."""
        host, _, _port = peer.rpartition(":")
        return host or peer

    def retry_after(self, peer: str) -> float:
        """Seconds until `peer` may try again, 0 when it may now."""
        failures = self._recent(self.peer_host(peer))
        if len(failures) < self._limit:
            return 0.0
        return max(failures[-self._limit] + self._window - self._clock(), 0.001)

    def failed(self, peer: str) -> None:
        host = self.peer_host(peer)
        self._failures[host] = [*self._recent(host), self._clock()]
        if len(self._failures) > 100_000:  # bound memory under a distributed attack
            self._failures.pop(next(iter(self._failures)))

    def _recent(self, host: str) -> list[float]:
        cutoff = self._clock() - self._window
        recent = [t for t in self._failures.get(host, ()) if t > cutoff]
        if recent:
            self._failures[host] = recent
        else:
            self._failures.pop(host, None)
        return recent


def credential_of(context: Any, settings: Any) -> Credential:
    """The credential of a gRPC call, checked against the configured token hashes."""
    return classify(
        context.invocation_metadata(),
        settings.admin_token_hashes,
        settings.service_token_hashes,
    )
