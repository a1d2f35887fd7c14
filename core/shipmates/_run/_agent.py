"""The agent definition: instructions, model, tools and absorbed siblings (run by ``_run_loop``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._crew._sibling import CODE, Provenance, is_sibling, sibling_spec, why_not_sibling
from .._crew._sibling import tool_timeout as checked_tool_timeout
from .._errors import MaxTurnsExceeded, NameConflictError, NotASiblingError, SelfAbsorptionError
from .._models._model import Model
from .._models._registry import get_model
from .._names import check_name
from .._runtime import run_sync
from ._budget import Budget, BudgetExhausted
from ._sibling_tool import sibling_tool
from ._tool import Tool, as_tool
from ._tool_calls import max_result_chars as result_limit

if TYPE_CHECKING:
    from pydantic import BaseModel
    from typing_extensions import Unpack

    from ._run_loop import RunOptions, RunResult
    from ._stream_events import RunEvent


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
        max_result_chars: int | None = None,
        input_model: type[BaseModel] | None = None,
        model_settings: dict[str, Any] | None = None,
        budget: Budget | None = None,
        triage: bool | None = None,
        plugin_manager: Any = None,
    ) -> None:
        self.name = check_name(name, what="agent")
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        self.description = description
        self.instructions = instructions
        self.model = model
        self.max_turns = max_turns
        self.tool_timeout = checked_tool_timeout(tool_timeout)
        """Seconds each tool call may take unless the tool or sibling sets its own timeout."""
        self.max_depth = max_depth
        """The deepest delegation allowed (the top-level agent is depth 0); a sibling call that
        would go deeper, or back to an agent already on the stack, gets an error result."""
        self.max_result_chars = result_limit(max_result_chars)
        """The longest tool or sibling result the model sees; longer ones are cut with a note
        (default ``SHIPMATES_MAX_RESULT_CHARS``, else 100,000)."""
        self.input_model = input_model
        self.model_settings: dict[str, Any] = dict(model_settings or {})
        """Extra keyword arguments for the model backend (litellm: temperature, api_base, ...)."""
        self.budget = budget
        """The limits of each run (:class:`~shipmates.Budget`) unless ``arun(budget=)`` gives
        others; None: none of its own (a sibling still draws from its captain's)."""
        self.triage = triage
        """Before each run, ask the model in a short call which tools the request needs: when the
        reply names or relates to none, the run offers none; when it names several and the model
        answers having asked only some, it is reminded once of one it left out. For small
        models, which call a sibling that does not fit (``--triage``). None: when the agent has
        siblings and its model's config alias says ``triage = true``."""
        self.plugin_manager = plugin_manager
        """The pluggy manager (or plugin host) whose tool-call hooks fire and whose models
        (``register_models``) resolve ``model``; ``None`` uses the shared one."""
        self._tools: dict[str, Tool] = {}
        self._schemas: list[dict[str, Any]] | None = None
        for item in tools:
            if isinstance(item, Tool) or (callable(item) and not is_sibling(item)):
                self.add_tool(item)
            else:
                self.absorb(item)  # a sibling, or NotASiblingError saying why it is not one

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
        return get_model(self.model, plugin_manager=self.plugin_manager)

    async def arun(self, query: str | BaseModel, **options: Unpack[RunOptions]) -> RunResult:
        """Run the agent loop on ``query`` and return the full :class:`RunResult`.

        The options (:class:`shipmates.RunOptions`, all keyword-only and optional): ``session``
        gives multi-turn memory (updated only when the run completes);
        ``approve(event) -> bool`` (or awaitable) is asked before each tool call and delegation,
        including the calls its siblings make further down (they inherit it); a refusal is
        reported to the model that asked;
        ``model`` overrides the agent's model for this run; ``budget`` its limits on tokens, cost
        and delegations over the whole tree (status ``"budget_exhausted"`` when one is spent).
        Tool failures become tool results;
        ``EndSession``, cancellation and model errors propagate.
        """
        from ._run_loop import run_agent  # loaded by the first run: a REPL's prompt need not wait

        return await run_agent(self, query, **options)

    def stream(self, query: str | BaseModel, **options: Unpack[RunOptions]) -> AsyncGenerator[RunEvent, None]:
        """Run the agent loop on ``query`` as an async iterator of its events, as they happen.

        The events (``shipmates.RunStarted``, ``TextDelta``, ``ToolCallStarted``,
        ``ToolCallFinished``, ``ModelCallFinished``, ``RunFinished``) include those of the
        siblings it delegates to, one level deeper each and linked by ``parent_call_id`` to the
        call that delegated. The last one is this agent's ``RunFinished``, whose ``result`` is
        what :meth:`arun` returns. Arguments as :meth:`arun`; an exception of the run is raised
        by the iterator after the events before it. Leaving the loop early cancels the run
        (``contextlib.aclosing`` makes that immediate)::

            async for event in agent.stream("fib 10"):
                if isinstance(event, shipmates.TextDelta):
                    print(event.text, end="", flush=True)
        """
        from ._stream import stream_run

        return stream_run(self, query, **options)

    def stream_sync(self, query: str | BaseModel, **options: Unpack[RunOptions]) -> Iterator[RunEvent]:
        """Blocking :meth:`stream` for scripts: a plain iterator of the same events.

        The run goes on shipmates' shared background loop; leaving the loop early cancels it.
        """
        from ._stream import stream_sync

        return stream_sync(self, query, **options)

    async def ainvoke(self, query: str | BaseModel) -> str:
        """Run the agent loop and return its text answer; raise MaxTurnsExceeded at ``max_turns``."""
        result = await self.arun(query)
        if result.status == "max_turns":
            raise MaxTurnsExceeded(
                f"agent '{self.name}' was still calling tools after max_turns={self.max_turns} model "
                "calls; raise max_turns or simplify the request",
                result,
            )
        if result.status == "budget_exhausted":
            raise BudgetExhausted(f"agent '{self.name}': {result.reason}")
        return result.output

    def invoke(self, query: str | BaseModel) -> str:
        """Blocking :meth:`ainvoke`; works with or without a running event loop in this thread.

        Runs on shipmates' shared background event loop, so repeated calls reuse the model
        backend's connections.
        """
        return run_sync(self.ainvoke(query))

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} tools={list(self._tools)}>"
