"""Serve, remote discovery, absorb, captain turns, and the call contract (errors, limits, trace)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import noted, settings
from support import until, wait_for

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def _crew(url: str, ns: str = "shipmates", **kw: Any) -> Any:
    from shipmates_nats import get_crew

    return get_crew(settings(url, ns, **kw))


async def _seconds_to_cancel_a_slow_call(sibling: Any, journal: Path) -> float:
    """Start a 3 s remote call, cancel it once the served sibling is in it; how long the cancellation
    took to land."""
    before = len(noted(journal, "sleeping "))
    task = asyncio.ensure_future(sibling.ainvoke("sleep 3"))
    await until(lambda: task.done() or len(noted(journal, "sleeping ")) > before, what="the call to start")
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - started


def test_serve_discover_absorb_and_captain_turn(nats_server: Any, serve: Any, monkeypatch: Any) -> None:
    from shipmates import Agent, absorb_crew, discover

    serve(nats_server.url, "--namespace", "t1")
    monkeypatch.setenv("SHIPMATES_NATS_URL", nats_server.url)
    monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "t1")
    monkeypatch.setenv("SHIPMATES_AGENTS", "echo,square")
    found = discover()
    records = found.agents
    assert set(records) == {"echo", "square"}, [r.one_line() for r in found.records]
    echo = records["echo"]
    assert echo.status == "ok"
    assert echo.provenance.origin == "remote"
    assert echo.provenance.describe() == "shipmates-natscrew 1.2.3"
    assert len(echo.instances) == 1 and echo.instances[0] in (echo.provenance.location or "")

    assert (echo.provenance.location or "").startswith("nats://")  # what the roster shows
    captain = Agent("captain", "test captain", model="offline")
    report = absorb_crew(captain, found)
    assert report.ok and sorted(report.absorbed) == ["echo", "square"]
    # the typed sibling's schema crossed the wire unchanged
    schema = captain.get_tool("square").schema["function"]["parameters"]
    assert schema["required"] == ["n"] and schema["properties"]["n"]["type"] == "integer"

    answer = captain.invoke("echo hello there")
    assert "echo " in answer and "hello there" in answer
    result = asyncio.run(captain.arun("square 7"))
    assert "49" in result.output, result.output
    assert result.events[0].provenance.origin == "remote"


def test_typed_validation_trace_and_stack(nats_server: Any, serve: Any) -> None:
    from shipmates.plugin import set_delegation_path
    from shipmates_nats import RemoteCallError
    from shipmates_nats._invoke import current_traceparent

    serve(nats_server.url, "--namespace", "t2")
    crew = _crew(nats_server.url, "t2")
    crew.scan()
    proxies = {p.name: p for p, *_ in crew.siblings()}
    square = proxies["square"]
    assert square.invoke(square.input_model(n=3)) == "9 (none)"
    with pytest.raises(RemoteCallError, match=r"square.*shipmates-natscrew 1\.2\.3"):
        square.invoke({"n": "not a number"})

    async def traced() -> tuple[str, str]:
        current_traceparent.set("00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")
        set_delegation_path(("captain", "echo"))
        return await proxies["echo"].ainvoke("trace"), await proxies["echo"].ainvoke("stack")

    seen, stack = asyncio.run(traced())
    assert seen.split("-")[1] == "ab" * 16  # same trace id, a new span on the serving side
    assert seen.split("-")[2] != "cd" * 8
    assert stack == "captain,echo"


def test_errors_limits_no_responders_and_cancel(nats_server: Any, serve: Any, journal: Path) -> None:
    from shipmates_nats import PayloadTooLargeError, RemoteCallError

    serve(nats_server.url, "--namespace", "t3", env={"SHIPMATES_NATS_MAX_BYTES": "5000"})
    crew = _crew(nats_server.url, "t3", max_bytes=4000)
    crew.scan()
    echo = {p.name: p for p, *_ in crew.siblings()}["echo"]

    exploded = r"echo.*shipmates-natscrew 1\.2\.3.*RuntimeError: echo exploded"
    with pytest.raises(RemoteCallError, match=exploded):
        echo.invoke("boom")
    with pytest.raises(PayloadTooLargeError, match=r"request of \d+ bytes to remote sibling 'echo'"):
        echo.invoke("y" * 5000)
    with pytest.raises(PayloadTooLargeError, match=r"'echo'.*answered 6000 bytes.*limit of 5000"):
        echo.invoke("big 6000")

    # cancelling the caller cancels the wait at once
    assert asyncio.run(_seconds_to_cancel_a_slow_call(echo, journal)) < 0.5

    # a per-call timeout: the served timeout (5 s) answers with a clear error, no hang
    echo.served_timeout = 0.5
    started = time.monotonic()
    with pytest.raises(RemoteCallError, match="echo"):
        echo.invoke("sleep 2")
    assert time.monotonic() - started < 2.5

    # no replica at all: a clear error at once
    other = _crew(nats_server.url, "t3-empty")
    from shipmates_nats._remote import RemoteSibling

    card = {"name": "ghost", "description": "", "distribution": "d", "version": "1"}
    ghost = RemoteSibling(other, card, [])
    started = time.monotonic()
    with pytest.raises(RemoteCallError, match=r"no replica of remote sibling 'ghost' \(d 1\)"):
        ghost.invoke("hi")
    assert time.monotonic() - started < 1.0


def test_namespace_isolation(nats_server: Any, serve: Any) -> None:
    serve(nats_server.url, "--namespace", "crew-a", agents="echo")
    assert set(_crew(nats_server.url, "crew-a").scan()) == {"echo"}
    assert _crew(nats_server.url, "crew-b").scan() == {}


def test_remote_local_name_collision(nats_server: Any, serve: Any, monkeypatch: Any, tmp_path: Any) -> None:
    from shipmates import discover
    from support import sibling_spec, write_dist_info

    serve(nats_server.url, "--namespace", "t5", agents="echo")
    site = tmp_path / "site"
    write_dist_info(sibling_spec("echo", dist="local-echo", version="9.9.9"), site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SHIPMATES_NATS_URL", nats_server.url)
    monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "t5")
    monkeypatch.setenv("SHIPMATES_AGENTS", "echo")
    found = discover(path=[str(site)])
    echoes = [r for r in found.records if r.name == "echo"]
    assert sorted(r.status for r in echoes) == ["conflict", "conflict"]
    assert {r.provenance.origin for r in echoes} == {"entry-point", "remote"}
    local = next(r for r in echoes if r.provenance.origin == "entry-point")
    assert "shipmates-natscrew 1.2.3" in (local.reason or "")
    # the remote-only lists settle it: keep the local one
    monkeypatch.setenv("SHIPMATES_NATS_EXCLUDE", "echo")
    found = discover(path=[str(site)])
    kept = [(r.status, r.provenance.origin) for r in found.records if r.name == "echo"]
    assert kept == [("ok", "entry-point")]


def test_refresh_picks_up_and_drops_siblings(nats_server: Any, serve: Any, monkeypatch: Any) -> None:
    from shipmates import Agent, absorb_crew, discover, get_plugin_manager
    from shipmates_nats import _remote

    monkeypatch.setattr(_remote, "POLL_INTERVAL", 0.2)
    monkeypatch.setenv("SHIPMATES_NATS_URL", nats_server.url)
    monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "t6")
    monkeypatch.setenv("SHIPMATES_AGENTS", "echo,square")
    captain = Agent("captain", model="offline")
    absorb_crew(captain, discover())
    assert captain.siblings == {}
    pm = get_plugin_manager()
    replica = serve(nats_server.url, "--namespace", "t6", agents="echo")
    wait_for(lambda: (pm.hook.refresh_agents(captain=captain), "echo" in captain.siblings)[1], 8)
    assert "echo" in captain.invoke("echo hi")
    replica.stop()
    wait_for(lambda: (pm.hook.refresh_agents(captain=captain), "echo" not in captain.siblings)[1], 8)
    proxy = _remote._crews and next(iter(_remote._crews.values())).proxies["echo"]
    assert proxy and proxy.available is False
    serve(nats_server.url, "--namespace", "t6", agents="echo")
    wait_for(lambda: (pm.hook.refresh_agents(captain=captain), "echo" in captain.siblings)[1], 8)


def test_drain_on_sigterm_finishes_in_flight(nats_server: Any, serve: Any, journal: Path) -> None:
    replica = serve(nats_server.url, "--namespace", "t7", "--drain-timeout", "10", agents="echo")
    crew = _crew(nats_server.url, "t7")
    crew.scan()
    echo = crew.proxies["echo"]

    async def run() -> list[Any]:
        calls = [asyncio.ensure_future(echo.ainvoke("sleep 1")) for _ in range(5)]
        await until(
            lambda: len(noted(journal, "sleeping ")) == 5 or any(c.done() for c in calls),
            what="five calls in the served sibling",
        )
        replica.proc.terminate()
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(run())
    assert all(isinstance(r, str) and r.startswith("echo ") for r in results), results
    assert replica.proc.wait(15) == 0
    assert "stopped after 5 call(s)" in replica.text()


def test_busy_loop_gets_its_own_connection_closed_at_shutdown(
    nats_server: Any, serve: Any, journal: Path
) -> None:
    """After a few calls a loop skips the bridge thread; cancelling still works; asyncio.run closes it."""
    serve(nats_server.url, "--namespace", "t8", agents="echo")
    crew = _crew(nats_server.url, "t8")
    crew.scan()
    echo = crew.proxies["echo"]

    async def busy() -> tuple[int, float]:
        for i in range(12):
            assert (await echo.ainvoke(f"n{i}")).endswith(f"n{i}")
        own = len(crew._local)
        return own, await _seconds_to_cancel_a_slow_call(echo, journal)

    own, cancel_seconds = asyncio.run(busy())
    assert own == 1 and cancel_seconds < 0.5
    assert crew._local == {}  # closed and forgotten when the loop shut down


def test_chat_once_through_a_remote_sibling(nats_server: Any, serve: Any, tmp_path: Any) -> None:
    """The real CLI: `shipmates chat --nats URL --once ...` answers through the served sibling."""
    import os
    import subprocess
    import sys

    replica = serve(nats_server.url, "--namespace", "t9", agents="echo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env.update(
        {
            "SHIPMATES_HOME": str(tmp_path / "home"),
            "SHIPMATES_PLUGINS": "nats",
            "SHIPMATES_AGENTS": "echo",
            "SHIPMATES_NATS_NAMESPACE": "t9",
        }
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipmates",
            "chat",
            "--nats",
            nats_server.url,
            "--once",
            "echo ahoy shipmate",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"echo {replica.pid}: " in done.stdout and "ahoy shipmate" in done.stdout


def test_nats_down_at_start_then_up(serve: Any, monkeypatch: Any) -> None:
    """The captain starts while NATS is down: reported, and siblings join once it is up."""
    from shipmates import Agent, absorb_crew, discover, get_plugin_manager
    from shipmates_nats import NatsServer, _plugin

    monkeypatch.setattr(_plugin, "RETRY_SECONDS", 0.2)
    with NatsServer() as server:
        server.stop()
        monkeypatch.setenv("SHIPMATES_NATS_URL", server.url)
        monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "t10")
        monkeypatch.setenv("SHIPMATES_AGENTS", "echo")
        found = discover()
        failed = [r for r in found.records if r.status == "failed"]
        assert failed and "cannot reach NATS" in (failed[0].reason or "")
        captain = Agent("captain", model="offline")
        absorb_crew(captain, found)
        pm = get_plugin_manager()
        pm.hook.refresh_agents(captain=captain)  # no server yet: nothing, and no wait
        server.start()
        serve(server.url, "--namespace", "t10", agents="echo")
        wait_for(lambda: (pm.hook.refresh_agents(captain=captain), "echo" in captain.siblings)[1], 10)
        assert "echo" in captain.invoke("echo back")


def test_two_remote_distributions_same_name(
    nats_server: Any, serve: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    """One name served by two distributions: both reported as conflicts, neither absorbed."""
    from shipmates import discover
    from support import sibling_spec, write_dist_info

    site = tmp_path / "other-site"
    write_dist_info(sibling_spec("echo", dist="other-echo", version="2.0.0"), site)
    serve(nats_server.url, "--namespace", "t11", agents="echo")
    rival = serve(nats_server.url, "--namespace", "t11", agents="echo", env={"PYTHONPATH": str(site)})
    wait_for(lambda: "'echo' is also served by shipmates-natscrew 1.2.3" in rival.text(), 5)
    monkeypatch.setenv("SHIPMATES_NATS_URL", nats_server.url)
    monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "t11")
    monkeypatch.setenv("SHIPMATES_AGENTS", "echo")
    echoes = [r for r in discover().records if r.name == "echo"]
    assert sorted(r.provenance.describe() for r in echoes) == ["other-echo 2.0.0", "shipmates-natscrew 1.2.3"]
    assert {r.status for r in echoes} == {"conflict"}
    assert all(r.provenance.origin == "remote" for r in echoes)


def test_remote_siblings_tool_calls_join_the_captains_trace(nats_server: Any, serve: Any) -> None:
    """A served Agent's own tool calls come back with the answer and reach the captain's hooks."""
    from shipmates import Agent, get_plugin_manager, hookimpl

    serve(nats_server.url, "--namespace", "t12", agents="calc")
    crew = _crew(nats_server.url, "t12")
    crew.scan()
    seen: list[Any] = []

    class Tracer:
        @hookimpl
        def tool_call_finished(self, event: Any) -> None:
            seen.append(event)

    pm = get_plugin_manager()
    pm.register(Tracer(), name="test-tracer")
    try:
        captain = Agent("captain", model="offline")
        captain.absorb(crew.proxies["calc"])
        assert "42" in captain.invoke("calc: double 21")
    finally:
        pm.unregister(name="test-tracer")
    lines = [(e.depth, e.agent, e.tool, e.path, e.status) for e in seen]
    assert (1, "calc", "double", ("captain", "calc"), "ok") in lines, lines
    assert (0, "captain", "calc", ("captain",), "ok") in lines, lines
    assert [ln[1] for ln in lines] == ["calc", "captain"]  # nested call first, like a local delegation
