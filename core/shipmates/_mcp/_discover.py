"""The MCP servers of the user config and of ``shipmates.mcp_servers`` entry points, as siblings.

Registered through the built-in MCP plugin's ``register_agents``: listing reads the config file
and the entry points' metadata only; loading builds each sibling (still without starting its
server, see :mod:`._client_sibling`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._crew._entrypoints import MCP_SERVERS_GROUP
from .._crew._sibling import Provenance

if TYPE_CHECKING:
    from .._crew._entrypoints import EntryPointInfo
    from .._plugins._hookspecs import RegisterAgent
    from ._servers import McpServer


def declared() -> bool:
    """True when the config file or an installed package declares an MCP server (cheap)."""
    import os

    from .._config import ConfigError, config_file
    from .._crew._entrypoints import entry_points

    if entry_points(MCP_SERVERS_GROUP):
        return True
    try:
        return os.path.isfile(config_file()) and bool(_config_servers())
    except ConfigError:
        return True  # the hook reports it, as the failure of the built-in MCP plugin


def register_servers(register: RegisterAgent) -> None:
    """``register`` a provider per declared server, with where it is declared as provenance."""
    from .._crew._entrypoints import entry_points

    for server in _config_servers().values():
        register(_provider(server), name=server.name, provenance=_provenance(server))
    for ep in entry_points(MCP_SERVERS_GROUP):
        register(_entry_point_provider(ep), name=ep.name, provenance=_provenance(None, ep))


def _config_servers() -> dict[str, McpServer]:
    from .._config import read_config  # no file, no parsing: nothing imported for MCP

    return read_config().mcp_servers


def _origin(server: McpServer | None) -> str:
    return "remote" if server is not None and server.url else "mcp"


def _provenance(server: McpServer | None, ep: EntryPointInfo | None = None) -> Provenance:
    if ep is not None:
        return Provenance("mcp", ep.distribution, ep.version, ep.value, f"MCP server {ep.name}")
    assert server is not None
    return Provenance(_origin(server), location=f"MCP server ({server.transport}) from {server.declared_in}")


def _provider(server: McpServer) -> Any:
    def build() -> Any:
        from ._client_sibling import McpServerAgent

        return McpServerAgent(server)

    return build


def _entry_point_provider(ep: EntryPointInfo) -> Any:
    def build() -> Any:
        from .._crew._loader import load_entry_point
        from ._client_sibling import McpServerAgent
        from ._servers import entry_point_server

        where = (
            f"the {MCP_SERVERS_GROUP} entry point {ep.name} = {ep.value} of {ep.distribution} {ep.version}"
        )
        return McpServerAgent(entry_point_server(ep.name, load_entry_point(ep.value), where))

    return build
