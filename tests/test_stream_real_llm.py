"""Opt-in: a streamed answer and its usage from a real local model (``../shared/llm/start``).

Runs only when the server started by ``eval "$(../shared/llm/start)"`` is up: it exports
``SHIPMATES_TEST_LLM_PID`` and ``OPENAI_API_BASE``; without them (the default suite, CI) it skips.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from shipmates import Agent, ModelCallFinished, RunFinished, TextDelta
from support.real_llm import real_llm_base

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")


def test_a_real_model_streams_its_answer_with_usage() -> None:
    base = real_llm_base()
    agent = Agent(
        "poet",
        instructions="Answer in one short sentence.",
        model="openai/qwen-1.5b",
        model_settings={"api_base": base, "max_tokens": 40, "temperature": 0},
    )

    async def run() -> list[Any]:
        return [event async for event in agent.stream("Name three colours of the rainbow.")]

    events = asyncio.run(run())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert isinstance(final, RunFinished) and final.status == "ok"
    assert len(deltas) > 1 and "".join(deltas) == final.output
    (call,) = [e for e in events if isinstance(e, ModelCallFinished)]
    assert call.usage.input_tokens > 0 and call.usage.output_tokens > 0
    assert final.usage == call.usage
