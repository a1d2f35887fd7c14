"""One model turn's tool calls: planned, approved, run concurrently, each outcome turned into text."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import EndSession
from .._models._model import ModelResponse, ToolCall
from .._runtime import tool_pool
from .._settings import SettingsError, max_result_chars_from
from ._budget import BudgetExhausted
from ._context import delegation_stack, parent_call, parent_call_id
from ._events import ToolCallEvent
from ._tool import Tool, ToolArgumentsError

if TYPE_CHECKING:
    from .._plugins._host import PluginHost
    from ._agent import Agent

T = TypeVar("T")

Approver = Callable[[ToolCallEvent], bool | Awaitable[bool]]

REFUSED = "the user refused this call; do not retry it, answer without it or ask the user"
DEFAULT_MAX_RESULT_CHARS = 100_000
"""The longest tool or sibling result the model sees (``Agent(max_result_chars=)``,
``SHIPMATES_MAX_RESULT_CHARS``); longer ones are cut, with a note saying so."""
ERROR_DETAIL_CHARS = 2_000
"""The most of an exception's message an error result quotes."""


def max_result_chars(value: int | None = None) -> int:
    """``value`` (checked), else ``SHIPMATES_MAX_RESULT_CHARS``, else :data:`DEFAULT_MAX_RESULT_CHARS`."""
    if value is None:
        return max_result_chars_from() or DEFAULT_MAX_RESULT_CHARS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_result_chars must be a whole number >= 1, got {value!r}")
    return value


