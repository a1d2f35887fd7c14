"""An MCP server as a sibling: an agent on the session model whose tools are the server's.

Nothing starts when the sibling is built: the first run (or, for a ``direct`` server, the first
look at its tools) opens the connection on shipmates' background event loop, where it stays
until the process exits. A server that does not start or answer fails that run with a message
naming it, where it is declared and how to leave it out; the next run tries again.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import re
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from .._crew._loader import exception_line
from .._errors import ShipmatesError
from .._run._agent import Agent
from .._run._tool import Tool
from .._runtime import on_background_loop, run_sync, submit

if TYPE_CHECKING:
    import mcp_types
    from mcp import Client

    from .._run._stream_events import RunEvent
    from ._servers import McpServer

START_TIMEOUT = 30.0
"""Seconds a server has to start and list its tools."""
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


class McpServerStartError(ShipmatesError):
    """The MCP server did not start or answer."""


def instructions(server: McpServer) -> str:
    return (
        f"You answer with the tools of the MCP server '{server.name}'. Call the tool that fits the "
        "request with the arguments it needs and answer from what it returns; say plainly when "
        "none fits."
    )


class McpConnection:
    """One server's client session, held open by a task on the background loop."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self._opening: asyncio.Future[tuple[Client, list[mcp_types.Tool]]] | None = None
        self._stop: asyncio.Event | None = None
        self._holder: asyncio.Future[None] | None = None

    async def tools(self) -> list[mcp_types.Tool]:
        """The server's tools, connecting first if needed; raises McpServerStartError."""
        return (await on_background_loop(self._open()))[1]

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Call ``tool``; its text, or RuntimeError carrying the server's message when it failed."""
        return await on_background_loop(self._call(tool, arguments))

    async def _call(self, tool: str, arguments: dict[str, Any]) -> str:
        client, _ = await self._open()
        result = await client.call_tool(tool, arguments)
        text = "\n".join(getattr(block, "text", "") or f"[{block.type}]" for block in result.content)
        if result.is_error:
            raise RuntimeError(f"tool '{tool}' of MCP server '{self.server.name}' failed: {text}")
        return text

    async def _open(self) -> tuple[Client, list[mcp_types.Tool]]:
        """On the background loop: the open session, started by the first caller."""
        if self._opening is None or (self._opening.done() and self._opening.exception() is not None):
            self._opening = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._holder = asyncio.ensure_future(self._hold(self._opening, self._stop))
        try:
            return await asyncio.wait_for(asyncio.shield(self._opening), START_TIMEOUT)
        except TimeoutError:
            raise self._failed(f"no answer within {START_TIMEOUT:g} s") from None

    async def _hold(self, opened: asyncio.Future[Any], stop: asyncio.Event) -> None:
        from mcp import Client

        try:
            async with Client(self._transport(), read_timeout_seconds=START_TIMEOUT) as client:
                tools = list((await client.list_tools()).tools)
                if not opened.done():
                    opened.set_result((client, tools))
                _open_connections.add(self)
                await stop.wait()
        except BaseException as exc:
            if not opened.done():
                opened.set_exception(self._failed(exception_line(_leaf(exc))))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            _open_connections.discard(self)

    def _transport(self) -> Any:
        server = self.server
        if server.url:
            return server.url
        from mcp import StdioServerParameters

        # The SDK's minimal environment (PATH, HOME, ...) plus the declared one: the server does
        # not see the captain's keys unless its declaration passes them.
        return StdioServerParameters(
            command=server.command or "", args=list(server.args), env=dict(server.env) or None
        )

    def _failed(self, reason: str) -> McpServerStartError:
        s = self.server
        return McpServerStartError(
            f"MCP server '{s.name}' ({s.transport}) did not start or answer: {reason}; fix it in "
            f"{s.declared_in}, or leave it out with SHIPMATES_EXCLUDE_AGENTS={s.name}"
        )

    async def close(self) -> None:
        """On the background loop: end the session (a stdio server's process stops)."""
        if self._stop is not None:
            self._stop.set()


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, as anyio task groups raise them."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


_open_connections: set[McpConnection] = set()


@atexit.register
def _close_all() -> None:
    """Stop the servers with the process (the captain's life), waiting a little for each."""
    for connection in list(_open_connections):
        with contextlib.suppress(Exception):
            submit(connection.close()).result(2)


def mcp_tool(connection: McpConnection, tool: mcp_types.Tool, name: str | None = None) -> Tool:
    """A shipmates tool that calls ``tool`` of the server (``name`` defaults to the tool's, made valid)."""
    remote = tool.name

    async def call(**arguments: Any) -> str:
        return await connection.call(remote, arguments)

    return Tool(
        name or _INVALID.sub("_", remote)[:64],
        tool.description or f"The tool '{remote}' of the MCP server '{connection.server.name}'.",
        dict(tool.input_schema),
        call,
        bind=lambda arguments: ((), arguments),
        is_async=True,
    )


class McpServerAgent(Agent):
    """The sibling of one MCP server: its tools are added on its first run."""

    def __init__(self, server: McpServer) -> None:
        super().__init__(
            name=server.name,
            description=server.description or f"The MCP server '{server.name}' ({server.transport}).",
            instructions=instructions(server),
        )
        self.connection = McpConnection(server)
        self._connected = False
        self.available = True
        """False once its server failed to start or answer (``/agents`` shows it unavailable);
        the next delegation tries to start it again."""

    async def _connect(self) -> None:
        if self._connected:
            return
        try:
            tools = await self.connection.tools()
        except McpServerStartError:
            self.available = False
            raise
        self.available = True
        for tool in tools:
            if self.get_tool(tool.name) is None:
                self.add_tool(mcp_tool(self.connection, tool))
        self._connected = True

    async def arun(self, query: Any, **options: Any) -> Any:
        await self._connect()
        return await super().arun(query, **options)

    def stream(self, query: Any, **options: Any) -> AsyncGenerator[RunEvent, None]:
        return self._stream(query, options)

    async def _stream(self, query: Any, options: dict[str, Any]) -> AsyncGenerator[RunEvent, None]:
        await self._connect()
        async with contextlib.aclosing(super().stream(query, **options)) as events:
            async for event in events:
                yield event

    def captain_tools(self) -> list[Tool] | None:
        """With ``direct``: the server's tools named ``SERVER__TOOL``, which the captain adds
        instead of absorbing this agent (connects now: the captain needs their names)."""
        if not self.connection.server.direct:
            return None
        tools = run_sync(self.connection.tools())
        return [mcp_tool(self.connection, t, f"{self.name}__{_INVALID.sub('_', t.name)}"[:64]) for t in tools]
