"""Circuit breakers on the captain's side: one per remote sibling (namespace, name, distribution)
and one per replica of it (the same plus the replica's instance id).

After ``SHIPMATES_NATS_BREAKER_FAILURES`` (default 5) consecutive failed calls (timeouts, no
replica, a replica's error) a breaker opens: calls fail at once with a "circuit open" error for
``SHIPMATES_NATS_BREAKER_COOLDOWN`` seconds (default 30). Then one probe call goes through (the
breaker is half-open; others still fail fast): its success closes the breaker, its failure opens it
for another cool-down. Bad input and a sibling ending the session are the caller's doing and do not
count, nor do a run's spent budget and a crew pausing on its own.

A call routed to one replica (:mod:`._routing`) counts on that replica's breaker only: routing skips
a replica whose breaker is open while the others take the calls, and the sibling fails fast only
when every replica's breaker is open. Calls through the queue group (one replica, durable jobs)
count on the sibling's breaker. States are kept in ``<state dir>/nats-breakers.json`` for
``shipmates status``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from ._errors import RemoteCallError

FAILURES_ENV = "SHIPMATES_NATS_BREAKER_FAILURES"
COOLDOWN_ENV = "SHIPMATES_NATS_BREAKER_COOLDOWN"


E = TypeVar("E", bound=BaseException)
ADVICE = "`shipmates status` and the replicas' logs say why"


class CircuitOpenError(RemoteCallError):
    """A call refused without trying: the sibling's breaker is open, or every replica's is."""


def _fail_fast(left: float) -> str:
    if left > 0:
        more = f"{left:.0f}s" if left >= 1 else "under a second"
        return f"failing fast for {more} more, then one probe call decides ({FAILURES_ENV}, {COOLDOWN_ENV})"
    return f"failing fast while a probe call decides ({FAILURES_ENV}, {COOLDOWN_ENV})"


def mark_counted(error: E, like: BaseException | None = None) -> E:
    """``error`` was counted on a replica's breaker (or ``like``, which it replaces, was): the
    sibling's breaker leaves it alone."""
    if like is None or like.__dict__.get("_replica_counted"):
        error.__dict__["_replica_counted"] = True
    return error


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

    def ready(self) -> bool:
        """Whether a call may go out now (without taking the probe, as :meth:`allow` does)."""
        if self.state == "closed":
            return True
        if self.probing:
            return False
        return self.state == "half-open" or time.monotonic() >= self.opened_at + self.cooldown

    def left(self) -> float:
        """Seconds of cool-down left (0 once a probe may go)."""
        return 0.0 if self.state == "closed" else max(self.opened_at + self.cooldown - time.monotonic(), 0.0)

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
            f"(last: {self.last_error}); {_fail_fast(left)}; {ADVICE}"
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
    if getattr(error, "_replica_counted", False):
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


class Replicas:
    """The breakers of one sibling's replicas, made when a routed call to one first fails."""

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self.by_id: dict[str, Breaker] = {}

    def routes(self, routes: list[str], label: str) -> list[str]:
        """The replicas a call may go to now; raises :class:`CircuitOpenError` when every one's
        breaker is open."""
        found = self.by_id
        ready = [r for r in routes if (b := found.get(r)) is None or b.ready()]
        if routes and not ready:
            left = min(found[r].left() for r in routes)
            last = max((found[r] for r in routes), key=lambda b: b.opened_at).last_error
            raise CircuitOpenError(
                f"circuit open for {label}: each of its {len(routes)} replicas failed "
                f"{min(found[r].failures for r in routes)} or more consecutive calls "
                f"(last: {last}); {_fail_fast(left)}; {ADVICE}"
            )
        return ready

    def tripped(self) -> bool:
        """Whether a replica's breaker is open or half-open."""
        return any(b.state != "closed" for b in self.by_id.values())

    def take(self, rid: str) -> bool:
        """Whether a call may go to ``rid`` now (taking the probe of a half-open breaker)."""
        b = self.by_id.get(rid)
        if b is None or b.state == "closed":
            return True
        try:
            b.allow()
        except CircuitOpenError:
            return False  # another call took the probe meanwhile
        return True

    def release(self, rid: str | None) -> None:
        """A call to ``rid`` ended with neither an answer nor a failure (cancelled): a probe it
        held may go again."""
        b = self.by_id.get(rid) if rid is not None else None
        if b is not None:
            b.probing = False

    def settle(self, rid: str, error: BaseException | None, label: str) -> None:
        """Count a call's outcome on ``rid``'s breaker; a failure counted here is marked, so that
        the sibling's breaker leaves it alone."""
        b = self.by_id.get(rid)
        if error is None:
            if b is not None:
                del self.by_id[rid]  # healthy again: calls to it skip the bookkeeping
                if b.record(None):
                    save()
            return
        if not counts(error):
            if b is not None:
                b.probing = False
            return
        if b is None:
            b = self.by_id[rid] = breaker_for((*self.key, rid), f"replica {rid} of {label}")
        if b.record(error):
            save()
        mark_counted(error)

    def keep(self, served: list[str]) -> None:
        """Forget the breakers of replicas no longer served."""
        for rid in [r for r in self.by_id if r not in served]:
            del self.by_id[rid]
            with _lock:
                _breakers.pop((*self.key, rid), None)


def breaker_note(key: tuple[str, ...], replicas: Replicas | None = None) -> str:
    """``"; circuit open (5 failures)"`` and ``"; replica ID circuit open (3 failures)"`` for
    listings, or "" while every breaker is closed."""
    notes = []
    found = _breakers.get(key)
    if found is not None and found.state != "closed":
        notes.append(f"; circuit {found.state} ({found.failures} failures)")
    for rid, b in sorted(replicas.by_id.items() if replicas else ()):
        if b.state != "closed":
            notes.append(f"; replica {rid} circuit {b.state} ({b.failures} failures)")
    return "".join(notes)
