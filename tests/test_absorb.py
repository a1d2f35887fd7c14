"""Absorbing siblings: the Kotlin original's behaviours, typed siblings and absorb_crew."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel
from shipmates import (
    AbsorbError,
    Agent,
    AgentRecord,
    Discovery,
    InvalidNameError,
    ModelResponse,
    NameConflictError,
    NotASiblingError,
    Provenance,
    SelfAbsorptionError,
    ShipmatesError,
    ToolCall,
    absorb_crew,
    tool,
)


class Echo:
    """A minimal sibling that is not an Agent."""

    def __init__(self, name: str = "echo", description: str = "Repeats what you say.") -> None:
        self.name = name
        self.description = description
        self.queries: list[str] = []

    def invoke(self, query: str) -> str:
        self.queries.append(query)
        return f"echo: {query}"


FIB = Provenance("entry-point", "shipmates-fib", "0.1.0", "shipmates_fib:make")
FIB2 = Provenance("entry-point", "shipmates-fib-fork", "2.0.0", "fork:make")


def test_absorb_adds_a_tool_named_after_the_sibling() -> None:
    captain = Agent("captain")
    absorbed = captain.absorb(Echo())
    assert absorbed.name == "echo"
    assert captain.get_tool("echo") is absorbed
    assert absorbed.is_delegation and captain.siblings == {"echo": absorbed.sibling}
    assert absorbed.parameters == {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "What to ask echo, in plain language.",
            }
        },
        "required": ["query"],
    }
    assert absorbed.description == "Repeats what you say."
    assert absorbed.provenance == Provenance()  # from code


def test_absorbed_tool_delegates_and_returns_the_output() -> None:
    echo = Echo()
    captain = Agent("captain")
    captain.absorb(echo)
    assert captain.invoke("echo hello") == "echo: echo hello"
    assert echo.queries == ["echo hello"]


def test_async_sibling_is_awaited() -> None:
    class Async:
        name = "later"
        description = "answers later"

        async def ainvoke(self, query: str) -> str:
            await asyncio.sleep(0)
            return query.upper()

    captain = Agent("captain")
    assert captain.absorb(Async()).is_async
    assert captain.invoke("later please") == "LATER PLEASE"


def test_same_name_twice_fails_naming_both_distributions() -> None:
    captain = Agent("captain")
    captain.absorb(Echo("fib"), provenance=FIB)
    with pytest.raises(NameConflictError) as info:
        captain.absorb(Echo("fib"), provenance=FIB2)
    message = str(info.value)
    assert "shipmates-fib 0.1.0" in message and "shipmates-fib-fork 2.0.0" in message
    assert "captain 'captain'" in message and "SHIPMATES_EXCLUDE_AGENTS" in message
    assert isinstance(info.value, AbsorbError) and isinstance(info.value, ShipmatesError)


def test_name_taken_by_a_tool() -> None:
    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    captain = Agent("captain", tools=[echo])
    with pytest.raises(NameConflictError, match="already has a tool 'echo'"):
        captain.absorb(Echo())


def test_self_absorption_fails_by_object_and_by_name() -> None:
    captain = Agent("captain")
    with pytest.raises(SelfAbsorptionError, match="captain 'captain' cannot absorb itself"):
        captain.absorb(captain)
    with pytest.raises(SelfAbsorptionError, match=r"captain 'captain'.*captain's own name"):
        captain.absorb(Echo("captain"))


def test_not_a_sibling_and_invalid_name() -> None:
    captain = Agent("captain")
    with pytest.raises(NotASiblingError, match=r"lacks .*invoke"):
        captain.absorb(object())
    with pytest.raises(NotASiblingError, match="got the class"):
        captain.absorb(Echo)
    with pytest.raises(InvalidNameError, match="invalid sibling name 'not ok'"):
        captain.absorb(Echo("not ok"))


def test_typed_sibling_exposes_its_schema_and_gets_a_validated_instance() -> None:
    class Query(BaseModel):
        city: str
        days: int = 1

    class Weather:
        name = "weather"
        description = "Forecasts."
        input_model = Query

        def __init__(self) -> None:
            self.got: list[Any] = []

        def invoke(self, query: Query) -> str:
            self.got.append(query)
            return f"{query.city}: sunny for {query.days} days"

    weather = Weather()
    captain = Agent("captain")
    absorbed = captain.absorb(weather)
    assert absorbed.parameters["properties"]["city"] == {"title": "City", "type": "string"}
    assert absorbed.parameters["required"] == ["city"]
    assert "title" not in absorbed.parameters
    # The offline router fills string fields from the text; validation turns "3" into 3.
    args, _ = absorbed.bind({"city": "Oslo", "days": "3"})
    assert isinstance(args[0], Query) and args[0].days == 3
    assert captain.invoke("weather") == "weather: sunny for 1 days"
    assert isinstance(weather.got[0], Query)


def test_description_lists_tools_and_skills() -> None:
    @tool
    def fibonacci(n: int) -> int:
        """Return the n-th Fibonacci number.

        More details here.
        """
        return n

    fib = Agent("fib", "Fibonacci numbers", tools=[fibonacci])
    captain = Agent("captain")
    assert captain.absorb(fib).description == (
        "Fibonacci numbers. Its tools: fibonacci (Return the n-th Fibonacci number.)."
    )
    skilled = Echo("skilled", "")
    skilled.skills = ["haiku", "limericks"]  # type: ignore[attr-defined]
    assert captain.absorb(skilled).description == "The sibling agent 'skilled'. Its skills: haiku, limericks."


def test_absorbed_tool_is_available_on_every_turn() -> None:
    class Counting:
        model_id = "counting"

        def __init__(self) -> None:
            self.tools_per_turn: list[list[str]] = []

        async def complete(self, messages: list[dict[str, Any]], tools: list[Any]) -> ModelResponse:
            self.tools_per_turn.append([t["function"]["name"] for t in tools])
            if len(self.tools_per_turn) < 3:
                call = ToolCall(f"c{len(self.tools_per_turn)}", "echo", '{"query": "x"}')
                return ModelResponse(tool_calls=[call])
            return ModelResponse(content="done")

    model = Counting()
    captain = Agent("captain", model=model)
    captain.absorb(Echo())
    assert captain.invoke("one") == "done"
    assert captain.invoke("two") == "done"  # a second run: still there, nothing re-declared
    assert model.tools_per_turn == [["echo"]] * 4


def test_remove_and_agent_in_tools_list() -> None:
    echo = Echo()
    captain = Agent("captain", tools=[echo])
    assert captain.siblings == {"echo": echo}
    assert captain.remove("echo") is not None and captain.get_tool("echo") is None
    assert captain.remove("echo") is None


def _record(name: str, sibling: Any, prov: Provenance = FIB, status: Any = "ok") -> AgentRecord:
    return AgentRecord(name=name, provenance=prov, status=status, sibling=sibling)


def test_absorb_crew_skips_the_captain_and_reports_rejections() -> None:
    captain = Agent("captain", tools=[tool(lambda: "x", name="taken", description="d")])
    discovery = Discovery(
        [
            _record("captain", captain),
            _record("echo", Echo()),
            _record("taken", Echo("taken"), FIB2),
            _record("broken", None, status="failed"),
            _record("bogus", object()),
        ]
    )
    report = absorb_crew(captain, discovery)
    assert report.absorbed == ["echo"]
    assert report.skipped == ["captain", "broken"]
    assert [(r.name, type(e)) for r, e in report.rejected] == [
        ("taken", NameConflictError),
        ("bogus", NotASiblingError),
    ]
    assert not report.ok
    assert report.lines()[0].startswith("taken (shipmates-fib-fork 2.0.0): not absorbed:")
    assert captain.get_tool("echo") is not None
    assert captain.get_tool("echo").provenance == FIB  # type: ignore[union-attr]
    assert absorb_crew(Agent("other"), [_record("echo", Echo())]).absorbed == ["echo"]


def test_an_agent_is_a_sibling_and_works_from_a_plain_thread() -> None:
    import threading

    from shipmates import is_sibling

    fib = Agent("fib", "Fibonacci numbers", tools=[tool(lambda n: n + 1, name="succ", description="n+1")])
    assert is_sibling(fib)
    out: list[str] = []
    thread = threading.Thread(target=lambda: out.append(fib.invoke("succ 41")))
    thread.start()
    thread.join()
    assert out == ["42"]


def test_absorb_crew_survives_a_sibling_whose_attributes_raise() -> None:
    class Haunted:
        name = "haunted"

        @property
        def description(self) -> str:
            raise RuntimeError("boo")

        def invoke(self, query: str) -> str:
            return query

    captain = Agent("captain")
    report = absorb_crew(captain, [_record("haunted", Haunted()), _record("echo", Echo())])
    assert report.absorbed == ["echo"]
    ((record, error),) = report.rejected
    assert record.name == "haunted" and isinstance(error, AbsorbError)
    assert "RuntimeError: boo" in str(error)


def test_agent_tools_with_a_sibling_whose_name_raises_says_which_attribute() -> None:
    from shipmates import Agent, NotASiblingError

    class Broken:
        description = "broken"

        @property
        def name(self) -> str:
            raise RuntimeError("name exploded")

        def invoke(self, query: str) -> str:
            return query

    expected = "reading its 'name' attribute raised RuntimeError: name exploded"
    with pytest.raises(NotASiblingError, match=expected):
        Agent("captain", tools=[Broken()])
