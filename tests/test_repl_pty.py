"""The real REPL (prompt-toolkit) driven through a pseudo-terminal with pexpect.

The crew is generated per test: ``echo`` and ``slow`` siblings, a ``broken`` one whose module
is missing, and a plugin contributing the scripted ``recall`` model (``call NAME ...`` calls
that tool; anything else lists the earlier user turns, which shows the session memory).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import plugin_spec, sibling_spec, write_dist_info
from support.pty import PROMPT, ask, finish, repl_spawner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal"),
]

SLOW_CODE = """
import asyncio


class Slow:
    name = "slow"
    description = "Takes its time over slow requests."

    async def ainvoke(self, query: str) -> str:
        await asyncio.sleep(60)
        return "slow done"


def build_agent():
    return Slow()
"""

RECALL_CODE = """
import json

from shipmates import ModelResponse, ToolCall, hookimpl


class Recall:
    model_id = "recall"

    async def complete(self, messages, tools):
        last = messages[-1]
        if last["role"] == "tool":
            return ModelResponse(content="tool said: " + last["content"])
        text = last["content"]
        if text.startswith("call "):
            name = text.split()[1]
            return ModelResponse(tool_calls=[ToolCall("c1", name, json.dumps({"query": text}))])
        earlier = [m["content"] for m in messages[:-1] if m["role"] == "user"]
        return ModelResponse(content="earlier: " + (" | ".join(earlier) or "nothing"))


@hookimpl
def register_models(register):
    register(Recall())
"""


@pytest.fixture
def crew_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a shipmates process that sees exactly the generated crew and plugin."""
    site = tmp_path / "site"
    site.mkdir()
    write_dist_info(sibling_spec("echo", reply="echo got: {query}"), site)
    write_dist_info(sibling_spec("slow", code=SLOW_CODE), site)
    write_dist_info(sibling_spec("broken", value="no_such_module_xyz:build_agent"), site)
    write_dist_info(plugin_spec("recall", RECALL_CODE), site)
    write_dist_info(plugin_spec("badplug", "raise RuntimeError('badplug is broken on purpose')"), site)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPMATES_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(site),
        SHIPMATES_HOME=str(tmp_path / "home"),
        SHIPMATES_AGENTS="echo,slow,broken",
        SHIPMATES_PLUGINS="recall,badplug",
        # pexpect's terminal does not answer cursor-position requests.
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
    )
    return env


@pytest.fixture
def spawn(crew_env: dict[str, str]) -> Iterator[object]:
    with repl_spawner(crew_env) as start:
        yield start


def test_banner_turn_through_a_sibling_with_trace_and_exit(spawn: object) -> None:
    child = spawn()  # type: ignore[operator]
    child.expect_exact("captain: captain (built-in) | model: offline")
    child.expect_exact("crew: echo, slow")
    child.expect_exact("2 load failures: see /agents")
    child.expect_exact(PROMPT)
    ask(
        child,
        "echo hello there",
        "[captain] echo(query='echo hello there') -> echo got: echo hello there",
        "echo got: echo hello there",
    )
    ask(child, "/frobnicate", "unknown command: /frobnicate (try /help)")
    child.sendline("/exit")
    child.expect_exact("Goodbye.")
    assert finish(child) == 0


def test_agents_shows_the_broken_sibling_and_plugin(spawn: object) -> None:
    child = spawn()  # type: ignore[operator]
    child.expect_exact(PROMPT)
    ask(
        child,
        "/agents",
        "broken",
        "failed",
        "no_such_module_xyz",
        "echo",
        "ok",
        "plugin badplug (shipmates-plugin-badplug 0.1.0",
        "badplug is broken on purpose",
    )
    child.sendcontrol("d")
    child.expect_exact("Goodbye.")
    assert finish(child) == 0


def test_ctrl_c_cancels_a_running_turn_and_keeps_the_conversation(spawn: object) -> None:
    child = spawn("--model", "recall")  # type: ignore[operator]
    child.expect_exact(PROMPT)
    ask(child, "remember me", "earlier: nothing")
    child.sendline("call slow now")
    child.expect_exact("[captain] slow(query='call slow now') ...")
    child.expect_exact("captain is working")  # the running indicator
    started = time.monotonic()
    child.sendintr()
    child.expect_exact("[captain] slow(query='call slow now') -> cancelled")
    child.expect_exact("cancelled (the conversation before this turn is kept)")
    child.expect_exact(PROMPT)
    assert time.monotonic() - started < 10  # the 60 s sibling was abandoned
    ask(child, "what do you remember", "earlier: remember me")
    child.sendline("/quit")
    assert finish(child) == 0


