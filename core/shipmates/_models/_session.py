"""The session's model: the one every agent without a model of its own uses, and how it is reached.

A chat (or ``shipmates serve``) sets two context variables for as long as it runs:
:data:`session_model`, the name (``--model``, ``SHIPMATES_MODEL``, the config file's
``default_model``; ``/model NAME`` changes it), and :data:`session_config`, the settings that go
with it (``--api-base``, ``--api-key-env``, ``-o``, ``--model-timeout``, ``SHIPMATES_MODEL_RETRIES``)
and the user's model aliases. The settings apply to the session default only: an agent that
names its own model gets that model's alias settings, never the session's server or options,
but every litellm call gets a timeout and bounded retries.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._model import DEFAULT_MODEL

if TYPE_CHECKING:
    from .._config import ModelAlias
    from .._settings import Settings
    from ._model import Model

DEFAULT_MODEL_TIMEOUT = 120.0
"""Seconds one model call may take (``--model-timeout``, ``SHIPMATES_MODEL_TIMEOUT``)."""
DEFAULT_MODEL_RETRIES = 1
"""Retries of a failed model call (``SHIPMATES_MODEL_RETRIES``), all within the call's one timeout:
they help against fast failures (a refused connection, a 429), not a silent server."""


@dataclass(frozen=True)
class ModelConfig:
    """How the session's model is reached, and the user's aliases (the config file)."""

    api_base: str | None = None
    api_key_env: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    retries: int | None = None
    aliases: Mapping[str, ModelAlias] = field(default_factory=dict)


session_model: ContextVar[str | None] = ContextVar("shipmates_session_model", default=None)
"""The model of the chat running in this context (``--model``): agents without a model of
their own use it. Follows turns into tasks, worker threads and siblings; set by the chat."""

session_config: ContextVar[ModelConfig | None] = ContextVar("shipmates_session_config", default=None)
"""The settings of the session's model and the user's aliases; set by the chat."""


def default_model_name() -> str:
    """The chat's :data:`session_model`, else ``SHIPMATES_MODEL`` when set and not empty,
    else :data:`DEFAULT_MODEL`."""
    from .._settings import model_from

    return session_model.get() or model_from() or DEFAULT_MODEL


@contextlib.contextmanager
def use_session(settings: Settings) -> Iterator[None]:
    """Make ``settings``' model (else the config file's default) and model settings the session's
    for the block; reads the config file (a bad one is a ``ConfigError``)."""
    from .._config import read_config

    config = read_config()
    name = settings.model or config.default_model
    model_token = session_model.set(name)
    config_token = session_config.set(
        ModelConfig(
            settings.api_base,
            settings.api_key_env,
            dict(settings.model_options),
            settings.model_timeout,
            settings.model_retries,
            config.models,
        )
    )
    try:
        yield
    finally:
        session_config.reset(config_token)
        session_model.reset(model_token)


def session_model_chosen() -> bool:
    """True when the session's model was chosen (flag, environment, config, ``/model``)."""
    return session_model.get() is not None


def call_policy() -> tuple[float, int]:
    """The timeout and retries of every litellm call in this context."""
    config = session_config.get()
    timeout = config.timeout if config is not None and config.timeout is not None else DEFAULT_MODEL_TIMEOUT
    if config is not None and config.retries is not None:
        return timeout, config.retries
    from .._settings import model_retries_from

    retries = model_retries_from()
    return timeout, DEFAULT_MODEL_RETRIES if retries is None else retries


_litellm_models: dict[tuple[str, str], Model] = {}
"""litellm models by name and settings: they depend on no plugin, so every host shares them."""


def litellm_model(name: str, *, session: bool, registered: Mapping[str, Model] | None = None) -> Model:
    """The litellm model ``name`` (an alias from the config file, or a litellm model string);
    ``session``: it is the session default, so the session's settings apply over the alias's.
    An alias of a ``registered`` model (``fast = { model = "offline" }``) is that model."""
    config = session_config.get()
    alias = config.aliases.get(name) if config is not None else None
    if alias is not None and registered is not None and alias.model in registered:
        return registered[alias.model]
    model_id = name
    settings: dict[str, Any] = {}
    if alias is not None:
        model_id = alias.model
        settings = {**alias.options, "api_base": alias.api_base, "api_key_env": alias.api_key_env}
        settings["timeout"] = alias.timeout
    if session and config is not None:
        settings.update(config.options)
        for key in ("api_base", "api_key_env", "timeout"):
            if getattr(config, key) is not None:
                settings[key] = getattr(config, key)
    settings = {k: v for k, v in settings.items() if v is not None}
    triage = alias is not None and alias.triage
    cache_key = (model_id, json.dumps([settings, triage], sort_keys=True, default=str))
    model = _litellm_models.get(cache_key)
    if model is None:
        from ._litellm import LiteLLMModel

        model = _litellm_models[cache_key] = LiteLLMModel(model_id, triage=triage, **settings)
    return model


def model_label(sibling: Any) -> str | None:
    """Which model a sibling uses: its own, ``session default (NAME)``, or what a remote one's
    card says; None for a sibling that is no agent."""
    if sibling is None:  # not loaded: nothing to import to say
        return None
    from .._run._agent import Agent

    if isinstance(sibling, Agent):
        model = sibling.model
        if model is None:
            return f"session default ({default_model_name()})"
        return model if isinstance(model, str) else str(getattr(model, "model_id", model))
    label = getattr(sibling, "model", None)
    return label if isinstance(label, str) and label else None


def reset_models() -> None:
    """Forget the litellm models (tests)."""
    _litellm_models.clear()
