"""Function tools build their pydantic arguments model on first need, not when defined.

Defining an agent's tools (what every sibling does when it is loaded) records the function,
name and description; the JSON schema and the validator come on the first schema or call.
The schemas and the validation are the same as before (tests/test_tool.py pins them).
Also: pydantic's plugin scan is skipped only when no `pydantic` entry point is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from shipmates import Agent, Tool, tool
from shipmates._run._tool import ToolArgumentsError

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, home: Path, *, path: Sequence[Path] = ()) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it ends by printing one JSON line, returned parsed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPMATES_", "PYDANTIC_"))}
    env.update(SHIPMATES_HOME=str(home), SHIPMATES_PLUGINS="", SHIPMATES_AGENTS="")
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in path), str(REPO / "core")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _built(t: Tool) -> bool:
    return t._build is None


# -- what defining a tool does, and does not do -------------------------------------------------


def test_defining_tools_and_absorbing_siblings_does_not_import_pydantic(tmp_path: Path) -> None:
    result = _python(
        """
        import json, sys
        from shipmates import Agent, tool

        def double(n: int) -> int:
            '''Double n.

            Args:
                n: the number to double
            '''
            return 2 * n

        @tool(name="triple", timeout=5)
        def triple(n: int, note: str = "") -> int:
            '''Triple n.'''
            return 3 * n

        sibling = Agent("maths", description="Does maths.", tools=[tool(double), triple])
        captain = Agent("captain")
        captain.absorb(sibling)
        seen = [captain.get_tool("maths").description, [t.name for t in sibling.tools], triple.timeout]
        # A turn that calls none of the sibling's tools: the offline router finds no match.
        answer = captain.invoke("what is the weather")
        print(json.dumps({"pydantic": "pydantic" in sys.modules, "seen": seen, "answer": answer}))
        """,
        tmp_path,
    )
    assert result["pydantic"] is False
    assert result["seen"][0] == "Does maths. Its tools: double (Double n.), triple (Triple n.)."
    assert result["seen"][1:] == [["double", "triple"], 5]
    assert "nothing matched" in result["answer"]


def test_listing_and_a_sibling_whose_tool_is_unused_do_not_import_pydantic(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "quiet_sibling").mkdir(parents=True)
    (site / "quiet_sibling" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from shipmates import Agent, tool

            @tool
            def shout(text: str) -> str:
                '''Shout the text.'''
                return text.upper()

            def build_agent():
                return Agent("quiet", description="Shouts.", tools=[shout])
            """
        )
    )
    info = site / "quiet_sibling-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: quiet-sibling\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[shipmates.agents]\nquiet = quiet_sibling:build_agent\n")
    result = _python(
        f"""
        import json, os, sys
        os.environ.pop("SHIPMATES_AGENTS")
        from shipmates import discover, absorb_crew, Agent
        listing = discover(load=False)
        after_listing = "pydantic" in sys.modules
        found = discover(path=[{str(site)!r}])
        captain = Agent("captain")
        report = absorb_crew(captain, found)
        tool = found.siblings["quiet"].get_tool("shout")
        print(json.dumps({{
            "after_listing": after_listing,
            "after_loading": "pydantic" in sys.modules,
            "absorbed": sorted(t.name for t in captain.tools),
            "description": tool.description,
        }}))
        """,
        tmp_path / "home",
        path=[site],
    )
    assert result == {
        "after_listing": False,
        "after_loading": False,
        "absorbed": ["quiet"],
        "description": "Shout the text.",
    }


def test_name_description_and_timeout_are_there_before_the_model_is_built() -> None:
    @tool(timeout=2)
    async def lookup(city: str, limit: int = 3) -> str:
        """Find a city.

        Args:
            city: the name
        """
        return city

    assert isinstance(lookup, Tool)
    assert (lookup.name, lookup.description) == ("lookup", "Find a city.")
    assert lookup.timeout == 2 and lookup.is_async
    assert not lookup.is_delegation and lookup.sibling is None and lookup.provenance is None
    assert repr(lookup) == "<Tool 'lookup' (tool)>"
    assert not _built(lookup)
    assert lookup.parameters["properties"]["city"] == {"type": "string", "description": "the name"}
    assert _built(lookup)


