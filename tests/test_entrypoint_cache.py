"""The entry-point scan: once per process, an on-disk cache that never goes stale, importlib's dedup rule."""

from __future__ import annotations

import marshal
import os
import shutil
import time
from pathlib import Path

import pytest
from shipmates._crew import _entrypoints
from shipmates._crew._entrypoints import (
    AGENTS_GROUP,
    MCP_SERVERS_GROUP,
    MISSPELLED,
    PLUGINS_GROUP,
    PYDANTIC_GROUP,
    entry_points,
    scan,
)
from shipmates._crew._loader import EntryPointError
from shipmates._paths import cache_path
from support import plugin_spec, sibling_spec, write_dist_info


def backdate(*paths: Path, seconds: float = 60) -> None:
    """Make directories look untouched for a while, so the scan is not "racy" and gets cached."""
    past = time.time() - seconds
    for path in paths:
        os.utime(path, (past, past))


def names(group: str = AGENTS_GROUP, path: list[str] | None = None) -> list[str]:
    return sorted(ep.name for ep in entry_points(group, path))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    write_dist_info(sibling_spec("alpha", version="1.0"), site)
    write_dist_info(plugin_spec("hooky", "", version="2.0"), site)
    backdate(site)
    return site


def cache_files() -> list[Path]:
    root = Path(cache_path())
    return sorted(root.glob("entry-points-*.marshal")) if root.exists() else []


def forbid_metadata_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(entries: object) -> object:
        raise AssertionError("read distribution metadata although the disk cache is valid")

    monkeypatch.setattr(_entrypoints, "_read_metadata", fail)


def test_records_distribution_name_version_and_value(site: Path) -> None:
    (agent,) = entry_points(AGENTS_GROUP, [str(site)])
    assert (agent.group, agent.name, agent.value) == (AGENTS_GROUP, "alpha", "shipmates_alpha:build_agent")
    assert (agent.distribution, agent.version) == ("shipmates-alpha", "1.0")
    assert (agent.module, agent.attr) == ("shipmates_alpha", "build_agent")
    (plugin,) = entry_points(PLUGINS_GROUP, [str(site)])
    assert (plugin.name, plugin.value, plugin.attr) == ("hooky", "shipmates_plugin_hooky", None)


