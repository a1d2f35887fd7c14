"""The demo crew (fib, factor, exit) from real wheels in a fresh venv: discovered, invoked, captained.

The piped REPL demo itself is in test_piped_demo.py; this checks the distributions: metadata,
discovery records, each sibling on its own, a general captain delegating to each, and each
demo agent serving as the captain of the other two.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

CREW = ("exit", "factor", "fib")


@pytest.fixture(scope="module")
def crew_venv(tmp_path_factory: pytest.TempPathFactory, wheel_builder: Any, site_overlay: Any) -> Any:
    from support import create_venv

    venv = create_venv(tmp_path_factory.mktemp("crew") / "venv", overlay=site_overlay)
    venv.install(wheel_builder.shipmates(), *wheel_builder.demo(*CREW))
    return venv


DISCOVERY = """
import json, shipmates
d = shipmates.discover()
rows = []
for r in d.records:
    row = r.as_dict()
    row["type"] = type(r.sibling).__name__
    row["tools"] = [t.name for t in getattr(r.sibling, "tools", [])]
    row["description"] = r.sibling.description
    rows.append(row)
print(json.dumps(rows))
"""


def test_discovery_finds_the_three_distributions(crew_venv: Any) -> None:
    rows = crew_venv.run_json(DISCOVERY)
    assert [row["name"] for row in rows] == list(CREW)
    tools = {"exit": ["exit_app"], "factor": ["factor_number"], "fib": ["fibonacci"]}
    for row in rows:
        name = row["name"]
        assert row["status"] == "ok", row
        assert row["origin"] == "entry-point"
        assert row["distribution"] == f"shipmates-{name}"
        assert row["version"] == "0.1.0"
        assert row["entry_point"] == f"shipmates_{name}:build_agent"
        assert row["type"] == "Agent"
        assert row["tools"] == tools[name]
        assert row["description"]


def test_wheels_ship_py_typed(crew_venv: Any) -> None:
    for name in CREW:
        assert (crew_venv.site_packages / f"shipmates_{name}" / "py.typed").is_file()


SIBLINGS = """
import json, shipmates
crew = shipmates.discover().siblings
out = {"fib": crew["fib"].invoke("fib(8)"), "factor": crew["factor"].invoke("factor 60")}
try:
    crew["exit"].invoke("bye")
except shipmates.EndSession as exc:
    out["exit"] = "EndSession: " + exc.message
print(json.dumps(out))
"""


def test_each_sibling_answers_on_its_own(crew_venv: Any) -> None:
    expected = {"fib": "21", "factor": "2, 2, 3, 5", "exit": "EndSession: Goodbye."}
    assert crew_venv.run_json(SIBLINGS) == expected


CAPTAIN = """
import asyncio, json, shipmates

captain = shipmates.Agent(name="captain", description="Delegates to the crew.")
report = shipmates.absorb_crew(captain, shipmates.discover())
out = {"absorbed": sorted(report.absorbed), "rejected": report.lines()}

async def turn(text):
    try:
        result = await captain.arun(text)
    except shipmates.EndSession as exc:
        return {"ended": exc.message}
    return {"output": result.output, "calls": [[e.tool, e.is_delegation, e.status] for e in result.events]}

for text in ["fib(8)", "factor 60", "bye"]:
    out[text] = asyncio.run(turn(text))
print(json.dumps(out))
"""


def test_a_general_captain_delegates_to_each(crew_venv: Any) -> None:
    out = crew_venv.run_json(CAPTAIN)
    assert out["absorbed"] == list(CREW)
    assert out["rejected"] == []
    assert out["fib(8)"] == {"output": "21", "calls": [["fib", True, "ok"]]}
    assert out["factor 60"] == {"output": "2, 2, 3, 5", "calls": [["factor", True, "ok"]]}
    assert out["bye"] == {"ended": "Goodbye."}


@pytest.mark.parametrize(
    ("captain", "prompt", "answer"),
    [("fib", "factor 60", "2, 2, 3, 5"), ("factor", "fib(10)", "55"), ("exit", "fib(8)", "21")],
)
def test_each_demo_agent_captains_the_others(crew_venv: Any, captain: str, prompt: str, answer: str) -> None:
    proc = crew_venv.run_command(
        [crew_venv.bin / "shipmates", "chat", "--captain", captain, "--once", prompt], timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == answer
