"""Every text the ``shipmates`` command shows, rendered in one place.

Listings of discovered agents and loaded plugins (``shipmates agents|plugins``, ``/agents``),
the REPL's banner, roster, tools table and help, the live trace's lines, error texts and the
approval question. Functions here return text; printing it is the caller's business (the REPL
shell, or the ``agents``/``plugins`` commands below, which print to ``out``).

Much of that text comes from outside the process (sibling names, descriptions and answers,
errors, events replayed from remote siblings): every field a line shows is bounded
(:func:`shorten`), and whatever prints it strips terminal control sequences (the REPL's
``_write``, :func:`~shipmates._text.print_safe`), so a line can neither grow without bound nor
style, move or retitle the terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from .. import __version__
from .._crew._records import AgentRecord, Discovery
from .._crew._sibling import sibling_spec
from .._errors import ShipmatesError
from .._models._session import model_label
from .._run._usage import AgentUsage, Usage
from .._text import print_safe, terminal_safe

if TYPE_CHECKING:
    from .._crew._sibling import Provenance, SiblingSpec
    from .._run._events import ToolCallEvent
    from .._run._run_loop import RunResult
    from ._chat_session import ChatSession
    from ._commands import CommandTable

RESULT_LIMIT = 100
ARGUMENTS_LIMIT = 60
NAME_LIMIT = 80
"""The longest agent, tool or status name a trace line shows (remote events carry any text)."""
DESCRIPTION_LIMIT = 500
"""The longest description ``agents --load`` shows."""
MAX_INDENT = 16
"""The deepest delegation a trace line is indented for; deeper ones line up at this depth."""


def tool_names(sibling: Any) -> list[str]:
    """Names of a sibling's own tools (empty when it declares none)."""
    return sibling_spec(sibling).tool_names


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def format_agents(records: Iterable[AgentRecord], *, details: bool = False) -> list[str]:
    """Human-readable roster: one row per record, reasons and details on indented lines."""
    records = list(records)
    if not records:
        return ["no sibling agents found (install one, or see `shipmates new`)"]
    rows = [("NAME", "STATUS", "DISTRIBUTION", "ENTRY POINT")]
    for r in records:
        rows.append((r.name, r.status, r.provenance.describe(), r.provenance.entry_point or "-"))
    header, *lines = table(rows)
    out = [header]
    for record, line in zip(records, lines, strict=True):
        out.append(line)
        if record.reason:
            out.append(f"    reason: {record.reason}")
        if record.provenance.origin == "remote":  # served over NATS: where, and which instances
            out.append(f"    remote: {record.provenance.location or '-'}")
        model = model_label(record.sibling) if record.status == "ok" else None
        if model:
            out.append(f"    model: {shorten(model, NAME_LIMIT)}")
        spec = _spec(record) if details else None
        if spec is not None:
            description = shorten(spec.description, DESCRIPTION_LIMIT)
            if description:
                out.append(f"    description: {description}")
            if spec.tools:
                out.append(f"    tools: {', '.join(spec.tool_names)}")
        if details and record.load_seconds is not None:
            out.append(f"    loaded in {record.load_seconds * 1000:.0f} ms")
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    out.append(f"{len(records)} agent{'s' if len(records) != 1 else ''}: {summary}")
    if not details and any(r.status == "ok" and r.sibling is None for r in records):
        out.append("(listed without importing them: --load builds each one and shows load failures)")
    return out


def format_tools(captain: Any) -> list[str]:
    """``/tools``: one row per tool (kind, origin, a sibling's own tools), then its description."""
    tools = captain.tools
    if not tools:
        return ["the captain has no tools"]
    rows = [("NAME", "KIND", "FROM", "ITS TOOLS")]
    descriptions = []
    for t in tools:
        if t.sibling is not None:
            where = t.provenance.describe() if t.provenance is not None else "code"
            rows.append((t.name, "sibling", where, ", ".join(tool_names(t.sibling)) or "-"))
            descriptions.append(sibling_spec(t.sibling).description or t.description)
        else:
            rows.append((t.name, "tool", captain.name, "-"))
            descriptions.append(t.description)
    header, *lines = table(rows)
    out = [header]
    for line, description in zip(lines, descriptions, strict=True):
        out.append(line)
        if description:
            out.append(f"    {shorten(description, 100)}")
    return out


