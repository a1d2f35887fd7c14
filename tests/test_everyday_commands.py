"""The everyday subcommands: install/uninstall into shipmates' own Python, models, logs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_install_and_uninstall_go_to_shipmates_python_and_name_the_crew_changes(
    make_sibling_package, wheel_builder, throwaway_venv
):
    venv = throwaway_venv()
    (wheel,) = wheel_builder.build(make_sibling_package("beacon", version="1.2.0"))
    shipmates = [str(venv.python), "-m", "shipmates"]

    # PATH has no venv first: a bare `pip` would be another interpreter's; this one must not care.
    installed = venv.run_command([*shipmates, "install", str(wheel)], env={"PIP_NO_INDEX": "1"}, timeout=300)
    assert installed.returncode == 0, installed.stderr
    assert "joined the crew: beacon (shipmates-beacon 1.2.0)" in installed.stdout
    assert venv.run_json(
        "import json, shipmates; print(json.dumps(sorted(shipmates.discover(load=False).agents)))"
    ) == ["beacon"]

    removed = venv.run_command([*shipmates, "uninstall", "shipmates-beacon"], timeout=300)
    assert removed.returncode == 0, removed.stderr
    assert "left the crew: beacon (shipmates-beacon 1.2.0)" in removed.stdout


def test_a_failed_install_says_the_crew_is_unchanged(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shipmates", "install", str(tmp_path / "missing-0.1-py3-none-any.whl")],
        capture_output=True,
        text=True,
        env={**_env(tmp_path), "PIP_NO_INDEX": "1"},
        timeout=120,
    )
    assert proc.returncode != 0
    assert "the crew is unchanged" in proc.stderr


def _env(home: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env["SHIPMATES_HOME"] = str(home)
    return env


def _shipmates(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipmates", *args], capture_output=True, text=True, env=_env(home), timeout=60
    )


def test_models_lists_the_builtin_router_aliases_and_the_default(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[models.local]\nmodel = "openai/qwen-1.5b"\napi_base = "http://127.0.0.1:9/v1"\n'
    )
    listed = _shipmates(tmp_path, "models")
    assert listed.returncode == 0, listed.stderr
    assert "offline (aliases: router)" in listed.stdout
    assert "local: alias of openai/qwen-1.5b, api_base http://127.0.0.1:9/v1 (config)" in listed.stdout
    assert "default: offline (from built in)" in listed.stdout

    assert _shipmates(tmp_path, "models", "default", "local").returncode == 0
    assert f"default: local (from {tmp_path / 'config.toml'})" in _shipmates(tmp_path, "models").stdout


def test_a_broken_config_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[models.local]\ntimeout = 5\n")
    proc = _shipmates(tmp_path, "models")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"error: {tmp_path / 'config.toml'}: [models.local]: model must be" in proc.stderr


def test_logs_lists_turns_and_refuses_an_unknown_conversation(tmp_path: Path) -> None:
    from shipmates._cli._chat_log import ChatLog

    log = ChatLog(tmp_path / "state" / "logs.db")
    cid = log.start("captain", "offline")
    log.record(
        cid,
        prompt="fib(8)?",
        model="offline",
        started=0,
        duration=0.25,
        answer="21\x1b]0;pwned\x07",
        tool_calls=[
            {
                "tool": "fib",
                "depth": 0,
                "distribution": "shipmates-fib",
                "version": "0.1.0",
                "status": "ok",
                "duration": 0.01,
            }
        ],
    )
    log.close()

    shown = _shipmates(tmp_path, "logs")
    assert shown.returncode == 0, shown.stderr
    assert f"conversation {cid}" in shown.stdout and "> fib(8)?" in shown.stdout
    assert "fib (shipmates-fib 0.1.0): ok" in shown.stdout
    assert "21" in shown.stdout and "\x1b" not in shown.stdout  # model text never reaches a terminal raw

    as_json = json.loads(_shipmates(tmp_path, "logs", "--json", "--cid", cid).stdout)
    assert [t["prompt"] for t in as_json] == ["fib(8)?"]

    unknown = _shipmates(tmp_path, "logs", "--cid", "nope")
    assert unknown.returncode == 2 and "no conversation 'nope'" in unknown.stderr
