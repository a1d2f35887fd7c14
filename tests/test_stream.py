"""``Agent.stream``: a run's typed events, its siblings' included, live and linked to the captain's call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import shipmates
from shipmates import (
    Agent,
    ModelCallFinished,
    ModelError,
    ModelResponse,
    RunFinished,
    RunStarted,
    TextDelta,
    ToolCall,
    ToolCallFinished,
    ToolCallStarted,
    Usage,
    tool,
)


class Delegates:
    """Calls the tool ``to`` once (with a call id unique in the tree), then answers with its result,
    streamed in two pieces; reports ``tokens`` of usage per call."""

    def __init__(
        self, to: str | None, call_id: str, tokens: tuple[int, int], *, streams: bool = True
    ) -> None:
        self.model_id = f"scripted-{call_id}"
        self.to, self.call_id, self.tokens = to, call_id, tokens
        if not streams:
            self.stream = None  # type: ignore[assignment]  # a complete-only model

    def _usage(self) -> dict[str, Any]:
        return {"prompt_tokens": self.tokens[0], "completion_tokens": self.tokens[1]}

    async def complete(self, messages: Any, tools: Any, settings: Any = None) -> ModelResponse:
        if messages[-1]["role"] == "tool" or self.to is None:
            text = messages[-1]["content"] if messages[-1]["role"] == "tool" else "leaf answer"
            return ModelResponse(content=f"<{text}>", usage=self._usage(), cost_usd=0.001)
        call = ToolCall(self.call_id, self.to, json.dumps({"query": "go on"}))
        return ModelResponse(tool_calls=[call], usage=self._usage(), cost_usd=0.001)

    async def stream(self, messages: Any, tools: Any, settings: Any = None) -> AsyncIterator[Any]:
        response = await self.complete(messages, tools)
        if response.content:
            yield response.content[:3]
            yield response.content[3:]
        yield response


def tree() -> Agent:
    """captain -> middle -> leaf, every agent with its own scripted model (the middle one
    complete-only, so it streams as one chunk)."""
    leaf = Agent("leaf", "answers", model=Delegates(None, "c-leaf", (5, 1)))
    middle = Agent(
        "middle", "asks leaf", model=Delegates("leaf", "c-middle", (20, 2), streams=False), tools=[leaf]
    )
    return Agent("captain", model=Delegates("middle", "c-captain", (100, 10)), tools=[middle])


def _shape(event: Any) -> tuple[Any, ...]:
    kind = type(event).__name__
    detail = ""
    if isinstance(event, TextDelta):
        detail = event.text
    elif isinstance(event, (ToolCallStarted, ToolCallFinished)):
        detail = f"{event.call.tool}:{event.call.call_id}:{event.call.status}"
    elif isinstance(event, RunFinished):
        detail = event.status
    return (kind, event.agent, event.depth, event.parent_call_id, detail)


async def _events(agent: Agent, query: str = "start") -> list[Any]:
    return [event async for event in agent.stream(query)]


def test_depth_three_delegation_streams_in_order_with_parent_links() -> None:
    events = asyncio.run(_events(tree()))
    assert [_shape(e) for e in events] == [
        ("RunStarted", "captain", 0, None, ""),
        ("ModelCallFinished", "captain", 0, None, ""),
        ("ToolCallStarted", "captain", 0, None, "middle:c-captain:running"),
        ("RunStarted", "middle", 1, "c-captain", ""),
        ("ModelCallFinished", "middle", 1, "c-captain", ""),
        ("ToolCallStarted", "middle", 1, "c-captain", "leaf:c-middle:running"),
        ("RunStarted", "leaf", 2, "c-middle", ""),
        ("TextDelta", "leaf", 2, "c-middle", "<le"),
        ("TextDelta", "leaf", 2, "c-middle", "af answer>"),
        ("ModelCallFinished", "leaf", 2, "c-middle", ""),
        ("RunFinished", "leaf", 2, "c-middle", "ok"),
        ("ToolCallFinished", "middle", 1, "c-captain", "leaf:c-middle:ok"),
        ("TextDelta", "middle", 1, "c-captain", "<<leaf answer>>"),  # complete-only: one chunk
        ("ModelCallFinished", "middle", 1, "c-captain", ""),
        ("RunFinished", "middle", 1, "c-captain", "ok"),
        ("ToolCallFinished", "captain", 0, None, "middle:c-captain:ok"),
        ("TextDelta", "captain", 0, None, "<<<"),
        ("TextDelta", "captain", 0, None, "leaf answer>>>"),
        ("ModelCallFinished", "captain", 0, None, ""),
        ("RunFinished", "captain", 0, None, "ok"),
    ]
    assert events[6].path == ("captain", "middle", "leaf")
    assert events[5].call.path == ("captain", "middle") and events[5].call.parent_call_id == "c-captain"
    assert events[5].call.is_delegation


def test_usage_of_a_tree_is_the_sum_of_its_model_calls() -> None:
    events = asyncio.run(_events(tree()))
    calls = [e.usage for e in events if isinstance(e, ModelCallFinished)]
    total = sum(calls, Usage())
    final = events[-1]
    assert final.usage == total == final.result.usage
    assert (total.input_tokens, total.output_tokens, total.model_calls) == (
        245,
        25,
        5,
    )  # the leaf answers at once
    assert total.cost_usd == pytest.approx(0.005)
    by_agent = final.usage_by_agent
    assert (by_agent["leaf"].own.input_tokens, by_agent["leaf"].delegated.model_calls) == (5, 0)
    assert (by_agent["middle"].own.input_tokens, by_agent["middle"].delegated.input_tokens) == (40, 5)
    assert (by_agent["captain"].own.input_tokens, by_agent["captain"].delegated.input_tokens) == (200, 45)
    # Own usage is counted once: the agents' own shares add up to the total.
    assert sum((u.own for u in by_agent.values()), Usage()) == total
    # A sibling's RunFinished carries its own subtree only.
    middle_done = next(e for e in events if isinstance(e, RunFinished) and e.agent == "middle")
    assert middle_done.usage.input_tokens == 45 and set(middle_done.usage_by_agent) == {"middle", "leaf"}


def test_arun_results_are_those_of_the_stream() -> None:
    streamed = asyncio.run(_events(tree()))[-1].result
    plain = asyncio.run(tree().arun("start"))
    assert (plain.status, plain.output, plain.turns, plain.agent) == (
        streamed.status,
        streamed.output,
        streamed.turns,
        streamed.agent,
    )
    assert plain.messages == streamed.messages
    assert [(e.tool, e.status, e.result) for e in plain.events] == [
        (e.tool, e.status, e.result) for e in streamed.events
    ]
    assert plain.usage == streamed.usage and plain.usage_by_agent == streamed.usage_by_agent
    assert tree().invoke("start") == plain.output == "<<<leaf answer>>>"


def test_stream_sync_for_scripts() -> None:
    events = list(tree().stream_sync("start"))
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert events[-1].output == "<<<leaf answer>>>"
    assert [e.agent for e in events if isinstance(e, RunStarted)] == ["captain", "middle", "leaf"]


class Waits:
    """A sibling whose call blocks until cancelled; records that it was."""

    name = "waiter"
    description = "waits forever"

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def ainvoke(self, query: str) -> str:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return "never"


def _calls_waiter() -> Agent:
    waiter = Waits()
    return Agent("captain", model=Delegates("waiter", "c-wait", (1, 1)), tools=[waiter])


def test_leaving_the_stream_cancels_the_run() -> None:
    captain = _calls_waiter()
    waiter = captain.siblings["waiter"]

    async def leave_early() -> None:
        async with contextlib.aclosing(captain.stream("start")) as events:
            async for event in events:
                if isinstance(event, ToolCallStarted):
                    break
        assert waiter.cancelled.is_set()

    asyncio.run(leave_early())


def test_cancelling_the_consumer_cancels_the_run() -> None:
    captain = _calls_waiter()
    waiter = captain.siblings["waiter"]
    seen: list[Any] = []

    async def consume() -> None:
        async for event in captain.stream("start"):
            seen.append(event)

    async def main() -> None:
        task = asyncio.ensure_future(consume())
        while not waiter.started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert waiter.cancelled.is_set()

    asyncio.run(main())
    assert isinstance(seen[-1], ToolCallStarted)


def test_breaking_out_of_stream_sync_cancels_the_run() -> None:
    captain = _calls_waiter()
    waiter = captain.siblings["waiter"]
    events = captain.stream_sync("start")
    for event in events:
        if isinstance(event, ToolCallStarted):
            break
    events.close()  # what leaving a for loop does once the iterator is dropped
    assert waiter.cancelled.wait(10)


class Failing:
    model_id = "failing"

    async def complete(self, messages: Any, tools: Any, settings: Any = None) -> ModelResponse:
        raise ModelError("model 'failing' is down")


def test_a_failed_run_ends_its_stream_with_an_error_then_raises() -> None:
    seen: list[Any] = []

    async def run() -> None:
        async for event in Agent("a", model=Failing()).stream("hi"):
            seen.append(event)

    with pytest.raises(ModelError, match="is down"):
        asyncio.run(run())
    assert isinstance(seen[-1], RunFinished) and seen[-1].status == "error"
    assert "is down" in (seen[-1].error or "")


class Plain:
    """An invoke-only sibling: the stream sees its call started and finished, nothing inside."""

    name = "plain"
    description = "answers plainly"

    def invoke(self, query: str) -> str:
        return "plain answer"


def test_an_invoke_only_sibling_yields_its_call_started_and_finished() -> None:
    captain = Agent("captain", model=Delegates("plain", "c-plain", (1, 1)), tools=[Plain()])
    shapes = [_shape(e)[:2] for e in asyncio.run(_events(captain))]
    assert shapes[2:4] == [("ToolCallStarted", "captain"), ("ToolCallFinished", "captain")]
    assert {agent for _, agent in shapes} == {"captain"}


class SyncWrapper:
    """A sync sibling that runs an Agent of its own with ``invoke`` (in a worker thread, on the
    shared background loop): its events still reach the captain's stream, in order."""

    name = "wrapper"
    description = "wraps an agent"

    def __init__(self) -> None:
        self.inner = Agent("inner", model=Delegates(None, "c-inner", (2, 2)))

    def invoke(self, query: str) -> str:
        return self.inner.invoke(query)


