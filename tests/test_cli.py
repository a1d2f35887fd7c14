"""The ``shipmates`` command: subcommands, listings, flags and every exit status."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from shipmates import ModelError, ModelResponse, get_plugin_manager, hookimpl
from support import plugin_spec
from support.cli import run_cli as run

BROKEN_PLUGIN = """
raise ImportError("this plugin is broken on purpose")
"""

RAISING_HOOK_PLUGIN = """
from shipmates import hookimpl


@hookimpl
def register_agents(register):
    raise RuntimeError("register_agents exploded")
"""


def use_plugin(plugin: object) -> None:
    """Register ``plugin`` on the shared manager (conftest resets it after the test)."""
    from shipmates._models import _registry as _models

    get_plugin_manager().register(plugin)
    _models.reset_models()


def use_model(model: object) -> None:
    """Register ``model`` through a ``register_models`` plugin (:func:`use_plugin`)."""

    class Models:
        @hookimpl
        def register_models(self, register: Any) -> None:
            register(model)

    use_plugin(Models())


@pytest.fixture
def crew(fake_site: Any) -> Any:
    fake_site.sibling("echo", reply="echo got: {query}")
    fake_site.sibling("broken", value="no_such_module_xyz:build_agent")
    return fake_site


# -- version, help, usage errors ---------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--version"], ["chat", "--version"]])
def test_version(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, out, _ = run(capsys, *argv)
    assert status == 0
    assert out.strip() == "shipmates 0.1.0"


def test_help_lists_builtin_and_plugin_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    class Cli:
        @hookimpl
        def register_cli(self, register: Any) -> None:
            register("hello", "say hello from a plugin", lambda p: None, lambda a: 0)

        @hookimpl
        def register_chat_options(self, register: Any) -> None:
            register("--wave", metavar="HOW", help="a chat option from a plugin", apply=print)

    use_plugin(Cli())
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for name in ("chat", "agents", "plugins", "new", "hello"):
        assert name in out
    status, out, _ = run(capsys, "chat", "--help")
    assert status == 0
    for flag in ("--captain", "--model", "--only", "--exclude", "--once", "--approve", "--memory", "--wave"):
        assert flag in out
    assert "--nats" not in out  # shipmates-nats adds it (register_chat_options)


@pytest.mark.parametrize(
    "argv", [["--bogus"], ["chat", "--bogus"], ["agents", "--bogus"], ["nosuchcommand"], ["new"]]
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert "usage: shipmates" in err


# -- agents and plugins ------------------------------------------------------------------------


def test_agents_lists_without_loading(
    crew: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "shipmates_echo", raising=False)  # another test's echo sibling
    status, out, _ = run(capsys, "agents")
    assert status == 0
    assert "echo" in out and "shipmates-echo 0.1.0" in out and "shipmates_echo:build_agent" in out
    assert "shipmates_echo" not in sys.modules  # listing never imports a sibling
    status, out, _ = run(capsys, "agents", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["echo"]["distribution"] == "shipmates-echo"
    assert rows["echo"]["version"] == "0.1.0"
    assert rows["echo"]["entry_point"] == "shipmates_echo:build_agent"
    assert rows["echo"]["status"] == "ok"


def test_agents_load_adds_details_and_failures(crew: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "agents", "--load")
    assert status == 0
    assert "description: The echo test sibling" in out
    assert "loaded in" in out
    assert "failed" in out and "no_such_module_xyz" in out
    status, out, _ = run(capsys, "agents", "--load", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["echo"]["description"].startswith("The echo test sibling")
    assert rows["echo"]["tools"] == []
    assert rows["echo"]["load_seconds"] is not None
    assert rows["broken"]["status"] == "failed"
    assert "no_such_module_xyz" in rows["broken"]["reason"]


def test_agents_shows_excluded(crew: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "agents", "--json", "--exclude", "broken")
    assert status == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["broken"]["status"] == "excluded"


def test_agents_and_plugins_work_with_broken_plugins(
    crew: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    crew.add(plugin_spec("badimport", BROKEN_PLUGIN))
    crew.add(plugin_spec("badhook", RAISING_HOOK_PLUGIN))
    monkeypatch.setenv("SHIPMATES_PLUGINS", "badimport,badhook")
    status, out, _ = run(capsys, "agents", "--load", "--json")
    assert status == 0
    assert "echo" in {row["name"] for row in json.loads(out)}
    status, out, _ = run(capsys, "plugins", "--json")
    assert status == 0
    plugins = {row["name"]: row for row in json.loads(out)}
    assert plugins["shipmates.builtin"]["status"] == "ok"
    assert "register_models" in plugins["shipmates.builtin"]["hooks"]
    assert plugins["badimport"]["status"] == "failed"
    assert "broken on purpose" in plugins["badimport"]["reason"]
    assert plugins["badhook"]["distribution"] == "shipmates-plugin-badhook"
    status, out, _ = run(capsys, "plugins")
    assert status == 0 and "badimport" in out and "reason:" in out


# -- chat ----------------------------------------------------------------------------------------


def test_unknown_captain_lists_the_discovered_names(crew: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "chat", "--captain", "nobody", "--once", "hi")
    assert status == 2
    assert "no agent named 'nobody'" in err
    assert "echo" in err


def test_a_captain_must_be_an_agent(crew: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "chat", "--captain", "echo", "--once", "hi")
    assert status == 2
    assert "not a shipmates.Agent" in err


def test_captain_that_failed_to_load(crew: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "chat", "--captain", "broken", "--once", "hi")
    assert status == 2
    assert "did not load" in err


def test_once_answers_on_stdout_with_trace_on_stderr(crew: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "chat", "--once", "echo hi")
    assert status == 0
    assert out == "echo got: echo hi\n"
    assert "[captain] echo(query='echo hi') -> echo got: echo hi" in err


def test_once_respects_only_and_exclude(crew: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "chat", "--exclude", "echo", "--once", "echo hi")
    assert status == 0
    assert "echo got" not in out
    status, out, _ = run(capsys, "chat", "--only", "broken", "--once", "echo hi")
    assert status == 0
    assert "echo got" not in out
    status, out, _ = run(capsys, "--only", "echo,broken", "--once", "echo hi")  # bare = chat
    assert out == "echo got: echo hi\n"


def test_once_error_exits_2(
    crew: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Failing:
        model_id = "failing"

        async def complete(self, messages: Any, tools: Any) -> ModelResponse:
            raise ModelError("the model is down")

    use_model(Failing())
    monkeypatch.delenv("SHIPMATES_MODEL", raising=False)
    status, out, err = run(capsys, "chat", "--model", "failing", "--once", "hi")
    assert status == 2
    assert out == ""
    assert err.strip() == "error: the model is down"
    assert "SHIPMATES_MODEL" not in os.environ  # the CLI passes settings down, not the environment


def test_siblings_without_a_model_follow_the_session_model(
    fake_site: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipmates import ToolCall
    from shipmates._models._registry import default_model_name

    class Recording:
        model_id = "recording"

        async def complete(self, messages: Any, tools: Any) -> ModelResponse:
            last = messages[-1]
            if last["role"] == "tool":
                return ModelResponse(content=last["content"])
            if any(t["function"]["name"] == "helper" for t in tools):
                return ModelResponse(tool_calls=[ToolCall("c1", "helper", '{"query": "hi"}')])
            return ModelResponse(content="helper answered on recording")

    use_model(Recording())
    monkeypatch.delenv("SHIPMATES_MODEL", raising=False)
    code = "from shipmates import Agent\n\ndef build_agent():\n    return Agent('helper', 'Helps.')\n"
    fake_site.sibling("helper", code=code)
    status, out, err = run(capsys, "chat", "--model", "recording", "--only", "helper", "--once", "hi")
    assert (status, out.strip()) == (0, "helper answered on recording"), err
    assert "SHIPMATES_MODEL" not in os.environ
    assert default_model_name() == "offline"  # the session's model ended with the session


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SHIPMATES_MEMORY_TURNS", "lots", "a whole number >= 0"),
        ("SHIPMATES_MEMORY_TURNS", "-1", "a whole number >= 0"),
        ("SHIPMATES_TOOL_TIMEOUT", "0", "a number of seconds > 0"),
        ("SHIPMATES_TOOL_THREADS", "many", "a whole number >= 0"),
        ("SHIPMATES_STRICT", "maybe", "one of 1, on, true, yes or 0, false, no, off"),
        ("SHIPMATES_DISCOVERY_CACHE", "sometimes", "one of 1, on, true, yes"),
    ],
)
def test_a_bad_environment_value_is_a_clear_usage_error(
    crew: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(variable, value)
    for argv in (["chat", "--once", "hi"], ["agents"]):
        status, out, err = run(capsys, *argv)
        assert status == 2 and out == ""
        assert err.startswith(f"error: {variable}={value!r} is not valid: expected {expected}"), err


def test_a_negative_memory_flag_is_a_usage_error(crew: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "chat", "--memory", "-2", "--once", "hi")
    assert status == 2
    assert "error: --memory=-2 is not valid: expected a whole number >= 0" in err


def test_once_ending_the_session_exits_0(fake_site: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = """
from shipmates import EndSession


