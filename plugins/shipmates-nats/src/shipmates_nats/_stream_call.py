"""The captain's side of a streamed call: one inbox subscription per connection, frames per call.

A call's frames arrive on ``<inbox>.<n>`` (under the crew's inbox prefix: only this crew may
publish or read there), are checked, and become :mod:`shipmates` events. Nothing that arrives can
crash the call: a malformed or oversized event is dropped with one warning line.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from shipmates import (
    ModelCallFinished,
    RunEvent,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
    Usage,
)
from shipmates.plugin import delegation_path, on_background_loop, plugin_host, submit

from . import _protocol as p
from ._errors import replica_lost
from ._frames import FIELD_CHARS, Decoder, parse_usage
from ._routing import E_BUSY, direct_subject

if TYPE_CHECKING:
    from ._remote import RemoteSibling

log = logging.getLogger("shipmates_nats")

NO_PROGRESS = float(os.environ.get("SHIPMATES_NATS_NO_PROGRESS", "10"))
"""Seconds without an event after which a streamed call says "no progress for N s" (again every N s)."""
NETWORK_GRACE = 1.0
"""Seconds added to a sibling's own timeout for the round trip."""
LIVENESS = float(os.environ.get("SHIPMATES_NATS_LIVENESS", "1"))
"""Seconds between checks (a micro PING) that the replica holding a call is still there."""
FIRST_CHECK = min(LIVENESS, 0.25)
"""...the first one this soon: a live replica answers or acks a call within it, most of the time,
and a call sent to a replica just killed is lost (its connection not yet closed on the server)."""


class Inbox(asyncio.Queue):  # type: ignore[type-arg]
    """One streamed call's frames as they arrive, and :meth:`next`: the next one, or None once
    a time passed.

    nats-py (or :class:`Replies`) puts the frames here. ``asyncio.timeout`` around ``get()``
    armed and cancelled a timer for every frame; here a timer rings at most once per time the
    caller waits for (each frame moves that time later, so one timer serves many frames).
    Made and read on the event loop of the call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.get_running_loop()
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.rung = 0.0

    def put_nowait(self, item: Any) -> None:
        self._put(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self, until: float) -> Any:
        """The next frame, or None when none came by ``until`` (loop time)."""
        loop = self.loop
        while not self._queue:  # type: ignore[attr-defined]
            if self.rung >= until or loop.time() >= until:
                return None
            timer = self.timer
            if timer is None or timer.when() > until:  # no timer rings by then
                if timer is not None:
                    timer.cancel()
                self.timer = loop.call_at(until, self._ring, until)
            self.waiter = waiter = loop.create_future()
            try:
                await waiter
            finally:
                self.waiter = None
        return self._get()

    def _ring(self, when: float) -> None:
        self.timer = None
        self.rung = when
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Replies:
    """One wildcard subscription on a connection's inbox; each streamed call has a token under it."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.base = nc.new_inbox()
        self.cut = len(self.base) + 1
        self.calls: dict[str, tuple[asyncio.AbstractEventLoop, Inbox]] = {}
        self.tokens = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sub: Any = None

    async def start(self) -> Replies:
        self.loop = asyncio.get_running_loop()
        self.sub = await self.nc.subscribe(f"{self.base}.*", cb=self._arrived)
        return self

    async def stop(self) -> None:
        await self.sub.unsubscribe()

    async def _arrived(self, msg: Any) -> None:
        entry = self.calls.get(msg.subject[self.cut :])
        if entry is None:
            return  # a call that ended, or a guess
        loop, queue = entry
        if loop is self.loop:
            queue.put_nowait(msg)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, msg)

    def open(self) -> tuple[str, str, Inbox]:
        token = str(next(self.tokens))
        queue = Inbox()
        self.calls[token] = (asyncio.get_running_loop(), queue)
        return token, f"{self.base}.{token}", queue


