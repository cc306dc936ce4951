"""The prompt channel: a call whose answer is PROMPT waits for the user.

A prompt goes to every session of the system app watching prompts
(``permissions.watch``); the first answer wins. No screen watching, or no
answer within the timeout, means deny. Several calls asking the same app for
the same permission at once share one prompt; distinct prompts queue.
An answer can be remembered (then the permission manager stores it: for
good, or for a time) or apply to the waiting calls only.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kaisec.types import Action

__all__ = ["Answer", "Prompt", "PromptBroker"]


@dataclass(frozen=True)
class Answer:
    """The user's answer to a prompt."""

    action: Action
    remember: bool = False
    duration: float | None = None  # with remember: allow for this long, then ask again
    reason: str = "user"


@dataclass
class Prompt:
    """One question to the user."""

    id: str
    origin: str
    app_name: str
    app_class: str
    permission: str
    description: str
    icon: str | None
    reason: str
    remember_allowed: bool
    timeout: float
    future: asyncio.Future[Answer] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "origin": self.origin,
            "app": self.app_name,
            "class": self.app_class,
            "permission": self.permission,
            "description": self.description,
            "icon": self.icon,
            "reason": self.reason,
            "remember_allowed": self.remember_allowed,
            "expires_in": self.timeout,
        }


Watcher = Callable[[str, dict[str, Any]], None]


class PromptBroker:
    """Pending prompts and the system-app sessions that answer them."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[str, Prompt] = {}
        self._by_key: dict[tuple[str, str, str], Prompt] = {}
        self._watchers: dict[int, Watcher] = {}

    def watch(self, key: int, send: Watcher) -> list[dict[str, Any]]:
        """Register a system-app session; returns the prompts already waiting."""
        self._watchers[key] = send
        return [p.to_dict() for p in self._pending.values()]

    def unwatch(self, key: int) -> None:
        self._watchers.pop(key, None)

    @property
    def pending(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self._pending.values()]

    async def ask(
        self,
        *,
        origin: str,
        app_name: str,
        app_class: str,
        permission: str,
        description: str,
        icon: str | None = None,
        reason: str = "permission",
        remember_allowed: bool = True,
    ) -> Answer:
        """Ask the user; returns their answer, or a deny on timeout or with no screen."""
        if not self._watchers:
            return Answer(Action.DENY, reason="no prompt screen is open")
        key = (origin, permission, reason)
        prompt = self._by_key.get(key) if remember_allowed else None
        if prompt is None:
            loop = asyncio.get_running_loop()
            prompt = Prompt(
                id=f"p{next(self._ids)}",
                origin=origin,
                app_name=app_name,
                app_class=app_class,
                permission=permission,
                description=description,
                icon=icon,
                reason=reason,
                remember_allowed=remember_allowed,
                timeout=self.timeout,
                future=loop.create_future(),
            )
            self._pending[prompt.id] = prompt
            if remember_allowed:
                self._by_key[key] = prompt
            self._broadcast("prompt", prompt.to_dict())
        try:
            return await asyncio.wait_for(asyncio.shield(prompt.future), self.timeout)
        except TimeoutError:
            self._finish(prompt, Answer(Action.DENY, reason="timeout"))
            return Answer(Action.DENY, reason="timeout")

    def answer(self, prompt_id: str, answer: Answer) -> Prompt | None:
        """Answer a waiting prompt; None if it is gone (answered or timed out)."""
        prompt = self._pending.get(prompt_id)
        if prompt is None:
            return None
        if not prompt.remember_allowed and answer.remember:
            answer = Answer(answer.action, remember=False, reason=answer.reason)
        self._finish(prompt, answer)
        return prompt

    def _finish(self, prompt: Prompt, answer: Answer) -> None:
        if self._pending.pop(prompt.id, None) is None:
            return
        self._by_key.pop((prompt.origin, prompt.permission, prompt.reason), None)
        if not prompt.future.done():
            prompt.future.set_result(answer)
        self._broadcast(
            "promptclosed",
            {"id": prompt.id, "action": answer.action.value, "reason": answer.reason},
        )

    def _broadcast(self, name: str, data: dict[str, Any]) -> None:
        for send in list(self._watchers.values()):
            send(name, data)
