"""Coroutines started by hand: run at once, and handed to a task only if they have to wait.

``serve`` starts each call this way (most finish without waiting: no task at all), and a
streamed reply publishes its frames this way from the run's own callback.
"""

from __future__ import annotations

import types
from typing import Any


@types.coroutine
def _drive(coro: Any, yielded: Any) -> Any:
    """Go on driving ``coro`` (already started by hand, last yielding ``yielded``) from inside a task."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def resume(coro: Any, first: Any) -> Any:
    """Finish ``coro``, which was started with ``coro.send(None)`` and yielded ``first``."""
    return await _drive(coro, first)
