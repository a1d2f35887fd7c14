"""A failing hook is reported once per plugin and hook, in one line (issue 9 point 10b).

The line names the plugin, its distribution and version, and the hook; the traceback follows
only with ``-v`` or ``SHIPMATES_STRICT=1``. An installed plugin whose ``tool_call_finished``
raises is run through the real command, with a tool call on each of three turns.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import plugin_spec, sibling_spec, write_dist_info

FAILING_OBSERVER = """
from shipmates import hookimpl


@hookimpl
def tool_call_finished(event):
    raise RuntimeError("the observer fell over")
"""

LINE = (
    "plugin 'observer' (shipmates-plugin-observer 1.2.3) failed in hook tool_call_finished: "
    "RuntimeError: the observer fell over"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    write_dist_info(sibling_spec("echo", reply="echo got: {query}"), site)
    write_dist_info(plugin_spec("observer", FAILING_OBSERVER, version="1.2.3"), site)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPMATES_", "PYTHON"))}
    env.update(PYTHONPATH=str(site), SHIPMATES_HOME=str(tmp_path / "home"), SHIPMATES_AGENTS="echo")
    return env


def chat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipmates", "chat", "--no-trace", *args],
        input="echo one\necho two\necho three\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_failing_hook_is_reported_once_in_one_line(env: dict[str, str]) -> None:
    proc = chat(env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["echo got: echo one", "echo got: echo two", "echo got: echo three"]
    lines = [line for line in proc.stderr.splitlines() if "failed in hook" in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(LINE)
    assert "-v or SHIPMATES_STRICT=1 shows the traceback" in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("how", ["-v", "SHIPMATES_STRICT=1"])
def test_the_traceback_comes_with_verbose_or_strict(env: dict[str, str], how: str) -> None:
    proc = chat(env, "-v") if how == "-v" else chat({**env, "SHIPMATES_STRICT": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(LINE) == 1
    assert proc.stderr.count("Traceback (most recent call last)") == 1
    assert 'raise RuntimeError("the observer fell over")' in proc.stderr
