"""Built-in plugin: the ``mcp`` subcommand (``shipmates mcp serve``) and the MCP servers declared
in the user config or by packages, as siblings."""

from __future__ import annotations

from ._hookspecs import RegisterAgent, RegisterCli, hookimpl


@hookimpl(tryfirst=True)
def register_cli(register: RegisterCli) -> None:
    from .._mcp._command import configure, run

    register("mcp", "Model Context Protocol: serve the crew to MCP clients", configure, run)


@hookimpl
def register_agents(register: RegisterAgent) -> None:
    from .._mcp._discover import register_servers

    register_servers(register)
