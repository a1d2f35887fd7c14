"""``shipmates.plugin``: the public API for plugin authors, and first-party plugins using only it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
import shipmates
import shipmates.plugin as api
from shipmates import Agent, ModelResponse, ToolCall, hookimpl

REPO = Path(__file__).resolve().parents[1]
PRIVATE = re.compile(r"\bshipmates\._|\bfrom\s+shipmates\s+import\s+[^\n]*\b_[a-z]")


def test_nothing_under_plugins_imports_private_shipmates_modules() -> None:
    files = sorted((REPO / "plugins").rglob("*.py"))
    assert any(f.name == "_remote.py" for f in files)  # the scan sees the NATS plugin
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert not offenders, "plugins must use shipmates.plugin, not shipmates._*:\n" + "\n".join(offenders)


def test_the_private_import_pattern_catches_what_it_should() -> None:
    assert PRIVATE.search("from shipmates._run._context import delegation_stack")
    assert PRIVATE.search("import shipmates._paths")
    assert PRIVATE.search("from shipmates import _runtime")
    assert not PRIVATE.search("from shipmates.plugin import run_sync")
    assert not PRIVATE.search("from shipmates import Agent, hookimpl")


def test_every_public_name_resolves_and_importing_is_cheap() -> None:
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert api.hookimpl is shipmates.hookimpl and api.ToolCallEvent is shipmates.ToolCallEvent
    code = "import sys, shipmates.plugin; print([m for m in ('pluggy', 'pydantic') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_tool_call_events_are_built_with_keywords_only() -> None:
    with pytest.raises(TypeError):
        api.ToolCallEvent("a", "t", {}, "c1", 0)  # type: ignore[misc]
    event = api.ToolCallEvent(agent="a", tool="t", arguments={}, call_id="c1", depth=0)
    assert event.status == "running" and event.path == ()


def test_delegation_path_follows_a_run_and_can_be_continued() -> None:
    seen: list[tuple[str, ...]] = []

    def where() -> str:
        """Say where the call runs."""
        seen.append(api.delegation_path())
        return "here"

    class Calls:
        model_id = "calls"

        async def complete(self, messages, tools, settings=None):  # type: ignore[no-untyped-def]
            if messages[-1]["role"] == "tool":
                return ModelResponse(content="done")
            return ModelResponse(tool_calls=[ToolCall("c1", "where", "{}")])

    inner = Agent("inner", "where it runs", model=Calls(), tools=[where])
    assert api.delegation_path() == ()
    token = api.set_delegation_path(("remote-captain",))
    try:
        inner.invoke("go")
    finally:
        api.reset_delegation_path(token)
    assert api.delegation_path() == ()
    assert seen == [("remote-captain", "inner")]


def test_report_tool_call_reaches_every_observer_even_after_a_failing_one() -> None:
    seen: list[str] = []

    class Broken:
        @hookimpl
        def tool_call_finished(self, event: api.ToolCallEvent) -> None:
            raise RuntimeError("observer bug")

    class Watcher:
        @hookimpl
        def tool_call_finished(self, event: api.ToolCallEvent) -> None:
            seen.append(event.tool)

    pm = shipmates.get_plugin_manager()
    pm.register(Watcher(), name="watcher")
    pm.register(Broken(), name="broken")  # called first (last registered)
    event = api.ToolCallEvent(agent="far", tool="double", arguments={"n": 2}, call_id="r1", depth=1)
    failures = api.report_tool_call(event)
    assert seen == ["double"]
    assert [str(f) for f in failures] == [
        "plugin 'broken' (registered from code) failed in hook tool_call_finished: RuntimeError: "
        "observer bug; fix the code that registered it, or unregister it"
    ]


def test_runtime_is_the_one_background_loop() -> None:
    async def which() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert api.run_sync(which()) is api.background_loop()
    assert api.submit(which()).result(5) is api.background_loop()
    assert api.DEFAULT_TOOL_TIMEOUT == 120.0


def test_local_agent_names_and_directories(fake_site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from support import sibling_spec

    fake_site.add(sibling_spec("lister"))
    monkeypatch.setattr("sys.path", [str(fake_site.path), *sys.path])
    api.reset_plugins()
    assert "lister" in api.local_agent_names()
    assert api.state_dir().is_dir() and api.cache_dir().is_dir()
    assert api.selector_matches("remote:*", "x", None, "remote")
    monkeypatch.setenv("SHIPMATES_X", "a, b,")
    selector = api.Selector.from_env("SHIPMATES_X", "SHIPMATES_NO_X")
    assert selector.allows("a") and not selector.allows("c")
