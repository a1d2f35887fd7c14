"""pluggy plugins from ``shipmates.plugins``: isolation, allow/deny lists, listing, strict mode, relay."""

from __future__ import annotations

import pytest
import shipmates
from shipmates import PluginLoadError, hookimpl
from shipmates._plugins._host import (
    DEFAULT_PLUGINS,
    PluginHost,
    build_plugin_manager,
    get_plugin_manager,
    host_of,
    list_plugins,
    reset_plugin_manager,
)
from support import plugin_spec

GOOD = """
    from shipmates import hookimpl

    @hookimpl
    def register_commands(register):
        register("hello", lambda repl, text: "hello " + text, help="say hello")
"""

BROKEN = {
    "raises": "raise RuntimeError('plugin import exploded')",
    "typo": "from shipmates import hookimpl\n@hookimpl\ndef register_agent(register):\n    pass\n",
    "badargs": "from shipmates import hookimpl\n@hookimpl\ndef register_models(register, extra):\n    pass\n",
}


@pytest.fixture
def site(fake_site, monkeypatch):
    monkeypatch.delenv("SHIPMATES_PLUGINS")  # allow=None then means every plugin
    fake_site.add(plugin_spec("good", GOOD, version="1.5"))
    for name, code in BROKEN.items():
        fake_site.add(plugin_spec(name, code))
    fake_site.add(plugin_spec("missing", "", value="shipmates_plugin_nowhere"))
    return fake_site


def build(site, **kwargs):
    kwargs.setdefault("strict", False)
    pm, records = build_plugin_manager(path=[str(site.path)], **kwargs)
    return pm, {r.name: r for r in records}


BUILTINS = {name: "ok" for name, _ in DEFAULT_PLUGINS}


def test_builtin_plugins_are_always_registered():
    pm = get_plugin_manager()
    assert pm.has_plugin("shipmates.builtin")
    builtins = {r.name: r.hooks for r in list_plugins() if r.builtin}
    assert builtins == {
        "shipmates.builtin": ["register_models"],
        "shipmates.builtin.commands": ["register_commands"],
        "shipmates.builtin.cli": ["register_cli"],
        "shipmates.builtin.trace": ["tool_call_finished", "tool_call_started"],
        "shipmates.builtin.mcp": ["register_agents", "register_cli"],
    }
    assert all(r.status == "ok" for r in list_plugins() if r.builtin)


def test_healthy_plugin_loads_and_broken_ones_are_recorded(site):
    pm, records = build(site, allow=None)
    good = records["good"]
    assert (good.status, good.distribution, good.version, good.hooks) == (
        "ok",
        "shipmates-plugin-good",
        "1.5",
        ["register_commands"],
    )
    assert pm.has_plugin("good")
    for name in [*BROKEN, "missing"]:
        record = records[name]
        assert record.status == "failed", name
        assert not pm.has_plugin(name)
        line = record.one_line()
        assert "\n" not in line and f"shipmates-plugin-{name} 0.1.0" in line
        assert f"SHIPMATES_EXCLUDE_PLUGINS={name}" in line
    assert "RuntimeError: plugin import exploded" in records["raises"].reason
    assert "unknown hook 'register_agent'" in records["typo"].reason
    assert "register_agents" in records["typo"].reason  # lists the known hooks
    assert "register_models" in records["badargs"].reason and "extra" in records["badargs"].reason
    assert "module 'shipmates_plugin_nowhere' not found" in records["missing"].reason


def test_strict_reraises_with_cause(site):
    with pytest.raises(PluginLoadError, match="plugin badargs") as info:  # the first in name order
        build(site, allow=None, strict=True)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("allow", "exclude", "loaded"),
    [
        (None, (), {"good"}),
        ([], (), set()),
        (["good"], (), {"good"}),
        (["Shipmates_Plugin_Good"], (), {"good"}),  # distribution name, normalised
        (None, ["good"], set()),
        (None, ["shipmates-plugin-good"], set()),
    ],
)
def test_allow_and_deny(site, allow, exclude, loaded):
    pm, records = build(site, allow=allow, exclude=exclude)
    assert {n for n, r in records.items() if r.status == "ok" and not r.builtin} == loaded
    if "good" not in loaded:
        assert records["good"].status == "excluded" and records["good"].reason
        assert not pm.has_plugin("good")
    assert pm.has_plugin("shipmates.builtin")


def test_environment_lists(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site.path))
    monkeypatch.setattr("sys.path", [str(site.path)])
    monkeypatch.setenv("SHIPMATES_PLUGINS", "good,raises")
    reset_plugin_manager()
    assert get_plugin_manager().has_plugin("good")
    status = {r.name: r.status for r in list_plugins()}
    assert status == {
        **BUILTINS,
        "good": "ok",
        "raises": "failed",
        "typo": "excluded",
        "badargs": "excluded",
        "missing": "excluded",
    }
    good = next(r for r in list_plugins() if r.name == "good")
    assert (good.distribution, good.version) == ("shipmates-plugin-good", "1.5")
    assert [r.name for r in list_plugins() if r.status == "failed"] == ["raises"]

    monkeypatch.setenv("SHIPMATES_EXCLUDE_PLUGINS", "good")
    reset_plugin_manager()
    assert not get_plugin_manager().has_plugin("good")
    assert get_plugin_manager().is_blocked("good")


