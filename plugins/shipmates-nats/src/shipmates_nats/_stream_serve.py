"""``serve``'s side of a streamed reply: ack, the run's events as they happen, keep-alives, end.

Every frame goes to the request's own reply subject (under the caller's crew inbox prefix, so
the permissions that isolate a crew cover it), in order, from this one connection. The ack names
a subject of this replica's (one subscription for all calls) where the caller cancels the call.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from shipmates import Agent, BudgetExhausted, RunEvent, RunFinished, Usage
from shipmates.plugin import delegation_path, run_streamed

from . import _protocol as p
from ._eager import resume
from ._frames import encode, strip_prefix
from ._invoke import CallFailedError, Hosted, answer_bytes, call_failure

KEEPALIVE = float(os.environ.get("SHIPMATES_NATS_KEEPALIVE", "2"))
"""Seconds without a frame after which a replica says it is still working on a streamed call."""

_ALIVE = {p.H_STREAM: p.F_ALIVE}


def run_events(h: Hosted, arg: Any) -> AsyncIterator[RunEvent] | None:
    """The events of running ``h``'s sibling (not an Agent: its run reports them itself) on
    ``arg``, from its ``astream``; None without one."""
    astream = getattr(h.sibling, "astream", None)
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
            sibling = h.sibling
            if isinstance(sibling, Agent):  # each event sent as the run makes it: no task switch
                frames = _Frames(publish, reply)

                def on_event(event: RunEvent) -> None:
                    event = strip_prefix(event, prefix)
                    if event.depth == 0 and isinstance(event, RunFinished):
                        return  # the end frame carries it
                    frames.send(encode(event))
                    sent[0] = loop.time()

                try:
                    done = await run_streamed(sibling, arg, on_event)
                    await frames.sent()
                finally:
                    frames.stop()
                return _outcome(h, done.status, done.reason, done.output, done.usage)
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
            return _outcome(h, finished.status, finished.reason, finished.output, finished.usage)

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


def _outcome(h: Hosted, status: str, reason: str | None, output: str, usage: Usage) -> tuple[str, Usage]:
    """The answer and usage of a served run that finished, or the failure to send back."""
    if status == "budget_exhausted":  # as Agent.ainvoke says it
        raise BudgetExhausted(f"agent '{h.name}': {reason}")
    if status != "ok":
        raise CallFailedError(p.E_FAILED, f"{h.label} stopped: {status} {reason or ''}")
    return output, usage


class _Frames:
    """Publishes one call's frames in order from the run's event callback (synchronous code).

    A publish only buffers the frame for nats-py's flusher, so it is run at once; one that has
    to wait (the outgoing buffer is full) goes on in a task, and the frames after it queue up
    behind it, in order.
    """

    __slots__ = ("backlog", "publish", "reply", "task")

    def __init__(self, publish: Callable[[str, bytes], Awaitable[None]], reply: str) -> None:
        self.publish = publish
        self.reply = reply
        self.backlog: deque[bytes] | None = None
        self.task: asyncio.Future[None] | None = None

    def send(self, frames: list[bytes]) -> None:
        for data in frames:
            if self.backlog is not None:
                self.backlog.append(data)
                continue
            coro = self.publish(self.reply, data)
            try:
                waiting = coro.send(None)  # type: ignore[attr-defined]
            except StopIteration:
                continue
            self.backlog = deque()
            self.task = asyncio.ensure_future(self._rest(coro, waiting))

    async def _rest(self, coro: Any, waiting: Any) -> None:
        await resume(coro, waiting)
        while self.backlog:
            await self.publish(self.reply, self.backlog.popleft())
        self.backlog = None

    async def sent(self) -> None:
        """Wait until every frame handed over is published (the run is over: no more come)."""
        if self.task is not None:
            await self.task

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
