"""Absorbing a whole discovery result into a captain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._errors import AbsorbError, NotASiblingError, ShipmatesError
from ._records import AgentRecord, Discovery
from ._sibling import SiblingAttributeError, sibling_spec

if TYPE_CHECKING:
    from .._run._agent import Agent


@dataclass
class AbsorbReport:
    """What :func:`absorb_crew` did: absorbed names, skipped records and rejections."""

    absorbed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Records not absorbed on purpose: the captain's own, and records that did not load."""
    rejected: list[tuple[AgentRecord, ShipmatesError]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return not self.rejected

    def lines(self) -> list[str]:
        """One line per rejection, naming the sibling and its distribution and version."""
        return [f"{r.name} ({r.provenance.describe()}): not absorbed: {e}" for r, e in self.rejected]


def absorb_crew(captain: Agent, discovery: Discovery | Iterable[AgentRecord]) -> AbsorbReport:
    """Absorb every loaded sibling of ``discovery`` into ``captain``; never raises for a sibling.

    The captain's own record (same name or same object) is skipped; rejections (name taken,
    not a sibling, invalid name) are collected in the report. A sibling whose attribute raises
    now (:class:`~._sibling.SiblingAttributeError`) is rejected and its record becomes
    ``failed`` with that reason.
    """
    report = AbsorbReport()
    records = discovery.records if isinstance(discovery, Discovery) else list(discovery)
    for record in records:
        if record.status != "ok" or record.sibling is None:
            report.skipped.append(record.name)
            continue
        if record.sibling is captain or record.name == captain.name:
            report.skipped.append(record.name)
            continue
        try:
            _absorb(captain, record)
        except NotASiblingError as exc:
            raised = exc if isinstance(exc, SiblingAttributeError) else _raising_attribute(record.sibling)
            if raised is not None:
                # Read fine when it was loaded, raises now: as good as a load failure.
                label = record.provenance.distribution or record.name
                record.status, record.sibling, record.spec = "failed", None, None
                record.reason = (
                    f"{raised}; fix {record.provenance.describe()} (or report it to its authors) or "
                    f"exclude it with SHIPMATES_EXCLUDE_AGENTS={label}"
                )
            report.rejected.append((record, raised or exc))
        except ShipmatesError as exc:
            report.rejected.append((record, exc))
        except Exception as exc:  # a sibling whose attributes raise must not stop the others
            error = AbsorbError(
                f"captain '{captain.name}' cannot absorb sibling '{record.name}' "
                f"({record.provenance.describe()}): {type(exc).__name__}: {exc}"
            )
            report.rejected.append((record, error))
        else:
            report.absorbed.append(record.name)
    return report


def _absorb(captain: Agent, record: AgentRecord) -> None:
    """Absorb ``record``'s sibling, or add the tools it hands the captain directly.

    A sibling whose ``captain_tools()`` returns a list of tools (an MCP server configured with
    ``direct = true``) joins as those tools; when it raises, its record becomes ``failed``.
    """
    direct = getattr(record.sibling, "captain_tools", None)
    tools = None
    if callable(direct):
        try:
            tools = direct()
        except Exception as exc:
            record.status, record.sibling, record.spec = "failed", None, None
            record.reason = str(exc)
            raise AbsorbError(f"sibling '{record.name}' ({record.provenance.describe()}): {exc}") from exc
    if tools is None:
        captain.absorb(record.sibling, provenance=record.provenance)
        return
    for tool in tools:
        tool.provenance = record.provenance
        captain.add_tool(tool)


def _raising_attribute(sibling: object) -> SiblingAttributeError | None:
    """The error of the attribute of ``sibling`` that raises when read, if one does."""
    try:
        sibling_spec(sibling)
    except SiblingAttributeError as exc:
        return exc
    except NotASiblingError:
        return None
    return None
