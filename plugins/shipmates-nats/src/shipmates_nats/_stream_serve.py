"""``serve``'s side of a streamed reply: ack, the run's events as they happen, keep-alives, end.

Every frame goes to the request's own reply subject (under the caller's crew inbox prefix, so
the permissions that isolate a crew cover it), in order, from this one connection. The ack names
a subject of this replica's (one subscription for all calls) where the caller cancels the call.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from shipmates import Agent, BudgetExhausted, RunEvent, RunFinished, Usage
from shipmates.plugin import delegation_path

from . import _protocol as p
from ._frames import encode, strip_prefix
from ._invoke import CallFailedError, Hosted, answer_bytes, call_failure

KEEPALIVE = float(os.environ.get("SHIPMATES_NATS_KEEPALIVE", "2"))
"""Seconds without a frame after which a replica says it is still working on a streamed call."""

_ALIVE = {p.H_STREAM: p.F_ALIVE}


def run_events(h: Hosted, arg: Any) -> AsyncIterator[RunEvent] | None:
    """The events of running ``h`` on ``arg`` (an Agent's stream, or the sibling's ``astream``)."""
    sibling = h.sibling
    if isinstance(sibling, Agent):
        return sibling.stream(arg)
    astream = getattr(sibling, "astream", None)
    return astream(arg) if callable(astream) else None


class StreamReplier:
    """Streams the replies of one replica's calls that ask for it (``Shipmates-Stream: 1``)."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.base = nc.new_inbox()
        self.calls: dict[str, asyncio.Task[Any]] = {}
        self.count = 0

    async def start(self) -> None:
        await self.nc.subscribe(f"{self.base}.*", cb=self._cancel)

    async def _cancel(self, msg: Any) -> None:
        task = self.calls.get(msg.subject.rpartition(".")[2])
        if task is not None:
            task.cancel()

    async def reply(
        self, h: Hosted, request: Any, arg: Any, limit: float, max_bytes: int
    ) -> tuple[bytes, dict[str, str]]:
        """Run ``h`` on ``arg``, its events sent as they happen; the end frame's body and headers."""
        reply = request._msg.reply
        publish = self.nc.publish
        self.count += 1
        token = str(self.count)
        await publish(reply, b"", headers={p.H_STREAM: p.F_ACK, p.H_CANCEL: f"{self.base}.{token}"})
        loop = asyncio.get_running_loop()
        sent = [loop.time()]
        prefix = delegation_path()  # the caller's path, which ends with the name it called
        if prefix and prefix[-1] == h.name:
            prefix = prefix[:-1]

        async def run() -> tuple[Any, Usage]:
            events = run_events(h, arg)
            if events is None:
                result = await (h.call(arg) if h.is_async else asyncio.to_thread(h.call, arg))
                return result, Usage()
            finished: RunFinished | None = None
            async for event in events:
                event = strip_prefix(event, prefix)
                if isinstance(event, RunFinished) and event.depth == 0:
                    finished = event
                    continue
                for data in encode(event):
                    await publish(reply, data)
                sent[0] = loop.time()
            if finished is None:
                raise CallFailedError(p.E_FAILED, f"{h.label} ended its stream without finishing its run")
            if finished.status == "budget_exhausted":  # as Agent.ainvoke says it
                raise BudgetExhausted(f"agent '{h.name}': {finished.reason}")
            if finished.status != "ok":
                raise CallFailedError(
                    p.E_FAILED, f"{h.label} stopped: {finished.status} {finished.reason or ''}"
                )
            return finished.output, finished.usage

        work = asyncio.ensure_future(run())
        alive = asyncio.ensure_future(self._keepalive(reply, sent))
        self.calls[token] = work
        try:
            result, usage = await work
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if work.cancelled() and task is not None and not task.cancelling():
                raise CallFailedError(
                    p.E_UNAVAILABLE, f"{h.label}: the call was cancelled by its caller"
                ) from None
            raise
        except Exception as exc:
            raise call_failure(h, exc, limit) from None
        finally:
            alive.cancel()
            self.calls.pop(token, None)
            if not work.done():
                work.cancel()
        data = answer_bytes(h, result, max_bytes)
        return data, {p.H_STREAM: p.F_END, p.H_USAGE: json.dumps(usage.as_dict(), separators=(",", ":"))}

    async def _keepalive(self, reply: str, sent: list[float]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(KEEPALIVE - (loop.time() - sent[0]), 0.01))
            if loop.time() - sent[0] >= KEEPALIVE:
                await self.nc.publish(reply, b"", headers=_ALIVE)
                sent[0] = loop.time()
