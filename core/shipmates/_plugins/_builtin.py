"""The built-in pluggy plugin: contributes the offline router like any plugin model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._hookspecs import hookimpl


@hookimpl
def register_models(register: Callable[..., Any]) -> None:
    """Register the offline router as ``offline`` (alias ``router``)."""
    from .._models._offline import OfflineRouter

    register(OfflineRouter(), aliases=("router",))
