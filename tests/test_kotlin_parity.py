"""The Kotlin original's behaviours, driven through real entry-point discovery (in process)."""

from __future__ import annotations

from typing import Any

import pytest
from shipmates import (
    Agent,
    ModelResponse,
    NameConflictError,
    SelfAbsorptionError,
    ToolCall,
    absorb_crew,
    discover,
)

TYPED = """
from pydantic import BaseModel


class Order(BaseModel):
    item: str
    quantity: int = 1


class Shop:
    name = "shop"
    description = "Orders items from the shop."
    input_model = Order

    def __init__(self):
        self.orders = []

    def invoke(self, order):
        self.orders.append(order)
        return f"ordered {order.quantity} x {order.item}"


def build_agent():
    return Shop()
"""


def test_discover_on_an_empty_environment_finds_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("SHIPMATES_AGENTS")
    empty = tmp_path / "empty"
    empty.mkdir()
    discovery = discover(path=[str(empty)])
    assert len(discovery) == 0 and discovery.agents == {} and discovery.failures == []


def test_discover_finds_a_registered_fixture_sibling(fake_site):
    fake_site.sibling("echo")
    discovery = fake_site.discover()
    assert list(discovery.agents) == ["echo"]
    assert discovery.agents["echo"].provenance.distribution == "shipmates-echo"


def test_absorb_adds_a_tool_named_after_the_sibling(fake_site):
    fake_site.sibling("echo")
    captain = Agent("captain")
    report = absorb_crew(captain, fake_site.discover())
    assert report.absorbed == ["echo"] and report.ok
    tool = captain.get_tool("echo")
    assert tool is not None and tool.is_delegation
    assert tool.provenance is not None and tool.provenance.describe() == "shipmates-echo 0.1.0"


def test_absorbed_tool_delegates_and_returns_the_siblings_output(fake_site):
    fake_site.sibling("echo")
    captain = Agent("captain")  # the offline router
    absorb_crew(captain, fake_site.discover())
    result = captain.invoke("echo the ship's bell")
    assert result == "echo got: echo the ship's bell"


def test_a_second_sibling_with_the_same_name_fails_clearly(fake_site):
    fake_site.sibling("echo", dist="echo-one", module="echo_one", version="1.0")
    fake_site.sibling("echo", dist="echo-two", module="echo_two", version="2.0")
    discovery = fake_site.discover()
    assert discovery.agents == {}
    assert all("echo-one 1.0" in r.one_line() and "echo-two 2.0" in r.one_line() for r in discovery.conflicts)

    only_one = fake_site.discover(only=["echo-one"])
    captain = Agent("captain")
    absorb_crew(captain, only_one)
    second = fake_site.discover(only=["echo-two"]).agents["echo"]
    with pytest.raises(NameConflictError, match=r"echo-one 1\.0") as info:
        captain.absorb(second.sibling, provenance=second.provenance)
    assert "echo-two 2.0" in str(info.value)


def test_self_absorption_fails(fake_site):
    fake_site.sibling("captain")
    captain = Agent("captain")
    with pytest.raises(SelfAbsorptionError, match="captain 'captain'"):
        captain.absorb(captain)
    discovered = fake_site.discover().agents["captain"]
    with pytest.raises(SelfAbsorptionError, match=r"shipmates-captain 0\.1\.0"):
        captain.absorb(discovered.sibling, provenance=discovered.provenance)
    report = absorb_crew(captain, fake_site.discover())
    assert report.absorbed == [] and report.skipped == ["captain"]


def test_a_typed_sibling_gets_its_schema(fake_site):
    fake_site.sibling("shop", code=TYPED)
    captain = Agent("captain")
    absorb_crew(captain, fake_site.discover())
    tool = captain.get_tool("shop")
    assert tool is not None
    params = tool.parameters
    assert set(params["properties"]) == {"item", "quantity"}
    assert params["required"] == ["item"]
    assert params["properties"]["quantity"]["type"] == "integer"

    class Ordering:
        model_id = "ordering"

        def __init__(self) -> None:
            self.calls = 0

        async def complete(
            self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
        ) -> ModelResponse:
            self.calls += 1
            if self.calls == 1:
                return ModelResponse(tool_calls=[ToolCall("c1", "shop", '{"item": "rope", "quantity": "3"}')])
            return ModelResponse(content=messages[-1]["content"])

    captain.model = Ordering()
    assert captain.invoke("three ropes please") == "ordered 3 x rope"
    (order,) = captain.siblings["shop"].orders
    assert type(order).__name__ == "Order" and order.quantity == 3


def test_the_absorbed_tool_is_available_on_every_turn(fake_site):
    fake_site.sibling("echo")

    class Counting:
        model_id = "counting"

        def __init__(self) -> None:
            self.tools_per_turn: list[list[str]] = []

        async def complete(
            self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
        ) -> ModelResponse:
            self.tools_per_turn.append([t["function"]["name"] for t in tools])
            if len(self.tools_per_turn) % 2:
                return ModelResponse(tool_calls=[ToolCall("c", "echo", '{"query": "x"}')])
            return ModelResponse(content="done")

    model = Counting()
    captain = Agent("captain", model=model)
    absorb_crew(captain, fake_site.discover())
    for _ in range(3):
        assert captain.invoke("go") == "done"
    assert model.tools_per_turn == [["echo"]] * 6
