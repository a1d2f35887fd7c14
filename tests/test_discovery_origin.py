"""One distribution installed here and served remotely: a conflict the user can resolve by origin."""

from __future__ import annotations

from typing import Any

import pytest
from shipmates import Provenance, hookimpl
from shipmates._plugins._host import build_plugin_manager


class _Remote:
    def __init__(self, name: str) -> None:
        self.name = name
        self.description = f"{name}, served elsewhere"

    def invoke(self, query: str) -> str:
        return f"remote {self.name}: {query}"


@pytest.fixture
def site_and_remote(fake_site: Any) -> tuple[Any, Any]:
    fake_site.sibling("fib", dist="shipmates-fib", reply="local fib")
    served = Provenance("remote", "shipmates-fib", "0.1.0", location="nats://127.0.0.1:4222")

    class NatsLike:
        @hookimpl
        def register_agents(self, register: Any) -> None:
            register(_Remote("fib"), provenance=served, instances=["i1"])

    pm, _ = build_plugin_manager(allow=(), path=[])
    pm.register(NatsLike())
    return fake_site, pm


def test_the_conflict_says_where_each_copy_lives_and_how_to_pick_one(site_and_remote: Any) -> None:
    site, pm = site_and_remote
    d = site.discover(plugin_manager=pm)
    assert [r.status for r in d.records] == ["conflict", "conflict"]
    by_origin = {r.provenance.origin: r.reason or "" for r in d.records}
    assert "(installed here)" in by_origin["entry-point"]
    assert "(remote, nats://127.0.0.1:4222)" in by_origin["remote"]
    # The advice names an exclusion that actually keeps this copy, not the same label twice.
    assert "SHIPMATES_EXCLUDE_AGENTS=remote:shipmates-fib" in by_origin["entry-point"]
    assert "SHIPMATES_EXCLUDE_AGENTS=local:shipmates-fib" in by_origin["remote"]


@pytest.mark.parametrize(
    ("exclude", "kept_origin"),
    [("local:shipmates-fib", "remote"), ("remote:fib", "entry-point"), ("local:*", "remote")],
)
def test_excluding_by_origin_keeps_the_other_copy(
    site_and_remote: Any, exclude: str, kept_origin: str
) -> None:
    site, pm = site_and_remote
    d = site.discover(plugin_manager=pm, exclude=[exclude])
    assert [r.provenance.origin for r in d.records if r.status == "ok"] == [kept_origin]
    assert [r.status for r in d.records if r.provenance.origin != kept_origin] == ["excluded"]


def test_allow_list_by_origin(site_and_remote: Any) -> None:
    site, pm = site_and_remote
    d = site.discover(plugin_manager=pm, only=["remote:*"])
    assert d.agents["fib"].provenance.origin == "remote"
    assert d.siblings["fib"].invoke("8") == "remote fib: 8"


@pytest.mark.parametrize(("prefer", "kept_origin"), [("remote:fib", "remote"), ("local:fib", "entry-point")])
def test_shipmates_prefer_settles_the_clash_for_the_copy_it_names(
    site_and_remote: Any, monkeypatch: pytest.MonkeyPatch, prefer: str, kept_origin: str
) -> None:
    site, pm = site_and_remote
    monkeypatch.setenv("SHIPMATES_PREFER", prefer)
    d = site.discover(plugin_manager=pm)
    assert d.agents["fib"].provenance.origin == kept_origin
    (other,) = [r for r in d.records if r.provenance.origin != kept_origin]
    assert other.status == "excluded"
    assert "is preferred from" in (other.reason or "") and "SHIPMATES_PREFER" in (other.reason or "")


def test_shipmates_prefer_naming_both_copies_leaves_the_conflict(
    site_and_remote: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, pm = site_and_remote
    monkeypatch.setenv("SHIPMATES_PREFER", "fib")  # names both: nothing to settle
    assert [r.status for r in site.discover(plugin_manager=pm).records] == ["conflict", "conflict"]


def test_prefer_from_the_config_file_then_the_environment_then_the_flag(
    site_and_remote: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[agents] prefer`` in the config file settles the clash; ``SHIPMATES_PREFER`` wins over
    it, and ``--prefer`` (``discover(prefer=)``) over both."""
    import os
    from pathlib import Path

    site, pm = site_and_remote
    (Path(os.environ["SHIPMATES_HOME"]) / "config.toml").write_text('[agents]\nprefer = ["remote:fib"]\n')
    monkeypatch.delenv("SHIPMATES_PREFER", raising=False)

    def kept(**kw: Any) -> str:
        return str(site.discover(plugin_manager=pm, **kw).agents["fib"].provenance.origin)

    assert kept() == "remote"
    monkeypatch.setenv("SHIPMATES_PREFER", "local:fib")
    assert kept() == "entry-point"
    assert kept(prefer=["remote:fib"]) == "remote"
    monkeypatch.setenv("SHIPMATES_PREFER", "")  # set, even empty: the config file is not read
    assert [r.status for r in site.discover(plugin_manager=pm).records] == ["conflict", "conflict"]
