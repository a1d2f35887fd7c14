"""Load-aware routing, the local fallback, idempotent retries and version ranges (issue 12 points 4, 6, 7).

Real nats-server, real `shipmates serve` processes of a generated distribution
(``shipmates-routecrew``, in two versions): ``work`` answers after ``ROUTE_DELAY`` seconds (or
``sleep N``) with its process id and version (or fails, with ``ROUTE_FAIL`` set) and declares
``idempotent = True``; ``once`` is the same without it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from nats_helpers import noted, settings
from support import PackageSpec, wait_for, write_dist_info

pytestmark = [pytest.mark.nats, pytest.mark.slow]

ROUTE_CODE = """
import asyncio, os

VERSION = "{version}"
JOURNAL = os.environ.get("NATSCREW_JOURNAL")


class Work:
    name = "work"
    description = "Answers after a pause, with its process id and version."
    timeout = 20
    idempotent = True

    async def ainvoke(self, query):
        if JOURNAL:
            with open(JOURNAL, "a") as f:
                f.write(f"working {{os.getpid()}} {{query}}\\n")
        if query.startswith("sleep "):
            await asyncio.sleep(float(query.split()[1]))
        elif os.environ.get("ROUTE_FAIL"):
            raise RuntimeError(f"replica {{os.getpid()}} is broken")
        else:
            await asyncio.sleep(float(os.environ.get("ROUTE_DELAY", "0")))
        return f"{{self.name}} {{os.getpid()}} v{{VERSION}}: {{query}}"


class Once(Work):
    name = "once"
    idempotent = False


def work():
    return Work()


def once():
    return Once()
