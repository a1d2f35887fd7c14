"""The crew as an MCP server: one tool per sibling, or the captain alone as one tool.

Built on the ``mcp`` SDK's low-level server (the tool list is dynamic, the schemas are the
siblings' own). A tool's answer is text content; a failure is a tool error (``isError``) carrying
shipmates' message; a run's events go to the client as progress notifications when the client
sent a progress token; a cancelled request cancels the delegation.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server

from .. import __version__
from .._crew._sibling import SiblingSpec, sibling_spec
from .._errors import EndSession, ShipmatesError
from .._run._sibling_tool import sibling_tool
from .._run._stream_events import (
    ModelCallFinished,
    RunEvent,
    RunFinished,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from .._run._tool import Tool, ToolArgumentsError

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

    from .._settings import Settings

Progress = Callable[[RunEvent], Awaitable[None]]


def serve(settings: Settings, *, captain: bool, http: tuple[str, int] | None) -> int:
    """Serve until the client leaves (stdio) or the process is interrupted (HTTP); the exit status."""
    from .._models._session import use_session

    try:
        with use_session(settings):  # the config file's default and SHIPMATES_API_BASE etc. too
            if http is None:
                anyio.run(_serve_stdio, settings, captain)
            else:
                anyio.run(_serve_http, settings, captain, *http)
    except KeyboardInterrupt:
        pass
    except ShipmatesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve_stdio(settings: Settings, captain: bool) -> None:
    from mcp.server.stdio import stdio_server

    # Entered first: while it serves, fd 1 points at stderr, so whatever loading the crew
    # prints cannot corrupt the protocol channel.
    async with stdio_server() as (read, write):
        server = build_server(settings, captain)
        await server.run(read, write, server.create_initialization_options())


async def _serve_http(settings: Settings, captain: bool, host: str, port: int) -> None:
    import uvicorn

    server = build_server(settings, captain)
    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    print(f"shipmates mcp: serving streamable HTTP at http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve()


def build_server(settings: Settings, captain: bool) -> Server[Any]:
    """The MCP server over the crew ``settings`` select (failures reported on stderr)."""
    tools = {tool.name: (tool, spec) for tool, spec in (_captain(settings) if captain else _crew(settings))}
    listing = types.ListToolsResult(
        tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.parameters)
            for t, _ in tools.values()
        ]
    )

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return listing

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name not in tools:
            return _error(f"error: no tool named {params.name!r}; tools: {', '.join(tools) or 'none'}")
        tool, spec = tools[params.name]
        try:
            text = await answer(tool, spec, params.arguments or {}, _progress(ctx))
        except ToolArgumentsError as exc:
            return _error(str(exc))
        except EndSession as exc:  # an MCP call has no session to end: its farewell is the answer
            text = str(exc)
        except (Exception, SystemExit) as exc:
            from .._crew._loader import exception_line

            return _error(f"error: sibling '{tool.name}' failed: {exception_line(exc)}")
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    return Server("shipmates", version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _report(line: str) -> None:
    from .._text import print_safe

    print_safe(f"shipmates mcp: {line}", sys.stderr)


def _crew(settings: Settings) -> list[tuple[Tool, SiblingSpec]]:
    """A tool per sibling that loaded; the others are reported and left out."""
    from .._crew._discovery import discover, remember_selector

    only = list(settings.only) if settings.only is not None else None
    exclude = list(settings.exclude) if settings.exclude is not None else None
    remember_selector(only, exclude)
    tools = []
    for record in discover(only=only, exclude=exclude):
        if record.status in ("failed", "conflict"):
            _report(f"left out {record.one_line()}")
        if record.status != "ok" or record.spec is None:
            continue
        try:
            tools.append((sibling_tool(record.spec, provenance=record.provenance), record.spec))
        except ShipmatesError as exc:
            _report(f"left out {record.name}: {exc}")
    return tools


def _captain(settings: Settings) -> list[tuple[Tool, SiblingSpec]]:
    """The captain (``settings.captain``, else the general one) with the crew absorbed, alone."""
    from .._crew._assemble import assemble

    crew = assemble(
        settings.captain,
        only=list(settings.only) if settings.only is not None else None,
        exclude=list(settings.exclude) if settings.exclude is not None else None,
    )
    for record in crew.discovery.records:
        if record.status in ("failed", "conflict"):
            _report(f"left out {record.one_line()}")
    for line in crew.report.lines():
        _report(line)
    spec = sibling_spec(crew.captain)
    return [(sibling_tool(spec), spec)]


def _progress(ctx: ServerRequestContext[Any]) -> Progress:
    count = 0

    async def report(event: RunEvent) -> None:
        nonlocal count
        message = describe_event(event)
        if message is None:
            return
        count += 1
        await ctx.session.report_progress(count, None, message)

    return report


def describe_event(event: RunEvent) -> str | None:
    """One line for a progress notification; None for text deltas (the answer carries the text)."""
    if isinstance(event, TextDelta):
        return None
    where = "/".join(
        event.call.path if isinstance(event, (ToolCallStarted, ToolCallFinished)) else event.path
    )
    if isinstance(event, ToolCallStarted):
        return f"{where}: calling {event.call.tool}"
    if isinstance(event, ToolCallFinished):
        return f"{where}: {event.call.tool} {event.call.status}"
    if isinstance(event, RunFinished):
        return f"{where or event.agent}: run {event.status}"
    if isinstance(event, ModelCallFinished):
        return f"{where or event.agent}: model call to {event.model} finished"
    return f"{where or event.agent}: started"


async def answer(tool: Tool, spec: SiblingSpec, arguments: dict[str, Any], progress: Progress) -> str:
    """Ask the sibling behind ``tool``; its run's events go to ``progress``. Raises on failure."""
    args, kwargs = tool.bind(arguments)
    events = _events(spec, args[0])
    if events is None:
        if spec.is_async:
            return str(await spec.call(*args, **kwargs))
        return str(await anyio.to_thread.run_sync(lambda: spec.call(*args, **kwargs), abandon_on_cancel=True))
    finished: RunFinished | None = None
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, RunFinished) and event.depth == 0:
                finished = event
            await progress(event)
    if finished is None:
        raise RuntimeError(f"sibling '{spec.name}' ended its event stream without a RunFinished event")
    if finished.status != "ok":
        raise RuntimeError(finished.error or f"the run ended with status {finished.status}")
    return finished.output


def _events(spec: SiblingSpec, query: Any) -> AsyncGenerator[RunEvent, None] | None:
    """The sibling's run as events: an Agent's ``stream``, else its ``astream``; None without."""
    from .._run._agent import Agent

    if isinstance(spec.sibling, Agent):
        return spec.sibling.stream(query)
    astream = getattr(spec.sibling, "astream", None)
    return astream(query) if callable(astream) else None
