"""Listings of discovered agents and loaded plugins (``shipmates agents|plugins``, ``/agents``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

from .._crew._records import AgentRecord, Discovery
from .._crew._sibling import sibling_spec


def tool_names(sibling: Any) -> list[str]:
    """Names of a sibling's own tools (empty when it declares none)."""
    return sibling_spec(sibling).tool_names


def status_text(record: AgentRecord) -> str:
    """``ok``, ``failed``, ``conflict``... as shown in the status column."""
    return record.status


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
        rows.append((r.name, status_text(r), r.provenance.describe(), r.provenance.entry_point or "-"))
    header, *lines = table(rows)
    out = [header]
    for record, line in zip(records, lines, strict=True):
        out.append(line)
        if record.reason:
            out.append(f"    reason: {record.reason}")
        if record.provenance.origin == "remote":  # served over NATS: where, and which instances
            out.append(f"    remote: {record.provenance.location or '-'}")
        if details and record.sibling is not None:
            description = " ".join(sibling_spec(record.sibling).description.split())
            if description:
                out.append(f"    description: {description}")
            tools = tool_names(record.sibling)
            if tools:
                out.append(f"    tools: {', '.join(tools)}")
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
    from ._trace import shorten

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


def agent_dict(record: AgentRecord, *, details: bool) -> dict[str, Any]:
    data = record.as_dict()
    if details:
        sibling = record.sibling
        data["description"] = getattr(sibling, "description", None) if sibling is not None else None
        data["tools"] = tool_names(sibling) if sibling is not None else []
    return data


def print_agents(
    *,
    as_json: bool = False,
    load: bool = False,
    only: list[str] | None = None,
    exclude: list[str] | None = None,
    out: IO[str] | None = None,
) -> int:
    """``shipmates agents``: list (and with ``load`` build) every discovered sibling."""
    from .._crew._discovery import discover

    out = out or sys.stdout
    discovery: Discovery = discover(only=only, exclude=exclude, load=load)
    if as_json:
        json.dump([agent_dict(r, details=load) for r in discovery.records], out, indent=2)
        out.write("\n")
    else:
        for line in format_agents(discovery.records, details=load):
            print(line, file=out)
    return 0


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
    print(header, file=out)
    for record, line in zip(records, lines, strict=True):
        print(line, file=out)
        if record.reason:
            print(f"    reason: {record.reason}", file=out)
    return 0
