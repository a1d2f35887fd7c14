"""Import nats-py without aiohttp, which it needs only for WebSocket URLs.

``nats.aio.transport`` imports aiohttp at once for its WebSocket transport: about a quarter of a
second (its connector builds TLS contexts as it loads), most of a ``shipmates serve`` start, and so
of a crew's recovery from a dead worker. While nats-py loads, a lazy stand-in (the standard
:class:`importlib.util.LazyLoader`) takes aiohttp's place; the stand-in then leaves
``sys.modules``, so whoever imports aiohttp next (litellm) gets the real module. The stand-in
itself can never load: :func:`import_nats` puts the real aiohttp into nats-py before a
WebSocket server is used, so every connection must pass its URL through it.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


class _Lazy:
    """A finder that hands out one lazy spec (through the finder, not ``sys.modules``, since a
    plain ``import`` of a module already in ``sys.modules`` reads its ``__spec__`` and loads it)."""

    def __init__(self, spec: ModuleSpec) -> None:
        self.spec = spec

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        return self.spec if name == self.spec.name else None


def import_nats(url: str = "") -> None:
    """Import ``nats`` (a no-op once imported); a ``url`` (or comma-separated list) with a
    ``ws://``/``wss://`` server imports aiohttp as usual."""
    websocket = any(u.strip().startswith(("ws://", "wss://")) for u in url.split(","))
    if "nats" in sys.modules:
        transport = sys.modules.get("nats.aio.transport")
        if (
            websocket
            and transport is not None
            and type(getattr(transport, "aiohttp", None)) is not ModuleType
        ):
            setattr(transport, "aiohttp", importlib.import_module("aiohttp"))  # noqa: B010 - the real one from now on
        return
    finder = None
    if not websocket and "aiohttp" not in sys.modules:
        spec = importlib.util.find_spec("aiohttp")
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
            finder = _Lazy(spec)
            sys.meta_path.insert(0, finder)
    try:
        import nats  # noqa: F401
    finally:
        if finder is not None:
            sys.meta_path.remove(finder)
            stand_in = sys.modules.get("aiohttp")
            if stand_in is not None and type(stand_in) is not ModuleType:  # still lazy: not loaded
                del sys.modules["aiohttp"]