def test_schema_parameters_and_bind_agree_whichever_comes_first() -> None:
    def make() -> Tool:
        @tool
        def scale(value: float, factor: int = 2) -> float:
            """Scale a value."""
            return value * factor

        return scale

    expected = {
        "type": "object",
        "properties": {"value": {"type": "number"}, "factor": {"type": "integer", "default": 2}},
        "required": ["value"],
    }
    by_schema, by_bind, by_parse = make(), make(), make()
    assert by_schema.schema == {
        "type": "function",
        "function": {"name": "scale", "description": "Scale a value.", "parameters": expected},
    }
    assert by_schema.schema["function"]["parameters"] is by_schema.parameters  # one dict, built once
    assert by_bind.bind({"value": "1.5"}) == ((), {"value": 1.5, "factor": 2})
    assert by_bind.parameters == expected
    with pytest.raises(ToolArgumentsError, match=r'not valid JSON.*"required": \["value"\]'):
        by_parse.parse("{oops")
    assert by_parse.parameters == expected
    with pytest.raises(ToolArgumentsError, match="value: Field required"):
        by_schema.bind({})


def test_first_use_from_many_threads_builds_once() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    barrier = threading.Barrier(8)
    seen: list[Any] = []

    def use() -> None:
        barrier.wait()
        seen.append((id(add.parameters), add.bind({"a": 1, "b": "2"})))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and len({ident for ident, _ in seen}) == 1
    assert all(bound == ((), {"a": 1, "b": 2}) for _, bound in seen)


def test_an_agent_runs_its_lazily_built_tool() -> None:
    @tool
    def double(n: int) -> int:
        """Double n."""
        return 2 * n

    agent = Agent("a", tools=[double])
    assert not _built(double)
    assert agent.invoke("double 21") == "42"
    assert _built(double)


# -- errors in tool definitions ------------------------------------------------------------------


class Opaque:
    """A class pydantic can validate (arbitrary types are allowed) but not describe in JSON schema."""


def test_a_type_without_a_json_schema_fails_clearly_naming_the_tool() -> None:
    def handle(thing: Opaque) -> str:
        """Handle a thing."""
        return "ok"

    t = tool(handle, name="handle_thing")  # defining it stays cheap and does not fail
    for _ in range(2):  # and it fails the same way every time it is needed, never half-built
        with pytest.raises(TypeError) as info:
            t.schema  # noqa: B018
        message = str(info.value)
        assert "tool 'handle_thing'" in message and "handle" in message
        assert "Opaque" in message
    with pytest.raises(TypeError, match="tool 'handle_thing'"):
        Agent("a", tools=[t]).tool_schemas()


def test_a_misspelt_type_fails_when_the_tool_is_defined() -> None:
    def broken(n: Integr) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 0

    with pytest.raises(TypeError, match="cannot resolve the type hint 'Integr' of parameter 'n'"):
        tool(broken)


def test_an_invalid_name_fails_when_the_tool_is_defined() -> None:
    from shipmates import InvalidNameError

    with pytest.raises(InvalidNameError, match="invalid tool name"):
        tool(lambda: None, name="two words")


def test_string_annotations_of_local_classes_still_resolve() -> None:
    from pydantic import BaseModel

    class Point(BaseModel):
        x: int

    def where(p: Point) -> int:  # a string here (from __future__ import annotations)
        """Where."""
        return p.x

    t = tool(where)
    _, kwargs = t.bind({"p": {"x": "3"}})
    assert isinstance(kwargs["p"], Point) and kwargs["p"].x == 3


# -- pydantic's plugin scan ----------------------------------------------------------------------

PLUGIN_PROBE = """
    import json, sys
    from shipmates import tool

    def double(n: int) -> int:
        '''Double n.'''
        return 2 * n

    t = tool(double)
    params = t.parameters
    bound = t.bind({"n": "4"})
    loader = sys.modules.get("pydantic.plugin._loader")
    plugin = sys.modules.get("pydplug")
    print(json.dumps({
        "params": params,
        "bound": bound[1],
        "scanned": "importlib.metadata" in sys.modules,
        "plugins": sorted(type(p).__name__ for p in loader.get_plugins()),
        "plugin_calls": list(plugin.CALLS) if plugin else None,
    }))
"""


