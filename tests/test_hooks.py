"""Every hook: documented in the README with its exact signature, and tested here (``test_hook_<name>``).

Each ``test_hook_*`` drives its hook through the real call site, with a failing plugin next to a
working one: a failure is reported in the one format (plugin, distribution, version, hook, fix)
and never keeps the other plugins from being called.
"""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path
from typing import Any

import pluggy
import pytest
import shipmates
from shipmates import Agent, ModelResponse, ToolCall, hookimpl
from shipmates._plugins import _hookspecs
from shipmates._plugins._hookspecs import HOOK_NAMES, ShipmatesSpec
from support.cli import run_cli as run

REPO = Path(__file__).resolve().parents[1]


def _signature(name: str) -> str:
    """``register_agents(register: RegisterAgent) -> None``: the hookspec as the README shows it."""
    sig = inspect.signature(getattr(ShipmatesSpec, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in list(sig.parameters.values())[1:])
    return f"{name}({params}) -> {sig.return_annotation}"


def _callback(protocol: type) -> str:
    """``register(model, /, aliases=())``: a register callback's call signature, unannotated."""
    sig = inspect.signature(protocol.__call__)  # type: ignore[operator]
    params = [p.replace(annotation=inspect.Parameter.empty) for p in list(sig.parameters.values())[1:]]
    return "register" + str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def _readme_hooks() -> dict[str, list[str]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Hooks") :]
    section = section[: section.index("\n## ")]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)\((.*)\) -> (.*)`", cells[0]) if cells else None
        if match:
            rows[match.group(1)] = [cells[0].strip("`"), *(c.strip("`") for c in cells[1:])]
    return rows


def test_every_hook_is_documented_in_the_readme_with_its_exact_signature() -> None:
    rows = _readme_hooks()
    assert sorted(rows) == sorted(HOOK_NAMES), "the README's Hooks table and the hookspecs differ"
    for name in HOOK_NAMES:
        assert rows[name][0] == _signature(name), f"README: {rows[name][0]!r}, hookspec: {_signature(name)!r}"
        annotation = inspect.signature(getattr(ShipmatesSpec, name)).parameters.get("register")
        if annotation is not None:  # a registration hook: its callback's real signature is shown too
            assert rows[name][1] == _callback(getattr(_hookspecs, annotation.annotation)), name


def test_every_hook_has_a_test() -> None:
    files = [*REPO.glob("tests/test_*.py"), *REPO.glob("plugins/*/tests/test_*.py")]
    sources = "\n".join(p.read_text() for p in files)
    missing = [name for name in HOOK_NAMES if not re.search(rf"^def test_hook_{name}\(", sources, re.M)]
    assert not missing, f"hooks without a test_hook_<name>: {missing}"


def test_register_callbacks_are_the_documented_protocols() -> None:
    import shipmates.plugin as api

    for name in ("RegisterAgent", "RegisterModel", "RegisterCommand", "RegisterCli", "RegisterChatOption"):
        assert getattr(api, name) is getattr(_hookspecs, name)


# -- helpers ------------------------------------------------------------------------------------


def broken(hook: str) -> object:
    """A plugin whose ``hook`` raises (register it last: pluggy calls it first)."""
    params = ", ".join(inspect.signature(getattr(ShipmatesSpec, hook)).parameters)  # self, ...
    namespace: dict[str, Any] = {}
    exec(f"def {hook}({params}):\n    raise RuntimeError('{hook} exploded')\n", namespace)
    return type(f"Broken_{hook}", (), {hook: hookimpl(namespace[hook])})()


def new_manager(*plugins: object) -> pluggy.PluginManager:
    from shipmates._plugins._host import build_plugin_manager

    pm, _ = build_plugin_manager(allow=(), path=[])
    for plugin in plugins:
        pm.register(plugin)
    return pm


def use(*plugins: object) -> None:
    """Register on the shared manager (the conftest resets it after each test)."""
    for plugin in plugins:
        shipmates.get_plugin_manager().register(plugin)


class Echo:
    name = "echo"
    description = "repeats the query"

    def invoke(self, query: str) -> str:
        return f"echo: {query}"


class CallsEcho:
    """A model that calls the ``echo`` tool once, then answers with its result."""

    model_id = "calls-echo"

    async def complete(self, messages: Any, tools: Any, settings: Any = None) -> ModelResponse:
        if messages[-1]["role"] == "tool":
            return ModelResponse(content=messages[-1]["content"])
        return ModelResponse(tool_calls=[ToolCall("c1", "echo", '{"query": "hi"}')])


# -- one test per hook ----------------------------------------------------------------------------


def test_hook_register_agents() -> None:
    class Plugin:
        @hookimpl
        def register_agents(self, register: Any) -> None:
            register(Echo())
            register(lambda: Echo(), name="echo2")  # a provider whose sibling is misnamed

    pm = new_manager(Plugin(), broken("register_agents"))
    d = shipmates.discover(plugin_manager=pm, path=[], only=["echo", "echo2"])
    records = {r.name: r for r in d.records}
    assert records["echo"].status == "ok" and records["echo"].provenance.origin == "plugin"
    assert records["echo2"].status == "failed"
    (failure,) = [r for r in d.records if r.reason and "register_agents exploded" in r.reason]
    assert "failed in hook register_agents: RuntimeError: register_agents exploded" in failure.reason


def test_hook_register_models(caplog: pytest.LogCaptureFixture) -> None:
    class Plugin:
        @hookimpl
        def register_models(self, register: Any) -> None:
            register(CallsEcho(), aliases=("parrot",))

    pm = new_manager(Plugin(), broken("register_models"))
    agent = Agent("a", model="parrot", tools=[Echo()], plugin_manager=pm)
    with caplog.at_level(logging.WARNING, logger="shipmates"):
        assert agent.resolve_model().model_id == "calls-echo"  # the agent's own plugins
        assert agent.invoke("go") == "echo: hi"
    assert "failed in hook register_models: RuntimeError: register_models exploded" in caplog.text
    assert shipmates.get_model("parrot").model_id != "calls-echo"  # the shared plugins do not have it
    assert shipmates.get_model("offline", plugin_manager=pm).model_id == "offline"


def _observed(hook: str, caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    class Observer:
        @hookimpl
        def tool_call_started(self, event: Any) -> None:
            seen.append(("started", event.status))

        @hookimpl
        def tool_call_finished(self, event: Any) -> None:
            seen.append(("finished", event.status))

    pm = new_manager(Observer(), broken(hook))  # the broken one is called first
    agent = Agent("a", model=CallsEcho(), tools=[Echo()], plugin_manager=pm)
    with caplog.at_level(logging.WARNING, logger="shipmates"):
        assert agent.invoke("go") == "echo: hi"
    assert f"failed in hook {hook}: RuntimeError: {hook} exploded" in caplog.text
    return seen


def test_hook_tool_call_started(caplog: pytest.LogCaptureFixture) -> None:
    """One failing observer never silences another."""
    assert _observed("tool_call_started", caplog) == [("started", "running"), ("finished", "ok")]


def test_hook_tool_call_finished(caplog: pytest.LogCaptureFixture) -> None:
    assert _observed("tool_call_finished", caplog) == [("started", "running"), ("finished", "ok")]


def test_hook_run_event(caplog: pytest.LogCaptureFixture) -> None:
    """Every event of the run reaches the plugin, in order, without anyone iterating a stream."""
    seen: list[str] = []

    class Observer:
        @hookimpl
        def run_event(self, event: Any) -> None:
            seen.append(type(event).__name__)

    pm = new_manager(Observer(), broken("run_event"))
    agent = Agent("a", model=CallsEcho(), tools=[Echo()], plugin_manager=pm)
    with caplog.at_level(logging.WARNING, logger="shipmates"):
        assert agent.invoke("go") == "echo: hi"
    assert "failed in hook run_event: RuntimeError: run_event exploded" in caplog.text
    assert seen == [
        "RunStarted",
        "ModelCallFinished",
        "ToolCallStarted",
        "ToolCallFinished",
        "TextDelta",
        "ModelCallFinished",
        "RunFinished",
    ]


def test_hook_register_commands(capsys: pytest.CaptureFixture[str]) -> None:
    class Plugin:
        @hookimpl
        def register_commands(self, register: Any) -> None:
            register("hello", lambda context, arg: f"hello {arg} from {context.captain.name}", "greet")
            register("exit", lambda context, arg: "never", "")  # a built-in name: reported, skipped

    use(Plugin(), broken("register_commands"))
    status, out, err = run(capsys, "chat", stdin="/hello crew\n/help\n")
    assert status == 0
    assert "hello crew from captain" in out and "/hello" in out and "/model" in out
    assert "failed in hook register_commands: RuntimeError: register_commands exploded" in err
    assert "command /exit already exists" in err


def test_hook_register_cli(capsys: pytest.CaptureFixture[str]) -> None:
    class Plugin:
        @hookimpl
        def register_cli(self, register: Any) -> None:
            register("hello", "say hello", lambda parser: parser.add_argument("--times", type=int), _hello)

    use(Plugin(), broken("register_cli"))
    status, out, err = run(capsys, "hello", "--times", "2")
    assert (status, out) == (3, "hello hello\n")
    assert "failed in hook register_cli: RuntimeError: register_cli exploded" in err


def _hello(args: Any) -> int:
    print(" ".join(["hello"] * args.times))
    return 3


def test_hook_register_chat_options(capsys: pytest.CaptureFixture[str]) -> None:
    given: list[str] = []

    class Plugin:
        @hookimpl
        def register_chat_options(self, register: Any) -> None:
            register("--wave", metavar="HOW", help="wave at the crew", apply=given.append)

    use(Plugin(), broken("register_chat_options"))
    status, out, err = run(capsys, "chat", "--help")
    assert status == 0 and "--wave HOW" in out and "wave at the crew" in out
    status, out, err = run(capsys, "chat", "--wave", "hard", "--once", "hi")
    assert status == 0 and given == ["hard"]
    assert "failed in hook register_chat_options: RuntimeError: register_chat_options exploded" in err
    status, _, _ = run(capsys, "chat", "--once", "hi")
    assert status == 0 and given == ["hard"]  # not given: apply is not called

    def refuse(value: str) -> None:
        raise ValueError("no such wave")

    class Refuses:
        @hookimpl
        def register_chat_options(self, register: Any) -> None:
            register("--surf", apply=refuse)

    use(Refuses())
    status, _, err = run(capsys, "chat", "--surf", "s3cret", "--once", "hi")
    assert status == 2 and "--surf" in err and "no such wave" in err
    assert "s3cret" not in err  # an option's value may be a secret: never echoed


def test_hook_refresh_agents(capsys: pytest.CaptureFixture[str]) -> None:
    class Plugin:
        @hookimpl
        def refresh_agents(self, captain: Any) -> None:
            if "echo" not in captain.siblings:
                captain.absorb(Echo())

    use(Plugin(), broken("refresh_agents"))
    status, out, err = run(capsys, "chat", stdin="/refresh\n")
    assert status == 0
    assert "crew: echo (changed: +echo)" in out
    assert "failed in hook refresh_agents: RuntimeError: refresh_agents exploded" in err
