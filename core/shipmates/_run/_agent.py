"""Agent, RunResult and absorbing siblings as tools."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .._crew._sibling import CODE, Provenance, default_tool_timeout, is_sibling, sibling_spec, why_not_sibling
from .._errors import MaxTurnsExceeded, NameConflictError, NotASiblingError, SelfAbsorptionError
from .._models._model import Model, ModelResponse
from .._models._registry import get_model
from .._names import check_name
from .._runtime import run_sync
from ._context import approval, delegation_stack, inherited_approver
from ._events import ToolCallEvent
from ._sibling_tool import sibling_tool
from ._tool import Tool, as_tool
from ._tool_calls import Approver, _Hooks, assistant_message, run_turn_calls

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._session import Session

@dataclass
class RunResult:
    """The outcome of :meth:`Agent.arun`.

    ``status`` is ``"ok"`` (the model answered with text) or ``"max_turns"`` (it was still
    calling tools after ``max_turns`` model calls; ``output`` is then its last text, if any).
    """

    status: Literal["ok", "max_turns"]
    output: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    """The whole conversation sent to the model, system prompt first, OpenAI format."""
    events: list[ToolCallEvent] = field(default_factory=list)
    """Every tool call this agent made during the run, in order."""
    turns: int = 0
    """Model calls made."""
    agent: str = ""

    @property
    def tool_calls(self) -> list[ToolCallEvent]:
        """Alias of ``events``."""
        return self.events

    def __str__(self) -> str:
        return self.output


class Agent:
    """An agent: instructions, a model, tools and absorbed siblings, run by the agent loop.

    An Agent is itself a sibling (``name``, ``description``, ``invoke``, ``ainvoke``), so a
    captain can absorb it. ``model`` is a model name (a registered one such as ``"offline"``,
    or any litellm string such as ``"openai/gpt-4o-mini"``), a :class:`~shipmates.Model`, or
    ``None`` for the session default (``SHIPMATES_MODEL``, else ``"offline"``).
    """

    def __init__(
        self,
        name: str,
        description: str = "",
        instructions: str = "",
        model: str | Model | None = None,
        tools: list[Any] | tuple[Any, ...] = (),
        *,
        max_turns: int = 10,
        tool_timeout: float | None = None,
        max_depth: int = 8,
        input_model: type[BaseModel] | None = None,
        model_settings: dict[str, Any] | None = None,
        plugin_manager: Any = None,
    ) -> None:
        self.name = check_name(name, what="agent")
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        self.description = description
        self.instructions = instructions
        self.model = model
        self.max_turns = max_turns
        self.tool_timeout = default_tool_timeout() if tool_timeout is None else float(tool_timeout)
        """Seconds each tool call may take unless the tool or sibling sets its own timeout."""
        self.max_depth = max_depth
        """The deepest delegation allowed (the top-level agent is depth 0); a sibling call that
        would go deeper, or back to an agent already on the stack, gets an error result."""
        self.input_model = input_model
        self.model_settings: dict[str, Any] = dict(model_settings or {})
        """Extra keyword arguments for the model backend (litellm: temperature, api_base, ...)."""
        self.plugin_manager = plugin_manager
        """The pluggy manager whose tool-call hooks fire; ``None`` uses the shared one."""
        self._tools: dict[str, Tool] = {}
        self._schemas: list[dict[str, Any]] | None = None
        for item in tools:
            if isinstance(item, Tool) or not is_sibling(item):
                self.add_tool(item)
            else:
                self.absorb(item)

    # -- tools and siblings -------------------------------------------------------------

    @property
    def tools(self) -> list[Tool]:
        """Every tool, absorbed siblings included, in the order they were added."""
        return list(self._tools.values())

    @property
    def siblings(self) -> dict[str, Any]:
        """The absorbed siblings, by name."""
        return {t.name: t.sibling for t in self._tools.values() if t.sibling is not None}

    def get_tool(self, name: str) -> Tool | None:
        """The tool called ``name``, or None."""
        return self._tools.get(name)

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The OpenAI-format schemas of every tool, as sent to the model each turn."""
        if self._schemas is None:
            self._schemas = [t.schema for t in self._tools.values()]
        return self._schemas

    def _conflict(self, name: str, what: str) -> NameConflictError | None:
        existing = self._tools.get(name)
        if existing is None:
            return None
        if existing.sibling is not None:
            held = f"an absorbed sibling '{name}' ({(existing.provenance or CODE).describe()})"
        else:
            held = f"a tool '{name}'"
        return NameConflictError(
            f"captain '{self.name}' cannot add {what}: it already has {held}. Keep one of them: "
            "rename one, or choose a sibling with SHIPMATES_AGENTS / SHIPMATES_EXCLUDE_AGENTS "
            "(agent or distribution names)."
        )

    def add_tool(self, fn: Tool | Callable[..., Any]) -> Tool:
        """Add a :class:`Tool` or a typed function (wrapped with :func:`~shipmates.tool`)."""
        new = as_tool(fn)
        error = self._conflict(new.name, f"tool '{new.name}'")
        if error is not None:
            raise error
        self._tools[new.name] = new
        self._schemas = None
        return new

    def absorb(
        self, sibling: Any, *, provenance: Provenance | None = None, timeout: float | None = None
    ) -> Tool:
        """Absorb ``sibling`` as a tool named after it that delegates to its ``invoke``/``ainvoke``.

        Raises :class:`~shipmates.SelfAbsorptionError`, :class:`~shipmates.NameConflictError`,
        :class:`~shipmates.NotASiblingError` or :class:`~shipmates.InvalidNameError`.
        """
        if sibling is self:
            raise SelfAbsorptionError(f"captain '{self.name}' cannot absorb itself")
        if not is_sibling(sibling):
            raise NotASiblingError(
                f"captain '{self.name}' cannot absorb {sibling!r}: {why_not_sibling(sibling)}. A sibling "
                "needs a str 'name', a str 'description' and 'invoke(query) -> str' or "
                "'async ainvoke(query) -> str'."
            )
        spec = sibling_spec(sibling)
        name = check_name(spec.name, what="sibling")
        if provenance is None:
            provenance = spec.provenance or CODE
        if name == self.name:
            raise SelfAbsorptionError(
                f"captain '{self.name}' cannot absorb sibling '{name}' ({provenance.describe()}): it has "
                "the captain's own name, so the captain would delegate to itself. Rename one of them, "
                f"or leave it out with SHIPMATES_EXCLUDE_AGENTS={provenance.distribution or name}."
            )
        error = self._conflict(name, f"sibling '{name}' ({provenance.describe()})")
        if error is not None:
            raise error
        new = sibling_tool(spec, provenance=provenance, timeout=timeout)
        self._tools[name] = new
        self._schemas = None
        return new

    def remove(self, name: str) -> Tool | None:
        """Remove the tool or absorbed sibling called ``name``; return it (None if absent)."""
        removed = self._tools.pop(name, None)
        if removed is not None:
            self._schemas = None
        return removed

    # -- running ------------------------------------------------------------------------

    def resolve_model(self) -> Model:
        """The model this agent uses now (the session default when ``model`` is None)."""
        return get_model(self.model)

    async def arun(
        self,
        query: str | BaseModel,
        *,
        session: Session | None = None,
        approve: Approver | None = None,
        model: str | Model | None = None,
    ) -> RunResult:
        """Run the agent loop on ``query`` and return the full :class:`RunResult`.

        ``session`` gives multi-turn memory (updated only when the run completes);
        ``approve(event) -> bool`` (or awaitable) is asked before each tool call and delegation,
        including the calls its siblings make further down (they inherit it); a refusal is
        reported to the model that asked;
        ``model`` overrides the agent's model for this run. Tool failures become tool results;
        ``EndSession``, cancellation and model errors propagate.
        """
        resolved = get_model(model) if model is not None else get_model(self.model)
        if self.plugin_manager is not None:
            pm = self.plugin_manager
        else:
            from .._plugins._host import get_plugin_manager

            pm = get_plugin_manager()
        hooks = _Hooks(pm)
        outer = delegation_stack.get()
        stack = outer if outer and outer[-1] == self.name else (*outer, self.name)
        token = delegation_stack.set(stack) if stack is not outer else None
        if approve is None:
            approve = inherited_approver()
            approval_token = None
        else:
            approval_token = approval.set((approve, asyncio.get_running_loop()))
        content = query if isinstance(query, str) else query.model_dump_json()
        messages: list[dict[str, Any]] = []
        if self.instructions:
            messages.append({"role": "system", "content": self.instructions})
        if session is not None:
            messages.extend(session.messages)
        first_new = len(messages)
        messages.append({"role": "user", "content": content})
        events: list[ToolCallEvent] = []
        settings = self.model_settings
        last_text = ""
        try:
            for turn in range(1, self.max_turns + 1):
                schemas = self.tool_schemas()
                if settings:
                    response: ModelResponse = await resolved.complete(
                        messages, schemas, settings=settings  # type: ignore[call-arg]
                    )
                else:
                    response = await resolved.complete(messages, schemas)
                messages.append(assistant_message(response))
                if response.content:
                    last_text = response.content
                if not response.tool_calls:
                    if session is not None:
                        session.add(messages[first_new:])
                    return RunResult("ok", response.content or "", messages, events, turn, self.name)
                results = await run_turn_calls(self, response.tool_calls, hooks, stack, events, approve)
                for call, text in zip(response.tool_calls, results, strict=True):
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
            return RunResult("max_turns", last_text, messages, events, self.max_turns, self.name)
        finally:
            if token is not None:
                delegation_stack.reset(token)
            if approval_token is not None:
                approval.reset(approval_token)

    async def ainvoke(self, query: str | BaseModel) -> str:
        """Run the agent loop and return its text answer; raise MaxTurnsExceeded at ``max_turns``."""
        result = await self.arun(query)
        if result.status == "max_turns":
            raise MaxTurnsExceeded(
                f"agent '{self.name}' was still calling tools after max_turns={self.max_turns} model "
                "calls; raise max_turns or simplify the request",
                result,
            )
        return result.output

    def invoke(self, query: str | BaseModel) -> str:
        """Blocking :meth:`ainvoke`; works with or without a running event loop in this thread.

        Runs on shipmates' shared background event loop, so repeated calls reuse the model
        backend's connections.
        """
        return run_sync(self.ainvoke(query))

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} tools={list(self._tools)}>"
