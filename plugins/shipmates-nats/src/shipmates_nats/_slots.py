"""``serve``'s call slots: at most ``n`` calls at once, the others wait their turn in order.

``asyncio.Semaphore`` does the same, but on Python 3.11 each acquire scans its waiters twice
(``locked()``) and is a coroutine even when a slot is free; a replica takes a slot on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Slots:
    def __init__(self, n: int) -> None:
        self.free = n
        self.waiting: deque[asyncio.Future[None]] = deque()

    def take(self) -> bool:
        """Take a free slot at once if there is one (and nobody is waiting for it)."""
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Wait for a slot (after :meth:`take` said none is free); :meth:`release` hands it over."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # it was handed a slot as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self.waiting.remove(future)
            raise

    def release(self) -> None:
        """Give a slot back: to the first caller still waiting, else to the free ones."""
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.free += 1
