"""discover(): entry points, isolated loading, every failure kind, conflicts, allow/deny, order."""

from __future__ import annotations

import sys

import pytest
import shipmates
from shipmates import PluginLoadError, Provenance, discover, hookimpl
from shipmates._plugins._host import build_plugin_manager
from support import sibling_spec


def test_empty_environment_finds_nothing(tmp_path):
    assert discover(path=[str(tmp_path)]).records == []


def test_finds_a_registered_sibling_with_its_distribution_and_version(fake_site):
    fake_site.sibling("echo", version="1.2.3")
    d = fake_site.discover()
    record = d.agents["echo"]
    assert record.status == "ok"
    assert record.provenance == Provenance(
        "entry-point", "shipmates-echo", "1.2.3", "shipmates_echo:build_agent"
    )
    assert record.sibling.invoke("hi") == "echo got: hi"
    assert record.load_seconds is not None and record.load_seconds >= 0
    assert d.siblings == {"echo": record.sibling}


def test_entry_point_may_name_an_instance_a_class_or_a_provider(fake_site):
    code = """
        class S:
            description = "d"
            def __init__(self, name="cls"):
                self.name = name
            def invoke(self, q):
                return self.name
        INSTANCE = S("inst")
        def provider():
            return S("prov")
    """
    fake_site.sibling("inst", module="m_inst", code=code, attr="INSTANCE")
    fake_site.sibling("cls", module="m_cls", code=code, attr="S")
    fake_site.sibling("prov", module="m_prov", code=code, attr="provider")
    d = fake_site.discover()
    assert sorted(d.siblings) == ["cls", "inst", "prov"]
    assert {n: s.invoke("") for n, s in d.siblings.items()} == {"cls": "cls", "inst": "inst", "prov": "prov"}


def test_entry_point_value_with_extras(fake_site):
    fake_site.sibling("extra", value="shipmates_extra : build_agent [fast, small]")
    assert fake_site.discover().siblings["extra"].invoke("q") == "extra got: q"


def test_listing_without_load_imports_nothing(fake_site):
    fake_site.sibling("lazy", code="raise RuntimeError('imported!')")
    d = fake_site.discover(load=False)
    assert [(r.name, r.status, r.sibling) for r in d] == [("lazy", "ok", None)]
    assert "shipmates_lazy" not in sys.modules


BROKEN = {
    "missing": dict(value="shipmates_nowhere.mod:build"),
    "import-raises": dict(code="raise ValueError('boom at import')"),
    "dep-missing": dict(code="import shipmates_dependency_that_is_not_there"),
    "provider-raises": dict(code="def build_agent():\n    raise RuntimeError('boom in provider')"),
    "not-a-sibling": dict(code="def build_agent():\n    return 42"),
    "no-attr": dict(code="x = 1"),
    "mismatch": dict(
        code="class S:\n    name = 'other'\n    description = ''\n    def invoke(self, q): return q\n"
        "def build_agent(): return S()"
    ),
    "bad name!": dict(module="shipmates_bad_name"),
    "async-provider": dict(code="async def build_agent():\n    return None"),
    "exits": dict(code="import sys\nsys.exit(3)"),
    "malformed": dict(value="not a valid value!"),
}


def test_each_failure_is_recorded_in_one_line_and_the_others_still_load(fake_site):
    fake_site.sibling("healthy")
    for name, kwargs in BROKEN.items():
        fake_site.sibling(name, **kwargs)
    d = fake_site.discover()
    assert list(d.agents) == ["healthy"]
    reasons = {r.name: r.reason or "" for r in d.failures}
    assert set(reasons) == set(BROKEN)
    for record in d.failures:
        line = record.one_line()
        assert "\n" not in line
        assert record.provenance.distribution and record.provenance.distribution in line
        assert "0.1.0" in line
    assert "module 'shipmates_nowhere.mod' is not installed" in reasons["missing"]
    assert "reinstall" in reasons["missing"]
    assert "ValueError: boom at import" in reasons["import-raises"]
    assert (
        "importing" in reasons["dep-missing"]
        and "shipmates_dependency_that_is_not_there" in reasons["dep-missing"]
    )
    assert "RuntimeError: boom in provider" in reasons["provider-raises"]
    assert "not a sibling" in reasons["not-a-sibling"] and "int object lacks" in reasons["not-a-sibling"]
    assert "has no attribute 'build_agent'" in reasons["no-attr"]
    assert "named 'other' but is registered as 'mismatch'" in reasons["mismatch"]
    assert "invalid agent name 'bad name!'" in reasons["bad name!"]
    assert "async" in reasons["async-provider"]
    assert "SystemExit" in reasons["exits"]
    assert "malformed entry point value" in reasons["malformed"]
    for reason in reasons.values():
        assert "SHIPMATES_EXCLUDE_AGENTS=" in reason or "rename" in reason


