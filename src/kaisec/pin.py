"""The device user's credential: a PIN, with back-off after wrong guesses.

The PIN is stored as a salted scrypt hash (memory-hard: 2^15 x 8 x 128 B =
32 MiB per guess), never in clear, in the store's settings. Each check and
each failure counter update happens inside one write transaction, so two
processes guessing at once share one counter.

Back-off: the first three wrong PINs cost nothing more than the hash; from
the fourth on, every wrong PIN locks PIN checks for 30 s, doubling each time
up to one hour. While locked, every attempt is refused with PIN_LOCKED
without being checked. A right PIN resets the counter.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from kaisec.errors import PinLockedError, PinRequiredError
from kaisec.store import Store, Txn

__all__ = ["PinPolicy", "PinStore"]

_KEY = "pin"


@dataclass(frozen=True)
class PinPolicy:
    """Hash cost and back-off parameters."""

    n: int = 2**15
    r: int = 8
    p: int = 1
    free_failures: int = 3
    base_lock_seconds: float = 30.0
    max_lock_seconds: float = 3600.0
    min_length: int = 4
    max_length: int = 32


def _hash(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(pin.encode("utf-8"))


class PinStore:
    """Set, change and verify the device PIN kept in a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        *,
        policy: PinPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.policy = policy or PinPolicy()
        self.clock = clock

    def is_set(self) -> bool:
        return self.store.get_setting(_KEY) is not None

    def _validate_new(self, pin: str) -> None:
        pol = self.policy
        if not (pin.isdigit() and pol.min_length <= len(pin) <= pol.max_length):
            raise ValueError(f"a PIN is {pol.min_length} to {pol.max_length} digits")

    def set(self, new_pin: str, *, current: str | None = None) -> None:
        """Set the PIN, or change it (then ``current`` must be the PIN in force).

        Raises:
            ValueError: ``new_pin`` is not 4-32 digits.
            PinRequiredError: a PIN is set and ``current`` is missing or wrong.
            PinLockedError: too many wrong PINs recently.
        """
        self._validate_new(new_pin)
        pol = self.policy
        salt = os.urandom(16)
        digest = _hash(new_pin, salt, pol.n, pol.r, pol.p)
        record = {"salt": salt.hex(), "hash": digest.hex(), "n": pol.n, "r": pol.r, "p": pol.p}
        had_pin = self.is_set()
        if had_pin:
            self.verify(current)
        with self.store.transaction() as txn:
            if (txn.get_setting(_KEY) is not None) != had_pin:
                raise PinRequiredError("the PIN changed meanwhile; try again")
            txn.set_setting(_KEY, json.dumps(record))
            txn.set_setting("pin.failures", None)
            txn.set_setting("pin.locked_until", None)
            txn.audit("device", "pin", "changed" if had_pin else "set", actor="user")

    def verify(self, pin: str | None, *, actor: str = "user") -> None:
        """Check ``pin``; returns when right (or when no PIN is set).

        Raises:
            PinRequiredError: a PIN is set and ``pin`` is missing or wrong.
            PinLockedError: too many wrong PINs recently; try later.
        """
        if not self.is_set():
            return
        failure: PinRequiredError | None = None
        with self.store.transaction() as txn:
            try:
                self._verify_in(txn, pin)
            except PinRequiredError as exc:
                # keep the failure counter: commit, then raise
                txn.audit("device", "pin", "wrong", actor=actor)
                failure = exc
        if failure is not None:
            raise failure

    def _verify_in(self, txn: Txn, pin: str | None) -> None:
        raw = txn.get_setting(_KEY)
        if raw is None:
            return
        now = self.clock()
        locked_until = float(txn.get_setting("pin.locked_until") or 0)
        if now < locked_until:
            raise PinLockedError(
                f"too many wrong PINs; try again in {int(locked_until - now) + 1} s",
                retry_after=round(locked_until - now, 1),
            )
        if not pin:
            raise PinRequiredError("this change needs the device PIN")
        rec = json.loads(raw)
        digest = _hash(pin, bytes.fromhex(rec["salt"]), rec["n"], rec["r"], rec["p"])
        if hmac.compare_digest(digest, bytes.fromhex(rec["hash"])):
            txn.set_setting("pin.failures", None)
            txn.set_setting("pin.locked_until", None)
            return
        failures = int(txn.get_setting("pin.failures") or 0) + 1
        txn.set_setting("pin.failures", str(failures))
        pol = self.policy
        if failures > pol.free_failures:
            wait = min(
                pol.base_lock_seconds * 2 ** (failures - pol.free_failures - 1),
                pol.max_lock_seconds,
            )
            txn.set_setting("pin.locked_until", repr(now + wait))
        raise PinRequiredError("wrong PIN", failures=failures)
