"""``shipmates install`` and ``shipmates uninstall``: pip, into the interpreter that runs shipmates.

Agents are packages, so installing one is the command a user runs most; a bare ``pip`` after a
quickstart that never activated the venv goes to another Python. These commands run
``python -m pip`` with shipmates' own interpreter, then compare the crew before and after (read
from entry points in a fresh process, nothing imported) and say who joined or left it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .._text import print_safe

_LIST_CREW = (
    "import json, shipmates; "
    "print(json.dumps({r.name: [r.provenance.distribution, r.provenance.version] "
    "for r in shipmates.discover(load=False).records}))"
)


def crew_snapshot() -> dict[str, list[str]]:
    """Every discovered sibling name -> [distribution, version], from a fresh interpreter
    (this process's entry-point view predates the install)."""
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_CREW], capture_output=True, text=True, check=False, timeout=120
    )
    if proc.returncode != 0:
        return {}
    try:
        data: Any = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    return data if isinstance(data, dict) else {}


def crew_changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """Lines saying who joined, left or changed version."""
    lines = []
    for name in sorted(after.keys() - before.keys()):
        dist, version = after[name]
        lines.append(f"joined the crew: {name} ({dist} {version})")
    for name in sorted(before.keys() - after.keys()):
        dist, version = before[name]
        lines.append(f"left the crew: {name} ({dist} {version})")
    for name in sorted(before.keys() & after.keys()):
        if before[name] != after[name]:
            lines.append(f"updated: {name} ({before[name][0]} {before[name][1]} -> {after[name][1]})")
    return lines


def run_pip(
    action: str, packages: Sequence[str], *, extra: Sequence[str] = (), out: TextIO | None = None
) -> int:
    """``python -m pip ACTION PACKAGES`` with this interpreter, then the crew's changes; pip's status."""
    out = out or sys.stdout
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        print(
            f"error: pip is not installed in {sys.executable}; add it with "
            f"`{sys.executable} -m ensurepip`, then run this again",
            file=sys.stderr,
        )
        return 1
    before = crew_snapshot()
    args = [
        sys.executable,
        "-m",
        "pip",
        action,
        *(["-y"] if action == "uninstall" else []),
        *extra,
        *packages,
    ]
    status = subprocess.run(args, check=False).returncode
    if status != 0:
        print(f"error: pip {action} failed (exit {status}); the crew is unchanged", file=sys.stderr)
        return status
    changes = crew_changes(before, crew_snapshot())
    for line in changes or [f"no sibling {'joined' if action == 'install' else 'left'} the crew"]:
        print_safe(line, out)  # names and versions come from package metadata
    return 0
