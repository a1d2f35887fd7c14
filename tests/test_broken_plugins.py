"""One environment with every kind of broken sibling and plugin installed at once, from real wheels.

The captain still starts, every failure (a raising attribute included) is reported with its
distribution and version, what they print at import stays off stdout, the
healthy siblings work; strict mode re-raises; allow/deny lists pick what loads.
"""

from __future__ import annotations

import json

import pytest
from support import PackageSpec, Venv, plugin_spec, sibling_spec

pytestmark = pytest.mark.slow

MISMATCH = """
class Parrot:
    name = "polly"
    description = "repeats"

    def invoke(self, query):
        return query


def build_agent():
    return Parrot()
"""

FICKLE = """
class Fickle:
    description = "cannot say its name"

    @property
    def name(self):
        raise RuntimeError("fickle forgot its name")

    def invoke(self, query):
        return query


def build_agent():
    return Fickle()
"""

BLABBER_PLUGIN = """
import sys

print("blabber plugin printing at import")
sys.stdout.write("blabber plugin writing at import\\n")
"""

HARBOUR_PLUGIN = """
from shipmates import hookimpl


class Pilot:
    name = "pilot"
    description = "Guides ships into the harbour."

    def invoke(self, query):
        return "pilot guides: " + query


@hookimpl
def register_agents(register):
    register(Pilot)
"""


def specs() -> list[PackageSpec]:
    return [
        sibling_spec(
            "compass", description="Finds the way north.", reply="compass points north for: {query}"
        ),
        sibling_spec("lantern", reply="lantern shines on: {query}"),
        sibling_spec("ghost", value="shipmates_ghost_gone:build_agent", version="0.0.1"),
        sibling_spec("kraken", code="raise RuntimeError('kraken woke up')", version="6.6.6"),
        sibling_spec("siren", code="def build_agent():\n    raise ValueError('siren sang')", version="1.1.0"),
        sibling_spec("barnacle", code="def build_agent():\n    return {'name': 'barnacle'}", version="0.4.0"),
        sibling_spec("parrot", code=MISMATCH, version="2.0.0"),
        sibling_spec("bad name!", module="shipmates_bad_name", dist="shipmates-bad-name", version="0.9.0"),
        sibling_spec("fickle", code=FICKLE, version="3.1.4"),
        sibling_spec("twin", dist="twin-a", module="twin_a", version="1.0", reply="twin a: {query}"),
        sibling_spec("twin", dist="twin-b", module="twin_b", version="2.0", reply="twin b: {query}"),
        plugin_spec("leaky", "raise ImportError('leaky plugin is broken')", version="0.3.0"),
        plugin_spec("harbour", HARBOUR_PLUGIN, version="0.5.0"),
        plugin_spec("blabber", BLABBER_PLUGIN, version="0.2.0"),
    ]


FAILED = {
    "ghost": ("shipmates-ghost", "0.0.1", "module 'shipmates_ghost_gone' is not installed"),
    "kraken": ("shipmates-kraken", "6.6.6", "RuntimeError: kraken woke up"),
    "siren": ("shipmates-siren", "1.1.0", "ValueError: siren sang"),
    "barnacle": ("shipmates-barnacle", "0.4.0", "not a sibling"),
    "parrot": ("shipmates-parrot", "2.0.0", "named 'polly' but is registered as 'parrot'"),
    "bad name!": ("shipmates-bad-name", "0.9.0", "invalid agent name 'bad name!'"),
    "fickle": ("shipmates-fickle", "3.1.4", "reading its 'name' attribute raised RuntimeError: fickle"),
}

CAPTAIN = r"""
import asyncio, json
from shipmates import Agent, absorb_crew, discover
from shipmates._plugins._host import list_plugins

d = discover()
captain = Agent("captain")
report = absorb_crew(captain, d)
turns = {q: captain.invoke(q) for q in ("compass to the harbour", "lantern please", "pilot the ship")}
print(json.dumps({
    "records": [[r.name, r.status, r.provenance.distribution, r.provenance.version, r.one_line()] for r in d],
    "plugins": [r.as_dict() for r in list_plugins()],
    "absorbed": report.absorbed,
    "turns": turns,
}))
"""

NAMES = "import json, shipmates; print(json.dumps(sorted(shipmates.discover().agents)))"


@pytest.fixture(scope="module")
def broken_env(tmp_path_factory, wheel_builder, shipmates_wheel, site_overlay) -> Venv:
    from support import create_venv, write_project

    root = tmp_path_factory.mktemp("broken")
    wheels = wheel_builder.build(*(write_project(spec, root / "projects") for spec in specs()))
    venv = create_venv(root / "venv", overlay=site_overlay)
    venv.install(shipmates_wheel, *wheels)
    return venv


