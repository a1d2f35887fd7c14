"""User state and cache directories (``_state``): SHIPMATES_HOME, XDG variables, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from shipmates._paths import cache_dir, cache_path, state_dir, state_path


def test_shipmates_home_overrides_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPMATES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    assert state_dir() == tmp_path / "home" / "state"
    assert cache_dir() == tmp_path / "home" / "cache"
    assert state_dir().is_dir() and cache_dir().is_dir()


def test_xdg_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPMATES_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert state_dir() == tmp_path / "s" / "shipmates"
    assert cache_dir() == tmp_path / "c" / "shipmates"


def test_defaults_and_relative_xdg_values_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPMATES_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert state_path() == str(tmp_path / ".local" / "state" / "shipmates")
    assert cache_path() == str(tmp_path / ".cache" / "shipmates")
    assert not Path(state_path()).exists()  # the *_path functions never create anything
    assert state_dir().is_dir()
