"""The delegation stack: which agents are working on the current request, outermost first."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._events import ToolCallEvent

# Carried by contextvars, so it follows asyncio tasks and (copied) worker threads.
delegation_stack: ContextVar[tuple[str, ...]] = ContextVar("shipmates_delegation_stack", default=())


def current_stack() -> tuple[str, ...]:
    """The agent names on the delegation stack of the running call, outermost first."""
    return delegation_stack.get()


# The approver of the outermost run that set one, with the event loop it must be asked on,
# so that the calls siblings make further down are approved by the same person.
approval: ContextVar[tuple[Callable[[ToolCallEvent], Any], asyncio.AbstractEventLoop] | None] = (
    ContextVar("shipmates_approval", default=None)
)


def inherited_approver() -> Callable[[ToolCallEvent], Awaitable[bool]] | None:
    """The approver set by an enclosing run, callable from any event loop, or None."""
    inherited = approval.get()
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
