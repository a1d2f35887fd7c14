"""What discovery returns: one record per discovered sibling, with its status."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ._sibling import Provenance, SiblingSpec

Status = Literal["ok", "failed", "conflict", "excluded", "unavailable"]


def status_line(name: str, where: str, entry_point: str | None, status: str, reason: str | None) -> str:
    """``name (where, entry point name = mod:attr): status: reason``, the one-line form of a
    sibling's or plugin's record for logs, banners and errors (whoever prints it: names and
    reasons come from package metadata and errors, so terminal control sequences are removed)."""
    from .._text import terminal_safe

    if entry_point:
        where += f", entry point {name} = {entry_point}"
    line = f"{name} ({where}): {status}"
    return terminal_safe(f"{line}: {reason}" if reason else line)


@dataclass
class AgentRecord:
    """One discovered sibling, loaded or not. A row of ``shipmates agents``."""

    name: str
    provenance: Provenance
    status: Status = "ok"
    reason: str | None = None
    """Why it is not ``ok``: the one-line failure, conflict or exclusion reason."""
    sibling: Any = None
    """The built sibling when ``status == "ok"`` and it was loaded."""
    load_seconds: float | None = None
    instances: list[str] = field(default_factory=list)
    """For remote siblings: the instance ids serving it."""
    spec: SiblingSpec | None = None
    """Its contract as read once when it was loaded (listings use it rather than reading the
    sibling's attributes again)."""

    def one_line(self) -> str:
        """``name (dist version, entry point): status: reason`` for logs and banners."""
        prov = self.provenance
        return status_line(self.name, prov.describe(), prov.entry_point, self.status, self.reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            **asdict(self.provenance),
            "load_seconds": self.load_seconds,
            "instances": list(self.instances),
        }


@dataclass
class Discovery:
    """The result of :func:`shipmates.discover`: every record, in a deterministic order."""

    records: list[AgentRecord] = field(default_factory=list)

    @property
    def agents(self) -> dict[str, AgentRecord]:
        """Records that loaded, by name."""
        return {r.name: r for r in self.records if r.status == "ok"}

    @property
    def siblings(self) -> dict[str, Any]:
        """The loaded sibling objects, by name."""
        return {r.name: r.sibling for r in self.records if r.status == "ok" and r.sibling is not None}

    @property
    def failures(self) -> list[AgentRecord]:
        return [r for r in self.records if r.status == "failed"]

    @property
    def conflicts(self) -> list[AgentRecord]:
        return [r for r in self.records if r.status == "conflict"]

    @property
    def excluded(self) -> list[AgentRecord]:
        return [r for r in self.records if r.status == "excluded"]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)
