"""`.ci/run` runs the README's test command, with the static checks before pytest."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from support import REPO_ROOT

CI = REPO_ROOT / ".ci" / "run"


def _readme_test_command() -> list[str]:
    """The steps of the Quickstart's second command (the one CI runs)."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"# 2\. .*\n(.+)\n", readme)
    assert match, "the README's Quickstart has no command 2"
    return [step.strip() for step in match.group(1).split("&&")]


def _ci_lines() -> list[str]:
    """The script's commands: stripped lines, comments and blank lines left out."""
    lines = (line.strip() for line in CI.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_runs_every_step_of_the_readme_test_command() -> None:
    lines = [line.replace(" -q ", " ").removeprefix("exec ") for line in _ci_lines()]
    for step in _readme_test_command():
        assert step in lines, f"{step!r} from the README is not run by .ci/run"


def test_ci_checks_before_the_tests_and_passes_pytest_status_through() -> None:
    lines = _ci_lines()
    assert "set -euo pipefail" in lines
    order = [
        next(i for i, line in enumerate(lines) if needle in line)
        for needle in ("ruff check", "ruff format --check", "mypy --strict", "-m pytest")
    ]
    assert order == sorted(order)
    assert lines[-1] == "exec .venv/bin/python -m pytest"  # its status (5: no tests, too) is CI's


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_script_parses() -> None:
    done = subprocess.run(["bash", "-n", str(CI)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
