"""``shipmates chat``: assemble the crew, then answer one prompt (``--once``) or run the REPL."""

from __future__ import annotations

import contextlib
import gc
import sys

USAGE_ERROR = 2


def run_chat(
    *,
    captain: str | None = None,
    model: str | None = None,
    only: list[str] | None = None,
    exclude: list[str] | None = None,
    once: str | None = None,
    approve: bool = False,
    trace: bool = True,
    memory: int | None = None,
    pause_gc: bool = False,
) -> int:
    """Run the chat command; returns the exit status (2: unknown captain or a failed --once).

    ``pause_gc``: this process is the ``shipmates`` command, which owns its garbage collector.
    Start-up (imports, discovery, building the crew, and for ``--once`` the captain's tool
    schemas, which import pydantic) creates tens of thousands of objects that all live on; the
    collector would run dozens of times meanwhile, walking them again and again and finding no
    garbage (~10 ms of a one-shot turn). So it is paused until the crew is ready, then those
    objects are frozen out of its sight (``gc.freeze()``: the pattern Python's docs give for
    long-lived start-up objects) and it runs as usual for the turn or the session, where tools
    and siblings run.
    """
    paused = pause_gc and gc.isenabled()
    if paused:
        gc.disable()
    try:
        from .._crew._assemble import CaptainError, assemble
        from ._repl import Repl

        try:
            crew = assemble(captain, model=model, only=only, exclude=exclude)
        except CaptainError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return USAGE_ERROR
        repl = Repl(crew, approve=approve, trace=trace, memory=memory)
        if paused and once is not None:
            # What the turn's first step builds anyway; a failure is reported by the turn.
            with contextlib.suppress(Exception):
                crew.captain.tool_schemas()
    finally:
        if paused:
            gc.freeze()
            gc.enable()
    return repl.run() if once is None else repl.run_once(once)
