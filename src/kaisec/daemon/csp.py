"""Content Security Policies of served apps (documented in docs/security-model.md).

Two headers go with every file of a packaged app: the class's default policy
and, when the manifest has one, the manifest's ``csp``. Browsers enforce
both, so an app can only tighten its policy, never loosen it.
"""

from __future__ import annotations

from kaisec.types import AppClass

__all__ = ["class_policy"]


def class_policy(app_class: AppClass, *, shared: str, system: str) -> str:
    """The default policy for an app of ``app_class``.

    ``shared`` is the daemon's shared origin (the JS client), ``system`` the
    system app's origin (the only one allowed to frame other apps).
    """
    style = f"style-src 'self' {shared}"
    if app_class is not AppClass.CORE:
        style = f"style-src 'self' 'unsafe-inline' {shared}"
    return "; ".join(
        [
            "default-src * data: blob:",
            f"script-src 'self' {shared}",
            "object-src 'none'",
            style,
            "base-uri 'none'",
            f"frame-ancestors 'self' {system}",
        ]
    )