def _spec(record: AgentRecord) -> SiblingSpec | None:
    """The contract of a loaded sibling as discovery read it (read now for one absorbed from code)."""
    if record.spec is not None or record.sibling is None:
        return record.spec
    return sibling_spec(record.sibling)


def agent_dict(record: AgentRecord, *, details: bool) -> dict[str, Any]:
    data = record.as_dict()
    if details:
        data["model"] = model_label(record.sibling)
        spec = _spec(record)
        data["description"] = spec.description if spec is not None else None
        data["tools"] = spec.tool_names if spec is not None else []
    return data


def print_agents(
    *,
    as_json: bool = False,
    load: bool = False,
    only: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    out: IO[str] | None = None,
) -> int:
    """``shipmates agents``: list (and with ``load`` build) every discovered sibling."""
    from .._crew._discovery import discover

    out = out or sys.stdout
    discovery: Discovery = discover(only=only, exclude=exclude, load=load)
    warn_misspelled_groups()
    if as_json:
        json.dump([agent_dict(r, details=load) for r in discovery.records], out, indent=2)
        out.write("\n")
    else:
        for line in format_agents(discovery.records, details=load):
            print_safe(line, out)
    return 0


def warn_misspelled_groups(err: IO[str] | None = None) -> None:
    """On stderr, a line for each entry point under a group that looks like a typo of a shipmates
    group: such a package installs fine and silently never joins."""
    from .._crew._entrypoints import MISSPELLED, meant_group, scan

    for ep in scan().get(MISSPELLED, ()):
        print_safe(
            f"warning: {ep.distribution} {ep.version} declares '{ep.name} = {ep.value}' under "
            f"[{ep.group}], which shipmates never reads; did you mean [{meant_group(ep.group)}]? "
            f"({ep.source or 'its entry points'})",
            err or sys.stderr,
        )


def print_plugins(*, as_json: bool = False, out: IO[str] | None = None) -> int:
    """``shipmates plugins``: every pluggy plugin with distribution, version, status and hooks."""
    from .._plugins._host import list_plugins

    out = out or sys.stdout
    records = list_plugins()
    if as_json:
        json.dump([r.as_dict() for r in records], out, indent=2)
        out.write("\n")
        return 0
    rows = [("NAME", "STATUS", "DISTRIBUTION", "HOOKS")]
    rows += [(r.name, r.status, r.describe(), ", ".join(r.hooks) or "-") for r in records]
    header, *lines = table(rows)
    print_safe(header, out)
    for record, line in zip(records, lines, strict=True):
        print_safe(line, out)
        if record.reason:
            print_safe(f"    reason: {record.reason}", out)
    return 0


# -- the chat: banner, roster, help -------------------------------------------------------------


def banner(chat: ChatSession, *, interactive: bool) -> list[str]:
    """The lines the REPL starts with: version, captain, model, crew, load failures."""
    crew = chat.crew
    origin = "built-in" if crew.general else chat.origin(chat.captain.name).describe()
    lines = [f"shipmates {__version__} | captain: {chat.captain.name} ({origin}) | model: {chat.model_name}"]
    names = chat.crew_names()
    if names:
        lines.append(f"crew: {', '.join(names)}")
    else:
        lines.append("crew: none yet (install sibling packages, see `shipmates new`)")
    problems = chat.load_problems()
    if problems:
        lines.append(f"{problems} load failure{'s' if problems != 1 else ''}: see /agents")
    if interactive:
        lines.append("/help for commands, Ctrl-C cancels a turn, Ctrl-D exits")
    return lines


def roster(chat: ChatSession) -> list[str]:
    """``/agents``: every discovered sibling as it stands now, failures, the captain and crew."""
    lines = format_agents(chat.records(), details=False)
    lines += chat.crew.report.lines()
    lines += [record.one_line() for record in chat.failed_plugins()]
    discovered = {r.name for r in chat.crew.discovery.records}
    others = [name for name in chat.crew_names() if name not in discovered]
    if others:
        lines.append(f"also absorbed (plugins, remote): {', '.join(others)}")
    lines.append(f"captain: {chat.captain.name}; crew: {', '.join(chat.crew_names()) or 'none'}")
    return lines