"""


def _site(root: Path, version: str) -> Path:
    site = root / f"routecrew-{version}"
    spec = PackageSpec(
        "shipmates-routecrew",
        "shipmates_routecrew",
        version,
        ROUTE_CODE.format(version=version),
        {"shipmates.agents": {"work": "shipmates_routecrew:work", "once": "shipmates_routecrew:once"}},
    )
    write_dist_info(spec, site)
    return site


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("routecrew")
    return {v: _site(root, v) for v in ("1.0.0", "2.0.0")}


def _serve(serve: Any, url: str, ns: str, site: Path, *flags: str, **env: str) -> Any:
    return serve(url, "--namespace", ns, *flags, agents="work,once", env={"PYTHONPATH": str(site), **env})


def _proxy(url: str, ns: str, name: str, replicas: int) -> Any:
    from shipmates_nats import get_crew

    crew = get_crew(settings(url, ns))
    wait_for(
        lambda: len(crew.scan().get(name, _Empty).instances) == replicas, 10, what=f"{replicas} replicas"
    )
    return crew.proxies[name]


class _Empty:
    instances: dict[str, Any] = {}


def _pid(answer: str) -> int:
    return int(answer.split()[1])


async def _streamed(proxy: Any, query: str) -> str:
    """The answer of a streamed call (``astream``: how a captain's run calls a remote sibling)."""
    from shipmates import RunFinished

    finished = [e async for e in proxy.astream(query) if isinstance(e, RunFinished) and e.depth == 0]
    assert len(finished) == 1, finished
    return str(finished[0].output)


def test_a_slow_saturated_replica_gets_few_calls(
    nats_server: Any, serve: Any, sites: dict[str, Path]
) -> None:
    slow = _serve(serve, nats_server.url, "rt1", sites["1.0.0"], "--max-inflight", "2", ROUTE_DELAY="0.4")
    fast = _serve(serve, nats_server.url, "rt1", sites["1.0.0"], ROUTE_DELAY="0.01")
    work = _proxy(nats_server.url, "rt1", "work", 2)
    assert len(work.routes) == 2  # both replicas take calls on their own subjects

    async def calls() -> list[str]:
        gate = asyncio.Semaphore(6)  # six callers at a time

        async def one(i: int) -> str:
            async with gate:
                return str(await work.ainvoke(f"q{i}"))

        return await asyncio.gather(*(one(i) for i in range(120)))

    served = Counter(_pid(a) for a in asyncio.run(calls()))
    assert set(served) <= {slow.pid, fast.pid}
    assert served[fast.pid] >= 0.85 * 120, served  # a queue group alone would give it about half


def test_prefer_remote_falls_back_to_the_local_copy(
    nats_server: Any, serve: Any, sites: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipmates import Agent, absorb_crew, discover, get_plugin_manager
    from shipmates_nats import RemoteSibling, _remote

    monkeypatch.setattr(_remote, "POLL_INTERVAL", 0.2)
    monkeypatch.syspath_prepend(str(sites["1.0.0"]))  # installed here too
    monkeypatch.setenv("SHIPMATES_AGENTS", "work")
    monkeypatch.setenv("SHIPMATES_PREFER", "remote:work")
    monkeypatch.setenv("SHIPMATES_NATS_URL", nats_server.url)
    monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "rt2")
    replica = _serve(serve, nats_server.url, "rt2", sites["1.0.0"])
    _proxy(nats_server.url, "rt2", "work", 1)

    found = discover()
    assert [r.status for r in found.records if r.name == "work"] == ["excluded", "ok"], found.records
    excluded = next(r for r in found.records if r.name == "work" and r.status == "excluded")
    assert "preferred from" in (excluded.reason or "") and "SHIPMATES_PREFER" in (excluded.reason or "")
    captain = Agent("captain", model="offline")
    absorb_crew(captain, found)
    work = captain.siblings["work"]
    assert isinstance(work, RemoteSibling) and work.fallback is not None
    assert "falls back to the local 'work'" in (work.provenance.location or "")
    assert _pid(work.invoke("first")) == replica.pid

    def refreshed() -> None:
        get_plugin_manager().hook.refresh_agents(captain=captain)

    replica.stop()  # every replica gone: the local copy answers, even before a refresh notices
    assert _pid(work.invoke("alone")) == os.getpid()
    assert _pid(asyncio.run(_streamed(work, "alone, streamed"))) == os.getpid()
    wait_for(lambda: (refreshed(), work.available is False)[1], 10, what="the replica to be gone")
    assert captain.siblings["work"] is work  # the name stays, on the local copy
    assert _pid(work.invoke("still alone")) == os.getpid()

    back = _serve(serve, nats_server.url, "rt2", sites["1.0.0"])
    wait_for(lambda: (refreshed(), work.available)[1], 10, what="the replica to return")
    assert _pid(work.invoke("together again")) == back.pid
    assert _pid(asyncio.run(_streamed(work, "together again, streamed"))) == back.pid


def test_an_idempotent_sibling_is_retried_once_when_its_replica_dies(
    nats_server: Any, serve: Any, sites: dict[str, Path], journal: Path
) -> None:
    from shipmates_nats import RemoteCallError

    replicas = {s.pid: s for s in (_serve(serve, nats_server.url, "rt3", sites["1.0.0"]) for _ in range(2))}
    work = _proxy(nats_server.url, "rt3", "work", 2)
    once = _proxy(nats_server.url, "rt3", "once", 2)
    assert work.idempotent and not once.idempotent

    async def killed_mid_call(proxy: Any, query: str, streamed: bool = False) -> tuple[Any, int]:
        call = asyncio.ensure_future(_streamed(proxy, query) if streamed else proxy.ainvoke(query))
        while not any(query in line for line in noted(journal, "working ")):
            await asyncio.sleep(0.02)
        line = next(line for line in noted(journal, "working ") if query in line)
        victim = int(line.split()[1])
        os.kill(victim, signal.SIGKILL)
        try:
            return await asyncio.wait_for(call, 15), victim
        except Exception as exc:
            return exc, victim

    answer, victim = asyncio.run(killed_mid_call(work, "sleep 1.5"))
    assert isinstance(answer, str), answer
    survivor = _pid(answer)
    assert survivor != victim and survivor in replicas

    third = _serve(serve, nats_server.url, "rt3", sites["1.0.0"])
    assert third.pid not in replicas
    wait_for(
        lambda: len(work.crew.scan()["work"].instances) == 2, 15, what="the victim gone, the third replica in"
    )
    answer, victim = asyncio.run(killed_mid_call(work, "sleep 1.55", streamed=True))
    assert isinstance(answer, str), answer  # a streamed call is retried the same way
    assert _pid(answer) != victim

    error, _ = asyncio.run(killed_mid_call(once, "sleep 1.6"))
    assert isinstance(error, RemoteCallError), error
    assert "died before it answered" in str(error) and "not retried" in str(error)
    assert "idempotent = True" in str(error)


def test_a_version_range_excludes_a_replica(
    nats_server: Any,
    serve: Any,
    sites: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from shipmates_nats._status import collect, render

    old = _serve(serve, nats_server.url, "rt4", sites["1.0.0"], SHIPMATES_NATS_HEARTBEAT="0.2")
    new = _serve(serve, nats_server.url, "rt4", sites["2.0.0"], SHIPMATES_NATS_HEARTBEAT="0.2")
    work = _proxy(nats_server.url, "rt4", "work", 2)
    location = work.provenance.location or ""
    assert "versions 1.0.0 (" in location and "2.0.0 (" in location  # both shown in /agents
    doc = collect([settings(nats_server.url, "rt4")], 1.0)  # and in `shipmates status`
    entry = next(e for e in doc["siblings"] if e["name"] == "work")
    assert entry["versions"] == ["1.0.0", "2.0.0"]
    shown = render(doc)
    assert "work (versions 1.0.0, 2.0.0)" in shown and f"PID {old.pid} v1.0.0" in shown, shown

    monkeypatch.setenv("SHIPMATES_REQUIRE", "work>=2")
    work.crew.scan()
    work.crew.scan()
    assert work.instances == [i for i in work.crew.views["work"].instances if i in work.instances]
    assert len(work.instances) == 1 and "versions" not in (work.provenance.location or "")

    async def calls() -> list[str]:
        return await asyncio.gather(*(work.ainvoke(f"q{i}") for i in range(30)))

    answers = asyncio.run(calls())
    assert {_pid(a) for a in answers} == {new.pid}, answers
    assert all(" v2.0.0: " in a for a in answers)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "outside the required range" in line]
    assert len(lines) == 1, err  # reported once, not on every scan
    assert (
        "'work' (shipmates-routecrew 1.0.0" in lines[0]
        and ">=2" in lines[0]
        and "SHIPMATES_REQUIRE" in lines[0]
    )
    assert old.proc.poll() is None  # still serving, just not called

    jobs = [work.delegate(f"job {i}", timeout=15) for i in range(8)]  # durable jobs too
    assert all(" v2.0.0: " in job for job in jobs), jobs


def test_a_failing_replica_is_skipped_by_its_breaker_while_the_healthy_one_answers(
    nats_server: Any,
    serve: Any,
    sites: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shipmates.plugin import state_dir
    from shipmates_nats import RemoteCallError, _breaker
    from shipmates_nats._breaker import CircuitOpenError
    from shipmates_nats._status import collect, render

    monkeypatch.setenv(_breaker.FAILURES_ENV, "3")
    monkeypatch.setenv(_breaker.COOLDOWN_ENV, "60")
    _breaker.reset()
    beat = {"SHIPMATES_NATS_HEARTBEAT": "0.2"}
    broken = _serve(serve, nats_server.url, "rt5", sites["1.0.0"], ROUTE_FAIL="1", **beat)
    healthy = _serve(serve, nats_server.url, "rt5", sites["1.0.0"], **beat)
    work = _proxy(nats_server.url, "rt5", "work", 2)

    async def one(i: int) -> Any:
        try:
            return await (_streamed(work, f"q{i}") if i % 2 else work.ainvoke(f"q{i}"))
        except RemoteCallError as exc:
            return exc

    async def calls() -> tuple[list[Any], list[Any]]:
        spread: list[Any] = []  # four at a time, so that both replicas get calls
        while len([a for a in spread if isinstance(a, RemoteCallError)]) < 3 and len(spread) < 200:
            spread += await asyncio.gather(*(one(len(spread) + i) for i in range(4)))
        return spread, await asyncio.gather(*(one(i) for i in range(40)))

    spread, after = asyncio.run(calls())
    failures = [a for a in spread if isinstance(a, RemoteCallError)]
    assert all(f"replica {broken.pid} is broken" in str(f) for f in failures), failures
    assert 3 <= len(failures) < 3 + 4, spread  # (calls in flight when it opened fail too)
    assert {_pid(a) for a in after} == {healthy.pid}, after  # (a failure would not be a str)
    (broken_id,) = [i for i in work.routes if i in work.replica_breakers.by_id]
    sibling_key = "rt5/work/shipmates-routecrew"
    states = _breaker.states()
    assert states[f"{sibling_key}/{broken_id}"]["state"] == "open"
    assert states.get(sibling_key, {"state": "closed"})["state"] == "closed"  # a replica still answers

    work.update(work.card, work.instances, work.hosts)  # what /agents shows
    assert f"replica {broken_id} circuit open ({len(failures)} failures)" in (work.provenance.location or "")
    doc = collect([settings(nats_server.url, "rt5")], 1.0)  # and `shipmates status`
    entry = next(e for e in doc["siblings"] if e["name"] == "work")
    by_pid = {r["pid"]: r for r in entry["replicas"]}
    assert by_pid[broken.pid]["breaker"] == "open" and by_pid[healthy.pid]["breaker"] == "closed"
    assert entry["breaker"] == "closed (1 of 2 replicas open)"
    shown = render(doc)
    lines = [line for line in shown.splitlines() if f"PID {broken.pid} " in line]
    assert lines[-1].endswith(", circuit open"), shown  # the line of its `work` replica
    assert (state_dir() / "nats-breakers.json").exists()

    healthy.stop()  # now no replica can answer: the sibling fails fast
    wait_for(lambda: len(work.crew.scan()["work"].instances) == 1, 15, what="the healthy replica gone")
    wait_for(lambda: work.routes == [broken_id], 5)
    with pytest.raises(CircuitOpenError, match="circuit open for remote sibling 'work'"):
        work.invoke("q")
    _breaker.reset()


def test_a_call_held_by_the_only_replica_when_it_dies_fails_at_once(
    nats_server: Any, serve: Any, sites: dict[str, Path], journal: Path
) -> None:
    """Not at its timeout (20 s here): the captain checks every second that the replica holding
    the call is still there, also when the sibling has only that one."""
    import time

    from shipmates_nats import RemoteCallError

    _serve(serve, nats_server.url, "rt6", sites["1.0.0"])
    once = _proxy(nats_server.url, "rt6", "once", 1)

    async def killed(call: Any, query: str) -> tuple[Any, float]:
        task = asyncio.ensure_future(call)
        while not any(query in line for line in noted(journal, "working ")):
            await asyncio.sleep(0.02)
        line = next(line for line in noted(journal, "working ") if query in line)
        os.kill(int(line.split()[1]), signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            return await asyncio.wait_for(task, 15), time.monotonic() - killed_at
        except Exception as exc:
            return exc, time.monotonic() - killed_at

    error, took = asyncio.run(killed(once.ainvoke("sleep 10"), "sleep 10"))
    assert isinstance(error, RemoteCallError) and "died before it answered" in str(error), error
    assert took < 3.0, took

    _serve(serve, nats_server.url, "rt6", sites["1.0.0"])  # and a streamed call (a captain's run)
    wait_for(lambda: len(once.crew.scan()["once"].instances) == 1, 15, what="only the new replica")
    error, took = asyncio.run(killed(_streamed(once, "sleep 10.5"), "sleep 10.5"))
    assert isinstance(error, RemoteCallError) and "died before it answered" in str(error), error
    assert took < 3.0, took
