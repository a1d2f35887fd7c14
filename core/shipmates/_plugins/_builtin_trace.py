"""Built-in plugin: the REPL's live delegation trace.

The chat that is running sets its tracer with :func:`shipmates._cli._trace.tracing` (a context
variable, so it follows the turn into tasks, worker threads and siblings, with the newest chat's
tracer for threads a sibling starts itself); outside a chat both hooks return at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._cli._trace import current_tracer
from ._hookspecs import hookimpl

if TYPE_CHECKING:
    from .._run._events import ToolCallEvent


@hookimpl
def tool_call_started(event: ToolCallEvent) -> None:
    tracer = current_tracer()
    if tracer is not None:
        tracer.tool_call_started(event)


@hookimpl
def tool_call_finished(event: ToolCallEvent) -> None:
    tracer = current_tracer()
    if tracer is not None:
        tracer.tool_call_finished(event)
