"""A private asyncio event loop on a daemon thread: nats-py is asyncio, the hooks are sync.

Calls from another loop are bridged with ``run_coroutine_threadsafe`` + ``wrap_future``, so
cancelling the caller's task cancels the work on the bridge loop too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Bridge:
    """One event loop thread owned by the plugin."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="shipmates-nats", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the bridge loop and block for its result (sync callers)."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the bridge loop from any loop; cancellation propagates."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return await coro
        return await asyncio.wrap_future(self.submit(coro))


_bridge: Bridge | None = None
_lock = threading.Lock()


def get_bridge() -> Bridge:
    """The process-wide bridge, started on first use."""
    global _bridge
    with _lock:
        if _bridge is None or (not _bridge.loop.is_running() and _bridge.loop.is_closed()):
            _bridge = Bridge()
        return _bridge