class Leaver:
    name = "leaver"
    description = "Leaves when the user says so."

    def invoke(self, query):
        raise EndSession("Bye now.")


def build_agent():
    return Leaver()
"""
    fake_site.sibling("leaver", code=code)
    status, out, _ = run(capsys, "chat", "--once", "leaver please")
    assert status == 0
    assert out == "Bye now.\n"


def test_chat_options_from_plugins_reach_the_plugin_not_the_environment(
    crew: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPMATES_NATS_URL", raising=False)
    status, _, err = run(capsys, "chat", "--nats", "nats://127.0.0.1:4999", "--once", "echo x")
    assert status == 2 and "unrecognized arguments: --nats" in err  # only shipmates-nats has it
    given: list[str] = []

    class Nats:
        @hookimpl
        def register_chat_options(self, register: Any) -> None:
            register("--nats", metavar="URL", help="NATS server", apply=given.append)

    use_plugin(Nats())
    environ = dict(os.environ)
    status, out, _ = run(capsys, "chat", "--nats", "nats://127.0.0.1:4999", "--once", "echo x")
    assert status == 0 and out == "echo got: echo x\n"
    assert given == ["nats://127.0.0.1:4999"]
    assert "SHIPMATES_NATS_URL" not in os.environ and dict(os.environ) == environ


def test_bare_shipmates_with_piped_stdin_is_the_chat(
    crew: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("echo one\n/nope\necho two\n"))
    status, out, err = run(capsys)
    assert status == 0
    assert out.splitlines() == ["echo got: echo one", "echo got: echo two"]
    assert "unknown command: /nope (try /help)" in err


# -- new and plugin subcommands ------------------------------------------------------------------


def test_new_writes_a_package_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "new", "weather", "--dir", str(tmp_path))
    assert status == 0
    assert (tmp_path / "shipmates-weather" / "pyproject.toml").is_file()
    assert "shipmates-weather" in out
    status, _, err = run(capsys, "new", "weather", "--dir", str(tmp_path))
    assert status == 2 and err.startswith("error: ")
    status, _, err = run(capsys, "new", "bad name!", "--dir", str(tmp_path))
    assert status == 2 and "invalid" in err


def test_plugin_subcommand_runs_with_its_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    class Cli:
        @hookimpl
        def register_cli(self, register: Any) -> None:
            def configure(parser: Any) -> None:
                parser.add_argument("--times", type=int, default=1)

            def run_it(args: Any) -> int:
                print("hello " * args.times)
                return 3

            register("hello", "say hello", configure, run_it)
            register("agents", "clash", configure, run_it)  # refused: built in

        @hookimpl
        def register_commands(self, register: Any) -> None:
            raise AssertionError("the CLI never asks for REPL commands")

    use_plugin(Cli())
    status, out, err = run(capsys, "hello", "--times", "2")
    assert status == 3
    assert out.strip() == "hello hello"
    assert "subcommand 'agents' already exists" in err
    status, _, err = run(capsys, "hello", "--bogus")
    assert status == 2


def test_a_plugin_whose_register_cli_raises_is_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    class Bad:
        @hookimpl
        def register_cli(self, register: Any) -> None:
            raise RuntimeError("no subcommands today")

    use_plugin(Bad())
    status, out, err = run(capsys, "--help")
    assert status == 0 and "agents" in out
    assert "failed in hook register_cli: RuntimeError: no subcommands today" in err


# -- start-up cost ---------------------------------------------------------------------------------

HEAVY = ("litellm", "prompt_toolkit", "pydantic", "shipmates_echo", "shipmates._run._agent", "openai")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["agents"], ["agents", "--json"]])
def test_fast_commands_import_nothing_heavy(crew: Any, argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from shipmates._cli._main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(crew.path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr


def test_python_dash_m_shipmates(crew: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(crew.path)
    proc = subprocess.run(
        [sys.executable, "-m", "shipmates", "chat", "--once", "echo via -m"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo got: echo via -m\n"