def help_text(commands: CommandTable) -> str:
    """``/help``: one line per command, then how to talk to the captain."""
    width = max(len(c.name) for c in commands) + 1
    lines = [f"/{c.name.ljust(width)} {c.help}" for c in commands]
    lines.append("Anything else is a message to the captain. Tab completes, Ctrl-R searches history,")
    lines.append("Ctrl-C cancels a running turn (or clears the line), Ctrl-D exits.")
    return "\n".join(lines)


def refresh_text(before: Iterable[str], after: Iterable[str]) -> str:
    """``/refresh``: the crew now, and what changed."""
    old, new = set(before), set(after)
    changes = [f"+{n}" for n in sorted(new - old)] + [f"-{n}" for n in sorted(old - new)]
    return f"crew: {', '.join(sorted(new)) or 'none'}" + (
        f" (changed: {' '.join(changes)})" if changes else " (no change)"
    )


def on_off_text(what: str, on: bool) -> str:
    return f"{what} {'on' if on else 'off'}"


CANCELLED = "cancelled (the conversation before this turn is kept)"
GOODBYE = "Goodbye."


def error_text(exc: BaseException) -> str:
    """``error: ...`` for a failed turn: a ShipmatesError's own words, else the exception type too."""
    text = for_the_user(str(exc).strip()).removeprefix("error: ")
    if isinstance(exc, ShipmatesError):
        return f"error: {text or type(exc).__name__}"
    return f"error: {type(exc).__name__}: {text}" if text else f"error: {type(exc).__name__}"


_FOR_THE_MODEL = (
    " The captain carries on",
    " The agent carries on",
    " Answer without it",
    "; do not retry it",
)


def for_the_user(text: str) -> str:
    """``text`` without what shipmates wrote for the model (how to carry on after a failed call)."""
    for marker in _FOR_THE_MODEL:
        text = text.partition(marker)[0]
    return text


def max_turns_text(max_turns: int, output: str) -> str:
    """Why a turn that never stopped calling tools failed."""
    return (
        f"the captain was still calling tools after max_turns={max_turns} model calls"
        f"{': ' + shorten(output, 200) if output else ''}"
    )


# -- approval ------------------------------------------------------------------------------------


def approval_question(event: ToolCallEvent, provenance: Provenance | None) -> str:
    """``approve? captain wants to call tool x(n=1) from code``."""
    what = "delegate to sibling" if event.is_delegation else "call tool"
    where = provenance.describe() if provenance is not None else "code"
    call = f"{shorten(event.tool, NAME_LIMIT)}({format_arguments(event.arguments)})"
    return f"approve? {shorten(event.agent, NAME_LIMIT)} wants to {what} {call} from {where}"


def refused_text(event: ToolCallEvent) -> str:
    return f"refused: {shorten(event.tool, NAME_LIMIT)}"


# -- the live trace ----------------------------------------------------------------------------


def shorten(text: object, limit: int) -> str:
    """``text`` on one line without control sequences, cut with ``...`` beyond ``limit``
    characters (only its start is looked at, so a huge text costs no more than a short one)."""
    whole = text if isinstance(text, str) else str(text)
    head = whole[: limit * 4 + 64]
    flat = " ".join(terminal_safe(head).split())
    if len(flat) <= limit and len(head) == len(whole):
        return flat
    return flat[: max(limit - 3, 0)] + "..."


def _value(value: Any, limit: int) -> str:
    if isinstance(value, str):
        return repr(value[: limit + 1])
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def format_arguments(arguments: object, limit: int = ARGUMENTS_LIMIT) -> str:
    """``n=60, query='x'``, cut when long; raw (non-JSON) argument text is shown as is."""
    if not isinstance(arguments, dict):
        return shorten(arguments, limit)
    parts: list[str] = []
    size = 0
    for key, value in arguments.items():
        parts.append(f"{shorten(key, limit)}={_value(value, limit)}")
        size += len(parts[-1]) + 2
        if size > limit:  # the rest would be cut anyway
            break
    return shorten(", ".join(parts), limit)


def call_text(event: ToolCallEvent) -> str:
    """``[agent] tool(arguments)``, indented by depth."""
    depth = event.depth if isinstance(event.depth, int) else 0
    indent = "  " * min(max(depth, 0), MAX_INDENT)
    agent, tool = shorten(event.agent, NAME_LIMIT), shorten(event.tool, NAME_LIMIT)
    return f"{indent}[{agent}] {tool}({format_arguments(event.arguments)})"


