"""The daemon's settings and limits, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DaemonConfig"]


@dataclass(frozen=True)
class DaemonConfig:
    """How ``kaisec serve`` listens and what it tolerates."""

    host: str = "127.0.0.1"
    port: int = 8081
    #: a token lives this long and is used at most once
    token_ttl: float = 30.0
    #: outstanding (unused, unexpired) tokens per origin; more is a flood
    max_tokens_per_origin: int = 32
    #: the first WebSocket message (the token) must come within this time
    handshake_timeout: float = 5.0
    #: largest accepted WebSocket message, bytes
    max_message: int = 64 * 1024
    #: per-session rate limit: sustained messages per second, and burst
    rate: float = 500.0
    burst: float = 1000.0
    #: a session refused for its rate this many times within one second is closed
    max_violations: int = 50
    #: this many malformed messages close the session
    max_malformed: int = 20
    #: unanswered prompts are denied after this long
    prompt_timeout: float = 30.0
    #: calls a session may have waiting on a prompt at once
    max_pending_prompts: int = 4
    #: sessions with no message for this long are closed
    idle_timeout: float = 600.0
    #: extra emergency numbers for the dialer (112 and 911 are always there)
    emergency_numbers: tuple[str, ...] = field(default_factory=tuple)
    #: premium-rate prefixes: every call needs the user's confirmation
    premium_prefixes: tuple[str, ...] = ("900", "910")
    #: audit entries are written in batches at most this far apart (seconds)
    audit_flush: float = 0.1
