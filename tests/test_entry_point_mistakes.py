"""Packaging mistakes that used to pass silently: a misspelled group, a plugin that is a function."""

from __future__ import annotations

import pytest
from shipmates._cli._main import main
from shipmates._crew import _entrypoints
from shipmates._plugins._host import build_plugin_manager
from support import plugin_spec, sibling_spec


@pytest.mark.parametrize(
    ("group", "meant"),
    [
        ("shipmates.agent", "shipmates.agents"),
        ("shipmates_agents", "shipmates.agents"),
        ("Shipmates.Plugin", "shipmates.plugins"),
        ("shipmtes.agents", "shipmates.agents"),
    ],
)
def test_agents_warns_about_a_misspelled_group_and_the_cache_keeps_it(
    fake_site, capsys: pytest.CaptureFixture[str], group: str, meant: str
) -> None:
    spec = sibling_spec("lost")
    spec.entry_points = {group: {"lost": f"{spec.module}:build_agent"}}
    fake_site.add(spec)
    fake_site.sibling("found")
    for _ in range(2):  # the second time from the disk cache, not the metadata
        assert main(["agents"]) == 0
        out, err = capsys.readouterr()
        assert "found" in out and "lost" not in out
        assert f"shipmates-lost 0.1.0 declares 'lost = {spec.module}:build_agent' under [{group}]" in err
        assert f"did you mean [{meant}]?" in err
        _entrypoints.clear_cache()  # memory only: the next scan reads the file written above


def test_unrelated_groups_are_not_misspellings() -> None:
    for group in ("console_scripts", "pytest11", "shipmates.agents", "shipmates.plugins", "matesync"):
        assert not _entrypoints.is_misspelled(group), group


def test_a_plugin_entry_point_naming_a_function_fails_with_the_fix(
    fake_site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPMATES_PLUGINS")  # the isolation's empty allow-list: every plugin
    fake_site.add(plugin_spec("fn", "def plugin():\n    pass\n", value="shipmates_plugin_fn:plugin"))
    _, records = build_plugin_manager(path=[str(fake_site.path)], allow=None, strict=False)
    (record,) = [r for r in records if r.name == "fn"]
    assert record.status == "failed"
    assert "names a function" in record.reason
    assert 'write `fn = "shipmates_plugin_fn"`' in record.reason
