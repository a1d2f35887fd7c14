"""pluggy plugins from ``shipmates.plugins``: isolation, allow/deny lists, listing, strict mode, relay."""

from __future__ import annotations

import pytest
import shipmates
from shipmates import PluginLoadError, hookimpl
from shipmates._plugins._host import (
    build_plugin_manager,
    call_hook_isolated,
    get_plugin_manager,
    list_plugins,
    plugin_failures,
    plugins_header,
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


def test_builtin_plugin_is_always_registered():
    pm = get_plugin_manager()
    assert pm.has_plugin("shipmates.builtin")
    (builtin,) = [r for r in list_plugins() if r.builtin]
    assert builtin.status == "ok" and "register_models" in builtin.hooks
    assert plugins_header() is None


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
        "shipmates.builtin": "ok",
        "good": "ok",
        "raises": "failed",
        "typo": "excluded",
        "badargs": "excluded",
        "missing": "excluded",
    }
    assert plugins_header() == "plugins: shipmates-plugin-good-1.5"
    assert [f["name"] for f in plugin_failures() if f["status"] == "failed"] == ["raises"]

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


def test_call_hook_isolated_reports_the_plugin_and_goes_on():
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
    results, errors = call_hook_isolated("tool_call_started", event="E")
    assert {"good-observer", "bad-observer"} <= {r.name for r in list_plugins()}
    assert seen == ["E"] and results == []
    (error,) = errors
    assert "plugin 'bad-observer'" in error and "tool_call_started" in error
    assert "ValueError: observer broke" in error and "SHIPMATES_EXCLUDE_PLUGINS=bad-observer" in error


def test_public_names():
    assert shipmates.get_plugin_manager is get_plugin_manager


def test_builtin_plugin_contributes_no_siblings():
    """discover() relies on this to skip pluggy entirely when no third-party plugin is installed."""
    from shipmates._plugins import _builtin

    assert not hasattr(_builtin, "register_agents")
