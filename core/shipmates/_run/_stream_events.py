"""The typed events of a run's stream (:meth:`shipmates.Agent.stream`, the ``run_event`` hook).

Every event names the ``agent`` that produced it, its ``depth`` (0: the agent the stream was
asked of, +1 per delegation), its delegation ``path`` (outermost first, ending with ``agent``) and
``parent_call_id``: the id of the tool call that delegated to ``agent`` (None at depth 0), so a
consumer can nest a sibling's events under the captain's call. Events are built with keywords
only, so fields can be added later without breaking code that makes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ._events import ToolCallEvent
from ._usage import ZERO, AgentUsage, Usage

if TYPE_CHECKING:
    from ._run_loop import RunResult

RunStatus = Literal["ok", "max_turns", "budget_exhausted", "error", "cancelled"]


@dataclass(frozen=True, kw_only=True)
class _Event:
    agent: str
    depth: int = 0
    path: tuple[str, ...] = ()
    parent_call_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunStarted(_Event):
    """An agent started working on ``query`` (the top-level run, or a sibling's run under it)."""

    query: str = ""
    model: str = ""


@dataclass(frozen=True, kw_only=True)
class TextDelta(_Event):
    """A piece of the text the agent's model is generating, in order."""

    text: str


@dataclass(frozen=True, kw_only=True)
class ModelCallFinished(_Event):
    """One model call ended; ``usage`` is its tokens and cost (``cost_usd`` None when unknown)."""

    model: str
    usage: Usage = ZERO
    duration: float = 0.0
    tool_calls: int = 0
    """How many tool calls the model asked for."""


@dataclass(frozen=True, kw_only=True)
class _CallEvent:
    call: ToolCallEvent

    @property
    def agent(self) -> str:
        return self.call.agent

    @property
    def depth(self) -> int:
        return self.call.depth

    @property
    def path(self) -> tuple[str, ...]:
        return self.call.path

    @property
    def parent_call_id(self) -> str | None:
        return self.call.parent_call_id


@dataclass(frozen=True, kw_only=True)
class ToolCallStarted(_CallEvent):
    """A tool call or delegation is about to run; ``call`` is the call as it was then."""


@dataclass(frozen=True, kw_only=True)
class ToolCallFinished(_CallEvent):
    """A tool call or delegation ended; ``call`` carries status, result or error, duration."""


@dataclass(frozen=True, kw_only=True)
class RunFinished(_Event):
    """An agent's run ended: ``status``, its ``output`` and the ``usage`` of its whole subtree.

    ``status`` is ``"ok"``, ``"max_turns"`` or ``"budget_exhausted"`` as in
    :class:`~shipmates.RunResult` (``reason`` then says what was exhausted), or ``"error"`` /
    ``"cancelled"`` when the run raised (``error`` says what). ``result`` is the full
    :class:`~shipmates.RunResult` when the run completed.
    """

    status: RunStatus
    output: str = ""
    reason: str | None = None
    usage: Usage = ZERO
    usage_by_agent: dict[str, AgentUsage] = field(default_factory=dict)
    turns: int = 0
    error: str | None = None
    result: RunResult | None = None


RunEvent = RunStarted | TextDelta | ModelCallFinished | ToolCallStarted | ToolCallFinished | RunFinished
"""Any event of a run's stream."""
