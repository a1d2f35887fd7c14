"""The proxy's request/reply: one reply subscription per connection, a future per call.

nats-py's ``nc.request`` works the same way, but each call also draws a NUID and ``os.urandom``
bytes for its reply token, validates the subject once more and waits through ``wait_for``, and
each reply goes through the subscription's queue and task before it reaches the caller. With the
``traceparent`` header every call carries, that made a proxy call a fifth slower than a bare
``nc.request`` at 64 calls in flight (bench/bench_nats.py). Here a counter is the token, a reply
resolves its call as nats-py reads it, and one timer serves the waits of all calls (a heap of
deadlines, and of the moments a watched call's replica is first checked): a timer per call was a
tenth of the caller's work at 64 calls in flight. The
wire is the same: a request with a reply subject under the connection's inbox prefix.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Any

from ._wire import Publisher

_STATUS, _NO_RESPONDERS = "Status", "503"


class _Deliver(asyncio.Queue):  # type: ignore[type-arg]
    """Stands in for the reply subscription's message queue: nats-py puts each reply here as it
    reads it, and the reply resolves its call at once (no hop through the subscription's task)."""

    def __init__(self, requester: Requester, sub: Any) -> None:
        super().__init__()
        self.requester = requester
        self.sub = sub

    def put_nowait(self, msg: Any) -> None:
        self.sub._pending_size -= len(msg.data)  # nats-py counts it as queued: it is not
        self.requester.deliver(msg)


class Requester:
    """Requests on one connection, from the event loop that owns it."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.publisher = Publisher(nc)
        self.prefix = nc.new_inbox() + "."
        self.cut = len(self.prefix)
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.tokens = itertools.count(1)
        self.started: asyncio.Task[Any] | None = None
        self.loop = asyncio.get_running_loop()
        self.deadlines: list[tuple[float, str]] = []
        """A heap of (when, token): an unwatched call's deadline, or when a watched call's replica
        is first checked; those of answered calls are dropped lazily."""
        self.watched: dict[str, tuple[Watch, float]] = {}
        """token -> (watch, deadline) of the watched calls waiting for their first check."""
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = math.inf

    async def start(self) -> None:
        sub = await self.nc.subscribe(self.prefix + "*", cb=self._arrived)
        if isinstance(getattr(sub, "_pending_queue", None), asyncio.Queue) and hasattr(sub, "_pending_size"):
            sub._pending_queue = _Deliver(self, sub)  # else replies take the callback's way

    async def _arrived(self, msg: Any) -> None:
        self.deliver(msg)

    def deliver(self, msg: Any) -> None:
        future = self.waiting.pop(msg.subject[self.cut :], None)
        if future is not None and not future.done():
            future.set_result(msg)

    async def request(
        self, subject: str, body: bytes, headers: dict[str, str], timeout: float, watch: Watch | None = None
    ) -> Any:
        """The reply to ``body`` sent to ``subject``; raises nats-py's ``TimeoutError`` and
        ``NoRespondersError`` as ``nc.request`` does, and what ``watch`` raises."""
        token = str(next(self.tokens))
        loop = self.loop
        future = loop.create_future()
        waiting = self.waiting
        waiting[token] = future
        try:
            await self.publisher.publish(subject, body, self.prefix + token, headers)
            now = loop.time()
            if watch is None:
                self._expire_at(now + timeout, token)
            else:
                self.watched[token] = (watch, now + timeout)
                self._expire_at(now + min(watch.first, timeout), token)
            msg = await future
        finally:
            if not future.done():
                future.cancel()  # (a watching task ends with it)
            waiting.pop(token, None)
            if watch is not None:
                self.watched.pop(token, None)
        reply_headers = msg.headers
        if reply_headers and reply_headers.get(_STATUS) == _NO_RESPONDERS:
            from nats.errors import NoRespondersError

            raise NoRespondersError
        return msg

    def _expire_at(self, when: float, token: str) -> None:
        deadlines = self.deadlines
        heapq.heappush(deadlines, (when, token))
        if len(deadlines) > 64 + 2 * len(self.waiting):  # mostly answered calls: keep the others
            waiting = self.waiting
            self.deadlines = deadlines = [d for d in deadlines if d[1] in waiting]
            heapq.heapify(deadlines)
        if when < self.timer_at:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        """Fail the calls whose deadline passed; the timer then waits for the next deadline."""
        rung = self.timer_at  # due now, even if the loop's clock reads a hair earlier
        self.timer, self.timer_at = None, math.inf
        deadlines, now = self.deadlines, max(self.loop.time(), rung)
        while deadlines and deadlines[0][0] <= now:
            token = heapq.heappop(deadlines)[1]
            future = self.waiting.get(token)
            if future is not None:
                watched = self.watched.pop(token, None)
                if watched is None:
                    _expire(future)
                else:
                    _due(future, *watched)
        if deadlines:
            self._arm(deadlines[0][0])


class Watch:
    """What to check while a call to one replica waits: after ``first`` seconds, then every
    ``every``, ``alive()``; when it says no, the call fails with ``lost()`` at once instead of
    waiting for its timeout. Made once per replica (and connection) and used by every call to it:
    a call answered within ``first`` seconds costs no more than one without a watch."""

    __slots__ = ("alive", "every", "first", "lost")

    def __init__(
        self, every: float, alive: Callable[[], Awaitable[bool]], lost: Callable[[], Exception], first: float
    ) -> None:
        self.every, self.alive, self.lost, self.first = every, alive, lost, min(first, every)


def _due(future: asyncio.Future[Any], watch: Watch, deadline: float) -> None:
    if future.done():
        return
    if future.get_loop().time() >= deadline:
        _expire(future)
    else:  # a long call: watched by a task of its own from here on (kept: tasks are weakly held)
        task = asyncio.ensure_future(_watching(future, watch, deadline))
        _watchers.add(task)
        task.add_done_callback(_watchers.discard)


_watchers: set[asyncio.Task[None]] = set()


async def _watching(future: asyncio.Future[Any], watch: Watch, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    while not future.done():
        here = await watch.alive()
        if future.done():
            return
        if not here:
            future.set_exception(watch.lost())
            return
        left = deadline - loop.time()
        if left <= 0:
            _expire(future)
            return
        await asyncio.wait({future}, timeout=min(watch.every, left))


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        from nats.errors import TimeoutError as NatsTimeout

        future.set_exception(NatsTimeout())


_requesters: dict[Any, Requester] = {}


async def request(
    nc: Any, subject: str, body: bytes, headers: dict[str, str], timeout: float, watch: Watch | None = None
) -> Any:
    """``nc.request(subject, body, timeout=timeout, headers=headers)``, with less work per call;
    ``watch`` fails it early when the replica holding it is gone.

    Run it on ``nc``'s own event loop (its reply subscription delivers there)."""
    found = _requesters.get(nc)
    if found is None:
        for old in [c for c in _requesters if c.is_closed]:
            del _requesters[old]
        found = _requesters[nc] = Requester(nc)
        found.started = asyncio.ensure_future(found.start())
    started = found.started
    if started is not None:
        if not started.done():
            await asyncio.shield(started)
        elif started.exception() is not None:  # could not subscribe (closed?): try again next call
            _requesters.pop(nc, None)
            started.result()
        found.started = None
    return await found.request(subject, body, headers, timeout, watch)
