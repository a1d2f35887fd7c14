"""An oversized tool or sibling result is cut for the model, with a note saying so (issue 9 point 9b)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from shipmates import Agent, ModelResponse, SettingsError, ToolCall


class Asks:
    """Calls ``tool`` once, then answers with the length of what the tool gave, and keeps it."""

    model_id = "asks"

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.seen: list[str] = []

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        if messages[-1]["role"] == "tool":
            self.seen.append(messages[-1]["content"])
            return ModelResponse(content=f"got {len(messages[-1]['content'])} characters")
        return ModelResponse(tool_calls=[ToolCall("c1", self.tool, '{"query": "everything"}')])


def dump(query: str) -> str:
    """Return a lot of text."""
    return "x" * 250_000


class Chatty:
    name = "chatty"
    description = "Answers at great length."

    def invoke(self, query: str) -> str:
        return "y" * 1_000


def test_an_oversized_result_is_cut_to_the_default_limit_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPMATES_MAX_RESULT_CHARS", raising=False)
    model = Asks("dump")
    agent = Agent("a", model=model, tools=[dump])
    assert agent.max_result_chars == 100_000
    result = asyncio.run(agent.arun("dump it"))
    (seen,) = model.seen
    assert seen.startswith("x" * 100_000)
    assert "x" * 100_001 not in seen
    assert seen.endswith(
        "[shipmates: result truncated: 150,000 of 250,000 characters cut, over the limit of 100,000 "
        "(max_result_chars, SHIPMATES_MAX_RESULT_CHARS)]"
    )
    assert result.events[0].result == seen  # the trace and plugins see what the model saw


def test_a_sibling_answer_is_cut_to_the_agents_limit() -> None:
    model = Asks("chatty")
    agent = Agent("captain", model=model, max_result_chars=100)
    agent.absorb(Chatty())
    asyncio.run(agent.arun("tell me"))
    (seen,) = model.seen
    assert seen.startswith("y" * 100 + "\n[shipmates: result truncated: 900 of 1,000 characters cut")


def test_a_result_within_the_limit_is_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPMATES_MAX_RESULT_CHARS", "1000")
    model = Asks("chatty")
    agent = Agent("captain", model=model)
    agent.absorb(Chatty())
    assert agent.max_result_chars == 1000
    asyncio.run(agent.arun("tell me"))
    assert model.seen == ["y" * 1_000]


def test_the_limit_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="max_result_chars must be a whole number >= 1, got 0"):
        Agent("a", max_result_chars=0)
    monkeypatch.setenv("SHIPMATES_MAX_RESULT_CHARS", "-5")
    with pytest.raises(SettingsError, match="SHIPMATES_MAX_RESULT_CHARS='-5' is not valid"):
        Agent("a")
