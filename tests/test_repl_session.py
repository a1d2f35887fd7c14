"""The chat session without its shell: turns, cancelling, memory, model, refresh; the command
context plugin commands receive; the settings read once; the start-up gc pause."""

from __future__ import annotations

import asyncio
import gc
import io
from typing import Any

import pytest
from shipmates import AbsorbReport, Agent, Discovery, ModelResponse, hookimpl
from shipmates._cli._chat_session import ChatSession, TurnCancelledError
from shipmates._cli._commands import ReplContext
from shipmates._cli._repl import Repl
from shipmates._crew._assemble import Crew
from shipmates._settings import Settings, SettingsError, read_settings
from shipmates._startup import GcPause


class Remember:
    """Answers with the user turns it saw; ``slow`` turns wait until cancelled."""

    model_id = "remember"

    async def complete(self, messages: list[dict[str, Any]], tools: Any) -> ModelResponse:
        if messages[-1]["content"] == "slow":
            await asyncio.sleep(30)
        return ModelResponse(content=" | ".join(m["content"] for m in messages if m["role"] == "user"))


def chat(**kwargs: Any) -> ChatSession:
    captain = Agent("captain", "test captain", model=Remember())
    return ChatSession(Crew(captain, Discovery([]), AbsorbReport(), general=True), **kwargs)


def test_turns_remember_completed_turns_and_cancel_leaves_memory_as_it_was() -> None:
    session = chat()

    async def scenario() -> list[str]:
        answers = [await session.turn("one")]
        slow = asyncio.ensure_future(session.turn("slow"))
        while not session.running:
            await asyncio.sleep(0.001)
        assert session.cancel() is True
        with pytest.raises(TurnCancelledError):
            await slow
        assert not session.running and session.cancel() is False
        answers.append(await session.turn("two"))
        return answers

    assert asyncio.run(scenario()) == ["one", "one | two"]
    session.clear()
    assert asyncio.run(session.ask("three")) == "three"


def test_memory_zero_remembers_nothing_and_the_model_switches() -> None:
    session = chat(memory=0)
    assert session.memory is None
    assert asyncio.run(session.ask("a")) == "a" and asyncio.run(session.ask("b")) == "b"
    assert session.model_name == "remember"
    session.set_model("offline")
    assert session.model_name == "offline" and session.captain.model is None  # it follows the session


def test_refresh_reports_names_and_a_failing_plugin_is_a_warning() -> None:
    from shipmates import get_plugin_manager

    class Echo:
        name, description = "echo", "Echoes."

        def invoke(self, query: str) -> str:
            return query

    class Adds:
        @hookimpl
        def refresh_agents(self, captain: Any) -> None:
            if "echo" not in captain.siblings:
                captain.absorb(Echo())

    class Breaks:
        @hookimpl
        def refresh_agents(self, captain: Any) -> None:
            raise RuntimeError("no network")

    warnings: list[str] = []
    pm = get_plugin_manager()
    plugins = [Adds(), Breaks()]
    for plugin, name in zip(plugins, ("adds", "breaks"), strict=True):
        pm.register(plugin, name=name)
    try:
        session = chat(on_warning=warnings.append)
        assert session.refresh() == ([], ["echo"])
    finally:
        for plugin in plugins:
            pm.unregister(plugin)
    assert warnings == [
        "plugin 'breaks' (registered from code) failed in hook refresh_agents: RuntimeError: no network; "
        "fix the code that registered it, or unregister it "
        "(said once; -v or SHIPMATES_STRICT=1 shows the traceback)"
    ]


def test_plugin_commands_get_a_context_not_the_repl() -> None:
    from shipmates import get_plugin_manager

    seen: list[Any] = []

    class Plugin:
        @hookimpl
        def register_commands(self, register: Any) -> None:
            def look(context: Any, argument: str) -> str:
                seen.append(context)
                context.warn("careful")
                context.error("oops")
                same = context.session is context.chat.memory
                return f"{context.captain.name} {same} {context.refresh()!r}"

            register("look", look, "look around")

    pm = get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin)
    out, err = io.StringIO(), io.StringIO()
    try:
        repl = Repl(chat(), stdin=io.StringIO("/look\n"), stdout=out, stderr=err, interactive=False)
        assert repl.run() == 0
    finally:
        pm.unregister(plugin)
    (context,) = seen
    assert isinstance(context, ReplContext) and not isinstance(context, Repl)
    assert context.chat is repl.chat and context.crew is repl.chat.crew
    assert "captain True ''" in out.getvalue()
    assert "warning: careful" in err.getvalue() and "error: oops" in err.getvalue()


def test_settings_flags_win_over_the_environment_and_values_are_validated() -> None:
    env = {"SHIPMATES_MODEL": " openai/gpt-4o-mini ", "SHIPMATES_MEMORY_TURNS": "3", "SHIPMATES_STRICT": "on"}
    settings = read_settings(env)
    assert settings == Settings(model="openai/gpt-4o-mini", memory_turns=3, strict=True)
    flagged = read_settings(env, model="offline", memory=0, only=["a"], trace=False, approve=True)
    assert (flagged.model, flagged.memory_turns, flagged.only) == ("offline", 0, ("a",))
    assert (flagged.trace, flagged.approve) == (False, True)
    assert read_settings({}) == Settings()
    assert read_settings({"SHIPMATES_TOOL_TIMEOUT": "2.5", "SHIPMATES_TOOL_THREADS": "0"}).tool_timeout == 2.5
    with pytest.raises(SettingsError, match=r"SHIPMATES_TOOL_TIMEOUT='inf' is not valid"):
        read_settings({"SHIPMATES_TOOL_TIMEOUT": "inf"})
    with pytest.raises(AttributeError):
        settings.model = "x"  # type: ignore[misc]  # frozen


def test_gc_pause_freezes_what_start_up_made_and_resumes() -> None:
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with GcPause() as pause:
            assert pause.active and not gc.isenabled()
            kept = [object() for _ in range(100)]
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + len(kept)
        pause.end()  # twice: harmless
        with GcPause() as serving:
            garbage: list[Any] = []
            garbage.append(garbage)  # a cycle: only a collection frees it
            del garbage
            serving.end(collect=True)  # serve: collect, then freeze for good
        assert gc.isenabled()
        assert not GcPause(active=False).active and gc.isenabled()
    finally:
        gc.unfreeze()
