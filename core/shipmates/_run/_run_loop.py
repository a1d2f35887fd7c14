"""The run loop: ask the model, run the tool calls it asks for, repeat until it answers in text.

:func:`run_agent` runs one :class:`~shipmates.Agent` on one query (``Agent.arun`` delegates to
it): it resolves the model, sets up the delegation stack and approval for the calls made
further down, then alternates model turns and tool-call turns (``_tool_calls``) until the
model answers without tool calls or ``max_turns`` model calls were made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from .._models._model import complete, stream_model, takes_settings
from .._models._registry import get_model
from ._budget import Budget, Spend, usage_tokens
from ._context import delegation_stack, inherited_approver, require_approval, run_request
from ._events import ToolCallEvent
from ._slips import PastCalls, calls_in_text, run_each_once, unknown_call_in_text
from ._stream import RunScope, StreamHooks
from ._stream_events import ModelCallFinished, TextDelta
from ._tool_calls import Approver, _Hooks, assistant_message, run_turn_calls
from ._usage import EMPTY, AgentUsage, Usage, UsageSnapshot

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .._models._model import Model, ModelResponse, ToolCall
    from ._agent import Agent
    from ._session import Session
    from ._triage import Triage


@dataclass
class RunResult:
    """The outcome of :meth:`Agent.arun`.

    ``status`` is ``"ok"`` (the model answered with text), ``"max_turns"`` (it was still
    calling tools after ``max_turns`` model calls) or ``"budget_exhausted"`` (the run's
    :class:`~shipmates.Budget` was spent; ``reason`` says what, spent against the limit); when
    not ``"ok"``, ``output`` is the model's last text, if any.
    """

    status: Literal["ok", "max_turns", "budget_exhausted"]
    output: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    """The whole conversation sent to the model, system prompt first, OpenAI format."""
    events: list[ToolCallEvent] = field(default_factory=list)
    """Every tool call this agent made during the run, in order."""
    turns: int = 0
    """Model calls made (a triage call not counted: ``usage.model_calls`` counts it)."""
    agent: str = ""
    reason: str | None = None
    """Why the run stopped early (``budget_exhausted``: what was exhausted, spent against the limit)."""
    _usage: UsageSnapshot = field(default=EMPTY, repr=False, compare=False)

    @property
    def usage(self) -> Usage:
        """Tokens and cost of every model call of the run, its siblings' included."""
        return self._usage.total

    @property
    def usage_by_agent(self) -> dict[str, AgentUsage]:
        """The same by agent: each one's own model calls, and what it delegated, counted apart."""
        return self._usage.by_agent()

    @property
    def tool_calls(self) -> list[ToolCallEvent]:
        """Alias of ``events``."""
        return self.events

    def __str__(self) -> str:
        return self.output


class RunOptions(TypedDict, total=False):
    """The keyword options of a run: :meth:`Agent.arun`, :meth:`~Agent.stream` and
    :meth:`~Agent.stream_sync` take any of them (see :meth:`Agent.arun`)."""

    session: Session | None
    """Multi-turn memory, updated only when the run completes."""
    approve: Approver | None
    """Asked before each tool call and delegation, nested ones included."""
    model: str | Model | None
    """The model for this run instead of the agent's."""
    budget: Budget | None
    """Limits on tokens, cost and delegations over the whole tree."""


