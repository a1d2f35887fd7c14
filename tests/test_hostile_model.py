"""Hostile or broken model output never escapes the run loop: it becomes a tool error the model sees."""

from __future__ import annotations

import asyncio
from typing import Any

from shipmates import Agent, ModelResponse, ToolCall, tool


class Scripted:
    """A model that asks for one scripted tool call, then answers with the tool's result."""

    model_id = "scripted"

    def __init__(self, arguments: str) -> None:
        self.arguments = arguments

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **_: Any) -> Any:
        if messages[-1]["role"] == "tool":
            return ModelResponse(content=messages[-1]["content"])
        return ModelResponse(tool_calls=[ToolCall("c1", "echo", self.arguments)])


@tool
def echo(text: str) -> str:
    """Echo text."""
    return text


def _run(arguments: str) -> str:
    agent = Agent("a", tools=[echo], model=Scripted(arguments))  # type: ignore[arg-type]
    return asyncio.run(agent.arun("go")).output


def test_deeply_nested_arguments_are_a_tool_error_not_a_recursion_error() -> None:
    output = _run('{"text": ' + "[" * 50_000 + "]" * 50_000 + "}")
    assert "were refused: nested 50001 levels deep, over the limit of 64" in output


def test_huge_arguments_are_refused_with_the_limit_named() -> None:
    output = _run('{"text": "' + "x" * 2_000_000 + '"}')
    assert "over the limit of 1000000" in output


def test_arguments_within_limits_still_work() -> None:
    assert _run('{"text": "[[nested]] {in a string}"}') == "[[nested]] {in a string}"
