"""The REPL in-process, stdin piped: turns, slash commands, trace, approval, memory, errors.

The pseudo-terminal tests (prompt-toolkit, Ctrl-C, history) are in test_repl_pty.py.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from shipmates import Agent, EndSession, ModelResponse, ToolCall, ToolCallEvent, tool
from shipmates._cli._repl import Repl
from shipmates._cli._trace import Tracer
from shipmates._cli._views import finished_line, format_arguments, roster, shorten
from shipmates._crew._assemble import Crew, assemble


class Recall:
    """A scripted model: ``call NAME ...`` calls that tool; otherwise it lists earlier user turns."""

    model_id = "recall"

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        last = messages[-1]
        if last["role"] == "tool":
            return ModelResponse(content=f"tool said: {last['content']}")
        text = last["content"]
        if text.startswith("call "):
            name = text.split()[1]
            return ModelResponse(tool_calls=[ToolCall("c1", name, json.dumps({"query": text}))])
        earlier = [m["content"] for m in messages[:-1] if m["role"] == "user"]
        return ModelResponse(content="earlier: " + (" | ".join(earlier) or "nothing"))


class Echo:
    name = "echo"
    description = "Echoes what it is asked."

    def invoke(self, query: str) -> str:
        return f"echo got: {query}"


class Boom:
    name = "boom"
    description = "Always fails."

    def invoke(self, query: str) -> str:
        raise RuntimeError("kaboom")


class Leaver:
    name = "leaver"
    description = "Ends the session."

    def invoke(self, query: str) -> str:
        raise EndSession("See you.")


def make_repl(
    *siblings: Any, model: Any = None, lines: str = "", memory: int | None = None, **kwargs: Any
) -> tuple[Repl, io.StringIO, io.StringIO]:
    from shipmates import AbsorbReport, Discovery

    captain = Agent("captain", "test captain", model=model or Recall())
    for sibling in siblings:
        captain.absorb(sibling)
    out, err = io.StringIO(), io.StringIO()
    crew = Crew(captain, Discovery([]), AbsorbReport(absorbed=[s.name for s in siblings]), general=True)
    repl = Repl(
        crew, stdin=io.StringIO(lines), stdout=out, stderr=err, interactive=False, memory=memory, **kwargs
    )
    return repl, out, err


def test_piped_turns_answer_on_stdout_and_trace_on_stderr() -> None:
    repl, out, err = make_repl(Echo(), lines="call echo hello\nwhat came before\n")
    assert repl.run() == 0
    assert out.getvalue().splitlines() == [
        "tool said: echo got: call echo hello",
        "earlier: call echo hello",
    ]
    trace = err.getvalue()
    assert "captain: captain (built-in) | model: recall" in trace  # the banner goes to stderr when piped
    assert "[captain] echo(query='call echo hello') -> echo got: call echo hello" in trace


def test_end_session_from_a_tool_ends_with_status_0() -> None:
    repl, out, _ = make_repl(Leaver(), lines="call leaver now\nnever read\n")
    assert repl.run() == 0
    assert out.getvalue().splitlines() == ["See you."]


def test_a_failing_turn_prints_error_and_the_repl_goes_on() -> None:
    class Broken:
        model_id = "broken"

        async def complete(self, messages: Any, tools: Any) -> ModelResponse:
            if "fail" in messages[-1]["content"]:
                raise RuntimeError("model exploded")
            return ModelResponse(content="fine")

    repl, out, err = make_repl(model=Broken(), lines="please fail\nagain\n")
    assert repl.run() == 1  # piped: the REPL goes on, and the exit status says a turn failed
    assert "error: RuntimeError: model exploded" in err.getvalue()
    assert out.getvalue().splitlines() == ["fine"]


def test_a_failing_sibling_is_a_tool_error_not_a_failed_turn() -> None:
    repl, out, err = make_repl(Boom(), lines="call boom x\n")
    repl.run()
    assert "kaboom" in out.getvalue()
    assert "[captain] boom(query='call boom x') -> error: " in err.getvalue()


def test_max_turns_is_reported_as_an_error() -> None:
    class Loop:
        model_id = "loop"

        async def complete(self, messages: Any, tools: Any) -> ModelResponse:
            return ModelResponse(tool_calls=[ToolCall(f"c{len(messages)}", "echo", '{"query": "again"}')])

    repl, out, err = make_repl(Echo(), model=Loop(), lines="go\n")
    repl.run()
    assert "error: the captain was still calling tools after max_turns=10" in err.getvalue()
    assert out.getvalue() == ""


def test_memory_clear_and_bound() -> None:
    repl, out, _ = make_repl(lines="one\ntwo\n/clear\nthree\n")
    repl.run()
    assert out.getvalue().splitlines() == [
        "earlier: nothing",
        "earlier: one",
        "conversation cleared",
        "earlier: nothing",
    ]
    repl, out, _ = make_repl(lines="one\ntwo\nthree\n", memory=1)
    repl.run()
    assert out.getvalue().splitlines()[-1] == "earlier: two"
    repl, out, _ = make_repl(lines="one\ntwo\n", memory=0)
    repl.run()
    assert out.getvalue().splitlines() == ["earlier: nothing", "earlier: nothing"]


def test_memory_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPMATES_MEMORY_TURNS", "1")
    repl, out, _ = make_repl(lines="one\ntwo\nthree\n")
    repl.run()
    assert out.getvalue().splitlines()[-1] == "earlier: two"


def test_slash_commands() -> None:
    lines = "/help\n/tools\n/model\n/trace off\ncall echo quiet\n/trace on\n/nope\n/approve off\n"
    lines += "/triage on\n/exit\nlost\n"
    repl, out, err = make_repl(Echo(), lines=lines)
    assert repl.run() == 0
    text = out.getvalue()
    for name in (
        "/help",
        "/agents",
        "/tools",
        "/model",
        "/clear",
        "/trace",
        "/approve",
        "/triage",
        "/refresh",
    ):
        assert name in text
    assert "/exit" in text and "triage on" in text and repl.captain.triage is True
    assert "NAME  KIND     FROM  ITS TOOLS" in text
    assert "echo  sibling  code  -\n    Echoes what it is asked." in text
    assert "model: recall" in text
    assert "trace off" in text and "trace on" in text and "approve off" in text
    assert "[captain] echo" not in err.getvalue()  # the trace was off for that turn
    assert "unknown command: /nope (try /help)" in err.getvalue()
    assert text.rstrip().endswith("Goodbye.")
    assert "lost" not in text


def test_model_command_switches_the_captains_model() -> None:
    repl, out, _ = make_repl(lines="/model offline\n/model\n")
    repl.run()
    assert repl.captain.model is None and repl.chat.model_name == "offline"  # the session's model
    assert out.getvalue().splitlines() == ["model: offline", "model: offline"]


def test_bad_argument_to_a_command_is_reported() -> None:
    repl, _, err = make_repl(lines="/trace sideways\n")
    assert repl.run() == 0
    assert "usage: /trace on|off" in err.getvalue()


def test_approval_yes_runs_and_no_refuses() -> None:
    lines = "call echo first\ny\ncall echo second\nn\n"
    repl, out, err = make_repl(Echo(), lines=lines, approve=True)
    repl.run()
    answers = out.getvalue().splitlines()
    assert answers[0] == "tool said: echo got: call echo first"
    assert answers[1].startswith("tool said: error: the user refused this call")
    questions = [line for line in err.getvalue().splitlines() if line.startswith("approve?")]
    assert questions == [
        "approve? captain wants to delegate to sibling echo(query='call echo first') from code [y/N]",
        "approve? captain wants to delegate to sibling echo(query='call echo second') from code [y/N]",
    ]
    assert "refused by the user" in err.getvalue()


def test_plugin_commands_and_refresh_hook() -> None:
    from shipmates import get_plugin_manager, hookimpl

    seen: list[str] = []

    class Plugin:
        @hookimpl
        def register_commands(self, register: Any) -> None:
            register("hello", lambda repl, arg: f"hello {arg or 'world'} from {repl.captain.name}", "say hi")

            async def later(repl: Any, arg: str) -> None:
                repl.say("async command ran")

            register("later", later, "async")
            register("help", lambda repl, arg: "clash", "")  # refused: built-in name

        @hookimpl
        def refresh_agents(self, captain: Any) -> None:
            seen.append(captain.name)
            if "echo" not in captain.siblings:
                captain.absorb(Echo())

    pm = get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin)
    try:
        repl, out, err = make_repl(lines="/hello crew\n/later\n/refresh\n/help\n")
        repl.run()
    finally:
        pm.unregister(plugin)
    text = out.getvalue()
    assert "hello crew from captain" in text
    assert "async command ran" in text
    assert "crew: echo (changed: +echo)" in text
    assert "/hello" in text and "say hi" in text
    assert "command /help already exists" in err.getvalue()
    assert seen == ["captain"]


def test_roster_shows_failures_from_discovery(fake_site: Any) -> None:
    fake_site.sibling("echo")
    fake_site.sibling("broken", value="no_such_module_xyz:build")
    crew = assemble(only=["echo", "broken"])
    out, err = io.StringIO(), io.StringIO()
    repl = Repl(crew, stdin=io.StringIO("/agents\n"), stdout=out, stderr=err, interactive=False)
    repl.run()
    assert "1 load failure: see /agents" in err.getvalue()
    roster = out.getvalue()
    assert "broken" in roster and "failed" in roster and "no_such_module_xyz" in roster
    assert "captain: captain; crew: echo" in roster


# -- trace formatting ------------------------------------------------------------------------


def test_shorten_and_arguments() -> None:
    assert shorten("a\n  b", 10) == "a b"
    assert shorten("x" * 20, 10) == "xxxxxxx..."
    assert format_arguments({"n": 60, "query": "hi"}) == "n=60, query='hi'"
    assert format_arguments("{not json") == "{not json"
    assert format_arguments({"q": "y" * 100}).endswith("...")


def test_finished_lines_by_status() -> None:
    event = ToolCallEvent(
        agent="factor",
        tool="factor_number",
        arguments={"n": 60},
        call_id="c1",
        depth=1,
        status="ok",
        result="2, 2, 3, 5",
    )
    assert finished_line(event) == "  [factor] factor_number(n=60) -> 2, 2, 3, 5"
    event.result = "9" * 300
    assert finished_line(event).endswith("...") and len(finished_line(event)) < 160
    event.status, event.error = "timeout", "no answer"
    assert finished_line(event).endswith("-> timeout: no answer")
    event.status = "cancelled"
    assert finished_line(event).endswith("-> cancelled")
    event.status, event.duration = "refused", 2.0
    assert finished_line(event).endswith("-> refused by the user (2.0s)")


def test_nested_delegation_prints_inner_call_before_outer_returns() -> None:
    from shipmates import get_plugin_manager

    @tool
    def double(n: int) -> int:
        """Double n."""
        return 2 * n

    class Inner:
        model_id = "inner"

        async def complete(self, messages: Any, tools: Any) -> ModelResponse:
            if messages[-1]["role"] == "tool":
                return ModelResponse(content=messages[-1]["content"])
            return ModelResponse(tool_calls=[ToolCall("d1", "double", '{"n": 21}')])

    helper = Agent("helper", "doubles numbers", model=Inner(), tools=[double])
    captain = Agent("captain", model=Recall())
    captain.absorb(helper)
    lines: list[str] = []
    tracer = Tracer(lines.append)
    pm = get_plugin_manager()
    pm.register(tracer)
    try:
        assert captain.invoke("call helper please") == "tool said: 42"
    finally:
        pm.unregister(tracer)
    assert lines == [
        "[captain] helper(query='call helper please') ...",
        "  [helper] double(n=21) -> 42",
        "[captain] helper(query='call helper please') -> 42",
    ]


def test_litellm_is_preloaded_only_for_litellm_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipmates._models import _litellm
    from shipmates._startup import start_litellm_import

    calls: list[str] = []
    monkeypatch.setattr(_litellm, "preload", lambda: calls.append("preload"))
    start_litellm_import("offline")
    start_litellm_import(None)  # the default: offline
    start_litellm_import(Recall())  # a Model instance
    assert calls == []
    start_litellm_import("openai/gpt-4o-mini")
    assert calls == ["preload"]
    monkeypatch.setenv("SHIPMATES_MODEL", "ollama/llama3.1")
    start_litellm_import(None)
    assert calls == ["preload", "preload"]


def test_completer() -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document
    from shipmates._cli._completion import ReplCompleter

    completer = ReplCompleter(
        lambda: ["help", "trace", "tools"], lambda: ["fib", "factor"], lambda: ["offline"]
    )

    def complete(text: str, tab: bool = True) -> list[str]:
        event = CompleteEvent(completion_requested=tab)
        return [c.text for c in completer.get_completions(Document(text), event)]

    assert complete("/t", tab=False) == ["/trace", "/tools"]  # commands while typing
    assert complete("/trace o") == ["on", "off"]
    assert complete("/model of") == ["offline"]
    assert complete("ask f") == ["factor", "fib"]
    assert complete("ask f", tab=False) == []  # names only on Tab


def test_agents_marks_a_sibling_that_stopped_answering_unavailable() -> None:
    from shipmates import AbsorbReport, AgentRecord, Discovery, Provenance

    far = Echo()
    far.available = True  # type: ignore[attr-defined]
    captain = Agent("captain", "test captain", model=Recall())
    captain.absorb(far)
    record = AgentRecord("echo", Provenance("remote", "echo-dist", "1.0", location="nats://x"), sibling=far)
    crew = Crew(captain, Discovery([record]), AbsorbReport(absorbed=["echo"]), general=True)
    repl = Repl(crew, stdin=io.StringIO(""), stdout=io.StringIO(), stderr=io.StringIO(), interactive=False)

    def echo_row() -> list[str]:
        return next(line for line in roster(repl.chat) if line.startswith("echo")).split()

    assert echo_row()[:2] == ["echo", "ok"]
    far.available = False  # what a plugin's refresh_agents does when every replica left
    assert echo_row()[:2] == ["echo", "unavailable"]
    assert "not answering now" in "\n".join(roster(repl.chat))
