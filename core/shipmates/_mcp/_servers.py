"""MCP servers declared as siblings: ``[mcp_servers.NAME]`` tables of the user config file, and
entry points of the ``shipmates.mcp_servers`` group.

A config table::

    [mcp_servers.tides]
    command = "python"                  # stdio: the command, its args and extra environment
    args = ["-m", "tides_server"]
    env = { TIDES_REGION = "brittany" }
    # url = "http://127.0.0.1:8000/mcp" # or: streamable HTTP
    description = "Tide tables for French ports."
    direct = false                      # true: its tools go to the captain as tides__TOOL

An entry point names a mapping with the same keys (or a zero-argument function returning one);
the entry point's name is the server's. Reading declarations starts and connects to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._crew._entrypoints import MCP_SERVERS_GROUP

__all__ = ["MCP_SERVERS_GROUP", "McpServer", "McpServerError", "parse_server", "parse_servers"]

_KEYS = {"command", "args", "env", "url", "description", "direct"}


class McpServerError(ValueError):
    """A declaration that cannot be used; the message names where it is and the fix."""


@dataclass(frozen=True)
class McpServer:
    """How to reach one MCP server: a stdio command, or a streamable HTTP ``url``."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    description: str = ""
    direct: bool = False
    """Its tools go straight to the captain, named ``NAME__TOOL``, instead of behind an agent."""
    declared_in: str = ""
    """Where it is declared, for messages: ``PATH: [mcp_servers.NAME]`` or the entry point."""

    @property
    def transport(self) -> str:
        """``stdio: command args`` or ``http: url``, for messages and listings."""
        if self.url:
            return f"http: {self.url}"
        return "stdio: " + " ".join([self.command or "", *self.args])


def parse_servers(where: str, tables: Any) -> dict[str, McpServer]:
    """The ``[mcp_servers]`` tables of a config file (``where`` names it); raises McpServerError."""
    if not isinstance(tables, dict):
        raise McpServerError(f"{where}: [mcp_servers] must be a table of servers, e.g. [mcp_servers.tides]")
    return {
        name: parse_server(name, table, f"{where}: [mcp_servers.{name}]") for name, table in tables.items()
    }


def parse_server(name: str, table: Any, where: str) -> McpServer:
    """One declaration (a config table or what an entry point gives); raises McpServerError."""
    if not isinstance(table, dict):
        raise McpServerError(f'{where} must be a table with command = "..." or url = "..."')
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise McpServerError(f"{where}: unknown key {unknown[0]!r}; accepted: {', '.join(sorted(_KEYS))}")
    command, url = table.get("command"), table.get("url")
    if (command is None) == (url is None):
        raise McpServerError(f'{where}: give either command = "..." (stdio) or url = "http://..." (HTTP)')
    for key in ("command", "url", "description"):
        if key in table and not (isinstance(table[key], str) and table[key].strip()):
            raise McpServerError(f"{where}: {key} must be a non-empty string, got {table[key]!r}")
    args = table.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise McpServerError(f'{where}: args must be a list of strings, e.g. args = ["-m", "server"]')
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise McpServerError(f'{where}: env must be a table of strings, e.g. env = {{ KEY = "value" }}')
    direct = table.get("direct", False)
    if not isinstance(direct, bool):
        raise McpServerError(f"{where}: direct must be true or false, got {direct!r}")
    return McpServer(name, command, tuple(args), dict(env), url, table.get("description", ""), direct, where)


def entry_point_server(name: str, obj: Any, where: str) -> McpServer:
    """The server an entry point's object declares (a mapping, or a function returning one)."""
    if callable(obj):
        obj = obj()
    return parse_server(name, obj, where)