async def stream_call(proxy: RemoteSibling, query: Any) -> AsyncIterator[RunEvent]:
    """The events of a remote call as they arrive, ending with its ``RunFinished`` (see ``astream``)."""
    name = proxy.name
    body = proxy._body(query)
    headers = proxy._headers()
    headers[p.H_STREAM] = "1"
    wait = proxy.served_timeout + NETWORK_GRACE
    crew = proxy.crew
    nc = await crew.caller_nc()
    local = nc is not None
    own: Any = None
    if nc is None:  # frames arrive on the background loop: handed over by the shared subscription
        replies, nc = await on_background_loop(crew.replies(None))
        token, subject, queue = replies.open()
    else:  # a subscription of the call's own, read here: no hop between tasks per frame
        own = await nc.subscribe(nc.new_inbox())
        own._pending_queue = queue = Inbox()  # next_msg() would make a task per frame
        subject = own.subject
    cancel: str | None = None
    ended = False
    tried: list[str] = []
    rid: str | None = None
    try:
        yield RunStarted(agent=name, query=str(query)[:FIELD_CHARS], model="remote")

        async def send() -> None:  # to the replica with the most room (_routing), else the queue group
            nonlocal rid
            rid = proxy.route(tried)
            if rid is None and proxy.exclusive:  # never the queue group: it has replicas out of range
                rid = proxy.route([], force=True)
                if rid is None:
                    raise proxy.none_in_range()
            crew.router.started(rid)
            target = proxy.subject if rid is None else direct_subject(proxy.subject, rid)
            publish = nc.publish(target, body, reply=subject, headers=headers)
            await (publish if local else on_background_loop(publish))

        await send()
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + wait
        progress = warn_at = heard = start  # the last event; when "no progress" was last said; any frame
        silence = FIRST_CHECK  # before the replica's ack: it acks at once when it is there
        alive = False
        trace = _Trace(proxy)
        decode = Decoder().decode
        streamed = Usage()
        while True:
            now = loop.time()
            if now >= deadline:
                from nats.errors import TimeoutError as NatsTimeout

                raise proxy.settle(rid, crew.call_error(proxy, NatsTimeout(), wait, headers))
            check = heard + silence if rid is not None else deadline  # is its replica still there?
            msg = await queue.next(min(deadline, warn_at + NO_PROGRESS, check))
            if msg is None:  # nothing came in time
                if rid is not None and loop.time() >= check:
                    here = crew.alive(nc, name, rid)
                    if not await (here if local else on_background_loop(here)):
                        raise proxy.settle(rid, replica_lost(proxy.label, rid)) from None
                    heard, silence = loop.time(), LIVENESS
                elif loop.time() < deadline and loop.time() >= warn_at + NO_PROGRESS:
                    _stalled(proxy, loop.time() - progress, alive, deadline - loop.time())
                    warn_at = loop.time()
                continue
            if own is not None:
                own._pending_size -= len(msg.data)
            heard, silence = loop.time(), LIVENESS
            frame_headers = msg.headers
            if frame_headers is None:  # an event (no headers to build or parse: the common frame)
                try:
                    event = decode(msg.data)
                except ValueError as exc:
                    log.warning("dropped an event from %s: %s", proxy.label, exc)
                    continue
                if isinstance(event, ModelCallFinished):
                    streamed = streamed + event.usage
                progress = warn_at = loop.time()
                alive = False
                trace.show(event)
                yield event
                continue
            kind = frame_headers.get(p.H_STREAM)
            if kind in (p.F_ACK, p.F_ALIVE):
                alive = True
                if kind == p.F_ACK and cancel is None:
                    cancel = _cancel_subject(crew.ns, frame_headers.get(p.H_CANCEL))
            else:  # the end, an error reply, or a replica that answers in one reply
                if rid is not None and frame_headers.get(p.H_ERROR_CODE) == E_BUSY and cancel is None:
                    proxy.unanswered(rid, busy=True)
                    tried.append(rid)
                    await send()  # refused before it started: another replica may take it
                    continue
                if rid is not None and frame_headers.get("Status") == "503" and cancel is None:
                    proxy.unanswered(rid)
                    tried.append(rid)  # that replica left before the call reached it: nothing ran
                    await crew.rescan()  # who serves now?
                    await send()
                    continue
                if frame_headers.get("Status") == "503":
                    from nats.errors import NoRespondersError

                    raise crew.call_error(proxy, NoRespondersError(), wait, headers)
                ended = True
                answered, rid = rid, None
                text = proxy.answered(answered, frame_headers, msg.data, loop.time() - start)
                usage = _end_usage(proxy, frame_headers.get(p.H_USAGE))
                missing = _missing(usage, streamed)
                if missing is not None:  # what dropped events did not say: charged all the same
                    yield ModelCallFinished(agent=name, path=(name,), model="remote", usage=missing)
                yield RunFinished(agent=name, path=(name,), status="ok", output=text, usage=usage or streamed)
                return
    finally:
        queue.close()
        proxy.unanswered(rid)  # (rid is None once answered)
        if own is None:
            replies.calls.pop(token, None)
        else:
            with contextlib.suppress(Exception):
                await own.unsubscribe()
        if not ended and cancel is not None:  # the captain's turn was cancelled: so is the remote call
            cancelling = nc.publish(cancel, b"")
            if local:
                with contextlib.suppress(Exception):
                    await cancelling  # only buffers the message
            else:
                submit(cancelling)


