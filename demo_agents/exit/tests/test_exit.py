"""Tests of the exit demo sibling: it ends the session through EndSession, never a hard exit."""

from __future__ import annotations

import asyncio

import pytest
import shipmates
from importlib_metadata import entry_points
from shipmates_exit import FAREWELL, build_agent, exit_app


def test_exit_app_raises_end_session_not_system_exit() -> None:
    with pytest.raises(shipmates.EndSession) as info:
        exit_app()
    assert info.value.message == FAREWELL == "Goodbye."
    assert not isinstance(info.value, (SystemExit, shipmates.ShipmatesError))


def test_provider_builds_a_sibling_named_exit() -> None:
    agent = build_agent()
    assert isinstance(agent, shipmates.Agent)
    assert shipmates.is_sibling(agent)
    assert agent.name == "exit"
    assert [t.name for t in agent.tools] == ["exit_app"]
    for word in ("bye", "goodbye", "quit", "exit"):
        assert word in agent.description


def test_tool_schema_takes_no_arguments() -> None:
    [tool] = build_agent().tools
    function = tool.schema["function"]
    assert function["name"] == "exit_app"
    assert function["parameters"].get("properties") == {}
    assert not function["parameters"].get("required")
    assert "goodbye" in function["description"]


@pytest.mark.parametrize("text", ["bye", "goodbye", "quit", "exit", "Bye!"])
def test_offline_turn_ends_the_session(text: str) -> None:
    with pytest.raises(shipmates.EndSession, match="Goodbye"):
        build_agent().invoke(text)


def test_end_session_passes_through_a_captain() -> None:
    captain = shipmates.Agent(name="captain", description="the captain")
    captain.absorb(build_agent())
    with pytest.raises(shipmates.EndSession, match="Goodbye"):
        asyncio.run(captain.ainvoke("bye"))


def test_entry_point_points_at_the_provider() -> None:
    eps = entry_points(group="shipmates.agents", name="exit")
    if not eps:
        pytest.skip("shipmates-exit is not installed (pip install -e demo_agents/exit)")
    [ep] = list(eps)
    assert ep.value == "shipmates_exit:build_agent"
    assert ep.dist is not None and ep.dist.name == "shipmates-exit"
