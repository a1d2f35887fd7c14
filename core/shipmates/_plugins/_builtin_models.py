"""Built-in plugin: the offline router, contributed like any plugin model."""

from __future__ import annotations

from ._hookspecs import RegisterModel, hookimpl


@hookimpl
def register_models(register: RegisterModel) -> None:
    """Register the offline router as ``offline`` (alias ``router``)."""
    from .._models._offline import OfflineRouter

    register(OfflineRouter(), aliases=("router",))
