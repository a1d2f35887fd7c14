"""Circuit breakers on the captain's side, one per remote sibling (namespace, name, distribution).

After ``SHIPMATES_NATS_BREAKER_FAILURES`` (default 5) consecutive failed calls (timeouts, no
replica, a replica's error) the breaker opens: calls fail at once with a "circuit open" error for
``SHIPMATES_NATS_BREAKER_COOLDOWN`` seconds (default 30). Then one probe call goes through (the
breaker is half-open; others still fail fast): its success closes the breaker, its failure opens it
for another cool-down. Bad input and a sibling ending the session are the caller's doing and do not
count, nor do a run's spent budget and a crew pausing on its own. States are kept in
``<state dir>/nats-breakers.json`` for ``shipmates status``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from ._errors import RemoteCallError

FAILURES_ENV = "SHIPMATES_NATS_BREAKER_FAILURES"
COOLDOWN_ENV = "SHIPMATES_NATS_BREAKER_COOLDOWN"


class CircuitOpenError(RemoteCallError):
    """A call refused without trying: the sibling's breaker is open."""


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass
class Breaker:
    label: str
    threshold: int
    cooldown: float
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    last_error: str | None = None

    def allow(self) -> None:
        """Raise :class:`CircuitOpenError` unless a call may go out now."""
        if self.state == "closed":
            return
        left = self.opened_at + self.cooldown - time.monotonic()
        if self.state == "open" and left <= 0:
            self.state = "half-open"
        if self.state == "half-open" and not self.probing:
            self.probing = True  # this call is the probe
            return
        raise CircuitOpenError(
            f"circuit open for {self.label}: {self.failures} consecutive failed calls "
            f"(last: {self.last_error}); failing fast"
            + (
                f" for {left:.0f}s more, then one probe call decides"
                if left > 0
                else " while a probe call decides"
            )
            + f" ({FAILURES_ENV}, {COOLDOWN_ENV})"
        )

    def record(self, error: BaseException | None) -> bool:
        """Count a call's outcome; True when the state changed."""
        before = self.state
        self.probing = False
        if error is None:
            self.state, self.failures, self.last_error = "closed", 0, None
        else:
            self.failures += 1
            self.last_error = str(error)[:200]
            if self.state == "half-open" or self.failures >= self.threshold:
                self.state, self.opened_at = "open", time.monotonic()
        return self.state != before


_breakers: dict[tuple[str, ...], Breaker] = {}
_lock = threading.Lock()


def breaker_for(key: tuple[str, ...], label: str) -> Breaker:
    found = _breakers.get(key)  # every call looks its breaker up: no lock once it exists
    if found is not None:
        return found
    with _lock:
        found = _breakers.get(key)
        if found is None:
            found = _breakers[key] = Breaker(
                label, int(_env_number(FAILURES_ENV, 5)), _env_number(COOLDOWN_ENV, 30.0)
            )
        return found


def counts(error: BaseException) -> bool:
    """Whether ``error`` is the sibling's or its replicas' failure (not the caller's own)."""
    from shipmates import BudgetExhausted, EndSession

    from ._errors import PayloadTooLargeError

    if isinstance(error, (BudgetExhausted, EndSession, PayloadTooLargeError, CircuitOpenError)):
        return False
    text = str(error)
    return "invalid input" not in text and "budget spent" not in text


def states() -> dict[str, dict[str, Any]]:
    """Every breaker of this process: ``{"ns/name/dist": {"state", "failures", "last_error"}}``."""
    with _lock:
        return {
            "/".join(k): {
                "label": b.label,
                "state": b.state,
                "failures": b.failures,
                "last_error": b.last_error,
            }
            for k, b in _breakers.items()
        }


def save() -> None:
    """Publish this process's breakers for ``shipmates status`` (best effort)."""
    from shipmates.plugin import state_dir

    from ._supervisor import write_private

    with contextlib.suppress(OSError):
        path = state_dir() / "nats-breakers.json"
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        known.update({k: {**v, "pid": os.getpid(), "at": time.time()} for k, v in states().items()})
        write_private(path, json.dumps(known, indent=1))


class guarded:  # noqa: N801 - used as a context manager, like a function
    """``with guarded(key, label): ...call...``: refused while open, and the outcome counted."""

    def __init__(self, key: tuple[str, ...], label: str) -> None:
        self.breaker = breaker_for(key, label)

    def __enter__(self) -> Breaker:
        self.breaker.allow()
        return self.breaker

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        breaker = self.breaker
        if error is None and breaker.state == "closed" and not breaker.failures:
            breaker.probing = False  # the usual call: nothing to record
            return
        if error is not None and not isinstance(error, Exception):
            self.breaker.probing = False  # cancelled: neither success nor failure
            return
        if error is not None and not counts(error):
            self.breaker.probing = False
            return
        if self.breaker.record(error):
            save()


def reset() -> None:
    with _lock:
        _breakers.clear()


def breaker_note(key: tuple[str, ...]) -> str:
    """``"; circuit open (5 failures)"`` for listings, or "" while the breaker is closed."""
    found = _breakers.get(key)
    if found is None or found.state == "closed":
        return ""
    return f"; circuit {found.state} ({found.failures} failures)"