def test_captain_starts_reports_every_failure_and_healthy_siblings_work(broken_env: Venv) -> None:
    data = broken_env.run_json(CAPTAIN)
    records = {(r[0], r[2]): r for r in data["records"]}
    for name, (dist, version, reason) in FAILED.items():
        _, status, r_dist, r_version, line = records[(name, dist)]
        assert (status, r_dist, r_version) == ("failed", dist, version), line
        assert reason in line and f"{dist} {version}" in line and "\n" not in line
    for dist, other in (("twin-a", "twin-b 2.0"), ("twin-b", "twin-a 1.0")):
        _, status, _, _, line = records[("twin", dist)]
        assert status == "conflict" and other in line and "SHIPMATES_AGENTS=" in line
    assert records[("pilot", "shipmates-plugin-harbour")][1] == "ok"  # contributed by a pluggy plugin

    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["leaky"]["status"] == "failed"
    assert (plugins["leaky"]["distribution"], plugins["leaky"]["version"]) == (
        "shipmates-plugin-leaky",
        "0.3.0",
    )
    assert "ImportError: leaky plugin is broken" in plugins["leaky"]["reason"]
    assert plugins["harbour"]["status"] == "ok" and plugins["harbour"]["hooks"] == ["register_agents"]

    assert data["absorbed"] == ["compass", "lantern", "pilot"]
    assert data["turns"] == {
        "compass to the harbour": "compass points north for: compass to the harbour",
        "lantern please": "lantern shines on: lantern please",
        "pilot the ship": "pilot guides: pilot the ship",
    }


def test_the_cli_still_lists_and_answers(broken_env: Venv) -> None:
    listing = broken_env.run_command([broken_env.bin / "shipmates", "agents", "--json", "--load"], check=True)
    rows = {(row["name"], row["distribution"]): row for row in json.loads(listing.stdout)}
    assert rows[("kraken", "shipmates-kraken")]["status"] == "failed"
    assert rows[("compass", "shipmates-compass")]["status"] == "ok"
    assert rows[("fickle", "shipmates-fickle")]["status"] == "failed"
    assert "blabber plugin printing at import" in listing.stderr  # stdout stays JSON
    once = broken_env.run_command(
        [broken_env.bin / "shipmates", "chat", "--once", "compass north"], check=True
    )
    assert once.stdout == "compass points north for: compass north\n"
    assert "blabber plugin writing at import" in once.stderr


def test_strict_mode_reraises_the_first_failure(broken_env: Venv) -> None:
    proc = broken_env.run("import shipmates; shipmates.discover()", env={"SHIPMATES_STRICT": "1"})
    assert proc.returncode != 0
    assert "shipmates._errors.PluginLoadError" in proc.stderr
    assert "The above exception was the direct cause of the following exception" in proc.stderr
    # Only siblings now: the first failing one in name order re-raises with its own traceback.
    proc = broken_env.run(
        "import shipmates; shipmates.discover()", env={"SHIPMATES_STRICT": "1", "SHIPMATES_PLUGINS": ""}
    )
    assert proc.returncode != 0
    assert "PluginLoadError: bad name!" in proc.stderr  # invalid names are checked first, without import


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SHIPMATES_AGENTS": "compass,twin-b"}, ["compass", "twin"]),
        ({"SHIPMATES_AGENTS": "shipmates_lantern"}, ["lantern"]),
        ({"SHIPMATES_AGENTS": ""}, []),
        ({"SHIPMATES_EXCLUDE_AGENTS": "twin-a,lantern", "SHIPMATES_PLUGINS": ""}, ["compass", "twin"]),
        ({"SHIPMATES_EXCLUDE_AGENTS": "shipmates-plugin-harbour,compass"}, ["lantern"]),
    ],
)
def test_allow_and_deny_lists(broken_env: Venv, env: dict[str, str], expected: list[str]) -> None:
    assert broken_env.run_json(NAMES, env=env) == expected


def test_listing_imports_no_sibling_module(broken_env: Venv) -> None:
    modules = sorted({spec.module for spec in specs()} | {"shipmates_ghost_gone"})
    code = (
        f"import json, sys, shipmates\nmodules = {modules!r}\n"
        "d = shipmates.discover(load=False)\n"
        "print(json.dumps([len(d.records), sorted(m for m in sys.modules if m.split('.')[0] in modules)]))"
    )
    count, imported = broken_env.run_json(code, env={"SHIPMATES_PLUGINS": ""})
    assert count == 11 and imported == []
