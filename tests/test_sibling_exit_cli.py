"""A sibling that calls sys.exit() in a real chat: the turn reports it, the REPL goes on.

Through real seams: a distribution written on disk, ``python -m shipmates chat`` piped and on
a pseudo-terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import sibling_spec, write_dist_info
from support.pty import PROMPT, ask, finish, repl_spawner

QUITTER = """
import sys


class Quitter:
    name = "quitter"
    description = "Quits the whole program when asked to quit."

    def invoke(self, query):
        sys.exit(3)


def build_agent():
    return Quitter()
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    write_dist_info(sibling_spec("quitter", code=QUITTER), path)
    write_dist_info(sibling_spec("echo"), path)
    return path


def _env(site: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "SHIPMATES_AGENTS"}}
    env["PYTHONPATH"] = str(site)
    return env


def test_piped_chat_survives_a_sibling_calling_sys_exit(site: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shipmates", "chat"],
        input="quitter please\necho after\n",
        capture_output=True,
        text=True,
        env=_env(site),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert "sibling 'quitter' (shipmates-quitter 0.1.0) tried to end the process (SystemExit: 3)" in first
    assert second == "echo got: echo after"  # the next turn runs in the same process
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_pty_chat_survives_a_sibling_calling_sys_exit(site: Path) -> None:
    with repl_spawner(_env(site)) as start:
        child = start()
        child.expect_exact(PROMPT)
        ask(child, "quitter please", "tried to end the process (SystemExit: 3)")
        ask(child, "echo after", "echo got: echo after")
        child.sendline("/exit")
        assert finish(child) == 0
