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


def delegating_handler(
    litellm: Any, tokens: dict[str, tuple[int, int]], calls: list[str] | None = None
) -> Any:
    """A ``litellm.CustomLLM`` whose model ``PROVIDER/NAME`` calls its first tool once (call id
    ``call-NAME``), then answers with the result in brackets (``[NAME says hi]`` without tools);
    every call reports ``tokens[NAME]`` (prompt, completion) and appends NAME to ``calls``."""
    from litellm.llms.custom_llm import CustomLLM

    class Delegating(CustomLLM):
        async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            name = model.rsplit("/", 1)[-1]
            if calls is not None:
                calls.append(name)
            tools = (kwargs.get("optional_params") or {}).get("tools") or []
            prompt, completion = tokens[name]
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            if messages[-1]["role"] == "tool" or not tools:
                text = messages[-1]["content"] if messages[-1]["role"] == "tool" else f"{name} says hi"
                message: dict[str, Any] = {"role": "assistant", "content": f"[{text}]"}
            else:
                fn = tools[0]["function"]["name"]
                call = {"id": f"call-{name}", "type": "function"}
                call["function"] = {"name": fn, "arguments": '{"query": "go"}'}
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return litellm.ModelResponse(choices=[{"message": message}], usage=usage)

    return Delegating()
