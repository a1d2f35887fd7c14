"""The model registry: models contributed through ``register_models``, else litellm by name.

Each plugin host keeps its own registry (a custom plugin manager resolves its own models),
rebuilt when the set of ``register_models`` implementations changes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ModelError
from ._model import DEFAULT_MODEL, Model
from ._session import default_model_name, litellm_model, session_model
from ._session import reset_models as reset_models

__all__ = ["default_model_name", "get_model", "registered_models", "reset_models", "session_model"]

if TYPE_CHECKING:
    import pluggy

    from .._plugins._host import PluginHost, PluginRecord

log = logging.getLogger("shipmates")


def _registry(plugins: pluggy.PluginManager | PluginHost | None) -> dict[str, Model]:
    from .._plugins._host import host_of

    host = host_of(plugins)
    key = tuple(impl.function for impl in host.manager.hook.register_models.get_hookimpls())
    return host.memo("models", key, lambda: _build(host))


def _build(host: PluginHost) -> dict[str, Model]:
    registry: dict[str, Model] = {}

    def each(plugin: PluginRecord) -> dict[str, Any]:
        def register(model: Model, /, aliases: Sequence[str] = ()) -> None:
            model_id = getattr(model, "model_id", None)
            if not isinstance(model_id, str) or not callable(getattr(model, "complete", None)):
                raise ModelError(
                    f"{model!r} is not a model: it needs a str 'model_id' and 'async complete()'"
                )
            for key in (model_id, *aliases):
                if key in registry and registry[key] is not model:
                    log.warning(
                        "model name %r registered twice (again by plugin %r); keeping the first registration",
                        key,
                        plugin.name,
                    )
                    continue
                registry[key] = model

        return {"register": register}

    # Each plugin on its own, so one broken plugin does not hide the others' models.
    for failure in host.call_each("register_models", each=each).failures:
        log.warning("%s", failure)
    if DEFAULT_MODEL not in registry:  # a custom plugin manager without the built-in plugin
        from ._offline import OfflineRouter

        registry[DEFAULT_MODEL] = OfflineRouter()
    return registry


def registered_models(*, plugin_manager: pluggy.PluginManager | PluginHost | None = None) -> dict[str, Model]:
    """Models contributed through the ``register_models`` hook, by name and alias."""
    return dict(_registry(plugin_manager))


def get_model(
    name: str | Model | None = None, *, plugin_manager: pluggy.PluginManager | PluginHost | None = None
) -> Model:
    """Resolve a model: a registered name, else an alias from the user's config file (in a chat),
    else a litellm model string; ``None`` is the session default, with the session's settings.

    Model instances are returned unchanged. Names registered through ``plugin_manager``'s
    plugins (default: the shared ones) come first. Resolving a litellm name does not import
    litellm; the first completion does.
    """
    session = name is None
    if name is None:
        name = default_model_name()
    if not isinstance(name, str):
        return name
    registry = _registry(plugin_manager)
    model = registry.get(name)
    if model is not None:
        return model
    return litellm_model(name, session=session, registered=registry)
