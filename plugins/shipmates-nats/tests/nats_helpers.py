"""Small helpers shared by the NATS test modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def settings(url: str, namespace: str = "shipmates", **kw: Any) -> Any:
    from shipmates_nats import NatsSettings

    return NatsSettings(url=url, namespace=namespace, **kw)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)
