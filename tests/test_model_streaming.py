"""Models stream: litellm's real streaming path (a streaming custom provider, mock_response), the
offline router word by word, and a model with only ``complete`` as one chunk."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from shipmates import Agent, ModelCallFinished, ModelError, ModelResponse, TextDelta, ToolCall, tool
from shipmates._models._litellm import LiteLLMModel
from shipmates._models._model import stream_model
from shipmates._models._offline import OfflineRouter
from shipmates._runtime import run_sync
from support import litellm_offline
from support.litellm_offline import custom_provider

# The fixtures: no OpenAI settings from the environment, litellm loaded as shipmates loads it.
_no_openai_settings = litellm_offline._no_openai_settings
litellm_lib = litellm_offline.litellm_lib

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

ANSWER = ["The ", "answer ", "is ", "42", "."]


def _chunk(
    text: str = "", *, tool_use: Any = None, finished: bool = False, usage: Any = None
) -> dict[str, Any]:
    return {
        "text": text,
        "tool_use": tool_use,
        "is_finished": finished,
        "finish_reason": ("tool_calls" if tool_use else "stop") if finished else "",
        "usage": usage,
        "index": 0,
    }


def _double_21() -> Iterator[dict[str, Any]]:
    """The chunks of a tool call ``double(n=21)`` whose arguments come in three pieces."""
    for i, piece in enumerate(['{"n', '": 2', "1}"]):
        call = {
            "id": "call_dbl" if i == 0 else None,
            "type": "function",
            "function": {"name": "double" if i == 0 else None, "arguments": piece},
            "index": 0,
        }
        yield _chunk(tool_use=call)


@pytest.fixture
def streaming(litellm_lib: Any) -> Iterator[Any]:
    """A litellm CustomLLM provider 'streamtest' whose ``astreaming`` sends the arguments of a tool
    call in pieces on the first turn, then the answer word by word, each turn with its usage."""
    from litellm.llms.custom_llm import CustomLLM

    class Streaming(CustomLLM):
        def __init__(self) -> None:
            super().__init__()
            self.requests: list[list[dict[str, Any]]] = []

        async def astreaming(
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> AsyncIterator[Any]:
            self.requests.append(json.loads(json.dumps(messages)))
            if not any(m["role"] == "tool" for m in messages):
                for chunk in _double_21():
                    yield chunk
                usage = {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}
                yield _chunk(finished=True, usage=usage)
                return
            for word in ANSWER:
                yield _chunk(word)
            yield _chunk(
                finished=True, usage={"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}
            )

    yield from custom_provider(litellm_lib, "streamtest", Streaming())


@tool
def double(n: int) -> int:
    """Double n."""
    return 2 * n


async def _collect(model: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[Any]:
    return [chunk async for chunk in stream_model(model, messages, tools)]


def test_litellm_streams_deltas_in_order_and_rebuilds_tool_calls_and_usage(streaming: Any) -> None:
    model = LiteLLMModel("streamtest/any")
    user = [{"role": "user", "content": "double 21"}]
    first = asyncio.run(_collect(model, user, [double.schema]))
    (response,) = first  # no text on the tool-call turn: only the rebuilt response
    assert response.tool_calls == [ToolCall("call_dbl", "double", '{"n": 21}')]
    assert response.usage["prompt_tokens"] == 30 and response.usage["completion_tokens"] == 7

    answered = [*user, {"role": "tool", "tool_call_id": "call_dbl", "content": "42"}]
    second = asyncio.run(_collect(model, answered, [double.schema]))
    assert second[:-1] == ANSWER
    assert second[-1].content == "".join(ANSWER) and not second[-1].tool_calls
    assert second[-1].usage["completion_tokens"] == 5


@pytest.fixture
def long_stream(litellm_lib: Any) -> Iterator[Any]:
    """A provider 'longtest' streaming 300 words, then a tool call in pieces, then its usage."""
    from litellm.llms.custom_llm import CustomLLM

    class Long(CustomLLM):
        async def astreaming(
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> AsyncIterator[Any]:
            for i in range(300):
                yield _chunk(f"w{i} ")
            for chunk in _double_21():
                yield chunk
            yield _chunk(
                finished=True, usage={"prompt_tokens": 9, "completion_tokens": 303, "total_tokens": 312}
            )

    yield from custom_provider(litellm_lib, "longtest", Long())


def test_a_long_stream_rebuilds_as_litellm_rebuilds_every_chunk(long_stream: Any, litellm_lib: Any) -> None:
    """Runs of text chunks go to litellm's builder as one (it costs ~50 us a chunk): the response
    is the one litellm builds from every chunk."""
    user = [{"role": "user", "content": "go"}]
    streamed = asyncio.run(_collect(LiteLLMModel("longtest/any"), user, [double.schema]))
    response = streamed[-1]

    async def every_chunk() -> tuple[list[Any], Any]:
        stream = await litellm_lib.acompletion(model="longtest/any", messages=user, stream=True)
        chunks = [chunk async for chunk in stream]
        return chunks, litellm_lib.stream_chunk_builder(chunks, messages=user)

    _, expected = run_sync(every_chunk())  # the background loop: litellm's logging task outlives the call
    text = "".join(f"w{i} " for i in range(300))
    assert "".join(streamed[:-1]) == response.content == expected.choices[0].message.content == text
    assert response.tool_calls == [ToolCall("call_dbl", "double", '{"n": 21}')]
    assert response.usage["completion_tokens"] == expected.usage.completion_tokens == 303
    assert response.usage["prompt_tokens"] == expected.usage.prompt_tokens == 9


def test_agent_stream_through_litellm(streaming: Any) -> None:
    agent = Agent("doubler", model="streamtest/any", tools=[double])

    async def run() -> list[Any]:
        return [event async for event in agent.stream("double 21")]

    events = asyncio.run(run())
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The answer is 42."
    calls = [e for e in events if isinstance(e, ModelCallFinished)]
    assert [(c.usage.input_tokens, c.usage.output_tokens, c.tool_calls) for c in calls] == [
        (30, 7, 1),
        (50, 5, 0),
    ]
    assert all(c.model == "streamtest/any" for c in calls)
    result = events[-1].result
    assert result.output == "The answer is 42." and result.events[0].result == "42"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.model_calls) == (80, 12, 2)
    # The tool's result went back to the model as the streamed tool call's answer.
    assert streaming.requests[1][-1] == {"role": "tool", "tool_call_id": "call_dbl", "content": "42"}


def test_litellm_mock_response_streams_with_cost_from_the_local_cost_map(litellm_lib: Any) -> None:
    model = LiteLLMModel("openai/gpt-4o-mini", mock_response="hello there streaming world")
    chunks = asyncio.run(_collect(model, [{"role": "user", "content": "hi"}], []))
    response = chunks[-1]
    assert "".join(chunks[:-1]) == response.content == "hello there streaming world"
    assert len(chunks) > 2  # several deltas, not one block
    expected = litellm_lib.completion_cost(completion_response=response.raw, model="openai/gpt-4o-mini")
    assert response.cost_usd == pytest.approx(expected) and expected > 0


def test_unpriced_model_has_no_cost(litellm_lib: Any) -> None:
    model = LiteLLMModel("openai/shipmates-local-unpriced", mock_response="hi")
    chunks = asyncio.run(_collect(model, [{"role": "user", "content": "hi"}], []))
    assert chunks[-1].cost_usd is None
    assert asyncio.run(model.complete([{"role": "user", "content": "hi"}], [])).cost_usd is None


def test_offline_router_streams_word_by_word() -> None:
    router = OfflineRouter()
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "x", "content": "one two  three\n"},
    ]
    chunks = asyncio.run(_collect(router, messages, []))
    assert chunks[:-1] == ["one ", "two  ", "three\n"]
    assert "".join(chunks[:-1]) == chunks[-1].content


class CompleteOnly:
    model_id = "complete-only"

    async def complete(self, messages: Any, tools: Any, settings: Any = None) -> ModelResponse:
        return ModelResponse(content="all at once", usage={"prompt_tokens": 3, "completion_tokens": 2})


def test_a_model_with_only_complete_streams_as_one_chunk() -> None:
    chunks = asyncio.run(_collect(CompleteOnly(), [{"role": "user", "content": "hi"}], []))
    assert chunks[0] == "all at once" and chunks[1].content == "all at once" and len(chunks) == 2


class BadStream:
    model_id = "bad-stream"

    def __init__(self, final: Any) -> None:
        self.final = final

    async def complete(self, messages: Any, tools: Any, settings: Any = None) -> ModelResponse:
        raise AssertionError("stream() is used when present")

    async def stream(self, messages: Any, tools: Any, settings: Any = None) -> AsyncIterator[Any]:
        yield "partial "
        if self.final is not None:
            yield self.final


@pytest.mark.parametrize(
    ("final", "problem"), [(None, "without a ModelResponse"), ({"content": "x"}, "dict")]
)
def test_a_stream_is_checked_like_a_response(final: Any, problem: str) -> None:
    with pytest.raises(ModelError, match=problem) as info:
        asyncio.run(_collect(BadStream(final), [{"role": "user", "content": "hi"}], []))
    assert "'bad-stream'" in str(info.value)
