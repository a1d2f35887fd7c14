"""Remote siblings stream: a served Agent's nested events reach the captain's stream while the call
runs, usage crosses with the end, and nothing a hostile crew member publishes can crash a call.

The served sibling is a real ``SiblingServer`` on its own event loop and thread (as ``serve`` runs
it), on a real nats-server; the deepest tool waits on a gate the test opens only once it has seen
that tool's start in the captain's stream, which proves the event crossed before the call ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from nats_helpers import settings
from support import until

pytestmark = [pytest.mark.nats, pytest.mark.slow]

USAGE = {"captain": (100, 10, 0.5), "helper": (20, 2, 0.25), "leaf": (3, 1, 0.125)}
"""Per agent: input tokens, output tokens, cost of each of its model calls."""


class Scripted:
    """Calls its one tool first, then answers with the tool's result; fixed usage per call."""

    def __init__(self, agent: str, tool: str, arguments: dict[str, Any]) -> None:
        self.model_id = f"scripted-{agent}"
        self.agent, self.tool, self.arguments = agent, tool, arguments

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], settings: Any = None
    ) -> Any:
        from shipmates import ModelResponse, ToolCall

        inp, out, cost = USAGE[self.agent]
        usage = {"prompt_tokens": inp, "completion_tokens": out}
        results = [str(m["content"]) for m in messages if m["role"] == "tool"]
        if results:
            return ModelResponse(content=f"{self.agent}: {' '.join(results)}", usage=usage, cost_usd=cost)
        call = ToolCall(id=f"{self.agent}-1", name=self.tool, arguments=json.dumps(self.arguments))
        return ModelResponse(tool_calls=[call], usage=usage, cost_usd=cost)


class Crew:
    """helper (served) -> leaf (local to the replica) -> wait_gate, a tool that waits for the test."""

    def __init__(self) -> None:
        from shipmates import Agent, tool

        self.gate = threading.Event()

        @tool
        def wait_gate() -> str:
            """Wait until the test opens the gate."""
            return "opened" if self.gate.wait(30) else "gate timed out"

        leaf = Agent("leaf", "The leaf.", model=Scripted("leaf", "wait_gate", {}), tools=[wait_gate])
        self.helper = Agent("helper", "Helps.", model=Scripted("helper", "leaf", {"query": "go deeper"}))
        self.helper.absorb(leaf)


