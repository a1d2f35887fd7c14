"""End to end with real packages: wheels built and pip-installed (no index) into a fresh venv.

Each test drives a subprocess in a throwaway venv that sees only shipmates, the wheels the test
installed and third-party dependencies (see tests/support/venvs.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from support import PackageSpec, Venv, sibling_spec, write_dist_info

pytestmark = pytest.mark.slow

AGENT_SIBLING = '''
"""A sibling built with shipmates itself: an Agent with one tool."""
from shipmates import Agent, tool


@tool
def tie_knot(name: str) -> str:
    """Tie the named knot."""
    return f"tied a {name}"


def build_agent():
    return Agent("anchor", "Ties knots with its tie_knot tool.", tools=[tie_knot])
'''

ASYNC_SIBLING = """
import asyncio


class Lantern:
    name = "lantern"
    description = "Signals with a lantern, asynchronously."

    async def ainvoke(self, query: str) -> str:
        await asyncio.sleep(0)
        return f"lantern signals: {query}"


LANTERN = Lantern()
"""


def crew() -> list[PackageSpec]:
    return [
        sibling_spec(
            "compass", description="Finds the way north.", reply="compass points north for: {query}"
        ),
        sibling_spec("anchor", code=AGENT_SIBLING, version="0.2.0"),
        sibling_spec("lantern", code=ASYNC_SIBLING, attr="LANTERN", dist="lantern-signals", version="1.0.0"),
    ]


SCENARIO = r"""
import asyncio, json, sys
import shipmates
from shipmates import Agent, absorb_crew, discover

listing = discover(load=False)
imported_while_listing = sorted(m for m in sys.modules if m.split(".")[0] in EXPECTED_MODULES)
pluggy_while_listing = "pluggy" in sys.modules  # no plugin installed: not even pluggy is needed
d = discover()
answers = {name: s.invoke("tie knot") if hasattr(s, "invoke") else asyncio.run(s.ainvoke("tie knot"))
           for name, s in d.siblings.items()}
captain = Agent("captain")
report = absorb_crew(captain, d)
result = asyncio.run(captain.arun("compass: which way to the harbour?"))
print(json.dumps({
    "listed": [[r.name, r.status, r.provenance.distribution, r.provenance.version] for r in listing],
    "imported_while_listing": imported_while_listing,
    "pluggy_while_listing": pluggy_while_listing,
    "loaded": [r.one_line() for r in d],
    "answers": answers,
    "absorbed": report.absorbed,
    "tools": [t.name for t in captain.tools],
    "turn": {"output": result.output, "status": result.status,
             "calls": [[e.tool, e.is_delegation, e.status] for e in result.tool_calls]},
}))
"""

NAMES = "import json, shipmates; print(json.dumps(sorted(shipmates.discover(load=False).agents)))"
# Proves a start was served from the disk cache: the metadata reader cannot even be imported.
NAMES_FROM_CACHE = "import sys; sys.modules['importlib_metadata'] = None\n" + NAMES


def backdate(*paths: Path) -> None:
    """Make path entries look untouched for a minute: scans of just-changed ones are never cached."""
    past = time.time() - 60
    for path in paths:
        os.utime(path, (past, past))


def settle(venv: Venv) -> None:
    """Backdate the venv's own path entries (cwd, site-packages, overlay, .pth-added directories)."""
    code = "import json, sys; print(json.dumps([p for p in sys.path if not p.startswith(sys.base_prefix)]))"
    entries = [Path(p or venv.path) for p in venv.run_json(code)]
    backdate(*(p for p in entries if p.exists()))


