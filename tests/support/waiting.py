"""Waiting for observable state with a deadline, instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


class _Deadline:
    def __init__(self, timeout: float, what: str) -> None:
        self.timeout, self.what = timeout, what
        self.at = time.monotonic() + timeout

    def met(self, value: Any) -> bool:
        """True once ``value`` is true; fails the test (``AssertionError``) past the deadline."""
        if value:
            return True
        if time.monotonic() > self.at:
            raise AssertionError(f"not within {self.timeout} s: {self.what or 'condition not met'}")
        return False


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.05, *, what: str = ""
) -> Any:
    """Call ``predicate`` every ``step`` seconds until it returns something true, and return that.

    Fails the test (``AssertionError``) if it is still false after ``timeout`` seconds."""
    deadline = _Deadline(timeout, what)
    while not deadline.met(value := predicate()):
        time.sleep(step)
    return value


async def until(
    predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.01, *, what: str = ""
) -> Any:
    """:func:`wait_for` for a coroutine: polls without blocking the event loop it runs on."""
    deadline = _Deadline(timeout, what)
    while not deadline.met(value := predicate()):
        await asyncio.sleep(step)
    return value