def outcome_text(event: ToolCallEvent, limit: int = RESULT_LIMIT) -> str:
    """What the call gave: its result, or ``error: ...``, ``timeout: ...``, ``cancelled``..."""
    if event.status == "ok":
        return shorten(event.result or "", limit)
    if event.status == "cancelled":
        return "cancelled"
    if event.status == "refused":
        return "refused by the user"
    status = shorten(event.status, NAME_LIMIT)
    detail = (event.error or event.result or "").removeprefix(f"{event.status}: ").removeprefix("error: ")
    detail = for_the_user(detail)
    return shorten(f"{status}: {shorten(detail, limit)}" if detail else status, limit)


def said_line(event: ToolCallEvent) -> str:
    """What the model wrote beside its calls: ``[agent] says: ...``, indented by depth."""
    depth = event.depth if isinstance(event.depth, int) else 0
    indent = "  " * min(max(depth, 0), MAX_INDENT)
    said = " ".join((event.said or "").split())
    return f"{indent}[{shorten(event.agent, NAME_LIMIT)}] says: {shorten(said, RESULT_LIMIT)}"


def started_line(event: ToolCallEvent) -> str:
    """The line a delegation prints when it starts: ``[agent] sibling(query='...') ...``."""
    return f"{call_text(event)} ..."


def finished_line(event: ToolCallEvent) -> str:
    """The line a finished call prints: the call, ``->``, the outcome, the time when long."""
    line = f"{call_text(event)} -> {outcome_text(event)}"
    if isinstance(event.duration, (int, float)) and event.duration >= 0.5:
        line += f" ({event.duration:.1f}s)"
    return line


# -- usage ------------------------------------------------------------------------------------


def usage_text(usage: Usage) -> str:
    """``1,234 tokens (1,000 in, 100 cached; 234 out), 3 model calls, $0.0012``."""
    cached = f", {usage.cached_tokens:,} cached" if usage.cached_tokens else ""
    calls = f"{usage.model_calls} model call{'' if usage.model_calls == 1 else 's'}"
    if usage.cost_usd is None:
        cost = "cost unknown"
    else:
        cost = f"${usage.cost_usd:.4f}"
        if usage.calls_without_cost:
            cost += (
                f" ({usage.calls_without_cost} call{'' if usage.calls_without_cost == 1 else 's'} not priced)"
            )
    return (
        f"{usage.total_tokens:,} tokens ({usage.input_tokens:,} in{cached}; {usage.output_tokens:,} out), "
        f"{calls}, {cost}"
    )


def usage_report(by_agent: dict[str, AgentUsage]) -> list[str]:
    """The ``/usage`` table: each agent's own model calls and what it delegated, then the total."""
    if not by_agent:
        return ["no model calls yet in this session"]
    rows = [["agent", "own", "delegated"]]
    for name, usage in by_agent.items():
        delegated = usage_text(usage.delegated) if usage.delegated.model_calls else "-"
        rows.append([terminal_safe(name), usage_text(usage.own), delegated])
    total = sum((u.own for u in by_agent.values()), Usage())
    return [*table(rows), f"session total: {usage_text(total)}"]


def once_json(
    result: RunResult | None,
    calls: Iterable[ToolCallEvent],
    *,
    status: str | None = None,
    error: str | None = None,
    output: str | None = None,
) -> str:
    """``chat --once --json``: one JSON object with output, status, usage (total and per agent)
    and every tool call of the run, nested ones included (ASCII only: safe on any terminal)."""
    usage = result.usage if result is not None else Usage()
    by_agent = result.usage_by_agent if result is not None else {}
    document: dict[str, Any] = {
        "output": output if output is not None else result.output if result is not None else "",
        "status": status or (result.status if result is not None else "error"),
        "usage": {"total": usage.as_dict(), "agents": {name: u.as_dict() for name, u in by_agent.items()}},
        "tool_calls": [_call_dict(call) for call in calls],
    }
    if error is not None:
        document["error"] = error
    return json.dumps(document, default=str)


def _call_dict(call: ToolCallEvent) -> dict[str, Any]:
    return {
        "agent": call.agent,
        "tool": call.tool,
        "call_id": call.call_id,
        "parent_call_id": call.parent_call_id,
        "depth": call.depth,
        "path": list(call.path),
        "delegation": call.is_delegation,
        "arguments": call.arguments,
        "status": call.status,
        "result": call.result,
        "error": call.error,
        "duration": call.duration,
    }
