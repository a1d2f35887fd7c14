"""The model registry: models contributed through ``register_models``, else litellm by name."""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar
from typing import Any

from .._errors import ModelError
from ._model import DEFAULT_MODEL, Model

log = logging.getLogger("shipmates")


_registry: dict[str, Model] = {}
_registry_key: object | None = None
_litellm_models: dict[str, Model] = {}


session_model: ContextVar[str | None] = ContextVar("shipmates_session_model", default=None)
"""The model of the chat running in this context (``--model``): agents without a model of
their own use it. Follows turns into tasks, worker threads and siblings; set by the chat."""


def default_model_name() -> str:
    """The chat's :data:`session_model`, else ``SHIPMATES_MODEL`` when set and not empty,
    else :data:`DEFAULT_MODEL`."""
    return session_model.get() or os.environ.get("SHIPMATES_MODEL", "").strip() or DEFAULT_MODEL


def _load_registry() -> dict[str, Model]:
    global _registry, _registry_key
    from .._plugins._host import get_plugin_manager

    pm = get_plugin_manager()
    impls = pm.hook.register_models.get_hookimpls()
    key = (pm, *(impl.function for impl in impls))
    if _registry_key == key:
        return _registry
    registry: dict[str, Model] = {}

    def register(model: Model, aliases: tuple[str, ...] | list[str] = (), **_: Any) -> None:
        model_id = getattr(model, "model_id", None)
        if not isinstance(model_id, str) or not callable(getattr(model, "complete", None)):
            raise ModelError(f"{model!r} is not a model: it needs a str 'model_id' and 'async complete()'")
        for key in (model_id, *aliases):
            if key in registry and registry[key] is not model:
                log.warning("model name %r registered twice; keeping the first registration", key)
                continue
            registry[key] = model

    # Call each plugin separately, so one broken plugin does not hide the others' models.
    for impl in impls:
        try:
            impl.function(*[{"register": register}[arg] for arg in impl.argnames])
        except Exception as exc:  # a plugin bug must not take the captain down
            log.warning(
                "plugin %s failed in register_models: %s: %s", impl.plugin_name, type(exc).__name__, exc
            )
    if DEFAULT_MODEL not in registry:  # a custom plugin manager without the built-in plugin
        from ._offline import OfflineRouter

        registry[DEFAULT_MODEL] = OfflineRouter()
    _registry, _registry_key = registry, key
    return registry


def registered_models() -> dict[str, Model]:
    """Models contributed through the ``register_models`` hook, by name and alias."""
    return dict(_load_registry())


def get_model(name: str | Model | None = None) -> Model:
    """Resolve a model: a registered name, else a litellm model string; ``None`` is the default.

    Model instances are returned unchanged. Resolving a litellm name does not import litellm;
    the first completion does.
    """
    if name is None:
        name = default_model_name()
    if not isinstance(name, str):
        return name
    model = _load_registry().get(name)
    if model is not None:
        return model
    model = _litellm_models.get(name)
    if model is None:
        from ._litellm import LiteLLMModel

        model = _litellm_models[name] = LiteLLMModel(name)
    return model


def reset_models() -> None:
    """Forget the registry (tests, or after plugins changed)."""
    global _registry_key
    _registry_key = None
    _litellm_models.clear()