def cap_result(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a note telling the model how much was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return (
        f"{text[:limit]}\n[shipmates: result truncated: {cut:,} of {len(text):,} characters cut, "
        f"over the limit of {limit:,} (max_result_chars, SHIPMATES_MAX_RESULT_CHARS)]"
    )


def to_text(value: Any) -> str:
    """A tool's return value as the text the model sees."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    if isinstance(value, (dict, list, tuple, int, float, bool)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _who(tool: Tool) -> str:
    if tool.sibling is None:
        return f"tool '{tool.name}'"
    where = tool.provenance.describe() if tool.provenance is not None else "code"
    return f"sibling '{tool.name}' ({where})"


def _exclude_hint(tool: Tool) -> str:
    prov = tool.provenance
    if prov is not None and prov.distribution:
        return (
            f" If it keeps failing, report it to the maintainers of {prov.distribution} or leave it "
            f"out with SHIPMATES_EXCLUDE_AGENTS={prov.distribution}."
        )
    return ""


def _failure(tool: Tool, exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return (
            f"error: {_who(tool)} tried to end the process (SystemExit: {exc.code!r}); shipmates kept "
            "the process running and the captain carries on: answer without it. A sibling that must be "
            f"isolated from the captain's process can run under `shipmates serve`.{_exclude_hint(tool)}"
        )
    return (
        f"error: {_who(tool)} failed with {type(exc).__name__}: {_detail(exc)}. "
        f"The {'captain' if tool.sibling is not None else 'agent'} carries on: answer without it "
        f"or call it again with different arguments.{_exclude_hint(tool)}"
    )


def _detail(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= ERROR_DETAIL_CHARS else text[:ERROR_DETAIL_CHARS] + "..."


class _Hooks:
    """The two tool-call hooks, each plugin's implementation called on its own: a failing
    observer is reported once (plugin, distribution, hook, fix) and the others still see the call."""

    __slots__ = ("finished", "host", "run", "started")

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        self.run: Any = None  # the run's RunScope, handed to what its calls run (see _stream)
        self.started = host.implemented("tool_call_started")
        self.finished = host.implemented("tool_call_finished")

    def start(self, event: ToolCallEvent) -> None:
        if self.started:
            self.host.report(self.host.call_each("tool_call_started", event=event).failures)

    def finish(self, event: ToolCallEvent) -> None:
        if self.finished:
            self.host.report(self.host.call_each("tool_call_finished", event=event).failures)


async def _within(awaitable: Awaitable[Any], timeout: float) -> Any:
    # Runs in the calling task: cheaper than wait_for, which wraps coroutines in a new task.
    async with asyncio.timeout(timeout):
        return await awaitable


async def _execute(tool: Tool, bound: tuple[tuple[Any, ...], dict[str, Any]], timeout: float) -> Any:
    args, kwargs = bound
    if tool.is_async:
        result = tool.fn(*args, **kwargs)
        return await _within(result, timeout) if inspect.isawaitable(result) else result
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    if kwargs:
        future = loop.run_in_executor(tool_pool(), lambda: ctx.run(tool.fn, *args, **kwargs))
    else:
        future = loop.run_in_executor(tool_pool(), ctx.run, tool.fn, *args)
    result = await _within(future, timeout)
    return await _within(result, timeout) if inspect.isawaitable(result) else result


class _Call:
    """One planned tool call of a turn: its tool, parsed arguments (or the error) and its event."""

    __slots__ = ("bound", "call", "error", "event", "tool")

    def __init__(self, call: ToolCall, tool: Tool | None, event: ToolCallEvent) -> None:
        self.call = call
        self.tool = tool
        self.event = event
        self.bound: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.error: str | None = None


def _plan(agent: Agent, call: ToolCall, stack: tuple[str, ...]) -> _Call:
    tool = agent._tools.get(call.name)
    arguments: dict[str, Any] | str = call.arguments
    event = ToolCallEvent(
        agent=agent.name,
        tool=call.name,
        arguments=arguments,
        call_id=call.id,
        depth=len(stack) - 1,
        path=stack,
        parent_call_id=parent_call_id(),
    )
    planned = _Call(call, tool, event)
    if tool is None:
        names = ", ".join(agent._tools) or "none"
        planned.error = f"error: there is no tool named '{call.name}'; the available tools are: {names}"
        return planned
    event.is_delegation = tool.sibling is not None
    event.provenance = tool.provenance
    try:
        parsed = tool.parse(call.arguments)
        event.arguments = parsed
        planned.bound = tool.bind(parsed)
    except ToolArgumentsError as exc:
        planned.error = str(exc)
        return planned
    if tool.sibling is not None:
        if tool.name in stack:
            chain = " -> ".join((*stack, tool.name))
            planned.error = (
                f"error: delegation cycle: {chain}. '{tool.name}' is already working on this request "
                "further up; answer with what you have instead of delegating back to it"
            )
        elif len(stack) > agent.max_depth:
            planned.error = (
                f"error: delegation depth limit reached: {' -> '.join(stack)} is already "
                f"{len(stack) - 1} levels deep (max_depth={agent.max_depth}); "
                "answer without delegating further"
            )
    return planned


async def _run_call(agent: Agent, planned: _Call, hooks: _Hooks, stack: tuple[str, ...]) -> str:
    """Run one planned call; every outcome but EndSession and cancellation becomes text."""
    event = planned.event
    tool = planned.tool
    if planned.error is None and tool is not None and tool.sibling is not None:
        spend = getattr(hooks.run, "spend", None)
        why = spend.delegate() if spend is not None else None
        if why is not None:
            planned.error = f"error: {why}; '{tool.name}' was not called: answer with what you have"
    if planned.error is not None or tool is None or planned.bound is None:
        event.status, event.error = "error", planned.error
        event.duration = time.monotonic() - event.started
        hooks.finish(event)
        return planned.error or "error"
    timeout = tool.timeout if tool.timeout is not None else agent.tool_timeout
    token = delegation_stack.set((*stack, tool.name)) if tool.sibling is not None else None
    linked = parent_call.set((event.call_id, hooks.run))
    begun = time.monotonic()
    try:
        try:
            value = await _execute(tool, planned.bound, timeout)
        finally:
            if token is not None:
                delegation_stack.reset(token)
            parent_call.reset(linked)
        text = cap_result(to_text(value), agent.max_result_chars)
        event.status, event.result = "ok", text
    except EndSession:
        event.status, event.result = "ok", "session ended"
        raise
    except SettingsError as exc:  # a bad SHIPMATES_* value is the caller's to fix, not the tool's
        event.status, event.error = "error", str(exc)
        raise
    except asyncio.CancelledError:
        event.status, event.error = "cancelled", "cancelled"
        raise
    except TimeoutError as exc:
        if time.monotonic() - begun < timeout:  # the tool's own TimeoutError, not ours
            text = _failure(tool, exc)
            event.status, event.error = "error", text
            return text
        text = (
            f"error: {_who(tool)} did not answer within {timeout:g} s and was abandoned (timeout). "
            "Answer without it, or try again later; the timeout is set per sibling "
            "(absorb(..., timeout=), a 'timeout' attribute) or with SHIPMATES_TOOL_TIMEOUT."
        )
        event.status, event.error = "timeout", text
    except BudgetExhausted as exc:
        text = f"error: {_who(tool)} stopped: {exc}. Answer with what you have."
        event.status, event.error = "error", text
    except Exception as exc:
        text = _failure(tool, exc)
        event.status, event.error = "error", text
    except BaseException as exc:  # SystemExit and the like: the sibling's failure, not the captain's
        text = _failure(tool, exc)
        event.status, event.error = "error", text
    finally:
        event.duration = time.monotonic() - event.started
        hooks.finish(event)
    return text


async def _maybe_await(value: bool | Awaitable[bool]) -> bool:
    return bool(await value) if inspect.isawaitable(value) else bool(value)


async def run_turn_calls(
    agent: Agent,
    calls: list[ToolCall],
    hooks: _Hooks,
    stack: tuple[str, ...],
    events: list[ToolCallEvent],
    approve: Approver | None,
    said: str | None = None,
) -> list[str]:
    """Run one model turn's tool calls concurrently; results in call order. ``said``: the text
    the model wrote beside them (on the first call's event, for the trace)."""
    planned = [_plan(agent, call, stack) for call in calls]
    if said and planned:
        planned[0].event.said = said
    for p in planned:
        events.append(p.event)
        p.event.started = time.monotonic()
        hooks.start(p.event)
    if approve is not None:
        # Asked one at a time, before anything runs, so prompts never interleave.
        for p in planned:
            if p.error is None and not await _maybe_await(approve(p.event)):
                p.error = f"error: {REFUSED}"
                p.event.status = "refused"
    results: list[str] = []
    if len(planned) == 1:
        p = planned[0]
        if p.event.status == "refused":
            return [_refused(p, hooks)]
        return [await _run_call(agent, p, hooks, stack)]
    tasks = [
        asyncio.ensure_future(_finish_refused(p, hooks))
        if p.event.status == "refused"
        else asyncio.ensure_future(_run_call(agent, p, hooks, stack))
        for p in planned
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in planned:
            if p.event.status == "running":  # cancelled before it started
                p.event.status, p.event.error = "cancelled", "cancelled"
                p.event.duration = time.monotonic() - p.event.started
                hooks.finish(p.event)
        raise
    pending = [t for t in tasks if not t.done()]
    if pending:  # one raised EndSession (or a bug): stop the others
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for t in tasks:
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
    for t in tasks:
        results.append(t.result())
    return results


def _refused(p: _Call, hooks: _Hooks) -> str:
    p.event.error = REFUSED
    p.event.duration = time.monotonic() - p.event.started
    hooks.finish(p.event)
    return f"error: {REFUSED}"


async def _finish_refused(p: _Call, hooks: _Hooks) -> str:
    return _refused(p, hooks)


def assistant_message(response: ModelResponse) -> dict[str, Any]:
    """The OpenAI-format assistant message for a model response."""
    message: dict[str, Any] = {"role": "assistant", "content": response.content}
    if response.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls
        ]
    return message