def test_a_sync_sibling_running_an_agent_in_a_thread_streams_too() -> None:
    captain = Agent("captain", model=Delegates("wrapper", "c-wrap", (1, 1)), tools=[SyncWrapper()])
    events = asyncio.run(_events(captain))
    shapes = [_shape(e) for e in events]
    started = shapes.index(("ToolCallStarted", "captain", 0, None, "wrapper:c-wrap:running"))
    finished = shapes.index(("ToolCallFinished", "captain", 0, None, "wrapper:c-wrap:ok"))
    inner = shapes[started + 1 : finished]
    # The wrapper is a level of its own on the delegation path, so its agent is two deep.
    assert [s[:4] for s in inner] == [
        (kind, "inner", 2, "c-wrap")
        for kind in ("RunStarted", "TextDelta", "TextDelta", "ModelCallFinished", "RunFinished")
    ]
    assert events[started + 1].path == ("captain", "wrapper", "inner")
    assert events[-1].usage.model_calls == 3  # the inner agent's call is counted in the captain's tree


class Streams:
    """A sibling that is not an Agent but streams: ``astream(query)`` yields the events of its
    own run (its own agent at depth 0), as a remote replica would."""

    name = "streamer"
    description = "streams its work"

    async def astream(self, query: str) -> AsyncIterator[Any]:
        usage = Usage(input_tokens=7, output_tokens=3, model_calls=1, calls_without_cost=1)
        where = {"agent": "streamer", "depth": 0, "path": ("streamer",)}
        yield RunStarted(**where, query=query)
        call = shipmates.ToolCallEvent(agent="streamer", tool="lookup", arguments={}, call_id="s-1", depth=0)
        call.path = ("streamer",)
        yield ToolCallStarted(call=call)
        yield ToolCallFinished(call=call)
        yield TextDelta(**where, text="streamed ")
        yield TextDelta(**where, text="answer")
        yield ModelCallFinished(**where, model="remote-model", usage=usage)
        yield RunFinished(**where, status="ok", output="streamed answer", usage=usage)

    def invoke(self, query: str) -> str:
        raise AssertionError("astream is used when present")


