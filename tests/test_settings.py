"""Every SHIPMATES_* setting is validated when read (issue 9 point 7, issue 8 point 9).

A bad value is a :class:`shipmates.SettingsError` naming the variable, the value and what is
accepted, through the Python API as well as the command line (exit status 2, one line, no
traceback), never a silent fallback or a timeout blamed on a sibling.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import shipmates
from shipmates import Agent, ModelResponse, SettingsError, ToolCall
from shipmates._settings import read_settings

CORE = Path(shipmates.__file__).parent

BAD_VALUES = [
    ("SHIPMATES_TOOL_TIMEOUT", "nan", "a number of seconds > 0"),
    ("SHIPMATES_TOOL_TIMEOUT", "inf", "a number of seconds > 0"),
    ("SHIPMATES_TOOL_TIMEOUT", "0", "a number of seconds > 0"),
    ("SHIPMATES_TOOL_THREADS", "-1", "a whole number >= 0"),
    ("SHIPMATES_LOAD_TIMEOUT", "nan", "a number of seconds > 0"),
    ("SHIPMATES_MAX_RESULT_CHARS", "0", "a whole number >= 1"),
    ("SHIPMATES_MAX_RESULT_CHARS", "lots", "a whole number >= 1"),
    ("SHIPMATES_STRICT", "maybe", "one of 1, on, true, yes or 0, false, no, off"),
    ("SHIPMATES_DISCOVERY_CACHE", "sometimes", "one of 1, on, true, yes"),
    ("SHIPMATES_TRIAGE", "maybe", "one of 1, on, true, yes"),
]


@pytest.mark.parametrize(("variable", "value", "expected"), BAD_VALUES)
def test_read_settings_names_the_variable_the_value_and_the_range(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        read_settings({variable: value})
    assert str(raised.value).startswith(f"{variable}={value!r} is not valid: expected {expected}")


def test_good_values_are_read_into_the_settings() -> None:
    settings = read_settings(
        {
            "SHIPMATES_TOOL_TIMEOUT": "2.5",
            "SHIPMATES_TOOL_THREADS": "4",
            "SHIPMATES_LOAD_TIMEOUT": "30",
            "SHIPMATES_MAX_RESULT_CHARS": "5000",
            "SHIPMATES_STRICT": "yes",
            "SHIPMATES_DISCOVERY_CACHE": "off",
            "SHIPMATES_TRIAGE": "on",
        }
    )
    assert settings.triage is True
    assert read_settings({"SHIPMATES_TRIAGE": "on"}, triage=False).triage is False  # the flag wins
    assert (settings.tool_timeout, settings.tool_threads, settings.load_timeout) == (2.5, 4, 30.0)
    assert (settings.max_result_chars, settings.strict, settings.discovery_cache) == (5000, True, False)
    defaults = read_settings({})
    assert (defaults.tool_timeout, defaults.tool_threads, defaults.load_timeout) == (None, None, None)
    assert defaults.triage is None  # not set: as the model's config alias says


def test_settings_error_is_public() -> None:
    assert "SettingsError" in shipmates.__all__
    assert issubclass(shipmates.SettingsError, shipmates.ShipmatesError)


def test_a_bad_tool_timeout_fails_when_the_agent_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("nan", "inf", "0", "-3"):
        monkeypatch.setenv("SHIPMATES_TOOL_TIMEOUT", value)
        with pytest.raises(SettingsError, match=rf"SHIPMATES_TOOL_TIMEOUT='{re.escape(value)}' is not valid"):
            Agent("a")


def slow_lookup(query: str) -> str:
    """Look something up (a sync tool: it runs in the tool threads)."""
    return f"found {query}"


class CallsTheTool:
    model_id = "calls-the-tool"

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelResponse:
        if messages[-1]["role"] == "tool":
            return ModelResponse(content=messages[-1]["content"])
        return ModelResponse(tool_calls=[ToolCall("c1", "slow_lookup", '{"query": "x"}')])


def test_bad_tool_threads_is_a_settings_error_from_invoke_not_a_tool_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shipmates import _runtime

    monkeypatch.setattr(_runtime, "_pool", None)  # the pool is sized when first needed
    monkeypatch.setenv("SHIPMATES_TOOL_THREADS", "-1")
    agent = Agent("a", model=CallsTheTool(), tools=[slow_lookup])
    with pytest.raises(SettingsError, match=r"SHIPMATES_TOOL_THREADS='-1' is not valid"):
        agent.invoke("look it up")
    monkeypatch.delenv("SHIPMATES_TOOL_THREADS")
    assert agent.invoke("look it up") == "found x"  # fixed: the next call works


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SHIPMATES_TOOL_THREADS", "-1"), ("SHIPMATES_TOOL_TIMEOUT", "nan"), ("SHIPMATES_LOAD_TIMEOUT", "inf")],
)
def test_the_command_shows_one_line_and_exits_2(tmp_path: Path, variable: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env.update({"SHIPMATES_HOME": str(tmp_path), "SHIPMATES_AGENTS": "", variable: value})
    for argv in (["chat", "--once", "hi"], ["agents", "--load"]):
        proc = subprocess.run(
            [sys.executable, "-m", "shipmates", *argv], capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert proc.stderr.startswith(f"error: {variable}={value!r} is not valid"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


# Modules that may read os.environ itself: the settings module, the selector (it is handed the
# environment to read its list variables), where files go (paths and the config file), terminal
# conventions (NO_COLOR, COLUMNS) and litellm's own switch. Everything else asks _settings.
ENVIRON_READERS = {
    "_settings.py",
    "_crew/_selector.py",
    "_paths.py",
    "_config.py",
    "_cli/_repl.py",
    "_cli/_main.py",
    "_models/_litellm.py",
    "_models/_registry.py",
}


def test_settings_are_read_through_the_settings_module() -> None:
    readers = {
        path.relative_to(CORE).as_posix()
        for path in CORE.rglob("*.py")
        if "os.environ" in path.read_text(encoding="utf-8")
    }
    outside = sorted(readers - ENVIRON_READERS)
    assert not outside, f"read os.environ outside _settings: {outside}"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, -1.5])
def test_an_explicit_tool_timeout_is_checked_too(value: float) -> None:
    with pytest.raises(ValueError, match="tool_timeout must be a finite number of seconds > 0"):
        Agent("a", tool_timeout=value)
    assert Agent("a", tool_timeout=2).tool_timeout == 2.0
