"""Credential validation at runtime: single-use tokens bound to an origin.

A page asks its own origin for a token (``/.kaisec/token``), then presents it
as the first WebSocket message. A token is 256 random bits from ``secrets``,
bound to exactly one origin, usable once, and dead after ``ttl`` seconds.
Every failure looks the same to the client (AUTH_REQUIRED); the reason goes
to the audit log only.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TokenError", "TokenStore"]


class TokenError(Exception):
    """Why a token was refused (for the audit log, never for the client)."""


@dataclass(frozen=True)
class _Token:
    origin: str
    expires: float


class TokenStore:
    """Issued, unused tokens (in memory: a daemon restart invalidates them all)."""

    def __init__(
        self, *, ttl: float, max_per_origin: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_per_origin
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}

    def _expire(self, now: float) -> None:
        dead = [t for t, v in self._tokens.items() if v.expires <= now]
        for t in dead:
            del self._tokens[t]

    def issue(self, origin: str) -> str:
        """A new token for ``origin``.

        Raises:
            TokenError: the origin already holds too many unused tokens (a flood).
        """
        now = self._clock()
        with self._lock:
            if len(self._tokens) > 4 * self._max:
                self._expire(now)
            mine = sum(1 for v in self._tokens.values() if v.origin == origin and v.expires > now)
            if mine >= self._max:
                raise TokenError(f"{origin} holds {mine} unused tokens")
            token = secrets.token_urlsafe(32)
            self._tokens[token] = _Token(origin, now + self._ttl)
            return token

    def redeem(self, token: object, origin: str) -> None:
        """Use ``token`` for a connection from ``origin`` (it is gone afterwards either way).

        Raises:
            TokenError: unknown, used, expired, or bound to another origin.
        """
        if not isinstance(token, str) or not token:
            raise TokenError("no token")
        with self._lock:
            entry = self._tokens.pop(token, None)
        if entry is None:
            raise TokenError("unknown or already used token")
        if entry.expires <= self._clock():
            raise TokenError("expired token")
        if not secrets.compare_digest(entry.origin, origin):
            raise TokenError(f"token of {entry.origin} presented by {origin}")

    def __len__(self) -> int:
        return len(self._tokens)