def test_two_distributions_with_one_plugin_name(fake_site, monkeypatch):
    monkeypatch.delenv("SHIPMATES_PLUGINS")
    fake_site.add(plugin_spec("same", GOOD, dist="first-dist", module="first_mod"))
    fake_site.add(plugin_spec("same", GOOD, dist="second-dist", module="second_mod"))
    _, records = build_plugin_manager(path=[str(fake_site.path)], allow=None, strict=False)
    same = [r for r in records if r.name == "same"]
    assert sorted(r.status for r in same) == ["failed", "ok"]
    failed = next(r for r in same if r.status == "failed")
    assert "already taken by first-dist 0.1.0" in failed.reason
    assert "SHIPMATES_EXCLUDE_PLUGINS=second-dist" in failed.reason


def test_list_plugins_as_dicts_for_json(site, monkeypatch):
    monkeypatch.setattr("sys.path", [str(site.path)])
    reset_plugin_manager()
    rows = [r.as_dict() for r in list_plugins()]
    assert {"name", "distribution", "version", "hooks", "status", "reason", "entry_point"} <= set(rows[0])
    assert rows[0]["name"] == "shipmates.builtin"


def test_call_each_reports_the_plugin_and_goes_on():
    seen = []

    class Good:
        @hookimpl
        def tool_call_started(self, event):
            seen.append(event)

    class Bad:
        @hookimpl
        def tool_call_started(self, event):
            raise ValueError("observer broke")

    pm = get_plugin_manager()
    pm.register(Good(), name="good-observer")
    pm.register(Bad(), name="bad-observer")
    outcome = host_of(pm).call_each("tool_call_started", event="E")
    assert {"good-observer", "bad-observer"} <= {r.name for r in list_plugins()}
    assert seen == ["E"] and outcome.results == []
    (failure,) = outcome.failures
    error = str(failure)
    assert failure.plugin.name == "bad-observer" and failure.hook == "tool_call_started"
    assert "plugin 'bad-observer' (registered from code) failed in hook tool_call_started" in error
    assert "ValueError: observer broke" in error and "unregister it" in error


def test_failure_names_plugin_distribution_version_hook_and_fix(site, monkeypatch):
    monkeypatch.setattr("sys.path", [str(site.path)])
    monkeypatch.setenv("SHIPMATES_PLUGINS", "good")
    reset_plugin_manager()

    def register(name, handler, help=""):
        raise RuntimeError("table full")

    failures = host_of(None).call_each("register_commands", register=register).failures
    assert [f.plugin.name for f in failures] == ["shipmates.builtin.commands", "good"]  # tryfirst
    assert "report it to the shipmates developers" in str(failures[0])
    assert str(failures[1]) == (
        "plugin 'good' (shipmates-plugin-good 1.5) failed in hook register_commands: "
        "RuntimeError: table full; report it to the authors of shipmates-plugin-good, "
        "or disable it with SHIPMATES_EXCLUDE_PLUGINS=good"
    )


def test_call_each_follows_pluggys_order_and_runs_wrappers_around_it():
    order = []

    def plugin(label, **opts):
        class P:
            @hookimpl(**opts)
            def refresh_agents(self, captain):
                order.append(label)
                return label

        return P()

    class NewWrapper:
        @hookimpl(wrapper=True)
        def refresh_agents(self, captain):
            order.append("new-before")
            results = yield
            order.append(f"new-after {results}")
            return [*results, "wrapped"]

    class OldWrapper:
        @hookimpl(hookwrapper=True)
        def refresh_agents(self, captain):
            order.append("old-before")
            outcome = yield
            order.append(f"old-after {outcome.get_result()}")

    host = PluginHost()
    for name, p in [
        ("a", plugin("a")),
        ("b", plugin("b")),
        ("first", plugin("first", tryfirst=True)),
        ("last", plugin("last", trylast=True)),
        ("new", NewWrapper()),
        ("old", OldWrapper()),
    ]:
        host.manager.register(p, name=name)
    reference = host.manager.hook.refresh_agents(captain=None)
    order.clear()
    outcome = host.call_each("refresh_agents", captain=None)
    assert outcome.failures == []
    assert outcome.results == [*reference[:-1], "wrapped"] == ["first", "b", "a", "last", "wrapped"]
    assert order == [
        "old-before",
        "new-before",
        "first",
        "b",
        "a",
        "last",
        "new-after ['first', 'b', 'a', 'last']",
        "old-after ['first', 'b', 'a', 'last', 'wrapped']",
    ]


def test_a_failing_wrapper_is_reported_and_the_call_goes_on():
    class Broken:
        @hookimpl(wrapper=True)
        def refresh_agents(self, captain):
            raise RuntimeError("no setup")
            yield

    class Plain:
        @hookimpl
        def refresh_agents(self, captain):
            return "ran"

    host = PluginHost()
    host.manager.register(Broken(), name="broken")
    host.manager.register(Plain(), name="plain")
    outcome = host.call_each("refresh_agents", captain=None)
    assert outcome.results == ["ran"]
    assert [f.plugin.name for f in outcome.failures] == ["broken"]


def test_a_custom_plugin_manager_has_a_host_of_its_own():
    import pluggy

    pm = pluggy.PluginManager("shipmates")
    host = host_of(pm)
    assert host_of(pm) is host and host.manager is pm and host is not host_of(None)
    assert host_of(host) is host
    built, _ = build_plugin_manager(path=[])
    assert host_of(built).record("shipmates.builtin").builtin  # the records come with it


def test_public_names():
    assert shipmates.get_plugin_manager is get_plugin_manager


@pytest.mark.parametrize(("name", "module"), [p for p in DEFAULT_PLUGINS if p[0] != "shipmates.builtin.mcp"])
def test_builtin_plugins_contribute_no_siblings(name, module):
    """discover() relies on this to skip pluggy entirely when no third-party plugin is installed
    (the MCP plugin's siblings are the declared MCP servers, which discover() checks for first)."""
    import importlib

    assert not hasattr(importlib.import_module(module), "register_agents"), name