def test_a_sibling_with_astream_joins_the_stream_one_level_deeper() -> None:
    captain = Agent("captain", model=Delegates("streamer", "c-s", (1, 1)), tools=[Streams()])
    events = asyncio.run(_events(captain))
    inner = [e for e in events if e.agent == "streamer"]
    assert [(type(e).__name__, e.depth, e.parent_call_id) for e in inner] == [
        (name, 1, "c-s")
        for name in (
            *("RunStarted", "ToolCallStarted", "ToolCallFinished", "TextDelta", "TextDelta"),
            *("ModelCallFinished", "RunFinished"),
        )
    ]
    assert inner[1].call.path == ("captain", "streamer") and inner[0].path == ("captain", "streamer")
    final = events[-1]
    assert final.output == "<streamed answer>"
    assert final.usage.input_tokens == 2 + 7
    assert final.usage_by_agent["captain"].delegated.input_tokens == 7


def test_events_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        TextDelta("a", 0, (), None, "x")  # type: ignore[misc]
    delta = TextDelta(agent="a", text="x")
    with pytest.raises(AttributeError):
        delta.text = "y"  # type: ignore[misc]


@tool
def square(n: int) -> int:
    """Square a whole number."""
    return n * n


def test_the_offline_router_streams_the_answer() -> None:
    mathy = Agent("mathy", "squares numbers", tools=[square])
    captain = Agent("captain", tools=[mathy])
    events = asyncio.run(_events(captain, "square 12"))
    assert [e.text for e in events if isinstance(e, TextDelta) and e.depth == 0] == ["144"]
    assert events[-1].output == "144"