def test_scanned_once_per_process(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = scan([str(site)])
    forbid_metadata_reads(monkeypatch)
    monkeypatch.setattr(_entrypoints, "_read_disk", lambda *a: pytest.fail("disk read on a warm process"))
    assert scan([str(site)]) is first


def test_install_while_a_process_runs_is_seen_by_its_next_scan(site: Path) -> None:
    assert names(path=[str(site)]) == ["alpha"]
    write_dist_info(sibling_spec("beta"), site)
    assert names(path=[str(site)]) == ["alpha", "beta"]


def test_refresh_reads_everything_again(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scan([str(site)])
    calls = []
    real = _entrypoints._read_metadata
    monkeypatch.setattr(_entrypoints, "_read_metadata", lambda entries: calls.append(1) or real(entries))
    scan([str(site)])
    assert calls == []
    scan([str(site)], refresh=True)
    assert calls == [1]


def test_next_process_uses_the_disk_cache(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = scan([str(site)])
    assert len(cache_files()) == 1
    _entrypoints.clear_cache()  # what a new process looks like
    forbid_metadata_reads(monkeypatch)
    assert scan([str(site)]) == expected


def test_install_after_caching_is_seen(site: Path) -> None:
    assert names(path=[str(site)]) == ["alpha"]
    assert cache_files()
    _entrypoints.clear_cache()
    write_dist_info(sibling_spec("beta"), site)
    assert names(path=[str(site)]) == ["alpha", "beta"]


def test_removal_after_caching_is_seen(site: Path) -> None:
    write_dist_info(sibling_spec("beta"), site)
    backdate(site)
    assert names(path=[str(site)]) == ["alpha", "beta"]
    assert cache_files()
    _entrypoints.clear_cache()
    shutil.rmtree(next(site.glob("shipmates_beta-*.dist-info")))
    assert names(path=[str(site)]) == ["alpha"]


def test_upgrade_after_caching_is_seen(site: Path) -> None:
    assert [ep.version for ep in entry_points(AGENTS_GROUP, [str(site)])] == ["1.0"]
    _entrypoints.clear_cache()
    shutil.rmtree(next(site.glob("shipmates_alpha-*.dist-info")))
    write_dist_info(sibling_spec("alpha", version="1.1"), site)
    assert [ep.version for ep in entry_points(AGENTS_GROUP, [str(site)])] == ["1.1"]


def test_new_path_entry_is_seen(site: Path, tmp_path: Path) -> None:
    """A .pth file or PYTHONPATH adding a directory changes the path, hence the cache key."""
    extra = tmp_path / "added-by-pth"
    extra.mkdir()
    write_dist_info(sibling_spec("gamma"), extra)
    backdate(extra)
    assert names(path=[str(site)]) == ["alpha"]
    _entrypoints.clear_cache()
    assert names(path=[str(site), str(extra)]) == ["alpha", "gamma"]


def test_path_entry_that_appears_later_is_seen(site: Path, tmp_path: Path) -> None:
    later = tmp_path / "later"
    assert names(path=[str(site), str(later)]) == ["alpha"]
    _entrypoints.clear_cache()
    later.mkdir()
    write_dist_info(sibling_spec("delta"), later)
    assert names(path=[str(site), str(later)]) == ["alpha", "delta"]


def test_racy_scan_is_not_written(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_dist_info(sibling_spec("alpha"), fresh)  # mtime: now
    assert names(path=[str(fresh)]) == ["alpha"]
    assert cache_files() == []


def test_corrupt_cache_is_rebuilt(site: Path) -> None:
    expected = scan([str(site)])
    (cache,) = cache_files()
    cache.write_bytes(b"\x00garbage")
    _entrypoints.clear_cache()
    assert scan([str(site)]) == expected
    assert marshal.loads(cache.read_bytes())["format"] == _entrypoints._FORMAT


def test_cache_can_be_disabled(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPMATES_DISCOVERY_CACHE", "0")
    assert names(path=[str(site)]) == ["alpha"]
    assert cache_files() == []


def test_clear_cache_on_disk(site: Path) -> None:
    scan([str(site)])
    assert cache_files()
    _entrypoints.clear_cache(disk=True)
    assert cache_files() == []


def test_same_distribution_twice_on_the_path_counts_once_first_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write_dist_info(sibling_spec("alpha", version="2.0"), first)
    write_dist_info(sibling_spec("alpha", version="1.0", dist="Shipmates_Alpha"), second)
    assert [ep.version for ep in entry_points(AGENTS_GROUP, [str(first), str(second)])] == ["2.0"]
    assert [ep.version for ep in entry_points(AGENTS_GROUP, [str(second), str(first)])] == ["1.0"]


def test_distributions_without_shipmates_groups_are_skipped(tmp_path: Path) -> None:
    site = tmp_path / "site"
    spec = sibling_spec("alpha")
    spec.entry_points = {"console_scripts": {"alpha": "shipmates_alpha:main"}}
    write_dist_info(spec, site)
    assert scan([str(site)]) == {
        AGENTS_GROUP: (),
        PLUGINS_GROUP: (),
        PYDANTIC_GROUP: (),
        MCP_SERVERS_GROUP: (),
        MISSPELLED: (),
    }


def test_broken_metadata_does_not_hide_other_distributions(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = write_dist_info(sibling_spec("alpha"), site)
    (info / "METADATA").unlink()
    write_dist_info(sibling_spec("beta"), site)
    eps = sorted(entry_points(AGENTS_GROUP, [str(site)]), key=lambda ep: ep.name)
    assert [(ep.name, ep.distribution, ep.version) for ep in eps] == [
        ("alpha", "shipmates-alpha", "unknown"),
        ("beta", "shipmates-beta", "0.1.0"),
    ]


def test_default_path_is_sys_path(monkeypatch: pytest.MonkeyPatch, site: Path) -> None:
    monkeypatch.setattr("sys.path", [str(site)])
    assert names() == ["alpha"]


def test_load_imports_the_named_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    write_dist_info(sibling_spec("alpha", module="shipmates_cache_load"), site)
    monkeypatch.syspath_prepend(str(site))
    (ep,) = entry_points(AGENTS_GROUP, [str(site)])
    assert ep.load()().invoke("x") == "alpha got: x"
    bad = _entrypoints.EntryPointInfo(AGENTS_GROUP, "x", "not a value!", "d", "1")
    with pytest.raises(EntryPointError, match="malformed entry point"):
        bad.load()
