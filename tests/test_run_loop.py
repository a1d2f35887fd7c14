"""The run loop lives in its own module; Agent.arun delegates to it."""

from __future__ import annotations

import asyncio
from typing import Any

from shipmates import Agent, ModelResponse, RunResult, Session, ToolCall
from shipmates._run._run_loop import run_agent


class TwoArgModel:
    """A model written before ``settings`` existed: it takes two arguments only."""

    model_id = "two-args"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        self.calls += 1
        if self.calls == 1:
            return ModelResponse(tool_calls=[ToolCall("c1", "shout", '{"text": "hi"}')])
        return ModelResponse(content=f"done: {messages[-1]['content']}")


def shout(text: str) -> str:
    """Shout."""
    return text.upper()


def test_run_agent_runs_the_loop_and_a_two_argument_model_still_works() -> None:
    agent = Agent("a", instructions="be loud", model=TwoArgModel(), tools=[shout])
    session = Session()
    result = asyncio.run(run_agent(agent, "say hi", session=session))
    assert isinstance(result, RunResult)
    assert (result.status, result.output, result.turns, result.agent) == ("ok", "done: HI", 2, "a")
    assert [m["role"] for m in result.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert [e.tool for e in result.events] == ["shout"]
    assert [m["role"] for m in session.messages] == ["user", "assistant", "tool", "assistant"]


def test_arun_delegates_to_run_agent() -> None:
    agent = Agent("a", model=TwoArgModel(), tools=[shout], max_turns=1)
    result = asyncio.run(agent.arun("say hi"))
    assert (result.status, result.turns) == ("max_turns", 1)
