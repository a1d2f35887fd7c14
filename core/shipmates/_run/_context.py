"""The delegation stack: which agents are working on the current request, outermost first."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._events import ToolCallEvent

# Carried by contextvars, so it follows asyncio tasks and (copied) worker threads.
delegation_stack: ContextVar[tuple[str, ...]] = ContextVar("shipmates_delegation_stack", default=())

# The tool call the running agent works for: (its call id, the run that made it), so a sibling's
# events link to the captain's call and its usage is counted in the captain's (see _stream).
parent_call: ContextVar[tuple[str | None, Any] | None] = ContextVar("shipmates_parent_call", default=None)


run_request: ContextVar[str | None] = ContextVar("shipmates_run_request", default=None)
"""The request of the agent run in progress (its user message): what a delegation passes on
when the model's query is only a placeholder (empty, or the parameter's own description)."""


def parent_call_id() -> str | None:
    """The id of the tool call the running agent works for (None for a top-level run)."""
    link = parent_call.get()
    return link[0] if link is not None else None


def current_stack() -> tuple[str, ...]:
    """The agent names on the delegation stack of the running call, outermost first."""
    return delegation_stack.get()


# The approver of the outermost run that set one, with the event loop it must be asked on,
# so that the calls siblings make further down are approved by the same person.
Approval = tuple[Callable[["ToolCallEvent"], Any], asyncio.AbstractEventLoop]
approval: ContextVar[Approval | None] = ContextVar("shipmates_approval", default=None)

# Every approver in force in the process, newest last. A sibling may run an inner agent on a
# thread of its own (threading.Thread copies no context) or through run_in_executor: its
# calls find no approver in their context, so they fall back to these. Approval fails closed.
_in_force: list[Approval] = []
_in_force_lock = threading.Lock()


def require_approval(
    approve: Callable[[ToolCallEvent], Any], home: asyncio.AbstractEventLoop
) -> Callable[[], None]:
    """Put ``approve`` in force for this context and, as a fallback, for the whole process.

    Returns the function that ends it (call it when the run that set it finishes).
    """
    entry: Approval = (approve, home)
    token = approval.set(entry)
    with _in_force_lock:
        _in_force.append(entry)

    def end() -> None:
        approval.reset(token)
        with _in_force_lock:
            _in_force.remove(entry)

    return end


def inherited_approver() -> Callable[[ToolCallEvent], Awaitable[bool]] | None:
    """The approver of the enclosing run, else any approver in force in the process, or None.

    The returned function can be awaited from any event loop or thread.
    """
    inherited = approval.get()
    if inherited is None:
        with _in_force_lock:
            inherited = _in_force[-1] if _in_force else None
    if inherited is None:
        return None
    approve, home = inherited

    async def ask(event: ToolCallEvent) -> bool:
        answer = approve(event)
        if not inspect.isawaitable(answer):
            return bool(answer)
        if asyncio.get_running_loop() is home or not inspect.iscoroutine(answer):
            return bool(await answer)
        # A sync sibling runs its own loop in a worker thread; the approver (a REPL prompt)
        # belongs to the loop that set it.
        return bool(await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(answer, home)))

    return ask
