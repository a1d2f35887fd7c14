"""The model registry: register_models hook, get_model, defaults and SHIPMATES_MODEL."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from shipmates import DEFAULT_MODEL, Agent, Model, ModelResponse, get_model, get_plugin_manager, hookimpl
from shipmates._models._litellm import LiteLLMModel
from shipmates._models._offline import OfflineRouter
from shipmates._models._registry import registered_models


class Parrot:
    model_id = "parrot"

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        return ModelResponse(content="squawk: " + messages[-1]["content"])


class ParrotPlugin:
    @hookimpl
    def register_models(self, register: Callable[..., None]) -> None:
        register(Parrot(), aliases=("polly",))


class BrokenPlugin:
    @hookimpl
    def register_models(self, register: Callable[..., None]) -> None:
        raise RuntimeError("plugin bug")


@pytest.fixture
def plugins() -> Iterator[Callable[[object], None]]:
    pm = get_plugin_manager()
    added: list[object] = []

    def add(plugin: object) -> None:
        pm.register(plugin)
        added.append(plugin)

    yield add
    for plugin in added:
        pm.unregister(plugin)


def test_default_model_is_the_offline_router() -> None:
    assert DEFAULT_MODEL == "offline"
    model = get_model()
    assert isinstance(model, OfflineRouter) and isinstance(model, Model)
    assert get_model("offline") is model
    assert set(registered_models()) >= {"offline", "router"}


def test_plugin_models_are_registered_with_aliases(plugins: Callable[[object], None]) -> None:
    plugins(ParrotPlugin())
    parrot = get_model("parrot")
    assert isinstance(parrot, Parrot) and get_model("polly") is parrot
    assert Agent("a", model="polly").invoke("hi") == "squawk: hi"


def test_a_broken_plugin_does_not_hide_other_models(
    plugins: Callable[[object], None], caplog: pytest.LogCaptureFixture
) -> None:
    plugins(BrokenPlugin())
    plugins(ParrotPlugin())
    with caplog.at_level(logging.WARNING, logger="shipmates"):
        assert isinstance(get_model("parrot"), Parrot)
    assert isinstance(get_model("offline"), OfflineRouter)
    assert "plugin bug" in caplog.text


def test_shipmates_model_env_sets_the_session_default(
    monkeypatch: pytest.MonkeyPatch, plugins: Callable[[object], None]
) -> None:
    plugins(ParrotPlugin())
    monkeypatch.setenv("SHIPMATES_MODEL", "parrot")
    agent = Agent("a")  # no model of its own: resolved at run time
    assert agent.resolve_model().model_id == "parrot"
    assert agent.invoke("x") == "squawk: x"
    monkeypatch.setenv("SHIPMATES_MODEL", "")
    assert agent.resolve_model().model_id == "offline"


def test_unregistered_names_go_to_litellm_without_importing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import shipmates._models._litellm as backend

    monkeypatch.setattr(backend, "_module", None)
    monkeypatch.delitem(sys.modules, "litellm", raising=False)
    model = get_model("openai/gpt-4o-mini")
    assert isinstance(model, LiteLLMModel) and model.model_id == "openai/gpt-4o-mini"
    assert get_model("openai/gpt-4o-mini") is model
    assert "litellm" not in sys.modules


def test_model_instances_and_per_run_override() -> None:
    parrot = Parrot()
    assert get_model(parrot) is parrot
    agent = Agent("a")
    assert asyncio.run(agent.arun("hey", model=parrot)).output == "squawk: hey"