async def run_agent(
    agent: Agent,
    query: str | BaseModel,
    *,
    session: Session | None = None,
    approve: Approver | None = None,
    model: str | Model | None = None,
    budget: Budget | None = None,
) -> RunResult:
    """Run ``agent``'s loop on ``query`` and return the full :class:`RunResult` (see :meth:`Agent.arun`)."""
    from .._plugins._host import host_of

    host = host_of(agent.plugin_manager)
    resolved = get_model(model if model is not None else agent.model, plugin_manager=host)
    outer = delegation_stack.get()
    stack = outer if outer and outer[-1] == agent.name else (*outer, agent.name)
    token = delegation_stack.set(stack) if stack is not outer else None
    scope = RunScope(host, stack)
    hooks = StreamHooks(host, scope.emit) if scope.emitting else _Hooks(host)
    hooks.run = scope
    if budget is None:
        budget = agent.budget
    if budget is not None:
        scope.spend = Spend(budget, scope.spend)
    if approve is None:
        approve = inherited_approver()
        end_approval = None
    else:
        end_approval = require_approval(approve, asyncio.get_running_loop())
    request_token = None
    try:
        messages = _opening(agent, query, session)
        request_token = run_request.set(messages[-1]["content"])
        if scope.emitting:
            scope.started(messages[-1]["content"], str(getattr(resolved, "model_id", "")))
        result = await _turns(agent, resolved, messages, session, hooks, stack, approve, scope)
        result._usage = scope.snapshot()
        if scope.emitting:
            scope.finished(result)
        return result
    except BaseException as exc:
        scope.failed(exc)
        raise
    finally:
        if request_token is not None:
            run_request.reset(request_token)
        scope.close()
        if token is not None:
            delegation_stack.reset(token)
        if end_approval is not None:
            end_approval()


def _opening(agent: Agent, query: str | BaseModel, session: Session | None) -> list[dict[str, Any]]:
    """The instructions, the session's memory, then the query as the new user message."""
    messages: list[dict[str, Any]] = []
    if agent.instructions:
        messages.append({"role": "system", "content": agent.instructions})
    if session is not None:
        messages.extend(session.messages)
    content = query if isinstance(query, str) else query.model_dump_json()
    messages.append({"role": "user", "content": content})
    return messages


async def _turns(
    agent: Agent,
    model: Model,
    messages: list[dict[str, Any]],
    session: Session | None,
    hooks: _Hooks,
    stack: tuple[str, ...],
    approve: Approver | None,
    scope: RunScope,
) -> RunResult:
    """Model turn, then its tool calls, until a text answer or ``max_turns``."""
    first_new = len(messages) - 1  # the user message: what the session keeps starts there
    events: list[ToolCallEvent] = []
    past = PastCalls()
    sent_back = False
    last_text = ""
    spend = scope.spend
    triaged = await _triage_first(agent, model, messages, scope, stack)
    schemas: list[dict[str, Any]] | None = None  # None: the agent's, read each turn
    no_calls = False  # none fit, and the history holds tool calls: tools stay, calls may not
    if triaged is not None and triaged.none_fit:
        no_calls = any(m.get("role") == "tool" for m in messages)  # some providers need the tools then
        schemas = None if no_calls else []
    aside: list[dict[str, Any]] = []  # notes to the model, and the answers they set aside: not remembered
    for turn in range(1, agent.max_turns + 1):
        if spend is not None and (why := spend.why_spent()) is not None:
            return RunResult("budget_exhausted", last_text, messages, events, turn - 1, agent.name, why)
        settings = agent.model_settings
        if (past.answer_now or no_calls) and takes_settings(model):  # it must answer now
            settings = {**settings, "tool_choice": "none"}
        offered = agent.tool_schemas() if schemas is None else schemas
        if scope.emitting:
            response = await _streamed(model, messages, offered, settings, scope)
        else:
            response = await complete(model, messages, offered, settings)
        _charge(scope, stack, response)
        if not response.tool_calls and (written := calls_in_text(response.content, agent._tools)):
            # A tool call written as text (small models do): run it, never print it as the answer.
            calls = [dataclasses.replace(c, id=f"text-{turn}-{i}") for i, c in enumerate(written)]
            response = dataclasses.replace(response, content=None, tool_calls=calls)
        messages.append(assistant_message(response))
        if not response.tool_calls and not sent_back:
            note = unknown_call_in_text(response.content, agent._tools)
            if note is not None:  # a call of a tool it does not have, as text: tell it once
                sent_back = True
                aside += [messages[-1], {"role": "user", "content": note}]
                messages.append(aside[-1])
                continue
        if response.content:
            last_text = response.content
        if (
            not response.tool_calls
            and triaged is not None
            and turn < agent.max_turns
            and not past.answer_now
            and (note := triaged.reminder(events))
        ):  # it left out a tool triage named: the answer so far is a draft
            if scope.emitting and response.content:
                scope.new(TextDelta, text="\n\n")  # the draft was streamed: set the next answer apart
            aside += [messages[-1], {"role": "user", "content": note}]
            messages.append(aside[-1])
            continue
        if not response.tool_calls:
            if session is not None:
                session.add([m for m in messages[first_new:] if not any(m is a for a in aside)])
            return RunResult("ok", response.content or "", messages, events, turn, agent.name)
        calls, said = response.tool_calls, response.content

        async def run(batch: list[ToolCall], said: str | None = said) -> list[str]:
            return await run_turn_calls(agent, batch, hooks, stack, events, approve, said)

        results = await run_each_once(calls, past, run, events)
        for call, text in zip(calls, results, strict=True):
            messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
    return RunResult("max_turns", last_text, messages, events, agent.max_turns, agent.name)