def test_three_wheels_discovered_invoked_absorbed_then_a_fourth_is_found(
    make_sibling_package, wheel_builder, throwaway_venv
):
    specs = crew()
    wheels = wheel_builder.build(*(make_sibling_package(spec) for spec in specs))
    venv = throwaway_venv(*wheels)
    modules = [spec.module for spec in specs]
    data = venv.run_json(f"EXPECTED_MODULES = {modules!r}\n" + SCENARIO)

    assert data["listed"] == [
        ["anchor", "ok", "shipmates-anchor", "0.2.0"],
        ["compass", "ok", "shipmates-compass", "0.1.0"],
        ["lantern", "ok", "lantern-signals", "1.0.0"],
    ]
    assert data["imported_while_listing"] == []
    assert data["pluggy_while_listing"] is False
    assert all(line.endswith(": ok") for line in data["loaded"]), data["loaded"]
    assert data["answers"]["compass"] == "compass points north for: tie knot"
    assert data["answers"]["lantern"] == "lantern signals: tie knot"
    assert data["answers"]["anchor"] == "tied a tie knot"  # the anchor Agent ran its own tool offline
    assert data["absorbed"] == ["anchor", "compass", "lantern"]
    assert sorted(data["tools"]) == ["anchor", "compass", "lantern"]
    turn = data["turn"]
    assert turn["status"] == "ok" and turn["calls"] == [["compass", True, "ok"]]
    assert turn["output"] == "compass points north for: compass: which way to the harbour?"

    # A later start with nothing changed is served from the disk cache...
    settle(venv)
    assert venv.run_json(NAMES) == ["anchor", "compass", "lantern"]
    assert list((venv.home / "cache").glob("entry-points-*.marshal"))
    assert venv.run_json(NAMES_FROM_CACHE) == ["anchor", "compass", "lantern"]

    # ...yet a fourth wheel installed into the same env is found on the next start.
    (fourth,) = wheel_builder.build(make_sibling_package("beacon"))
    venv.install(fourth)
    assert venv.run_json(NAMES) == ["anchor", "beacon", "compass", "lantern"]
    out = venv.run_json(
        "import json, shipmates; print(json.dumps(shipmates.discover().siblings['beacon'].invoke('x')))"
    )
    assert out == "beacon got: x"

    # And one removed is gone on the next start, even with a warm cache.
    settle(venv)
    assert venv.run_json(NAMES) == ["anchor", "beacon", "compass", "lantern"]
    venv.uninstall("shipmates-compass")
    assert venv.run_json(NAMES) == ["anchor", "beacon", "lantern"]


def test_editable_and_pth_added_siblings_are_found_and_never_stale(
    make_sibling_package, throwaway_venv, tmp_path
):
    venv = throwaway_venv()
    assert venv.run_json(NAMES) == []
    settle(venv)
    assert venv.run_json(NAMES) == []  # cache written with nothing installed

    # An editable install (PEP 660 through hatchling: a dist-info plus a .pth file).
    project = make_sibling_package("rudder")
    proc = venv.run_command(
        [
            os.environ.get("PYTHON", __import__("sys").executable),
            "-m",
            "pip",
            "--python",
            str(venv.python),
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-build-isolation",
            "-e",
            str(project),
        ],
    )
    assert proc.returncode == 0, proc.stderr
    assert venv.run_json(NAMES) == ["rudder"]
    assert (
        venv.run_json(
            "import json, shipmates; print(json.dumps(shipmates.discover().siblings['rudder'].invoke('y')))"
        )
        == "rudder got: y"
    )

    # A directory added to the path by a .pth file, then a distribution added to that directory.
    extra = tmp_path / "extra-site"
    write_dist_info(sibling_spec("keel"), extra)
    (venv.site_packages / "extra.pth").write_text(f"{extra}\n")
    assert venv.run_json(NAMES) == ["keel", "rudder"]
    settle(venv)
    assert venv.run_json(NAMES) == ["keel", "rudder"]  # writes the cache
    assert venv.run_json(NAMES_FROM_CACHE) == ["keel", "rudder"]
    write_dist_info(sibling_spec("mast"), extra)
    assert venv.run_json(NAMES) == ["keel", "mast", "rudder"]