class _Trace:
    """The remote tool calls, handed to this process's tool-call hooks as they happen (the live
    trace), placed as the stream places them: under the call that delegated."""

    def __init__(self, proxy: RemoteSibling) -> None:
        self.name = proxy.name
        stack = delegation_path()
        self.prefix, self.base = stack[:-1], max(len(stack) - 1, 0)
        self.host = plugin_host()
        self.on = self.host.implemented("tool_call_started") or self.host.implemented("tool_call_finished")

    def show(self, event: RunEvent) -> None:
        if not self.on or not isinstance(event, (ToolCallStarted, ToolCallFinished)):
            return
        import dataclasses

        call = event.call
        placed = dataclasses.replace(
            call, depth=call.depth + self.base, path=(*self.prefix, *call.path), extra={"remote": self.name}
        )
        hook = "tool_call_started" if isinstance(event, ToolCallStarted) else "tool_call_finished"
        self.host.report(self.host.call_each(hook, event=placed).failures)


def _cancel_subject(ns: str, subject: str | None) -> str | None:
    """Where to cancel the call: only ever a subject under the crew's inbox prefix (a replica's)."""
    prefix = p.inbox_prefix(ns) + "."
    if not subject or len(subject) > 256 or not subject.startswith(prefix):
        return None
    if any(c in subject for c in " \t\r\n*>"):
        return None
    return subject


def _end_usage(proxy: RemoteSibling, raw: str | None) -> Usage | None:
    if not raw:
        return None
    try:
        return parse_usage(json.loads(raw))
    except ValueError as exc:
        log.warning("ignored the usage sent by %s: %s", proxy.label, exc)
        return None


def _missing(total: Usage | None, streamed: Usage) -> Usage | None:
    """The part of ``total`` the streamed model calls did not already account for."""
    if total is None or (
        total.model_calls <= streamed.model_calls and total.total_tokens <= streamed.total_tokens
    ):
        return None
    cost = None
    if total.cost_usd is not None:
        cost = max(total.cost_usd - (streamed.cost_usd or 0.0), 0.0)
    return Usage(
        max(total.input_tokens - streamed.input_tokens, 0),
        max(total.output_tokens - streamed.output_tokens, 0),
        max(total.cached_tokens - streamed.cached_tokens, 0),
        cost,
        max(total.model_calls - streamed.model_calls, 0),
        max(total.calls_without_cost - streamed.calls_without_cost, 0),
    )


def _stalled(proxy: RemoteSibling, idle: float, alive: bool, left: float) -> None:
    state = "its replica is alive (keep-alives arrive)" if alive else "no keep-alive from its replica either"
    log.warning(
        "%s: no progress for %.0f s; %s; giving up in %.0f s", proxy.label, idle, state, max(left, 0.0)
    )