def test_run_streamed_hands_each_event_over_as_the_run_makes_it() -> None:
    """``shipmates.plugin.run_streamed`` (the REPL, ``serve``): the same events as ``Agent.stream``,
    in order (a sibling's thread included), each handed over before the run goes on."""
    from shipmates.plugin import run_streamed

    captain = Agent("captain", model=Delegates("wrapper", "c-wrap", (1, 1)), tools=[SyncWrapper()])
    expected = [_shape(e) for e in asyncio.run(_events(captain))]
    seen: list[Any] = []
    result = asyncio.run(run_streamed(captain, "start", seen.append))
    assert [_shape(e) for e in seen] == expected
    assert result.output == seen[-1].output and result.usage == seen[-1].usage

    class Observes:
        """A model whose second delta is made only once the first one was seen."""

        model_id = "observes"

        async def complete(self, messages: Any, tools: Any, settings: Any = None) -> ModelResponse:
            return ModelResponse(content="a b")

        async def stream(self, messages: Any, tools: Any, settings: Any = None) -> AsyncIterator[Any]:
            yield "a "
            assert [getattr(e, "text", None) for e in seen if isinstance(e, TextDelta)] == ["a "]
            yield "b"
            yield ModelResponse(content="a b")

    seen.clear()
    assert asyncio.run(run_streamed(Agent("a", model=Observes()), "hi", seen.append)).output == "a b"


def test_a_failing_event_callback_cancels_the_run_and_is_raised() -> None:
    from shipmates.plugin import run_streamed

    captain = _calls_waiter()
    waiter = captain.siblings["waiter"]

    def on_event(event: Any) -> None:
        if isinstance(event, ToolCallStarted):
            raise OSError("the terminal is gone")

    with pytest.raises(OSError, match="terminal is gone"):
        asyncio.run(run_streamed(captain, "start", on_event))
    assert not waiter.started.is_set() or waiter.cancelled.is_set()
