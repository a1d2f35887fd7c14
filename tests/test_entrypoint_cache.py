"""The entry-point scan: once per process, an on-disk cache that never goes stale, importlib's dedup rule."""

from __future__ import annotations

import marshal
import os
import shutil
import time
from pathlib import Path

import pytest
from shipmates import _entrypoints
from shipmates._entrypoints import AGENTS_GROUP, PLUGINS_GROUP, entry_points, normalize_dist, scan
from shipmates._state import cache_path
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
    def fail(*args: object, **kwargs: object) -> object:
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
    monkeypatch.setattr(_entrypoints, "_read_metadata", lambda *a, **k: calls.append(1) or real(*a, **k))
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
    assert marshal.loads(cache.read_bytes())["format"] == 1


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
    assert scan([str(site)]) == {AGENTS_GROUP: (), PLUGINS_GROUP: ()}


def test_broken_metadata_does_not_hide_other_distributions(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = write_dist_info(sibling_spec("alpha"), site)
    (info / "METADATA").unlink()
    write_dist_info(sibling_spec("beta"), site)
    eps = sorted(entry_points(AGENTS_GROUP, [str(site)]), key=lambda ep: ep.name)
    assert [(ep.name, ep.distribution, ep.version) for ep in eps] == [
        ("alpha", "shipmates-alpha", "0.1.0"),  # from the directory name ``shipmates_alpha-0.1.0.dist-info``
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
    with pytest.raises(ValueError, match="malformed entry point"):
        bad.load()


# ---------------------------------------------------------------- the miss path: incremental and fast


def many(site: Path, count: int) -> None:
    """``count`` distributions, every other one with a console script, every fifth a sibling."""
    for i in range(count):
        if i % 5 == 0:
            write_dist_info(sibling_spec(f"s{i:03d}"), site)
        else:
            spec = sibling_spec(f"lib{i:03d}")
            spec.entry_points = {"console_scripts": {f"lib{i:03d}": f"lib{i:03d}:main"}} if i % 2 else {}
            write_dist_info(spec, site)
    backdate(site, *site.glob("*.dist-info"), *site.glob("*.dist-info/*"))


def counting() -> dict[str, int]:
    for key in _entrypoints._stats:
        _entrypoints._stats[key] = 0
    return _entrypoints._stats


def test_install_into_a_crowded_dir_reads_only_the_new_distribution(tmp_path: Path) -> None:
    site = tmp_path / "site"
    many(site, 60)
    stats = counting()
    assert len(names(path=[str(site)])) == 12
    assert stats == {"parsed": 60, "listed": 1}
    _entrypoints.clear_cache()  # the next process, after `pip install shipmates-new`
    write_dist_info(sibling_spec("new"), site)
    stats = counting()
    found = names(path=[str(site)])
    assert stats == {"parsed": 1, "listed": 1}
    assert "new" in found
    assert len(found) == 13


def test_directory_just_written_is_read_again_by_the_next_process(tmp_path: Path) -> None:
    """A record of an entry_points.txt written within the racy window is never reused."""
    site = tmp_path / "site"
    many(site, 5)
    scan([str(site)])
    _entrypoints.clear_cache()
    write_dist_info(sibling_spec("new"), site)  # mtime: now
    scan([str(site)])
    _entrypoints.clear_cache()
    stats = counting()
    assert "new" in names(path=[str(site)])
    assert stats["parsed"] == 1  # the fresh one again, not the 5 old ones


def test_reinstall_of_the_same_version_with_new_entry_points_is_seen(site: Path) -> None:
    (before,) = entry_points(AGENTS_GROUP, [str(site)])
    _entrypoints.clear_cache()
    shutil.rmtree(next(site.glob("shipmates_alpha-*.dist-info")))  # `pip install .` of an edited project
    write_dist_info(sibling_spec("alpha", version="1.0", value="shipmates_alpha:other"), site)
    (after,) = entry_points(AGENTS_GROUP, [str(site)])
    assert (before.value, after.value) == ("shipmates_alpha:build_agent", "shipmates_alpha:other")


def test_unchanged_path_entries_are_not_listed_again(site: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    many(other, 10)
    scan([str(site), str(other)])
    _entrypoints.clear_cache()
    write_dist_info(sibling_spec("late"), other)
    stats = counting()
    assert "late" in names(path=[str(site), str(other)])
    assert stats == {"parsed": 1, "listed": 1}


def test_a_new_path_reuses_what_is_known_of_its_entries(site: Path, tmp_path: Path) -> None:
    """A script run from another directory puts that directory first on sys.path: a new cache key."""
    script_dir = tmp_path / "scripts"
    script_dir.mkdir()
    backdate(script_dir)
    scan([str(site)])
    _entrypoints.clear_cache()
    stats = counting()
    assert names(path=[str(script_dir), str(site)]) == ["alpha"]
    assert stats == {"parsed": 0, "listed": 1}


def test_corrupt_index_is_rebuilt(site: Path) -> None:
    expected = scan([str(site)])
    (index,) = Path(cache_path()).glob("entry-points-*.index")
    for garbage in (
        b"\x00garbage",
        marshal.dumps({"format": 1, "python": __import__("sys").version, "entries": {str(site): (1, 2)}}),
    ):
        index.write_bytes(garbage)
        _entrypoints.clear_cache(disk=False)
        for cache in cache_files():
            cache.unlink()
        assert scan([str(site)]) == expected
    assert marshal.loads(index.read_bytes())["entries"][str(site)][1]  # rewritten


def test_index_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_entrypoints, "_INDEX_LIMIT", 3)
    dirs = []
    for i in range(8):
        d = tmp_path / f"d{i}"
        d.mkdir()
        backdate(d)
        dirs.append(str(d))
        scan([d.as_posix()])
    (index,) = Path(cache_path()).glob("entry-points-*.index")
    assert len(marshal.loads(index.read_bytes())["entries"]) <= 4


def test_egg_info_directories_are_read(tmp_path: Path) -> None:
    """``setup.py develop`` leaves ``name.egg-info`` in a source tree; old installs ``name-v-py.egg-info``."""
    src, site = tmp_path / "src", tmp_path / "site"
    for directory, info_name, dist in (
        (src, "shipmates_dev.egg-info", "shipmates-dev"),
        (site, "Old_Thing-2.5-py3.11.egg-info", "Old-Thing"),
    ):
        info = directory / info_name
        info.mkdir(parents=True)
        (info / "PKG-INFO").write_text(f"Metadata-Version: 1.0\nName: {dist}\nVersion: 2.5\n\nlong text\n")
        (info / "entry_points.txt").write_text(f"[shipmates.agents]\n{dist.lower()} = mod:build\n")
    eps = entry_points(AGENTS_GROUP, [str(src), str(site)])
    assert [(ep.name, ep.distribution, ep.version) for ep in eps] == [
        ("shipmates-dev", "shipmates-dev", "2.5"),
        ("old-thing", "Old-Thing", "2.5"),
    ]


def test_zip_path_entry_is_read_through_importlib(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.2\n")
        z.writestr("zipped-1.2.dist-info/entry_points.txt", "[shipmates.agents]\nzipped = zipped:build\n")
    (ep,) = entry_points(AGENTS_GROUP, [str(archive)])
    assert (ep.name, ep.distribution, ep.version) == ("zipped", "zipped", "1.2")


def test_custom_distribution_finders_are_still_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib_metadata

    elsewhere = tmp_path / "elsewhere"
    info = write_dist_info(sibling_spec("remote"), elsewhere)

    class Finder:
        def find_spec(self, *args: object) -> None:
            return None

        def find_distributions(self, context: object) -> list[object]:
            return [importlib_metadata.PathDistribution(info)]

    monkeypatch.setattr("sys.meta_path", [*__import__("sys").meta_path, Finder()])
    assert names(path=[str(tmp_path / "empty")]) == ["remote"]


def test_fast_scan_agrees_with_importlib(tmp_path: Path) -> None:
    """Dedup across and within path entries, odd names, broken files: the same as importlib_metadata."""
    import importlib_metadata

    first, second = tmp_path / "first", tmp_path / "second"
    write_dist_info(sibling_spec("alpha", version="2.0"), first)
    write_dist_info(sibling_spec("alpha", version="1.0", dist="Shipmates.Alpha"), second)
    write_dist_info(sibling_spec("beta", dist="Shipmates__Beta"), second)
    write_dist_info(sibling_spec("gamma"), second)
    (second / "shipmates_gamma-0.1.0.dist-info" / "entry_points.txt").write_bytes(
        b"[shipmates.agents]\ngamma = shipmates_gamma:build_agent\nbad = not a value!\n"
    )
    (first / "notes.txt").write_text("not metadata")
    (first / "shipmates_beta-9.dist-info").write_text(
        "an .egg-info/.dist-info *file*: counts, no entry points"
    )
    path = [str(first), str(second)]
    ours = {
        (ep.group, ep.name, ep.value, normalize_dist(ep.distribution), ep.version)
        for g in (AGENTS_GROUP, PLUGINS_GROUP)
        for ep in entry_points(g, path)
    }
    theirs = set()
    seen = set()
    for dist in importlib_metadata.distributions(path=path):
        key = dist._normalized_name
        if key in seen:
            continue
        seen.add(key)
        text = dist.read_text("entry_points.txt") or ""
        for group, name, value in _entrypoints._parse_entry_points(text):
            if group in (AGENTS_GROUP, PLUGINS_GROUP):
                theirs.add((group, name, value, normalize_dist(dist.metadata["Name"]), dist.version))
    assert ours == theirs
    assert {ep.name for ep in entry_points(AGENTS_GROUP, path)} == {"alpha", "gamma", "bad"}


def test_undecodable_entry_points_file_does_not_break_the_scan(site: Path) -> None:
    """importlib_metadata raises UnicodeDecodeError here; the scan keeps the readable lines."""
    write_dist_info(sibling_spec("beta"), site)
    info = next(site.glob("shipmates_beta-*.dist-info"))
    (info / "entry_points.txt").write_bytes(
        b"[shipmates.agents]\nbeta = shipmates_beta:build_agent\n# caf\xe9\n"
    )
    assert names(path=[str(site)]) == ["alpha", "beta"]


def test_reinstall_that_preserves_mtime_and_size_is_seen(tmp_path: Path) -> None:
    """An installer keeping the wheel's mtimes: the new file still has a new ctime (and inode)."""
    site = tmp_path / "site"
    info = write_dist_info(sibling_spec("alpha", version="1.0"), site)
    backdate(site, info, *info.iterdir())
    assert [ep.value for ep in entry_points(AGENTS_GROUP, [str(site)])] == ["shipmates_alpha:build_agent"]
    old = (info / "entry_points.txt").stat()
    _entrypoints.clear_cache()
    time.sleep(0.01)
    shutil.rmtree(info)
    info = write_dist_info(sibling_spec("alpha", version="1.0", value="shipmates_alpha:built_agent"), site)
    os.utime(info / "entry_points.txt", ns=(old.st_atime_ns, old.st_mtime_ns))
    backdate(site, info)
    assert (info / "entry_points.txt").stat().st_size == old.st_size
    stats = counting()
    assert [ep.value for ep in entry_points(AGENTS_GROUP, [str(site)])] == ["shipmates_alpha:built_agent"]
    assert stats == {"parsed": 1, "listed": 1}


def test_entry_points_edited_in_place_are_seen_once_the_path_entry_changes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = write_dist_info(sibling_spec("alpha"), site)
    backdate(site, info, *info.iterdir())
    assert names(path=[str(site)]) == ["alpha"]
    _entrypoints.clear_cache()
    with open(info / "entry_points.txt", "a") as f:  # in place: the directories' mtimes stay
        f.write("second = shipmates_alpha:build_agent\n")
    assert names(path=[str(site)]) == ["alpha"]  # documented: the disk cache does not see it
    _entrypoints.clear_cache()
    write_dist_info(sibling_spec("beta"), site)  # any install into the same directory
    assert names(path=[str(site)]) == ["alpha", "beta", "second"]
