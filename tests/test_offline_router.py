"""The offline router: deterministic tool choice and argument filling, no network, no litellm."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from shipmates import Agent, EndSession, get_model, tool
from shipmates._models._offline import OfflineRouter, fill_arguments


@tool
def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@tool
def factor_number(n: int) -> list[int]:
    """Prime factors of a positive integer."""
    out, d = [], 2
    while d * d <= n:
        while n % d == 0:
            out.append(d)
            n //= d
        d += 1
    return [*out, n] if n > 1 else out


class Exit:
    name = "exit"
    description = "Ends the session. Say bye, goodbye or quit."

    def invoke(self, query: str) -> str:
        raise EndSession("Goodbye.")


def route(text: str, *tools: Any) -> tuple[str, dict[str, Any]] | str:
    agent = Agent("probe", tools=list(tools))
    response = OfflineRouter().route(text, agent.tool_schemas())
    if response.tool_calls:
        call = response.tool_calls[0]
        return call.name, json.loads(call.arguments)
    return response.content or ""


def test_registered_as_the_default_model() -> None:
    model = get_model()
    assert model.model_id == "offline" and isinstance(model, OfflineRouter)
    assert get_model("router") is model


def test_picks_tools_by_name_prefix_and_fills_integers() -> None:
    fib_agent = Agent("fib", "Fibonacci numbers", tools=[fibonacci])
    assert route("fib(8)", fibonacci, factor_number) == ("fibonacci", {"n": 8})
    assert route("factor 60", fibonacci, factor_number) == ("factor_number", {"n": 60})
    assert route("fibonacci of -3 please", fibonacci) == ("fibonacci", {"n": -3})
    # An absorbed sibling named exactly like the word wins over a prefix match.
    assert route("fib(8)", fibonacci, fib_agent) == ("fib", {"query": "fib(8)"})


def test_description_words_route_to_a_sibling() -> None:
    assert route("bye", fibonacci, Exit()) == ("exit", {"query": "bye"})
    assert route("goodbye!", Exit()) == ("exit", {"query": "goodbye!"})


def test_no_match_says_so_and_lists_the_crew() -> None:
    reply = route("what's the weather in Oslo", fibonacci, factor_number)
    assert isinstance(reply, str)
    assert "offline router, not a language model" in reply
    assert "nothing matched" in reply
    assert "fibonacci: Return the n-th Fibonacci number." in reply
    assert "factor_number: Prime factors of a positive integer." in reply
    assert "SHIPMATES_MODEL" in reply
    assert "has none" in str(route("anything"))


def test_missing_number_is_explained() -> None:
    reply = route("fibonacci please", fibonacci)
    assert isinstance(reply, str) and "needs n (integer)" in reply


def test_fill_arguments_by_type() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "integer"},
            "x": {"type": "number"},
            "text": {"type": "string"},
            "unit": {"enum": ["km", "mi"]},
            "flag": {"type": "boolean", "default": False},
        },
        "required": ["a", "b", "text"],
    }
    args, missing = fill_arguments("add 2 and 40 then 1.5 in mi", schema)
    assert args == {"a": 2, "b": 40, "x": 1.5, "text": "add 2 and 40 then 1.5 in mi", "unit": "mi"}
    assert missing == []
    assert fill_arguments("nothing", schema)[1] == ["a (integer)", "b (integer)"]


def test_answers_with_the_tool_result_end_to_end() -> None:
    fib_agent = Agent("fib", "Fibonacci numbers", tools=[fibonacci])
    factor_agent = Agent("factor", "Prime factorisation", tools=[factor_number])
    captain = Agent("captain", tools=[fib_agent, factor_agent, Exit()])
    assert captain.invoke("fib(8)") == "21"
    assert captain.invoke("factor 60") == "[2, 2, 3, 5]"
    with pytest.raises(EndSession):
        captain.invoke("bye")
    result = asyncio.run(captain.arun("fib(10)"))
    assert result.output == "55" and result.turns == 2


def test_is_deterministic() -> None:
    agent = Agent("probe", tools=[fibonacci, factor_number])
    messages = [{"role": "user", "content": "fib 8"}]
    router = OfflineRouter()
    first = asyncio.run(router.complete(messages, agent.tool_schemas()))
    second = asyncio.run(router.complete(messages, agent.tool_schemas()))
    assert first == second and first.tool_calls[0].id == "offline-1"
