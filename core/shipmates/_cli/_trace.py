"""The live delegation trace: a pluggy plugin that prints tool calls as they happen.

Each finished call is one line, indented by delegation depth::

    [fib] factor(query='factor 60') ...
      [factor] factor_number(n=60) -> 2, 2, 3, 5
    [fib] factor(query='factor 60') -> 2, 2, 3, 5

A delegation also prints a line when it starts, so nested calls appear under it before
the outer call returns. The lines are rendered by :mod:`._views`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._plugins._hookspecs import hookimpl
from ._views import finished_line, started_line

if TYPE_CHECKING:
    from .._run._events import ToolCallEvent


class Tracer:
    """Prints the trace through ``write`` (one line per call, without the newline).

    Register it on the plugin manager for the session; ``enabled`` turns it off without
    unregistering (``/trace off``).
    """

    def __init__(self, write: Callable[[str], None], *, enabled: bool = True) -> None:
        self._write = write
        self._lock = threading.Lock()  # sync tools may finish in worker threads
        self.enabled = enabled

    def _emit(self, line: str) -> None:
        with self._lock:
            self._write(line)

    @hookimpl
    def tool_call_started(self, event: ToolCallEvent) -> None:
        if self.enabled and event.is_delegation:
            self._emit(started_line(event))

    @hookimpl
    def tool_call_finished(self, event: ToolCallEvent) -> None:
        if self.enabled:
            self._emit(finished_line(event))
