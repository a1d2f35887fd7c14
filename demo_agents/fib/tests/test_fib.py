"""Tests of the fib demo sibling: the tool, the provider and a turn on the offline router."""

from __future__ import annotations

import asyncio

import pytest
import shipmates
from importlib_metadata import entry_points
from shipmates_fib import MAX_N, build_agent, fibonacci


@pytest.mark.parametrize(("n", "expected"), [(0, 0), (1, 1), (2, 1), (8, 21), (10, 55), (50, 12586269025)])
def test_fibonacci_values(n: int, expected: int) -> None:
    assert fibonacci(n) == expected


def test_fibonacci_big_n() -> None:
    big = fibonacci(1000)
    assert big == fibonacci(999) + fibonacci(998)
    assert len(str(big)) == 209
    assert len(str(fibonacci(MAX_N))) == 4180


@pytest.mark.parametrize("n", [-1, MAX_N + 1])
def test_fibonacci_rejects_out_of_range(n: int) -> None:
    with pytest.raises(ValueError, match="fibonacci needs n"):
        fibonacci(n)


def test_fibonacci_rejects_non_integers() -> None:
    with pytest.raises(TypeError):
        fibonacci(2.5)  # type: ignore[arg-type]


def test_provider_builds_a_sibling_named_fib() -> None:
    agent = build_agent()
    assert isinstance(agent, shipmates.Agent)
    assert shipmates.is_sibling(agent)
    assert agent.name == "fib"
    assert [t.name for t in agent.tools] == ["fibonacci"]


def test_tool_schema_is_what_a_model_needs() -> None:
    [tool] = build_agent().tools
    function = tool.schema["function"]
    assert function["name"] == "fibonacci"
    assert "Fibonacci" in function["description"]
    parameters = function["parameters"]
    assert parameters["required"] == ["n"]
    assert parameters["properties"]["n"]["type"] == "integer"
    assert "index" in parameters["properties"]["n"]["description"]


def test_offline_turn_uses_the_fibonacci_tool() -> None:
    agent = build_agent()
    result = asyncio.run(agent.arun("fib(8)"))
    assert result.status == "ok"
    assert "21" in result.output
    [call] = result.tool_calls
    assert call.tool == "fibonacci"
    assert call.arguments == {"n": 8}
    assert call.status == "ok"


def test_offline_invoke_answers() -> None:
    assert "55" in build_agent().invoke("fibonacci 10")


def test_negative_n_comes_back_as_a_tool_error_not_an_exception() -> None:
    result = asyncio.run(build_agent().arun("fib(-3)"))
    [call] = result.tool_calls
    assert call.status == "error"
    assert "n >= 0" in (call.error or "")


def test_entry_point_points_at_the_provider() -> None:
    eps = entry_points(group="shipmates.agents", name="fib")
    if not eps:
        pytest.skip("shipmates-fib is not installed (pip install -e demo_agents/fib)")
    [ep] = list(eps)
    assert ep.value == "shipmates_fib:build_agent"
    assert ep.dist is not None and ep.dist.name == "shipmates-fib"