@pytest.mark.parametrize("how", ["env", "argument"])
def test_strict_reraises_the_first_failure_with_its_cause(fake_site, monkeypatch, how):
    fake_site.sibling("ok1")
    fake_site.sibling("broken", code="raise ValueError('boom at import')")
    kwargs = {}
    if how == "env":
        monkeypatch.setenv("SHIPMATES_STRICT", "1")
    else:
        kwargs["strict"] = True
    with pytest.raises(PluginLoadError, match=r"broken .*shipmates-broken 0\.1\.0.*boom at import") as info:
        fake_site.discover(**kwargs)
    assert isinstance(info.value.__cause__, ValueError)


def test_same_name_from_two_distributions_is_a_conflict_and_neither_loads(fake_site):
    fake_site.sibling("twin", dist="twin-a", module="twin_a", version="1.0")
    fake_site.sibling("twin", dist="twin-b", module="twin_b", version="2.0")
    fake_site.sibling("solo")
    d = fake_site.discover()
    assert list(d.agents) == ["solo"]
    conflicts = d.conflicts
    assert [(r.name, r.provenance.distribution) for r in conflicts] == [
        ("twin", "twin-a"),
        ("twin", "twin-b"),
    ]
    assert all(r.sibling is None for r in conflicts)
    assert "twin-b 2.0" in conflicts[0].reason and "SHIPMATES_AGENTS=twin-a" in conflicts[0].reason
    assert "twin-a 1.0" in conflicts[1].reason and "SHIPMATES_EXCLUDE_AGENTS=twin-a" in conflicts[1].reason
    assert "twin_a" not in sys.modules and "twin_b" not in sys.modules


def test_conflict_resolved_by_excluding_one_distribution(fake_site, monkeypatch):
    fake_site.sibling("twin", dist="twin-a", module="twin_a")
    fake_site.sibling("twin", dist="twin-b", module="twin_b")
    monkeypatch.setenv("SHIPMATES_EXCLUDE_AGENTS", "Twin_B")
    d = fake_site.discover()
    assert d.agents["twin"].provenance.distribution == "twin-a"
    assert [r.provenance.distribution for r in d.excluded] == ["twin-b"]


def test_conflict_resolved_by_allowing_one_distribution(fake_site):
    fake_site.sibling("twin", dist="twin-a", module="twin_a")
    fake_site.sibling("twin", dist="twin-b", module="twin_b")
    d = fake_site.discover(only=["twin-b"])
    assert d.agents["twin"].provenance.distribution == "twin-b"


@pytest.fixture
def three(fake_site):
    for name in ("alpha", "beta", "gamma"):
        fake_site.sibling(name)
    return fake_site


@pytest.mark.parametrize(
    ("env", "kwargs", "loaded"),
    [
        ({"SHIPMATES_AGENTS": "alpha,gamma"}, {}, ["alpha", "gamma"]),
        ({"SHIPMATES_AGENTS": "shipmates_beta"}, {}, ["beta"]),  # distribution name, normalised
        ({"SHIPMATES_AGENTS": ""}, {}, []),
        ({"SHIPMATES_EXCLUDE_AGENTS": "beta"}, {}, ["alpha", "gamma"]),
        ({"SHIPMATES_EXCLUDE_AGENTS": "Shipmates-Alpha, gamma"}, {}, ["beta"]),
        ({}, {"only": ["beta"]}, ["beta"]),
        ({}, {"only": []}, []),
        ({"SHIPMATES_AGENTS": "alpha"}, {"only": ["beta", "gamma"]}, ["beta", "gamma"]),  # API wins
        ({"SHIPMATES_EXCLUDE_AGENTS": "alpha"}, {"exclude": ["gamma"]}, ["beta"]),  # both apply
        ({}, {"only": ["alpha", "beta"], "exclude": ["shipmates-beta"]}, ["alpha"]),
        ({}, {"only": "alpha, gamma", "exclude": "gamma"}, ["alpha"]),  # comma-separated strings
    ],
)
def test_allow_and_deny_lists(three, monkeypatch, env, kwargs, loaded):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    d = three.discover(**kwargs)
    assert list(d.agents) == loaded
    assert sorted(r.name for r in d.excluded) == sorted({"alpha", "beta", "gamma"} - set(loaded))
    assert all(r.reason for r in d.excluded)
    for r in d.excluded:
        assert f"shipmates_{r.name}" not in sys.modules


