"""The demo of the Kotlin original, piped: the demo crew installed from real wheels in a fresh venv.

``printf "fib(8)\\nfactor 60\\nbye\\n" | shipmates chat --captain fib`` answers 21 with the fib
captain's own tool, factors 60 through the factor sibling, and ends at ``bye`` through the exit
sibling (its tool raises EndSession: the session ends cleanly with status 0).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_venv(tmp_path_factory: pytest.TempPathFactory, wheel_builder: Any, site_overlay: Any) -> Any:
    from support import create_venv

    venv = create_venv(tmp_path_factory.mktemp("demo") / "venv", overlay=site_overlay)
    venv.install(wheel_builder.shipmates(), *wheel_builder.demo("fib", "factor", "exit"))
    return venv


def test_piped_demo(demo_venv: Any) -> None:
    proc = demo_venv.run_command(
        [demo_venv.bin / "shipmates", "chat", "--captain", "fib"],
        stdin="fib(8)\nfactor 60\nbye\nfib(9)\n",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["21", "2, 2, 3, 5", "Goodbye."]  # nothing after bye
    trace = proc.stderr.splitlines()
    assert "captain: fib (shipmates-fib 0.1.0) | model: offline" in proc.stderr
    assert "crew: exit, factor" in trace
    assert "[fib] fibonacci(n=8) -> 21" in trace
    assert "  [factor] factor_number(n=60) -> 2, 2, 3, 5" in trace
    assert trace.index("  [factor] factor_number(n=60) -> 2, 2, 3, 5") < trace.index(
        "[fib] factor(query='factor 60') -> 2, 2, 3, 5"
    )
    assert any(line.startswith("  [exit] exit_app()") for line in trace)


def test_general_captain_and_listing(demo_venv: Any) -> None:
    run: Callable[..., Any] = demo_venv.run_command
    proc = run([demo_venv.bin / "shipmates", "agents", "--json"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert {name: row["distribution"] for name, row in rows.items()} == {
        "exit": "shipmates-exit",
        "factor": "shipmates-factor",
        "fib": "shipmates-fib",
    }
    proc = run([demo_venv.python, "-m", "shipmates", "--once", "factor 84"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2, 2, 3, 7\n"
    proc = run([demo_venv.bin / "shipmates", "--captain", "nobody"], timeout=60)
    assert proc.returncode == 2
    assert "discovered agents: exit, factor, fib" in proc.stderr