@contextlib.contextmanager
def served(url: str, ns: str, sibling: Any) -> Iterator[Any]:
    """``sibling`` served on its own loop and thread, as ``shipmates serve`` runs it."""
    from shipmates import Provenance
    from shipmates_nats._serve import SiblingServer

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = SiblingServer(
        [(sibling, Provenance("local", "streamcrew", "1.0"))], settings(url, ns), durable=False
    )
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.drain(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _proxy(url: str, ns: str) -> Any:
    from shipmates_nats import get_crew

    crew = get_crew(settings(url, ns))
    crew.scan()
    return {p.name: p for p, *_ in crew.siblings()}["helper"]


def _captain(proxy: Any) -> Any:
    from shipmates import Agent

    captain = Agent("captain", "The captain.", model=Scripted("captain", "helper", {"query": "help"}))
    captain.absorb(proxy)
    return captain


@pytest.mark.parametrize("route", ["background loop", "caller's loop"])
def test_nested_events_arrive_live_and_usage_is_the_sum_of_model_calls(
    nats_server: Any, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipmates import ModelCallFinished, RunFinished, TextDelta, ToolCallFinished, ToolCallStarted
    from shipmates_nats import _remote

    if route == "caller's loop":  # a connection of the caller's own loop from the first call on
        monkeypatch.setattr(_remote, "LOCAL_AFTER", 0)

    crew = Crew()
    ns = "st1" if route == "background loop" else "st1b"
    with served(nats_server.url, ns, crew.helper):
        proxy = _proxy(nats_server.url, ns)
        assert proxy.streams and "shipmates/2+stream" in proxy.card["protocols"]
        captain = _captain(proxy)

        async def run() -> list[Any]:
            seen: list[Any] = []
            async for event in captain.stream("start"):
                seen.append(event)
                if isinstance(event, ToolCallStarted) and event.call.tool == "wait_gate":
                    # the remote call is still running: its deepest tool waits for this very gate
                    assert not crew.gate.is_set()
                    assert not any(isinstance(e, ToolCallFinished) and e.call.tool == "helper" for e in seen)
                    crew.gate.set()
            return seen

        events = asyncio.run(run())

    assert crew.gate.is_set(), "the nested tool's start never reached the captain's stream"
    delegation = next(e for e in events if isinstance(e, ToolCallStarted) and e.call.tool == "helper")
    gate = next(e for e in events if isinstance(e, ToolCallStarted) and e.call.tool == "wait_gate")
    assert gate.depth == 2 and gate.path == ("captain", "helper", "leaf")
    helper_events = [e for e in events if e.agent == "helper" and not isinstance(e, TextDelta)]
    assert helper_events and all(e.parent_call_id == delegation.call.call_id for e in helper_events)

    final = events[-1]
    assert isinstance(final, RunFinished) and final.depth == 0 and final.status == "ok"
    assert "opened" in final.output
    calls = [e.usage for e in events if isinstance(e, ModelCallFinished)]
    assert len(calls) == 6  # two model calls per agent, three agents, one of them remote
    assert final.usage.model_calls == 6
    assert final.usage.input_tokens == sum(u.input_tokens for u in calls) == 2 * (100 + 20 + 3)
    assert final.usage.output_tokens == sum(u.output_tokens for u in calls) == 2 * (10 + 2 + 1)
    assert final.usage.cost_usd == 2 * (0.5 + 0.25 + 0.125)


def test_a_caller_that_does_not_stream_gets_one_reply(nats_server: Any) -> None:
    import nats
    from shipmates import RunFinished, RunStarted
    from shipmates_nats import _protocol as p

    crew = Crew()
    crew.gate.set()
    with served(nats_server.url, "st2", crew.helper):
        proxy = _proxy(nats_server.url, "st2")

        async def plain() -> list[Any]:
            nc = await nats.connect(nats_server.url)
            got: list[Any] = []

            async def reply(msg: Any) -> None:
                got.append(msg)

            sub = await nc.subscribe("st2._INBOX.plain", cb=reply)
            await nc.publish(proxy.subject, b"start", reply="st2._INBOX.plain")
            await until(lambda: got, what="the reply")
            await nc.flush()
            await nc.request(proxy.subject, b"again", timeout=10)  # a second call, fully answered
            await sub.unsubscribe()
            await nc.close()
            return got

        replies = asyncio.run(plain())
        assert len(replies) == 1 and "opened" in replies[0].data.decode()
        assert p.H_STREAM not in (replies[0].headers or {})
        assert "opened" in proxy.invoke("start")

        # a replica whose card does not list the streaming protocol: one reply, started then finished
        proxy.update({**proxy.card, "protocols": [p.PROTOCOL]}, proxy.instances)
        assert not proxy.streams

        async def collect() -> list[Any]:
            return [e async for e in proxy.astream("start")]

        events = asyncio.run(collect())
        assert [type(e) for e in events] == [RunStarted, RunFinished]
        assert "opened" in events[-1].output


def test_hostile_frames_are_dropped_and_cancellation_reaches_the_replica(
    nats_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import nats
    from shipmates import RunFinished, ToolCallStarted

    crew = Crew()
    caplog.set_level(logging.WARNING, logger="shipmates_nats")
    with served(nats_server.url, "st3", crew.helper) as server:
        proxy = _proxy(nats_server.url, "st3")

        async def run() -> tuple[list[Any], list[str]]:
            spy = await nats.connect(nats_server.url)  # a crew member that reads the requests
            replies: list[str] = []

            async def request(msg: Any) -> None:
                replies.append(msg.reply)

            await spy.subscribe(proxy.subject, cb=request)
            await spy.subscribe(f"{proxy.subject}.*", cb=request)  # a replica's own subject
            await spy.flush()
            seen: list[Any] = []
            stream = proxy.astream("start")
            async for event in stream:
                seen.append(event)
                if isinstance(event, ToolCallStarted) and event.call.tool == "wait_gate":
                    break
            await until(lambda: replies, what="the spy to see the request")
            good = {"t": "text", "a": "helper", "d": 0, "p": ["helper"], "pc": None, "x": "hi"}
            hostile = [
                b"not json",
                b"[1, 2]",
                json.dumps({**good, "t": "rm -rf"}).encode(),
                json.dumps({**good, "d": 99}).encode(),
                json.dumps({**good, "x": "x" * 9000}).encode(),
                json.dumps({**good, "t": "model", "m": "m", "u": {"input_tokens": -5}}).encode(),
                json.dumps({**good, "a": {"not": "a name"}}).encode(),
            ]
            for data in hostile:
                await spy.publish(replies[0], data)  # an event frame: a body without headers
            await spy.flush()
            # the stream goes on: each dropped frame is one warning line, never an event
            crew.gate.set()
            async for event in stream:
                seen.append(event)
            await spy.close()
            return seen, [r.getMessage() for r in caplog.records if "dropped an event" in r.getMessage()]

        events, warnings = asyncio.run(run())
        assert isinstance(events[-1], RunFinished) and "opened" in events[-1].output
        assert len(warnings) == 7, warnings
        assert all("\n" not in w and len(w) < 300 for w in warnings)
        assert not any(getattr(e, "text", None) == "hi" for e in events)

        # cancelling the captain's side cancels the served run
        crew.gate.clear()

        async def cancel() -> None:
            stream = proxy.astream("start")
            async for event in stream:
                if isinstance(event, ToolCallStarted) and event.call.tool == "wait_gate":
                    break
            assert server.replier.calls  # the served call is running
            await stream.aclose()
            await until(lambda: not server.replier.calls, what="the served call to be cancelled")

        asyncio.run(cancel())
        crew.gate.set()


def test_a_stalled_call_says_no_progress_before_its_timeout(
    nats_server: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipmates import RunFinished
    from shipmates_nats import _stream_call, _stream_serve

    monkeypatch.setattr(_stream_call, "NO_PROGRESS", 0.3)
    monkeypatch.setattr(_stream_serve, "KEEPALIVE", 0.05)
    caplog.set_level(logging.WARNING, logger="shipmates_nats")
    crew = Crew()
    with served(nats_server.url, "st4", crew.helper):
        proxy = _proxy(nats_server.url, "st4")

        def stalled() -> list[str]:
            return [r.getMessage() for r in caplog.records if "no progress for" in r.getMessage()]

        async def run() -> list[Any]:
            task = asyncio.ensure_future(_collect(proxy.astream("start")))
            await until(stalled, what="the no-progress line")
            assert not task.done()
            crew.gate.set()
            return await task

        events = asyncio.run(run())
        line = stalled()[0]
        assert "remote sibling 'helper'" in line and "keep-alives arrive" in line and "giving up in" in line
        assert isinstance(events[-1], RunFinished) and "opened" in events[-1].output


async def _collect(stream: Any) -> list[Any]:
    return [e async for e in stream]
