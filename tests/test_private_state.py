"""State and cache files are the user's alone: 0700 directories, 0600 files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import shipmates
from shipmates._paths import cache_path, private_file, state_dir


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> object:
    old = os.umask(0o000)  # the worst case: nothing masked
    yield
    os.umask(old)


def test_state_dir_and_its_files_are_user_only(open_umask: object) -> None:
    directory = state_dir()
    assert _mode(directory) == 0o700
    history = private_file(str(directory / "history"))
    assert _mode(history) == 0o600


def test_loose_permissions_left_by_an_older_version_are_tightened(open_umask: object) -> None:
    directory = state_dir()
    os.chmod(directory, 0o755)
    history = directory / "history"
    history.write_text("fib(8)\n")
    os.chmod(history, 0o644)
    state_dir()
    private_file(str(history))
    assert (_mode(directory), _mode(history)) == (0o700, 0o600)
    assert history.read_text() == "fib(8)\n"  # kept, only its mode changed


def test_discovery_cache_is_written_user_only(open_umask: object, tmp_path: Path) -> None:
    hour_ago = os.stat(tmp_path).st_mtime - 3600
    os.utime(tmp_path, (hour_ago, hour_ago))  # a fresh directory's scan is never cached (racy)
    shipmates.discover(load=False, path=[str(tmp_path)])
    files = [f for f in os.listdir(cache_path()) if f.startswith("entry-points-")]
    assert files, "discovery wrote no cache file"
    assert _mode(cache_path()) == 0o700
    assert {_mode(os.path.join(cache_path(), f)) for f in files} == {0o600}
