"""Fixtures for tests that drive litellm's real code path without a network or API keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_openai_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OpenAI key or base URL from the developer's environment reaches litellm."""
    for key in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def litellm_lib() -> Any:
    """litellm, imported as shipmates imports it (local cost map, no network)."""
    from shipmates._models import _litellm as backend

    return backend.load()


def custom_provider(litellm: Any, name: str, handler: Any) -> Iterator[Any]:
    """Register ``handler`` (a ``litellm.CustomLLM``) as provider ``name`` while the fixture lives."""
    saved = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [*saved, {"provider": name, "custom_handler": handler}]
    yield handler
    litellm.custom_provider_map = saved