async def _triage_first(
    agent: Agent, model: Model, messages: list[dict[str, Any]], scope: RunScope, stack: tuple[str, ...]
) -> Triage | None:
    """The run's triage (see ``_triage``) when it has one, counted as a model call of the run."""
    spend = scope.spend
    if not agent.tools or not _triages(agent, model) or (spend is not None and spend.why_spent() is not None):
        return None
    from ._triage import triage

    begun = time.monotonic()
    triaged = await triage(agent, model, messages)
    if triaged is not None:
        _charge(scope, stack, triaged.response)
        if scope.emitting:
            _finished(scope, model, triaged.response, begun)
    return triaged


def _triages(agent: Agent, model: Model) -> bool:
    """Whether a run starts with triage: as the agent says, else as its model's config alias
    says (for an agent with siblings); never on the offline router, which routes by words."""
    if getattr(model, "routes_by_words", False):
        return False
    if agent.triage is not None:
        return agent.triage
    return getattr(model, "triage", False) is True and bool(agent.siblings)


def _charge(scope: RunScope, stack: tuple[str, ...], response: ModelResponse) -> None:
    """Count a model call's usage in the run's ledger and against its budget."""
    scope.ledger.append((stack, (response.usage, response.cost_usd)))
    if scope.spend is not None:
        scope.spend.charge(usage_tokens(response.usage), response.cost_usd)


HAND_OVER = 0.001
"""Longest a streamed model turn keeps its text deltas from the stream's consumer, in seconds."""


async def _streamed(
    model: Model,
    messages: list[dict[str, Any]],
    schemas: list[dict[str, Any]],
    settings: dict[str, Any],
    scope: RunScope,
) -> ModelResponse:
    """One model turn with its text streamed as :class:`TextDelta` events, then its usage."""
    begun = time.monotonic()
    response: ModelResponse | None = None
    handed = 0.0
    async for chunk in stream_model(model, messages, schemas, settings):
        if isinstance(chunk, str):
            scope.new(TextDelta, text=chunk)
            if scope.sink is not None and (now := time.monotonic()) - handed >= HAND_OVER:
                # A backend that parses a burst of buffered chunks never yields to the loop: let
                # the stream's consumer see the deltas as they are made (the first at once, then
                # at least every HAND_OVER seconds), not the whole burst at its end.
                handed = now
                await asyncio.sleep(0)
        else:
            response = chunk
    assert response is not None  # stream_model always ends with the response
    _finished(scope, model, response, begun)
    return response


def _finished(scope: RunScope, model: Model, response: ModelResponse, begun: float) -> None:
    """The :class:`ModelCallFinished` event of a model call begun at ``begun`` (monotonic)."""
    scope.new(
        ModelCallFinished,
        model=str(getattr(model, "model_id", "")),
        usage=Usage.of_call(response.usage, response.cost_usd),
        duration=time.monotonic() - begun,
        tool_calls=len(response.tool_calls),
    )