def test_ctrl_c_at_the_prompt_clears_the_line(spawn: object) -> None:
    child = spawn("--model", "recall")  # type: ignore[operator]
    child.expect_exact(PROMPT)
    child.send("half a thought")
    child.expect_exact("half a thought")  # on the screen: prompt-toolkit has the line
    child.sendintr()
    child.expect_exact(PROMPT)
    ask(child, "fresh", "earlier: nothing")  # the dropped line never reached the captain
    child.sendcontrol("d")
    assert finish(child) == 0


def test_clear_forgets_the_conversation(spawn: object) -> None:
    child = spawn("--model", "recall")  # type: ignore[operator]
    child.expect_exact(PROMPT)
    ask(child, "first", "earlier: nothing")
    ask(child, "second", "earlier: first")
    ask(child, "/clear", "conversation cleared")
    ask(child, "third", "earlier: nothing")
    child.sendline("/exit")
    assert finish(child) == 0


def test_history_is_kept_across_runs(spawn: object, crew_env: dict[str, str]) -> None:
    child = spawn()  # type: ignore[operator]
    child.expect_exact(PROMPT)
    ask(child, "echo from the first run", "echo got: echo from the first run")
    child.sendline("/exit")
    assert finish(child) == 0
    history = Path(crew_env["SHIPMATES_HOME"]) / "state" / "history"
    assert "echo from the first run" in history.read_text()

    child = spawn()  # type: ignore[operator]
    child.expect_exact(PROMPT)
    child.send("\x1b[A\x1b[A")  # Up twice: past /exit to the turn
    child.expect_exact("echo from the first run")
    child.send("\r")
    child.expect_exact("echo got: echo from the first run")
    child.expect_exact(PROMPT)
    child.send("echo fr")  # auto-suggestion from history; Right arrow accepts it
    child.expect_exact("om the first run")  # the suggestion, shown after the typed text
    child.send("\x1b[C")
    child.expect_exact("om the first run")  # drawn again, now as part of the line
    child.send("\r")
    child.expect_exact("echo got: echo from the first run")
    child.expect_exact(PROMPT)
    child.send("\x12")  # Ctrl-R: reverse search through the history
    child.expect_exact("(reverse-i-search)")
    child.send("first run")
    child.expect_exact("first run': echo from the ")  # the search found the turn
    child.send("\r")  # accept the match into the line
    child.expect_exact(PROMPT + " echo from the first run")
    child.send("\r")
    child.expect_exact("echo got: echo from the first run")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0


def test_tab_completes_commands_and_agent_names(spawn: object) -> None:
    child = spawn("--model", "recall")  # type: ignore[operator]
    child.expect_exact(PROMPT)
    child.send("/he")
    child.expect_exact(" /help ")  # the completion menu, computed while typing
    child.send("\t")
    child.expect_exact("lp")  # the completion inserted
    child.send("\r")
    child.expect_exact("this list")  # /help ran
    child.expect_exact(PROMPT)
    child.send("call ec")
    child.expect_exact("call ec")
    child.send("\t")
    child.expect_exact("ho")  # the completion inserted
    child.send(" hi\r")
    child.expect_exact("tool said: echo got: call echo hi")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0


def test_approve_asks_before_each_call(spawn: object) -> None:
    child = spawn("--model", "recall", "--approve")  # type: ignore[operator]
    child.expect_exact(PROMPT)
    child.sendline("call echo one")
    child.expect_exact(
        "approve? captain wants to delegate to sibling echo(query='call echo one') from shipmates-echo 0.1.0"
    )
    child.expect_exact("run it?")
    child.sendline("y")
    child.expect_exact("tool said: echo got: call echo one")
    child.expect_exact(PROMPT)
    child.sendline("call echo two")
    child.expect_exact("run it?")
    child.sendline("n")
    child.expect_exact("refused: echo")
    child.expect_exact("tool said: error: the user refused this call")
    child.expect_exact(PROMPT)
    child.sendline("call echo cancel me")
    child.expect_exact("run it?")
    child.sendintr()  # Ctrl-C at the question cancels the whole turn
    child.expect_exact("cancelled (the conversation before this turn is kept)")
    child.expect_exact(PROMPT)
    ask(child, "/approve off", "approve off")
    ask(child, "call echo three", "tool said: echo got: call echo three")
    child.sendline("/exit")
    assert finish(child) == 0


def test_sigint_when_piped_cancels_the_turn_then_exits_130_when_idle(crew_env: dict[str, str]) -> None:
    import signal
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "shipmates", "chat", "--model", "recall"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=crew_env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write("first\ncall slow now\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "earlier: nothing\n"
        while "[captain] slow(query='call slow now') ..." not in proc.stderr.readline():
            pass
        proc.send_signal(signal.SIGINT)
        while "cancelled (the conversation" not in proc.stderr.readline():
            pass
        proc.stdin.write("after\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "earlier: first\n"
        proc.send_signal(signal.SIGINT)  # idle, waiting for input: leave at once
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
