"""What a fast start and exit of the ``shipmates`` command must not change.

The command pauses the garbage collector while the crew is assembled and freezes the
objects start-up made, and freezes the heap again just before the process exits (so the
interpreter's last collection does not walk every object). Tools still run with the collector
on; output, atexit handlers and the exit status are unchanged; ``main(argv)`` called from a
program leaves its gc alone.
A one-shot turn on a captain whose siblings' tools go unused never imports pydantic.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SIBLING = """
import atexit
import gc
import os

from shipmates import Agent, tool


def _goodbye():
    with open(os.environ["ATEXIT_FILE"], "w") as f:
        f.write("atexit ran")


atexit.register(_goodbye)


@tool
def shout(text: str) -> str:
    '''Shout the text back in capitals.'''
    return text.upper()


@tool
def gc_state() -> str:
    '''Say whether the garbage collector is on.'''
    return "collector on" if gc.isenabled() else "collector off"


def build_agent():
    return Agent("shouter", description="Shouts what it is told.", tools=[shout, gc_state])
"""


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "shouter_sibling").mkdir(parents=True)
    (site / "shouter_sibling" / "__init__.py").write_text(textwrap.dedent(SIBLING))
    info = site / "shouter_sibling-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shouter-sibling\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[shipmates.agents]\nshouter = shouter_sibling:build_agent\n")
    return site


def _env(tmp_path: Path, site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPMATES_", "PYTHONPATH"))}
    env.update(
        SHIPMATES_HOME=str(tmp_path / "home"),
        SHIPMATES_PLUGINS="",
        PYTHONPATH=os.pathsep.join([str(site), str(REPO / "core")]),
        ATEXIT_FILE=str(tmp_path / "atexit.txt"),
        NO_COLOR="1",
    )
    return env


def test_once_prints_its_answer_runs_atexit_handlers_and_exits_0(tmp_path: Path) -> None:
    site = _site(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "shipmates", "chat", "--once", "shouter make this loud"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, site),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "SHOUTER MAKE THIS LOUD\n"
    assert "shouter" in proc.stderr  # the trace, on stderr
    assert (tmp_path / "atexit.txt").read_text() == "atexit ran"


def test_tools_run_with_the_garbage_collector_on(tmp_path: Path) -> None:
    site = _site(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "shipmates", "chat", "--captain", "shouter", "--once", "gc state"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, site),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "collector on\n"


def test_once_failure_keeps_its_exit_status_and_error(tmp_path: Path) -> None:
    site = _site(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "shipmates", "chat", "--captain", "nobody", "--once", "hi"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, site),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no agent named 'nobody'")
    assert (tmp_path / "atexit.txt").read_text() == "atexit ran"  # shouter was loaded


PROBE = """
import gc, json, sys
sys.argv = ["shipmates", *sys.argv[1:]]
from shipmates._cli._main import main
status = main()
print(json.dumps({"status": status, "frozen": gc.get_freeze_count() > 0,
                  "pydantic": "pydantic" in sys.modules}))
"""


def test_the_command_freezes_gc_only_as_it_exits(tmp_path: Path) -> None:
    site = _site(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "chat", "--once", "what is the weather"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, site),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "nothing matched" in proc.stdout
    # The shouter's tool was never used in this turn: its pydantic model was never built.
    assert json.loads(lines[-1]) == {"status": 0, "frozen": True, "pydantic": False}


def test_main_with_arguments_leaves_the_callers_gc_alone(capsys: pytest.CaptureFixture[str]) -> None:
    from shipmates._cli._main import main

    before = gc.get_freeze_count()
    with pytest.raises(SystemExit):  # --version exits through argparse
        main(["--version"])
    assert main(["agents", "--json"]) == 0
    assert gc.get_freeze_count() == before
    assert gc.isenabled()
    capsys.readouterr()


@pytest.mark.parametrize("columns", ["60", "100", None])
def test_help_text_is_what_argparse_itself_would_print(
    columns: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's formatter only skips argparse's import of shutil; the text is argparse's."""
    import argparse

    from shipmates._cli import _main as _cli

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)

    def texts() -> list[str]:
        parser = _cli.build_parser()
        out = [parser.format_help(), parser.format_usage()]
        for action in parser._subparsers._group_actions:
            for sub in action.choices.values():
                out += [sub.format_help(), sub.format_usage()]
        return out

    ours = texts()
    monkeypatch.setattr(_cli, "_HelpFormatter", argparse.HelpFormatter)
    assert ours == texts()


def test_parsing_the_command_line_does_not_import_shutil() -> None:
    code = (
        "import sys\n"
        "from shipmates._cli._main import build_parser\n"
        "build_parser().parse_args(['chat', '--once', 'hi'])\n"
        "print('shutil' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO / "core")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
