"""The live delegation trace: a pluggy plugin that prints tool calls as they happen.

Each finished call is one line, indented by delegation depth::

    [fib] factor(query='factor 60') ...
      [factor] factor_number(n=60) -> 2, 2, 3, 5
    [fib] factor(query='factor 60') -> 2, 2, 3, 5

A delegation also prints a line when it starts, so nested calls appear under it before
the outer call returns. The lines are rendered by :mod:`._views`, which bounds every field and
strips the terminal control sequences of the text in it (events may come from remote peers).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from .._plugins._hookspecs import hookimpl
from ._views import finished_line, said_line, started_line

if TYPE_CHECKING:
    from .._run._events import ToolCallEvent


class Tracer:
    """Prints the trace through ``write`` (one line per call, without the newline).

    A chat prints through it with :func:`tracing` (the built-in trace plugin calls it); it is
    also a pluggy plugin of its own. ``enabled`` turns it off (``/trace off``).
    """

    def __init__(
        self, write: Callable[[str], None], *, enabled: bool = True, said_at_top: bool = True
    ) -> None:
        self._write = write
        self._lock = threading.Lock()  # sync tools may finish in worker threads
        self.enabled = enabled
        self.said_at_top = said_at_top
        """Trace what the captain itself says beside its calls (off when the answer streams live)."""

    def _emit(self, line: str) -> None:
        with self._lock:
            self._write(line)

    @hookimpl
    def tool_call_started(self, event: ToolCallEvent) -> None:
        if not self.enabled:
            return
        if event.said and (self.said_at_top or event.depth > 0):
            self._emit(said_line(event))
        if event.is_delegation:
            self._emit(started_line(event))

    @hookimpl
    def tool_call_finished(self, event: ToolCallEvent) -> None:
        if self.enabled:
            self._emit(finished_line(event))


active_tracer: ContextVar[Tracer | None] = ContextVar("shipmates_active_tracer", default=None)
"""The tracer of the chat running in this context; the built-in trace plugin prints through it."""
_in_force: list[Tracer] = []
"""Every chat's tracer, newest last: calls on threads a sibling starts itself (no context) use it."""


@contextlib.contextmanager
def tracing(tracer: Tracer) -> Iterator[None]:
    """Print tool calls through ``tracer`` while in the block (the built-in trace plugin)."""
    token = active_tracer.set(tracer)
    _in_force.append(tracer)
    try:
        yield
    finally:
        _in_force.remove(tracer)
        active_tracer.reset(token)


def current_tracer() -> Tracer | None:
    """The tracer of this context's chat, else the newest chat's, else None."""
    tracer = active_tracer.get()
    if tracer is None and _in_force:
        return _in_force[-1]
    return tracer
