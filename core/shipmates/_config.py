"""The user's config file: a default model and named model aliases, in TOML.

``$SHIPMATES_HOME/config.toml`` when ``SHIPMATES_HOME`` is set, else
``$XDG_CONFIG_HOME/shipmates/config.toml`` (``~/.config/shipmates/config.toml``)::

    default_model = "local"

    [models.local]
    model = "openai/qwen-1.5b"                # any litellm model string
    api_base = "http://127.0.0.1:18081/v1"
    api_key_env = "LOCAL_LLM_KEY"             # the variable that holds the key (never the key)
    timeout = 60                              # seconds per model call
    options = { temperature = 0 }             # any litellm option

    [agents]                                  # which copy of a sibling, and which versions
    prefer = ["remote:fib"]                   # as SHIPMATES_PREFER (--prefer)
    require = ["fib>=1.2,<2", "report~=3.0"]  # as SHIPMATES_REQUIRE (shipmates-nats: --require)

A missing file is an empty config, read at no cost; a file that does not parse, or a key with
the wrong type, is a :class:`ConfigError` naming the file, the key and what it accepts. Keys
are never stored here: ``api_key_env`` names the environment variable that holds one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._settings import SettingsError

if TYPE_CHECKING:
    from pathlib import Path

    from ._mcp._servers import McpServer

CONFIG_FILE = "config.toml"
_ALIAS_KEYS = {"model", "api_base", "api_key_env", "timeout", "options", "triage"}
_AGENTS_KEYS = {"prefer", "require"}


class ConfigError(SettingsError):
    """The config file cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class ModelAlias:
    """A named model: the litellm model string and the settings that go with it."""

    name: str
    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    triage: bool = False
    """Captains on this model triage first (as ``--triage``): for small models."""


@dataclass(frozen=True)
class UserConfig:
    """What the config file says (empty when there is none)."""

    path: Path | None = None
    default_model: str | None = None
    models: dict[str, ModelAlias] = field(default_factory=dict)
    mcp_servers: dict[str, McpServer] = field(default_factory=dict)
    """``[mcp_servers.NAME]`` tables: MCP servers that join the crew (see :mod:`shipmates._mcp._servers`)."""
    prefer: tuple[str, ...] | None = None
    """``[agents] prefer``: tokens that settle a name clash (as ``SHIPMATES_PREFER``)."""
    require: tuple[str, ...] | None = None
    """``[agents] require``: version ranges of remote siblings (as ``SHIPMATES_REQUIRE``)."""


def config_file() -> str:
    """Where the config file is (whether or not it exists), as text: no pathlib import, which
    a start-up without a config file would pay for nothing."""
    home = os.environ.get("SHIPMATES_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), CONFIG_FILE)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if not xdg or not os.path.isabs(xdg):
        xdg = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(xdg, "shipmates", CONFIG_FILE)


def config_path() -> Path:
    """Where the config file is (whether or not it exists)."""
    from pathlib import Path

    return Path(config_file())


def read_config(path: Path | None = None) -> UserConfig:
    """The config at ``path`` (default :func:`config_path`); raises :class:`ConfigError`."""
    if path is None:
        if not os.path.lexists(config_file()):
            return UserConfig()  # the usual case, at the cost of one stat
        path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UserConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}; fix or remove it") from None
    return _parse(path, data)


def _parse(path: Path, data: dict[str, Any]) -> UserConfig:
    default = data.get("default_model")
    if default is not None and (not isinstance(default, str) or not default.strip()):
        raise ConfigError(f"{path}: default_model must be a model name (a string), got {default!r}")
    tables = data.get("models", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: [models] must be a table of aliases, e.g. [models.local]")
    models = {name: _alias(path, name, table) for name, table in tables.items()}
    agents = data.get("agents", {})
    if not isinstance(agents, dict) or set(agents) - _AGENTS_KEYS:
        raise ConfigError(f'{path}: [agents] takes prefer and require, e.g. prefer = ["remote:fib"]')
    return UserConfig(
        path,
        default.strip() if default else None,
        models,
        _mcp_servers(path, data),
        _strings(path, agents, "prefer", "remote:fib"),
        _strings(path, agents, "require", "fib>=1.2,<2"),
    )


def _strings(path: Path, table: dict[str, Any], key: str, example: str) -> tuple[str, ...] | None:
    """``[agents] key``: a list of strings, or one string (as its environment variable takes it)."""
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{path}: [agents] {key} must be a list of strings, e.g. {key} = ["{example}"]')
    return tuple(value)


def _mcp_servers(path: Path, data: dict[str, Any]) -> dict[str, McpServer]:
    if "mcp_servers" not in data:
        return {}
    from ._mcp._servers import McpServerError, parse_servers

    try:
        return parse_servers(str(path), data["mcp_servers"])
    except McpServerError as exc:
        raise ConfigError(str(exc)) from None


def _alias(path: Path, name: str, table: Any) -> ModelAlias:
    where = f"{path}: [models.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f'{where} must be a table with at least model = "provider/model"')
    unknown = sorted(set(table) - _ALIAS_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; accepted: {', '.join(sorted(_ALIAS_KEYS))}")
    model = table.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f'{where}: model must be a litellm model string, e.g. "openai/qwen-1.5b"')
    for key in ("api_base", "api_key_env"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"{where}: {key} must be a string, got {table[key]!r}")
    timeout = table.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 1e6
    ):
        raise ConfigError(f"{where}: timeout must be a number of seconds above 0, got {timeout!r}")
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: options must be a table, e.g. options = {{ temperature = 0 }}")
    triage = table.get("triage", False)
    if not isinstance(triage, bool):
        raise ConfigError(f"{where}: triage must be true or false, got {triage!r}")
    return ModelAlias(
        name,
        model.strip(),
        table.get("api_base"),
        table.get("api_key_env"),
        None if timeout is None else float(timeout),
        dict(options),
        triage,
    )


_DEFAULT_LINE = re.compile(r"^\s*default_model\s*=.*$", re.MULTILINE)


def set_default_model(name: str, path: Path | None = None) -> Path:
    """Make ``name`` the default model in the config file (created user-only if missing)."""
    import json

    from ._paths import private_dir, private_file

    path = path or config_path()
    read_config(path)  # refuse to edit a file that does not parse
    private_dir(str(path.parent))
    private_file(str(path))
    text = path.read_text(encoding="utf-8")
    line = f"default_model = {json.dumps(name)}"  # a JSON string is a valid TOML basic string
    # Top-level keys come before the first table.
    head, sep, tail = ("", "", text) if text.startswith("[") else text.partition("\n[")
    if _DEFAULT_LINE.search(head):
        head = _DEFAULT_LINE.sub(line, head, count=1)
    else:
        head = f"{line}\n{head}" if head else line + "\n"
    path.write_text(head + sep + tail, encoding="utf-8")
    return path
