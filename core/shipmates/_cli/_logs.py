"""``shipmates logs``: the conversation log, newest turns last (like ``llm logs``)."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, TYPE_CHECKING

from .._text import terminal_safe

if TYPE_CHECKING:
    from ._chat_log import LoggedTurn


def format_turn(turn: LoggedTurn) -> list[str]:
    """One logged turn as text: a header, the prompt, the answer or error, the tool calls."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(turn.started))
    lines = [
        f"## {when}  conversation {turn.conversation_id}  "
        f"{turn.captain} on {turn.model}  ({turn.duration:.1f} s)"
    ]
    lines += [f"> {line}" for line in terminal_safe(turn.prompt).splitlines() or [""]]
    if turn.error is not None:
        lines.append(f"error: {terminal_safe(turn.error)}")
    else:
        lines.append(terminal_safe(turn.answer or ""))
    for call in turn.tool_calls:
        where = f" ({call['distribution']} {call['version']})" if call.get("distribution") else ""
        took = f" {call['duration']:.2f} s" if isinstance(call.get("duration"), (int, float)) else ""
        lines.append(
            terminal_safe(
                f"  {'  ' * int(call.get('depth') or 0)}{call['tool']}{where}: {call['status']}{took}"
            )
        )
    if turn.usage:
        lines.append(terminal_safe(f"  usage: {json.dumps(turn.usage, sort_keys=True)}"))
    return lines


def print_logs(*, count: int | None, cid: str | None, as_json: bool, out: IO[str] | None = None) -> int:
    """Print the last ``count`` turns (all of conversation ``cid`` when given); exit status."""
    from ._chat_log import ChatLog

    out = out or sys.stdout
    log = ChatLog.default()
    try:
        if cid is not None and not log.exists(cid):
            print(
                f"error: no conversation {cid!r} in the log {log.path}; `shipmates logs` lists them",
                file=sys.stderr,
            )
            return 2
        turns = log.turns(cid=cid, limit=None if cid is not None else count)
    finally:
        log.close()
    if as_json:
        json.dump([t.as_dict() for t in turns], out, indent=2)
        out.write("\n")
        return 0
    if not turns:
        print(f"no turns logged yet ({log.path})", file=out)
    for i, turn in enumerate(turns):
        if i:
            print(file=out)
        for line in format_turn(turn):
            print(line, file=out)
    return 0
