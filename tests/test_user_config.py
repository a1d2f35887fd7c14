"""The user config file: aliases and a default model, and errors that name the file and key."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest
from shipmates._config import ConfigError, config_path, read_config, set_default_model


def test_a_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    config = read_config(tmp_path / "nope.toml")
    assert config.default_model is None and config.models == {}


def test_aliases_and_default_are_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'default_model = "local"\n\n[models.local]\nmodel = "openai/qwen-1.5b"\n'
        'api_base = "http://127.0.0.1:18081/v1"\napi_key_env = "LOCAL_KEY"\ntimeout = 30\n'
        "options = { temperature = 0 }\ntriage = true\n"
    )
    config = read_config(path)
    assert config.default_model == "local"
    alias = config.models["local"]
    assert (alias.model, alias.api_base, alias.api_key_env, alias.timeout) == (
        "openai/qwen-1.5b",
        "http://127.0.0.1:18081/v1",
        "LOCAL_KEY",
        30.0,
    )
    assert alias.options == {"temperature": 0} and alias.triage is True


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("default_model = 3\n", "default_model"),
        ("[models.x]\napi_base = 'http://h'\n", "[models.x]: model"),
        ("[models.x]\nmodel = 'a/b'\ntimeout = -1\n", "timeout"),
        ("[models.x]\nmodel = 'a/b'\ntriage = 'yes'\n", "triage must be true or false"),
        ("[models.x]\nmodel = 'a/b'\ntemprature = 0\n", "unknown key 'temprature'"),
        ("[models.x\n", "not valid TOML"),
        ("[agents]\nprefer = 3\n", "[agents] prefer must be a list of strings"),
        ("[agents]\nrequire = ['fib>=1', 2]\n", "[agents] require must be a list of strings"),
        ("[agents]\npreffer = ['remote:fib']\n", "[agents] takes prefer and require"),
    ],
)
def test_a_bad_config_names_the_file_and_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_config(path)
    assert str(path) in str(info.value) and named in str(info.value)


def test_setting_the_default_keeps_the_rest_and_is_user_only(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "config.toml"
    set_default_model("offline", path)
    assert read_config(path).default_model == "offline"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    path.write_text('# mine\n[models.local]\nmodel = "openai/x"\n')
    set_default_model("local", path)
    set_default_model("local", path)  # idempotent: replaces its own line
    data = tomllib.loads(path.read_text())
    assert data["default_model"] == "local" and data["models"]["local"]["model"] == "openai/x"
    assert path.read_text().count("default_model") == 1 and "# mine" in path.read_text()


def test_the_config_lives_under_shipmates_home_or_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPMATES_HOME", str(tmp_path))
    assert config_path() == tmp_path / "config.toml"
    monkeypatch.delenv("SHIPMATES_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path() == tmp_path / "xdg" / "shipmates" / "config.toml"


def test_agents_prefer_and_require_are_read_as_lists(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[agents]\nprefer = "remote:fib"\nrequire = ["fib>=1.2,<2", "report~=3.0"]\n')
    config = read_config(path)
    assert config.prefer == ("remote:fib",) and config.require == ("fib>=1.2,<2", "report~=3.0")
    assert read_config(tmp_path / "none.toml").prefer is None
