"""Events passed to the tool-call hooks, so a REPL can trace nested delegations live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .._crew._sibling import Provenance

CallStatus = Literal["running", "ok", "error", "timeout", "cancelled", "refused"]


@dataclass(kw_only=True)
class ToolCallEvent:
    """One tool call or delegation, handed to ``tool_call_started`` then ``tool_call_finished``.

    Built with keywords only (``ToolCallEvent(agent=..., tool=..., arguments=..., call_id=...,
    depth=...)``), so fields can be added without breaking plugins that make events.

    The same object is passed to both hooks; ``status``, ``result``, ``error`` and
    ``duration`` are filled in before ``tool_call_finished``.
    """

    agent: str
    """Name of the agent whose model asked for the call."""
    tool: str
    arguments: dict[str, Any] | str
    """Parsed arguments, or the raw text when it was not valid JSON."""
    call_id: str
    depth: int
    """0 for the top-level agent's own calls, +1 per nested delegation."""
    parent_call_id: str | None = None
    """The id of the captain's call that delegated to ``agent`` (None for the top-level agent)."""
    path: tuple[str, ...] = ()
    """The delegation stack of agent names, outermost first, ending with ``agent``."""
    is_delegation: bool = False
    """True when the tool is an absorbed sibling."""
    provenance: Provenance | None = None
    started: float = 0.0
    """``time.monotonic()`` when the call started."""
    status: CallStatus = "running"
    result: str | None = None
    error: str | None = None
    duration: float | None = None
    said: str | None = None
    """Text the model wrote beside its tool calls, on the first call of that turn."""
    extra: dict[str, Any] = field(default_factory=dict)
