"""One sibling adapter: the contract's optional attributes read once, used by tool building and listings."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from shipmates import Agent, Provenance, SettingsError
from shipmates._crew._sibling import DEFAULT_TOOL_TIMEOUT, ToolInfo, default_tool_timeout, sibling_spec
from shipmates._run._sibling_tool import describe_sibling, sibling_tool


class Args(BaseModel):
    """Ask it."""

    city: str


class Tooly:
    name = "tooly"
    description = "Has tools"


def helper() -> None:
    """A function as a tool."""


class Full:
    name = "full"
    description = "Does it all"
    timeout = 3
    input_model = Args
    tools = ("plain", Tooly(), helper, object())
    skills = ("maps", Tooly())
    provenance = Provenance("remote", "shipmates-full", "1.0", location="nats://x")
    available = False

    def invoke(self, query: Any) -> str:
        return "sync"

    async def ainvoke(self, query: Any) -> str:
        return "async"


class Bare:
    name = "bare"
    description = ""

    def invoke(self, query: str) -> str:
        return query


def test_every_optional_attribute_is_read_once() -> None:
    spec = sibling_spec(Full())
    assert (spec.name, spec.description, spec.is_async, spec.timeout) == ("full", "Does it all", True, 3.0)
    assert spec.call.__name__ == "ainvoke"
    assert spec.input_model is Args
    assert spec.tools == (ToolInfo("plain"), ToolInfo("tooly", "Has tools"), ToolInfo("helper"))
    assert spec.tool_names == ["plain", "tooly", "helper"]
    assert spec.skills == ("maps", "tooly")
    assert spec.provenance is not None and spec.provenance.distribution == "shipmates-full"
    assert not spec.available
    schema = spec.input_schema()
    assert schema is not None and "title" not in schema and "city" in schema["properties"]


def test_defaults_for_a_bare_sibling() -> None:
    spec = sibling_spec(Bare())
    assert (spec.is_async, spec.timeout, spec.input_model) == (False, None, None)
    assert spec.tools == () and spec.skills == ()
    assert spec.provenance is None and spec.available and spec.input_schema() is None


@pytest.mark.parametrize("timeout", [True, "5", None])
def test_a_timeout_that_is_not_a_number_is_ignored(timeout: Any) -> None:
    bare = Bare()
    bare.timeout = timeout  # type: ignore[attr-defined]
    assert sibling_spec(bare).timeout is None


def test_the_tool_uses_the_spec() -> None:
    tool = sibling_tool(Full())
    assert tool.is_async and tool.timeout == 3.0 and tool.sibling is not None
    assert describe_sibling(sibling_spec(Full())) == (
        "Does it all. Its tools: plain, tooly (Has tools), helper. Its skills: maps, tooly."
    )
    assert sibling_tool(Full(), timeout=9).timeout == 9
    assert describe_sibling(sibling_spec(Bare())) == "The sibling agent 'bare'."


def test_absorb_takes_provenance_from_the_sibling() -> None:
    captain = Agent("captain")
    tool = captain.absorb(Full())
    assert tool.provenance is not None and tool.provenance.distribution == "shipmates-full"


def test_one_default_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_TOOL_TIMEOUT == 120.0
    monkeypatch.delenv("SHIPMATES_TOOL_TIMEOUT", raising=False)
    assert default_tool_timeout() == 120.0 and Agent("a").tool_timeout == 120.0
    monkeypatch.setenv("SHIPMATES_TOOL_TIMEOUT", "7")
    assert default_tool_timeout() == 7.0
    monkeypatch.setenv("SHIPMATES_TOOL_TIMEOUT", "soon")  # issue 9: an error, no longer ignored
    with pytest.raises(SettingsError, match="SHIPMATES_TOOL_TIMEOUT='soon'"):
        default_tool_timeout()
