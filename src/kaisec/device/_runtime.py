"""What the simulated backends share: the event bus, a timer thread, input checks.

Events: :class:`EventBus` queues every event and one dispatcher thread calls
the subscribers, so events reach them in the order the device produced them
(a call's ``dialing`` always before its ``alerting``), no callback ever runs
while a backend holds a lock, and a slow or failing callback cannot stall or
break the device. Subscribers are therefore called from that thread.

Timers: :class:`Scheduler` is one thread running delayed callbacks (call state
changes, due alarms), started on first use.

:class:`InstanceLock` tells an opening device whether any other device on the
same home is alive (in this process or another), so that it may tidy state
only a dead device could have left behind (calls still "connected").
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import queue
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kaisec.device.base import DeviceEvent, EventCallback
from kaisec.errors import DeviceError

try:  # POSIX; without it the device never assumes it is alone.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MAX_LIMIT",
    "EventBus",
    "InstanceLock",
    "Scheduler",
    "check_json",
    "check_limit",
    "check_owner",
    "check_text",
    "new_id",
]

log = logging.getLogger(__name__)

#: The largest ``limit`` a listing accepts.
MAX_LIMIT = 1000


# --- events ------------------------------------------------------------------------------


class EventBus:
    """Subscribers and the thread that calls them, in emission order."""

    def __init__(self) -> None:
        self._subscribers: list[EventCallback] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[DeviceEvent | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Add ``callback``; returns a function that removes it (idempotent)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the device is closed")
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        """True while anybody listens."""
        return bool(self._subscribers)

    def emit(self, event: DeviceEvent) -> None:
        """Queue ``event`` for every subscriber; dropped when nobody listens."""
        with self._lock:
            if self._closed or not self._subscribers:
                return
            self._start()
            self._queue.put(event)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event queued so far has been delivered.

        Returns False on timeout, or at once when called from a subscriber.
        """
        marker = threading.Event()
        with self._lock:
            if self._thread is None or self._closed:
                return True
            if self._thread is threading.current_thread():
                return False  # called from a callback: what is queued waits for it
            self._queue.put(marker)
        return marker.wait(timeout)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="kaisec-device-events", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            with self._lock:
                subscribers = list(self._subscribers)
            for callback in subscribers:
                try:
                    callback(item)
                except Exception:  # a subscriber's bug must not break the device
                    log.exception(
                        "device event subscriber failed on %s/%s", item.service, item.name
                    )

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop the dispatcher thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


# --- timers ------------------------------------------------------------------------------


class TimerHandle:
    """A scheduled callback; :meth:`cancel` stops it if it has not run yet."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True


class Scheduler:
    """One thread running callbacks after a delay (monotonic clock)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn()`` on the timer thread after ``delay`` seconds."""
        handle = TimerHandle()
        with self._cond:
            if self._closed:
                handle.cancel()
                return handle
            when = time.monotonic() + max(0.0, delay)
            heapq.heappush(self._heap, (when, next(self._seq), handle, fn))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kaisec-device-timers", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            _, _, handle, fn = heapq.heappop(self._heap)
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
            if handle.cancelled:
                continue
            try:
                fn()
            except Exception:  # one failing timer must not stop the others
                log.exception("device timer failed")

    def close(self, timeout: float = 5.0) -> None:
        """Drop pending callbacks and stop the thread."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


# --- other live devices ----------------------------------------------------------------------


class InstanceLock:
    """A shared ``flock`` every open device holds on ``<storage>/device.lock``."""

    def __init__(self, path: Path) -> None:
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> bool:
        """Take the shared lock; True when no other device was open at that moment."""
        if fcntl is None or self._fd is None:  # pragma: no cover - Windows
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            return False
        # Alone. Another device opening right now may also see itself alone,
        # which is harmless: neither has a live call yet.
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        return True

    def close(self) -> None:
        """Release the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --- input checks ---------------------------------------------------------------------------


def new_id() -> str:
    """A fresh random id for a call, message, contact, notification or alarm."""
    return uuid.uuid4().hex


def check_owner(owner: object) -> str:
    """The gateway always passes an app origin; anything else is a bug (ValueError)."""
    if not isinstance(owner, str) or not owner or len(owner) > 2048:
        raise ValueError(f"owner: expected a non-empty origin string, got {owner!r}")
    return owner


def check_text(
    value: object,
    *,
    field: str,
    reason: str = "BAD_FIELD",
    max_len: int,
    min_len: int = 0,
    multiline: bool = False,
) -> str:
    """``value`` if it is a string of acceptable length and characters, else DeviceError.

    Control characters are refused (tab and newline only when ``multiline``),
    and so are lone surrogates, which SQLite could not store.
    """
    if not isinstance(value, str):
        raise DeviceError(
            f"{field}: expected a string, got {type(value).__name__}", reason=reason, field=field
        )
    if not min_len <= len(value) <= max_len:
        raise DeviceError(
            f"{field}: expected {min_len}..{max_len} characters, got {len(value)}",
            reason=reason,
            field=field,
        )
    for ch in value:
        cat = unicodedata.category(ch)
        if cat == "Cs" or (cat == "Cc" and not (multiline and ch in "\n\t")):
            raise DeviceError(
                f"{field}: control character U+{ord(ch):04X} not allowed",
                reason=reason,
                field=field,
            )
    return value


def check_json(value: object, *, field: str, max_bytes: int) -> str:
    """``value`` as compact JSON.

    Raises:
        DeviceError: ``BAD_VALUE`` (not JSON-serialisable), ``TOO_LARGE``.
    """
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise DeviceError(
            f"{field}: expected a JSON value, got {type(value).__name__}: {exc}",
            reason="BAD_VALUE",
            field=field,
        ) from exc
    if len(text) > max_bytes:
        raise DeviceError(
            f"{field}: {len(text)} bytes of JSON, at most {max_bytes} allowed",
            reason="TOO_LARGE",
            field=field,
        )
    return text


def check_limit(limit: object) -> int:
    """A listing's ``limit``: an int in 1..MAX_LIMIT, else DeviceError(BAD_LIMIT)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise DeviceError(f"limit: expected 1..{MAX_LIMIT}, got {limit!r}", reason="BAD_LIMIT")
    return limit


def json_loads(text: str) -> Any:
    """Decode JSON this package wrote."""
    return json.loads(text)
