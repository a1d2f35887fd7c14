"""Issue 8 leftovers: one status-line format for siblings and plugins, one way to dump records,
listings read a sibling through its spec, and the start-up gc pause is public for plugins."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
import shipmates.plugin as api
from shipmates import Provenance
from shipmates._cli._main import main
from shipmates._crew._records import AgentRecord
from shipmates._plugins._host import PluginRecord


def test_siblings_and_plugins_share_one_status_line() -> None:
    prov = Provenance("entry-point", "shipmates-fib", "0.1.0", "shipmates_fib:build_agent")
    sibling = AgentRecord("fib", prov, "failed", "it broke")
    plugin = PluginRecord("nats", "shipmates-nats", "0.1.0", "shipmates_nats.plugin", "failed", "it broke")
    assert sibling.one_line() == (
        "fib (shipmates-fib 0.1.0, entry point fib = shipmates_fib:build_agent): failed: it broke"
    )
    assert plugin.one_line() == (
        "plugin nats (shipmates-nats 0.1.0, entry point nats = shipmates_nats.plugin): failed: it broke"
    )
    assert PluginRecord("x", builtin=True).one_line() == "plugin x (built-in): ok"


def test_records_dump_every_field() -> None:
    prov = Provenance("remote", location="nats://127.0.0.1:4222")
    assert AgentRecord("a", prov).as_dict() == {
        "name": "a",
        "status": "ok",
        "reason": None,
        "origin": "remote",
        "distribution": None,
        "version": None,
        "entry_point": None,
        "location": "nats://127.0.0.1:4222",
        "load_seconds": None,
        "instances": [],
    }
    record = PluginRecord("p", hooks=["register_agents"])
    data = record.as_dict()
    assert list(data) == [
        "name",
        "distribution",
        "version",
        "entry_point",
        "status",
        "reason",
        "hooks",
        "load_seconds",
        "builtin",
    ]
    data["hooks"].append("changed")
    assert record.hooks == ["register_agents"]  # a copy


def test_agents_load_json_reads_the_sibling_once(fake_site: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = """
class Counting:
    name = "counting"
    reads = 0
    tools = ["count"]

    @property
    def description(self):
        type(self).reads += 1
        return f"read {type(self).reads} times"

    def invoke(self, query):
        return query


def build_agent():
    return Counting()
"""
    fake_site.sibling("counting", code=code)
    assert main(["agents", "--load", "--json", "--only", "counting"]) == 0
    rows = json.loads(capsys.readouterr().out)
    (row,) = [r for r in rows if r["status"] == "ok"]
    assert (row["description"], row["tools"]) == ("read 1 times", ["count"])  # from the spec


def test_the_start_up_gc_pause_is_public_for_plugins() -> None:
    assert "GcPause" in api.__all__
    was = gc.isenabled()
    with api.GcPause() as pause:
        assert pause.active == was and not gc.isenabled()
    assert gc.isenabled() == was
    gc.unfreeze()


def test_the_status_line_strips_what_a_package_wrote() -> None:
    prov = Provenance("entry-point", "evil\x1b]0;pwned\x07", "1.0")
    line = AgentRecord("evil", prov, "failed", "import raised \x1b[2Jboom").one_line()
    assert line == "evil (evil 1.0): failed: import raised boom"