def _write_pydantic_plugin(site: Path) -> None:
    (site / "pydplug.py").write_text(
        textwrap.dedent(
            """
            CALLS = []

            class Recorder:
                def new_schema_validator(self, schema, schema_type, schema_type_path, schema_kind,
                                         config, plugin_settings):
                    CALLS.append(schema_type_path.name)
                    return None, None, None

            plugin = Recorder()
            """
        )
    )
    info = site / "pydplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pydplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pydantic]\nrecorder = pydplug:plugin\n")


def test_no_pydantic_plugin_installed_skips_the_scan_and_validates_the_same(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    old = 1_000_000_000  # path entries unchanged for a while, so the answer is kept on disk
    os.utime(site, (old, old))
    first = _python(PLUGIN_PROBE, tmp_path / "home", path=[site])
    second = _python(PLUGIN_PROBE, tmp_path / "home", path=[site])
    expected_params = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    for result in (first, second):
        assert result["params"] == expected_params
        assert result["bound"] == {"n": 4}
        assert result["plugins"] == [] and result["plugin_calls"] is None
    assert second["scanned"] is False  # the kept answer: importlib.metadata not even imported
    # The answer is kept in shipmates' own entry-point cache, which reads the pydantic group too.
    cached = list((tmp_path / "home" / "cache").glob("entry-points-*.marshal"))
    assert len(cached) == 1


def test_an_installed_pydantic_plugin_is_loaded_as_before(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    old = 1_000_000_000
    os.utime(site, (old, old))
    without = _python(PLUGIN_PROBE, tmp_path / "home", path=[site])
    assert without["plugins"] == []
    _write_pydantic_plugin(site)  # installed since the last run: the path entry's mtime changes
    with_plugin = _python(PLUGIN_PROBE, tmp_path / "home", path=[site])
    assert with_plugin["plugins"] == ["Recorder"]
    assert with_plugin["plugin_calls"] == ["double_arguments"]
    assert with_plugin["params"] == without["params"] and with_plugin["bound"] == {"n": 4}
    os.utime(site, (old + 60, old + 60))
    again = _python(PLUGIN_PROBE, tmp_path / "home", path=[site])  # and when the answer is kept
    assert again["plugins"] == ["Recorder"] and again["plugin_calls"] == ["double_arguments"]


def test_pydantic_already_scanned_is_left_alone(tmp_path: Path) -> None:
    result = _python(
        """
        import json, sys
        from pydantic import BaseModel

        class Early(BaseModel):  # pydantic scans for plugins here, before shipmates
            x: int

        from pydantic.plugin import _loader
        real = _loader
        from shipmates import tool

        def double(n: int) -> int:
            '''Double n.'''
            return 2 * n

        params = tool(double).parameters
        print(json.dumps({"same": sys.modules["pydantic.plugin._loader"] is real, "params": params}))
        """,
        tmp_path,
    )
    assert result["same"] is True
    assert result["params"]["required"] == ["n"]


def test_the_stand_in_hands_over_to_pydantics_loader_when_asked_for_more(tmp_path: Path) -> None:
    result = _python(
        """
        import json, sys
        from shipmates import tool

        def double(n: int) -> int:
            '''Double n.'''
            return 2 * n

        tool(double).bind({"n": "4"})  # a str for an int: pydantic validates it
        standin = sys.modules["pydantic.plugin._loader"]
        group = standin.PYDANTIC_ENTRY_POINT_GROUP
        entry_points = standin.entry_points  # not on the stand-in: the real module answers
        real = sys.modules["pydantic.plugin._loader"]
        print(json.dumps({
            "group": group,
            "handed_over": real is not standin and real.entry_points is entry_points,
        }))
        """,
        tmp_path,
    )
    assert result == {"group": "pydantic", "handed_over": True}
