"""Names a module exports from private submodules, imported on first access (PEP 562).

``shipmates``, ``shipmates.plugin`` and plugin packages stay cheap to import this way: heavy
parts (pydantic-backed agents, pluggy, litellm) load only when a name that needs them is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    module: str, names: Mapping[str, str], *, package: str | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``module``: ``names`` maps each exported name to the
    submodule (relative to ``package``, by default ``module`` itself) that defines it.

    Use at the end of the module: ``__getattr__, __dir__ = lazy_exports(__name__, _LAZY)``.
    """
    base = package or module

    def get(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{target}", base), name)
        setattr(sys.modules[module], name, value)  # later lookups skip this function
        return value

    def listing() -> list[str]:
        namespace = vars(sys.modules[module])
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return get, listing
