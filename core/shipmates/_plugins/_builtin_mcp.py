"""Built-in plugin: the ``mcp`` subcommand (``shipmates mcp serve``)."""

from __future__ import annotations

from ._hookspecs import RegisterCli, hookimpl


@hookimpl(tryfirst=True)
def register_cli(register: RegisterCli) -> None:
    from .._mcp._command import configure, run

    register("mcp", "Model Context Protocol: serve the crew to MCP clients", configure, run)
