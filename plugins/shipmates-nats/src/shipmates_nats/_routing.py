"""Load-aware routing on the captain's side: which replica of a sibling gets the next call.

Every replica that speaks :data:`ROUTE_PROTOCOL` also listens on a subject of its own,
``<invoke subject>.<instance id>``, where it refuses a call at once with :data:`E_BUSY` while all
its ``--max-inflight`` slots are taken (the queue-group subject still waits for a slot). The
captain scores each replica by the calls it has in flight there (or the load of its latest
heartbeat, whichever is higher) times the latency of its recent answers, sends the call to the
lowest, and on a busy refusal tries the next; with no replica known to be free (none routable,
all busy or saturated) the call goes to the queue group as before. A replica that has not
answered yet (new or restarted) takes the next call, and one not called for a while looks faster
and faster (its latency estimate decays), so a recovered one is tried again.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ROUTE_PROTOCOL = "shipmates/2+route"
"""In a card's ``protocols``: the replica has its own subject and refuses fast when saturated."""
E_BUSY = "429"
BUSY_FOR = 0.25
"""Seconds a replica that refused a call as busy is skipped (unless its heartbeat says otherwise)."""
HEARTBEAT_FRESH = 10.0
"""Seconds a heartbeat's load counts for."""
DECAY = 2.0
"""Seconds in which an idle replica's latency estimate halves (so it is probed again)."""
ALPHA = 0.3
"""Weight of the newest answer in the latency estimate (an exponential moving average)."""


def direct_subject(invoke_subject: str, instance: str) -> str:
    """The subject only the replica ``instance`` listens on."""
    return f"{invoke_subject}.{instance}"


@dataclass
class Replica:
    inflight: int = 0
    """Calls of this captain in flight there."""
    latency: float = 0.0
    """Moving average of its answers' seconds (0: none yet)."""
    used_at: float = 0.0
    reported: int = 0
    """In-flight calls its latest heartbeat reported (all callers)."""
    capacity: int = 0
    """Its ``--max-inflight`` (0: unknown)."""
    beat_at: float = 0.0
    busy_until: float = 0.0


class Router:
    """The load of every replica this captain knows, fed by its own calls and the crew heartbeats."""

    def __init__(self) -> None:
        self.replicas: dict[str, Replica] = {}
        self._lock = threading.Lock()

    def _get(self, instance: str) -> Replica:
        found = self.replicas.get(instance)
        if found is None:
            found = self.replicas[instance] = Replica()
        return found

    def heartbeat(self, data: bytes) -> None:
        """Take the load a ``serve`` heartbeat reports for each of its siblings' instances."""
        try:
            beat = json.loads(data)
            ids = [s["id"] for s in beat.get("siblings") or () if isinstance(s, dict) and s.get("id")]
            inflight, capacity = int(beat.get("inflight") or 0), int(beat.get("max_inflight") or 0)
        except (ValueError, TypeError, KeyError, AttributeError):
            return
        now = time.monotonic()
        with self._lock:
            for instance in ids:
                r = self._get(str(instance))
                r.reported, r.capacity, r.beat_at = inflight, capacity, now
                if beat.get("state") == "draining":
                    r.busy_until = now + HEARTBEAT_FRESH

    def pick(self, instances: Iterable[str], avoid: Iterable[str] = (), force: bool = False) -> str | None:
        """The replica with the lowest expected wait among ``instances``, or None (use the queue group).

        ``force``: busy and saturated replicas count too (when the queue group is not an option)."""
        now = time.monotonic()
        skip = set(avoid)
        best: list[str] = []
        best_score = 0.0
        with self._lock:
            known = [r.latency for r in self.replicas.values() if r.latency > 0]
            typical = min(known) if known else 0.0
            for instance in instances:
                if instance in skip:
                    continue
                r = self._get(instance)
                fresh = now - r.beat_at < HEARTBEAT_FRESH
                full = r.busy_until > now or (fresh and r.capacity and r.reported >= r.capacity)
                if full and not force:
                    continue
                load = max(r.inflight, r.reported if fresh else 0)
                # A replica never answered yet (new, or restarted) gets the next call: with a latency
                # as good as the best, one at a time, it would never win and never be tried.
                latency = 0.0 if r.latency <= 0 else r.latency * 0.5 ** ((now - r.used_at) / DECAY)
                score = (load + 1) * (max(latency, typical * 0.1) + 1e-6)
                if not best or score < best_score:
                    best, best_score = [instance], score
                elif score == best_score:
                    best.append(instance)
        return random.choice(best) if best else None

    def started(self, instance: str | None) -> None:
        if instance is None:
            return
        with self._lock:
            r = self._get(instance)
            r.inflight += 1
            r.used_at = time.monotonic()

    def finished(self, instance: str | None, seconds: float | None) -> None:
        """A call ended; ``seconds`` is its latency when it was answered (None: not answered)."""
        if instance is None:
            return
        with self._lock:
            r = self._get(instance)
            r.inflight = max(r.inflight - 1, 0)
            r.used_at = time.monotonic()
            if seconds is not None:
                r.latency = seconds if r.latency <= 0 else (1 - ALPHA) * r.latency + ALPHA * seconds

    def busy(self, instance: str) -> None:
        with self._lock:
            self._get(instance).busy_until = time.monotonic() + BUSY_FOR

    def forget(self, keep: Iterable[str]) -> None:
        """Drop replicas that are no longer served."""
        alive = set(keep)
        with self._lock:
            for instance in [i for i in self.replicas if i not in alive]:
                del self.replicas[instance]


def routable(card: dict[str, Any]) -> bool:
    protocols = card.get("protocols")
    return isinstance(protocols, list) and ROUTE_PROTOCOL in protocols
