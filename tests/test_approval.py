"""Approval reaches every call of a run, including the ones siblings make further down."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from shipmates import Agent, ModelResponse, ToolCall, ToolCallEvent, tool


class Scripted:
    """A model that plays back responses: tool calls first, then the last tool result as text."""

    model_id = "scripted"

    def __init__(self, calls: list[ToolCall]) -> None:
        self.calls = calls

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        if messages[-1]["role"] == "tool":
            return ModelResponse(content=messages[-1]["content"], tool_calls=[])
        return ModelResponse(content=None, tool_calls=self.calls)


@tool
def square(n: int) -> int:
    """Square a number."""
    return n * n


class SyncSibling:
    """A sibling that is not an Agent: it runs its own agent synchronously (in a worker thread)."""

    name = "syncmath"
    description = "math done synchronously"

    def __init__(self) -> None:
        self.inner = Agent(
            "inner", model=Scripted([ToolCall("s1", "square", json.dumps({"n": 4}))]), tools=[square]
        )

    def invoke(self, query: str) -> str:
        return self.inner.invoke(query)


def make_crew(sibling: Any) -> Agent:
    captain = Agent("captain", model=Scripted([ToolCall("c1", sibling.name, json.dumps({"query": "go"}))]))
    captain.absorb(sibling)
    return captain


def math_agent() -> Agent:
    return Agent(
        "math",
        description="does math",
        model=Scripted([ToolCall("m1", "square", json.dumps({"n": 3}))]),
        tools=[square],
    )


@pytest.mark.parametrize("refuse", [None, "square"])
def test_nested_tool_calls_are_approved_by_the_outer_approver(refuse: str | None) -> None:
    asked: list[tuple[str, str, int]] = []

    async def approve(event: ToolCallEvent) -> bool:
        asked.append((event.agent, event.tool, event.depth))
        return event.tool != refuse

    result = asyncio.run(make_crew(math_agent()).arun("square 3", approve=approve))
    assert asked == [("captain", "math", 0), ("math", "square", 1)]
    if refuse is None:
        assert result.output == "9"
    else:
        assert "the user refused this call" in result.output


def test_approver_is_asked_on_its_own_loop_when_a_sync_sibling_runs_elsewhere() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def approve(event: ToolCallEvent) -> bool:
        loops.append(asyncio.get_running_loop())
        return True

    async def main() -> tuple[str, asyncio.AbstractEventLoop]:
        result = await make_crew(SyncSibling()).arun("go", approve=approve)
        return result.output, asyncio.get_running_loop()

    output, home = asyncio.run(main())
    assert output == "16"
    assert len(loops) == 2 and all(loop is home for loop in loops)


def test_a_run_without_approver_outside_any_approved_run_asks_nobody() -> None:
    assert asyncio.run(make_crew(math_agent()).arun("square 3")).output == "9"