def test_records_are_sorted_by_name_then_distribution(fake_site):
    for name, dist in [("zed", "d1"), ("abe", "d3"), ("mid", "d2"), ("abe", "d0")]:
        fake_site.sibling(name, dist=dist, module=f"m_{dist}")
    d = fake_site.discover(load=False)
    assert [(r.name, r.provenance.distribution) for r in d] == [
        ("abe", "d0"),
        ("abe", "d3"),
        ("mid", "d2"),
        ("zed", "d1"),
    ]


class _Plain:
    def __init__(self, name: str, description: str = "plain") -> None:
        self.name = name
        self.description = description

    def invoke(self, query: str) -> str:
        return f"{self.name}:{query}"


def _pm_with(*plugins):
    pm, _ = build_plugin_manager(allow=(), path=[])
    for plugin in plugins:
        pm.register(plugin)
    return pm


def test_plugin_contributed_siblings_join_the_records(fake_site):
    fake_site.sibling("alpha")
    remote = Provenance("remote", location="nats://127.0.0.1:4222")

    class Plugin:
        @hookimpl
        def register_agents(self, register):
            register(_Plain("instance"))
            register(lambda: _Plain("built"), name="built")
            register(_Plain("far"), provenance=remote, instances=["i1", "i2"])

    d = fake_site.discover(plugin_manager=_pm_with(Plugin()))
    assert list(d.agents) == ["alpha", "built", "far", "instance"]
    assert d.agents["built"].provenance.origin == "plugin"
    assert d.agents["far"].provenance == remote
    assert d.agents["far"].instances == ["i1", "i2"]
    assert d.siblings["built"].invoke("x") == "built:x"


def test_plugin_siblings_follow_the_same_rules(fake_site):
    fake_site.sibling("alpha")

    class Plugin:
        @hookimpl
        def register_agents(self, register):
            register(_Plain("alpha"))  # clashes with the entry point
            register(_Plain("bad name"))
            register(lambda: 1 / 0, name="crash")
            register(_Plain("inner"), name="outer")

    class Broken:
        @hookimpl
        def register_agents(self, register):
            raise RuntimeError("hook exploded")

    pm = _pm_with(Plugin(), Broken())
    d = fake_site.discover(plugin_manager=pm)
    assert d.agents == {}
    assert sorted(r.provenance.origin for r in d.conflicts) == ["entry-point", "plugin"]
    reasons = {r.name: r.reason for r in d.failures}
    assert "invalid agent name 'bad name'" in reasons["bad name"]
    assert "ZeroDivisionError" in reasons["crash"]
    assert "named 'inner' but is registered as 'outer'" in reasons["outer"]
    broken = [r for r in d.failures if "hook exploded" in (r.reason or "")]
    assert len(broken) == 1 and "register_agents" in broken[0].reason


def test_default_plugin_manager_is_the_shared_one(fake_site):
    class Plugin:
        @hookimpl
        def register_agents(self, register):
            register(_Plain("shared"))

    pm = shipmates.get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin)
    try:
        assert "shared" in fake_site.discover().agents
    finally:
        pm.unregister(plugin)


def test_strict_reraises_a_failing_register_agents_hook(fake_site):
    class Broken:
        @hookimpl
        def register_agents(self, register):
            raise RuntimeError("hook exploded")

    with pytest.raises(PluginLoadError, match="register_agents") as info:
        fake_site.discover(plugin_manager=_pm_with(Broken()), strict=True)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_invalid_name_is_reported_without_import(fake_site):
    fake_site.add(sibling_spec("x" * 65, module="shipmates_long"))
    d = fake_site.discover()
    assert d.failures[0].status == "failed" and "64" in (d.failures[0].reason or "")
    assert "shipmates_long" not in sys.modules
