"""Usage: tokens and cost per model call, per agent (own and delegated, never twice) and per tree,
in ``RunResult.usage`` whether or not anyone streams."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from shipmates import Agent, AgentUsage, ModelCallFinished, Usage
from shipmates._run._usage import UsageSnapshot
from support import litellm_offline
from support.litellm_offline import custom_provider, delegating_handler

# The fixtures: no OpenAI settings from the environment, litellm loaded as shipmates loads it.
_no_openai_settings = litellm_offline._no_openai_settings
litellm_lib = litellm_offline.litellm_lib

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")


def test_usage_adds_up() -> None:
    a = Usage(input_tokens=10, output_tokens=2, cached_tokens=4, cost_usd=0.5, model_calls=1)
    b = Usage(input_tokens=1, output_tokens=1, model_calls=1, calls_without_cost=1)
    total = a + b
    assert (total.input_tokens, total.output_tokens, total.cached_tokens, total.total_tokens) == (
        11,
        3,
        4,
        14,
    )
    assert total.cost_usd == 0.5 and total.model_calls == 2 and total.calls_without_cost == 1
    assert (b + b).cost_usd is None
    assert sum([a, a], Usage()).cost_usd == 1.0
    assert total.as_dict()["total_tokens"] == 14


def test_usage_of_a_call_reads_the_openai_format() -> None:
    usage = Usage.of_call(
        {"prompt_tokens": 120, "completion_tokens": 30, "prompt_tokens_details": {"cached_tokens": 100}}, 0.25
    )
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cost_usd) == (
        120,
        30,
        100,
        0.25,
    )
    assert Usage.of_call({"input_tokens": 5, "output_tokens": 6}, None) == Usage(5, 6, 0, None, 1, 1)
    assert Usage.of_call(None, None) == Usage(model_calls=1, calls_without_cost=1)
    assert Usage.of_call({"prompt_tokens": "lots", "completion_tokens": -1}, None).total_tokens == 0


def test_a_ledger_counts_own_and_delegated_apart() -> None:
    one = Usage(input_tokens=1, model_calls=1)
    ledger = [(("captain",), one), (("captain", "middle"), one), (("captain", "middle", "leaf"), one)]
    snapshot = UsageSnapshot(tuple(ledger))
    by = snapshot.by_agent()
    assert by["captain"] == AgentUsage(own=one, delegated=one + one)
    assert by["middle"] == AgentUsage(own=one, delegated=one)
    assert by["leaf"] == AgentUsage(own=one)
    assert snapshot.total.input_tokens == 3 == sum(a.own.input_tokens for a in by.values())
    assert by["captain"].total == snapshot.total
    # A sibling's run reads the paths from its own depth down.
    middle = UsageSnapshot(((("captain", "middle", "leaf"), one),), depth=1)
    assert middle.by_agent() == {"middle": AgentUsage(delegated=one), "leaf": AgentUsage(own=one)}
    # Raw model-call entries are read on first use.
    raw = UsageSnapshot(((("a",), ({"prompt_tokens": 4, "completion_tokens": 1}, 0.5)),))
    assert raw.total == Usage(4, 1, 0, 0.5, 1, 0)


TOKENS = {"captain": (100, 10), "middle": (20, 4), "leaf": (3, 1)}


@pytest.fixture
def delegating(litellm_lib: Any) -> Iterator[Any]:
    """A litellm CustomLLM provider 'usagetest': model ``usagetest/NAME`` calls its first tool once,
    then answers with the result; every call reports ``TOKENS[NAME]``."""
    yield from custom_provider(litellm_lib, "usagetest", delegating_handler(litellm_lib, TOKENS))


def _tree() -> Agent:
    # The provider cannot stream: stream=False makes a streamed run complete each turn at once.
    settings = {"stream": False}
    leaf = Agent("leaf", "answers", model="usagetest/leaf", model_settings=settings)
    middle = Agent("middle", "asks leaf", model="usagetest/middle", tools=[leaf], model_settings=settings)
    return Agent("captain", model="usagetest/captain", tools=[middle], model_settings=settings)


def test_usage_totals_of_a_tree_through_litellm(delegating: None) -> None:
    result = asyncio.run(_tree().arun("go"))
    assert result.output == "[[[leaf says hi]]]"
    # captain and middle: two calls each; the leaf answers at once.
    expected = (2 * 100 + 2 * 20 + 3, 2 * 10 + 2 * 4 + 1)
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.model_calls) == (*expected, 5)
    assert result.usage.cost_usd is None and result.usage.calls_without_cost == 5  # not in the cost map
    by = result.usage_by_agent
    assert by["captain"].own.input_tokens == 200 and by["captain"].delegated.input_tokens == 43
    assert by["middle"].own.input_tokens == 40 and by["middle"].delegated.input_tokens == 3
    assert by["leaf"].own.input_tokens == 3 and by["leaf"].delegated.model_calls == 0

    async def streamed() -> list[Any]:
        return [e async for e in _tree().stream("go")]

    events = asyncio.run(streamed())
    calls = sum((e.usage for e in events if isinstance(e, ModelCallFinished)), Usage())
    assert calls == events[-1].usage == result.usage  # the stream and arun agree


def test_cost_comes_from_litellms_local_cost_map(litellm_lib: Any) -> None:
    agent = Agent("priced", model="openai/gpt-4o-mini", model_settings={"mock_response": "cheap answer"})
    result = asyncio.run(agent.arun("hi"))
    assert result.output == "cheap answer"
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    prompt_cost, completion_cost = litellm_lib.cost_per_token(
        model="openai/gpt-4o-mini",
        prompt_tokens=result.usage.input_tokens,
        completion_tokens=result.usage.output_tokens,
    )
    assert result.usage.cost_usd == pytest.approx(prompt_cost + completion_cost) and prompt_cost > 0
    assert result.usage.calls_without_cost == 0


def test_the_offline_router_counts_calls_without_tokens() -> None:
    run = asyncio.run(Agent("a").arun("hello"))
    assert run.usage == Usage(model_calls=1, calls_without_cost=1)
    assert run.usage_by_agent == {"a": AgentUsage(own=run.usage)}
