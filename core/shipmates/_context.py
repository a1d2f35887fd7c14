"""The delegation stack: which agents are working on the current request, outermost first."""

from __future__ import annotations

from contextvars import ContextVar

# Carried by contextvars, so it follows asyncio tasks and (copied) worker threads.
delegation_stack: ContextVar[tuple[str, ...]] = ContextVar("shipmates_delegation_stack", default=())


def current_stack() -> tuple[str, ...]:
    """The agent names on the delegation stack of the running call, outermost first."""
    return delegation_stack.get()
