"""``shipmates chat``: assemble the crew, then answer one prompt (``--once``) or run the REPL."""

from __future__ import annotations

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
) -> int:
    """Run the chat command; returns the exit status (2: unknown captain or a failed --once)."""
    from ._captain import CaptainError, assemble
    from ._repl import Repl, preload_if_litellm

    # litellm takes seconds to import: start it now, while discovery and the banner run.
    preload_if_litellm(model)
    try:
        crew = assemble(captain, model=model, only=only, exclude=exclude)
    except CaptainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if model is None and isinstance(crew.captain.model, str):
        preload_if_litellm(crew.captain.model)  # a discovered captain with its own model
    repl = Repl(crew, approve=approve, trace=trace, memory=memory)
    return repl.run() if once is None else repl.run_once(once)
