"""Waiting for observable state with a deadline, instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.05, *, what: str = ""
) -> Any:
    """Call ``predicate`` every ``step`` seconds until it returns something true, and return that.

    Fails the test (``AssertionError``) if it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or 'condition not met'}")
        time.sleep(step)


async def until(
    predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.01, *, what: str = ""
) -> Any:
    """:func:`wait_for` for a coroutine: polls without blocking the event loop it runs on."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or 'condition not met'}")
        await asyncio.sleep(step)
