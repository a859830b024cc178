"""Server-side sessions: the cookie carries a random id, the operator's token stays here.

In memory, per process: a restart signs every operator out (they sign in again with the token),
and a second console replica does not share sessions (pin operators to one, or run one). Pure:
the clock is injected.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE_NAME = "keyleash_console_session"
MAX_SESSIONS = 10_000
MAX_SHOWN_REQUESTS = 100


@dataclass
class Session:
    session_id: str
    token: str = field(repr=False)  # never in a page, a URL or a log
    csrf_token: str = field(repr=False)
    expires_at: float
    tenants: list[str] = field(default_factory=list)  # recently opened, newest first
    # Request ids of the mint/provision forms whose secrets a page already showed: a reload (a
    # resubmitted form) shows them never again. Ids only, never a secret.
    shown_requests: list[str] = field(default_factory=list)

    def remember_tenant(self, tenant_id: str) -> None:
        self.tenants = [tenant_id, *(t for t in self.tenants if t != tenant_id)][:10]

    def was_shown(self, request_id: str) -> bool:
        return request_id in self.shown_requests

    def mark_shown(self, request_id: str) -> None:
        self.shown_requests = [request_id, *self.shown_requests][:MAX_SHOWN_REQUESTS]

    def csrf_matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self.csrf_token.encode())


class SessionStore:
    def __init__(self, lifetime_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def open(self, token: str) -> Session:
        self._drop_expired()
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))  # the oldest
        session = Session(
            session_id=secrets.token_urlsafe(32),
            token=token,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=self._clock() + self._lifetime,
        )
        self._sessions[session.session_id] = session
        return session

    def find(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[session_id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def seconds_left(self, session: Session) -> int:
        return max(int(session.expires_at - self._clock()), 0)

    def _drop_expired(self) -> None:
        now = self._clock()
        for session_id in [s for s, v in self._sessions.items() if v.expires_at <= now]:
            del self._sessions[session_id]
