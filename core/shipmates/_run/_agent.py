"""Agent, RunResult and absorbing siblings as tools."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .._crew._sibling import CODE, Provenance, is_sibling, why_not_sibling
from .._errors import AbsorbError, MaxTurnsExceeded, NameConflictError, NotASiblingError, SelfAbsorptionError
from .._models._model import Model, ModelResponse, check_response
from .._models._registry import get_model
from .._names import check_name
from .._runtime import run_sync
from ._context import delegation_stack, inherited_approver, require_approval
from ._events import ToolCallEvent
from ._tool import Tool, ToolArgumentsError, as_tool, validation_message
from ._tool_calls import Approver, _Hooks, assistant_message, run_turn_calls

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._session import Session

DEFAULT_TOOL_TIMEOUT = 120.0
"""Seconds a tool or sibling may run before its call becomes a timeout error."""


def default_tool_timeout() -> float:
    """``SHIPMATES_TOOL_TIMEOUT`` when set, else :data:`DEFAULT_TOOL_TIMEOUT`."""
    raw = os.environ.get("SHIPMATES_TOOL_TIMEOUT", "").strip()
    try:
        return float(raw) if raw else DEFAULT_TOOL_TIMEOUT
    except ValueError:
        return DEFAULT_TOOL_TIMEOUT


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


def _describe_sibling(sibling: Any) -> str:
    text = sibling.description.strip() or f"The sibling agent '{sibling.name}'."
    tools = []
    for t in getattr(sibling, "tools", None) or ():
        tname = t if isinstance(t, str) else getattr(t, "name", None)
        if not isinstance(tname, str):
            continue
        tdesc = getattr(t, "description", "") if not isinstance(t, str) else ""
        first = tdesc.strip().splitlines()[0][:100] if isinstance(tdesc, str) and tdesc.strip() else ""
        tools.append(f"{tname} ({first})" if first else tname)
    skills = [
        s if isinstance(s, str) else str(getattr(s, "name", s))
        for s in getattr(sibling, "skills", None) or ()
    ]
    if (tools or skills) and not text.endswith((".", "!", "?")):
        text += "."
    if tools:
        text += f" Its tools: {', '.join(tools)}."
    if skills:
        text += f" Its skills: {', '.join(skills)}."
    return text


def sibling_tool(sibling: Any, *, provenance: Provenance | None = None, timeout: float | None = None) -> Tool:
    """Build the tool that delegates to ``sibling`` (see :meth:`Agent.absorb`)."""
    name = sibling.name
    ainvoke = getattr(sibling, "ainvoke", None)
    invoke = getattr(sibling, "invoke", None)
    use_async = callable(ainvoke) and (inspect.iscoroutinefunction(ainvoke) or not callable(invoke))
    fn: Callable[..., Any] = ainvoke if use_async else invoke  # type: ignore[assignment]
    if timeout is None:
        attr = getattr(sibling, "timeout", None)
        timeout = float(attr) if isinstance(attr, (int, float)) and not isinstance(attr, bool) else None
    input_model = getattr(sibling, "input_model", None)
    bind: Callable[[dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]
    if input_model is not None and hasattr(input_model, "model_validate"):
        try:
            parameters = dict(input_model.model_json_schema())
        except Exception as exc:
            raise AbsorbError(
                f"cannot absorb sibling '{name}': the JSON schema of its input_model "
                f"{getattr(input_model, '__name__', input_model)!r} cannot be built ({exc})"
            ) from exc
        parameters.pop("title", None)
        validate = input_model.model_validate
        from pydantic import ValidationError

        def bind(arguments: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
            try:
                return (validate(arguments),), {}
            except ValidationError as exc:
                raise ToolArgumentsError(validation_message(name, exc, parameters)) from None

    else:
        parameters = {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": f"What to ask {name}, in plain language."}
            },
            "required": ["query"],
        }
        empty: dict[str, Any] = {}

        def bind(arguments: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
            query = arguments.get("query")
            if isinstance(query, str):
                return (query,), empty
            strings = [v for v in arguments.values() if isinstance(v, str)]
            if query is None and len(strings) == 1:  # a model that renamed the parameter
                return (strings[0],), empty
            raise ToolArgumentsError(
                f"error: invalid arguments for sibling '{name}': it takes one string parameter "
                f"'query' (what to ask it), got {arguments!r}. Call it again as {{\"query\": \"...\"}}"
            )

    return Tool(
        name,
        _describe_sibling(sibling),
        parameters,
        fn,
        bind=bind,
        is_async=use_async,
        timeout=timeout,
        sibling=sibling,
        provenance=provenance,
    )


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
        name = check_name(sibling.name, what="sibling")
        if provenance is None:
            attr = getattr(sibling, "provenance", None)
            provenance = attr if isinstance(attr, Provenance) else CODE
        if name == self.name:
            raise SelfAbsorptionError(
                f"captain '{self.name}' cannot absorb sibling '{name}' ({provenance.describe()}): it has "
                "the captain's own name, so the captain would delegate to itself. Rename one of them, "
                f"or leave it out with SHIPMATES_EXCLUDE_AGENTS={provenance.distribution or name}."
            )
        error = self._conflict(name, f"sibling '{name}' ({provenance.describe()})")
        if error is not None:
            raise error
        new = sibling_tool(sibling, provenance=provenance, timeout=timeout)
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
            end_approval = None
        else:
            end_approval = require_approval(approve, asyncio.get_running_loop())
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
                response = check_response(response, resolved)
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
            if end_approval is not None:
                end_approval()

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
