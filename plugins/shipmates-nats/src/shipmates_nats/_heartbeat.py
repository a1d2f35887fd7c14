"""Crew liveness over NATS: every ``serve`` publishes a small heartbeat (siblings, in-flight load,
usage spent) on ``NS.crew.heartbeat.<crew>``; a supervisor publishes the crew's budget state on
``NS.crew.control.<crew>`` and its workers pause new work while it says so.

A ``serve`` started by ``shipmates up`` learns its crew and worker id from ``SHIPMATES_CREW`` and
``SHIPMATES_CREW_WORKER``; one started by hand heartbeats under crew ``-``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from typing import Any

from shipmates.plugin import hookimpl

CREW_ENV = "SHIPMATES_CREW"
WORKER_ENV = "SHIPMATES_CREW_WORKER"
INTERVAL_ENV = "SHIPMATES_NATS_HEARTBEAT"
DEFAULT_INTERVAL = 3.0
NO_CREW = "-"


def heartbeat_subject(ns: str, crew: str = "*") -> str:
    return f"{ns}.crew.heartbeat.{crew}"


def control_subject(ns: str, crew: str) -> str:
    return f"{ns}.crew.control.{crew}"


def interval() -> float:
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


class UsageCounter:
    """A ``run_event`` hook adding up the tokens and cost of every model call in this process."""

    def __init__(self) -> None:
        self.tokens = 0
        self.cost_usd = 0.0
        self._lock = threading.Lock()

    @hookimpl
    def run_event(self, event: Any) -> None:
        if type(event).__name__ != "ModelCallFinished":
            return
        usage = event.usage
        with self._lock:
            self.tokens += usage.total_tokens
            self.cost_usd += usage.cost_usd or 0.0


class Heartbeat:
    """Publishes ``serve``'s heartbeat and follows its crew's budget control (``paused``)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.crew = os.environ.get(CREW_ENV) or NO_CREW
        self.worker = os.environ.get(WORKER_ENV, "")
        self.interval = interval()
        self.usage = UsageCounter()
        self.paused: str | None = None
        """Why new calls are refused (the crew's budget is spent), or None."""
        self._task: asyncio.Task[None] | None = None
        self._sub: Any = None

    async def start(self) -> None:
        from shipmates import get_plugin_manager

        pm = get_plugin_manager()
        registered = pm.get_plugin("shipmates_nats.usage")
        if registered is None:
            pm.register(self.usage, name="shipmates_nats.usage")
        else:  # another server of this process counts already: report what it counts
            self.usage = registered
        nc = self.server.nc
        if self.crew != NO_CREW:
            self._sub = await nc.subscribe(control_subject(self.server.ns, self.crew), cb=self._control)
        self._task = asyncio.ensure_future(self._beat())

    async def _control(self, msg: Any) -> None:
        with contextlib.suppress(Exception):
            self.paused = json.loads(msg.data).get("paused") or None

    def payload(self, state: str = "serving") -> bytes:
        s = self.server
        return json.dumps(
            {
                "crew": self.crew,
                "worker": self.worker,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "siblings": [
                    {
                        "name": h.name,
                        "distribution": h.provenance.distribution,
                        "version": h.provenance.version,
                        "id": service.id,  # its micro instance: what a captain routes to
                    }
                    for h, service in zip(s.hosted, s.services, strict=False)
                ],
                "state": state,
                "inflight": len(s.inflight),
                "max_inflight": s.max_inflight,
                "handled": s.handled,
                "tokens": self.usage.tokens,
                "cost_usd": round(self.usage.cost_usd, 6),
                "paused": self.paused,
                "interval": self.interval,
            }
        ).encode()

    async def _beat(self) -> None:
        subject = heartbeat_subject(self.server.ns, self.crew)
        while True:
            with contextlib.suppress(Exception):
                await self.server.nc.publish(subject, self.payload())
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Say ``draining`` once: status views show at once that this replica takes no new calls."""
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            await self.server.nc.publish(
                heartbeat_subject(self.server.ns, self.crew), self.payload("draining")
            )
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
