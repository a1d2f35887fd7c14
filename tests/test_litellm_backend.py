"""The litellm backend driven through litellm's real code path, without a network."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from shipmates import Agent, ModelError, Provenance, tool
from shipmates._models import _litellm as backend
from shipmates._models._litellm import LiteLLMModel

# litellm's ollama types trigger a harmless pydantic warning when first built.
pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")


@pytest.fixture(autouse=True)
def _no_openai_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def litellm() -> Any:
    return backend.load()


def _tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


@pytest.fixture
def scripted(litellm: Any) -> Iterator[Any]:
    """A litellm CustomLLM provider 'shipmatestest' that asks for tools, then sums up the results."""
    from litellm.llms.custom_llm import CustomLLM

    class Scripted(CustomLLM):
        def __init__(self) -> None:
            super().__init__()
            self.requests: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []

        async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            self.requests.append((json.loads(json.dumps(messages)), kwargs.get("optional_params") or {}))
            tool_results = [m["content"] for m in messages if m["role"] == "tool"]
            if not tool_results:
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        _tool_call("call_a", "fib", {"query": "fib(8)"}),
                        _tool_call("call_b", "double", {"n": 21}),
                    ],
                }
                return litellm.ModelResponse(choices=[{"message": message, "finish_reason": "tool_calls"}])
            message = {"role": "assistant", "content": "results: " + ", ".join(tool_results)}
            return litellm.ModelResponse(choices=[{"message": message, "finish_reason": "stop"}])

    handler = Scripted()
    saved = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [*saved, {"provider": "shipmatestest", "custom_handler": handler}]
    yield handler
    litellm.custom_provider_map = saved


@tool
def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@tool
def double(n: int) -> int:
    """Double n."""
    return 2 * n


def test_loop_through_a_litellm_custom_provider(scripted: Any) -> None:
    fib = Agent("fib", "Fibonacci numbers", model="offline", tools=[fibonacci])
    captain = Agent(
        "captain", instructions="You are the captain.", model="shipmatestest/scripted", tools=[double]
    )
    captain.absorb(fib, provenance=Provenance("entry-point", "shipmates-fib", "0.1.0"))
    result = asyncio.run(captain.arun("what is fib(8) and 21*2?"))
    assert result.status == "ok"
    assert result.output == "results: 21, 42"
    assert [(e.tool, e.status, e.depth) for e in result.events] == [("fib", "ok", 0), ("double", "ok", 0)]
    first, second = scripted.requests
    assert [t["function"]["name"] for t in first[1]["tools"]] == ["double", "fib"]
    assert first[0] == [
        {"role": "system", "content": "You are the captain."},
        {"role": "user", "content": "what is fib(8) and 21*2?"},
    ]
    roles = [m["role"] for m in second[0]]
    assert roles == ["system", "user", "assistant", "tool", "tool"]
    assert second[0][2]["tool_calls"][0]["function"]["name"] == "fib"
    assert second[0][3] == {"role": "tool", "tool_call_id": "call_a", "content": "21"}


def test_mock_tool_calls_and_model_settings_pass_through(litellm: Any) -> None:
    calls = [_tool_call("call_1", "double", {"n": 4})]
    agent = Agent(
        "mocked",
        model="openai/gpt-4o-mini",
        tools=[double],
        max_turns=2,
        model_settings={"mock_tool_calls": calls},
    )
    result = asyncio.run(agent.arun("double 4"))
    # The mock asks for the tool on every turn: a visible max_turns outcome, tools really ran.
    assert result.status == "max_turns" and result.turns == 2
    assert [(e.tool, e.result) for e in result.events] == [("double", "8"), ("double", "8")]

    text = Agent("mocked", model="openai/gpt-4o-mini", model_settings={"mock_response": "plain text"})
    assert text.invoke("hi") == "plain text"


def test_missing_api_key_becomes_a_model_error(litellm: Any) -> None:
    with pytest.raises(ModelError) as info:
        Agent("a", model="openai/gpt-4o-mini").invoke("hi")
    assert str(info.value).startswith("no API key for openai: set OPENAI_API_KEY or --api-key-env VAR")


def test_unknown_model_becomes_a_model_error(litellm: Any) -> None:
    with pytest.raises(ModelError, match="litellm does not know the model 'no-such-model-xyz': use --model"):
        asyncio.run(LiteLLMModel("no-such-model-xyz").complete([{"role": "user", "content": "x"}], []))


def test_connection_refused_becomes_a_model_error(litellm: Any) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    agent = Agent("a", model="ollama/llama3.1", model_settings={"api_base": f"http://127.0.0.1:{port}"})
    with pytest.raises(ModelError) as info:
        agent.invoke("hi")
    assert str(info.value).startswith(f"cannot reach model 'ollama/llama3.1' at http://127.0.0.1:{port}:")
    assert "--api-base URL" in str(info.value)


def test_preload_imports_in_the_background(litellm: Any) -> None:
    thread = backend.preload()
    assert thread is backend.preload()
    thread.join(timeout=60)
    assert backend.is_loaded()


def test_to_response_converts_litellm_objects(litellm: Any) -> None:
    from shipmates._models._litellm import to_response

    message = {"role": "assistant", "content": "thinking", "tool_calls": [_tool_call("c1", "f", {})]}
    raw = litellm.ModelResponse(choices=[{"message": message, "finish_reason": "tool_calls"}])
    response = to_response(raw)
    assert response.content == "thinking"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("c1", "f", "{}")]
    assert response.raw is raw
