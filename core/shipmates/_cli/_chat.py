"""``shipmates chat``: assemble the crew, then answer one prompt (``--once``) or run the REPL."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .._settings import Settings

if TYPE_CHECKING:
    from ._chat_log import ChatLog
from .._startup import GcPause

USAGE_ERROR = 2


def run_chat(
    settings: Settings | None = None,
    *,
    once: str | None = None,
    pause_gc: bool = False,
    as_json: bool = False,
    usage: bool = False,
) -> int:
    """Run the chat command with ``settings`` (default: read from the environment); returns
    the exit status (2: unknown captain or a failed ``once``).

    The session's model (``settings.model``, else the config file's ``default_model``) and its
    settings (``--api-base``, ``-o``...) are the default of the captain and every sibling without
    a model of its own, for as long as the chat runs (context variables, not the environment).

    ``as_json``: ``once`` prints one JSON object (output, status, usage, tool calls);
    ``usage``: a line of tokens and cost on stderr after each answer.

    ``pause_gc``: this process is the ``shipmates`` command, which owns its garbage collector:
    it is paused while the crew is built (and, for ``once``, the captain's tool schemas), then
    what start-up made is frozen out of its sight (see :mod:`shipmates._startup`).
    """
    if settings is None:
        from .._settings import read_settings

        settings = read_settings()
    from .._models._session import use_session

    with use_session(settings), _verbose(settings.verbose):
        return _chat(settings, once, pause_gc, as_json=as_json, usage=usage)


@contextlib.contextmanager
def _verbose(on: bool) -> Iterator[None]:
    """With ``on`` (``-v``), the ``shipmates`` logger at DEBUG: failing hooks show their traceback."""
    if not on:
        yield
        return
    import logging

    logger = logging.getLogger("shipmates")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.setLevel(level)


def _chat(settings: Settings, once: str | None, pause_gc: bool, *, as_json: bool, usage: bool) -> int:
    with GcPause(pause_gc) as start_up:
        from .._crew._assemble import CaptainError, assemble
        from .._errors import ShipmatesError
        from .._run._budget import budget_of
        from .._text import print_safe
        from ._chat_session import ChatSession
        from ._repl import Repl

        only = list(settings.only) if settings.only is not None else None
        exclude = list(settings.exclude) if settings.exclude is not None else None
        prefer = list(settings.prefer) if settings.prefer is not None else None
        try:
            crew = assemble(settings.captain, only=only, exclude=exclude, prefer=prefer)
        except CaptainError as exc:
            print_safe(f"error: {exc}", sys.stderr)
            return USAGE_ERROR
        if settings.system is not None:
            crew.captain.instructions = settings.system
        if settings.triage is not None:
            crew.captain.triage = settings.triage
        chat = ChatSession(
            crew,
            approve=settings.approve,
            memory=settings.memory_turns,
            log=_log(settings),
            budget=budget_of(settings),
        )
        if settings.conversation is not None:
            try:
                restored = chat.resume(settings.conversation)
            except ShipmatesError as exc:
                print_safe(f"error: {exc}", sys.stderr)
                return USAGE_ERROR
            print(f"resuming conversation {chat.cid} ({restored} turns)", file=sys.stderr)
        repl = Repl(chat, trace=settings.trace, usage=usage)
        if start_up.active and once is not None:
            # What the turn's first step builds anyway; a failure is reported by the turn.
            with contextlib.suppress(Exception):
                crew.captain.tool_schemas()
    return repl.run() if once is None else repl.run_once(once, as_json=as_json)


def _log(settings: Settings) -> ChatLog | None:
    """The conversation log, unless ``--no-log`` or ``SHIPMATES_LOG=0``."""
    if not settings.log:
        return None
    from ._chat_log import ChatLog

    return ChatLog.default()
