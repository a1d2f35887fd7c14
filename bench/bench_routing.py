"""Load-aware routing and scaling of remote siblings (issue 12).

- routing: one loopback nats-server; crew A has one healthy ``serve`` replica of ``benchwork``
  (each call sleeps ``--delay``, 20 ms), crew B the same healthy replica plus one slowed tenfold.
  ``--calls`` (200) calls with 4 in flight go to each crew through the captain's proxy. Goals: at
  least 90% of crew B's calls answered by its healthy replica, and crew B's median latency within
  1.5x of crew A's.
- scale: ``benchcpu`` burns CPU for each call (a pure-Python loop, ~40 ms, run in serve's thread
  pool: one replica is one process, so one core); calls with 8 in flight against 1 replica, then
  against 2 replicas. Goal: 2 replicas serve at least 1.7x the calls per second of 1.

Run: ``.venv/bin/python bench/bench_routing.py [--only routing,scale] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

SIBLINGS = textwrap.dedent("""
    import asyncio, os

    class Work:
        name = "benchwork"
        description = "Answers after BENCH_DELAY seconds (benchmark sibling)."

        async def ainvoke(self, query):
            await asyncio.sleep(float(os.environ.get("BENCH_DELAY", "0.02")))
            return f"{os.getpid()} {query}"


    class Cpu:
        name = "benchcpu"
        description = "Burns CPU for each call (benchmark sibling)."
        timeout = 120

        def invoke(self, query):
            total = 0
            for i in range(int(os.environ.get("BENCH_LOOPS", "600000"))):
                total += i * i
            return f"{os.getpid()} {total % 7}"


    def work():
        return Work()


    def cpu():
        return Cpu()
""")


def _write_site(site: Path) -> None:
    (site / "shipmates_benchwork").mkdir(parents=True)
    (site / "shipmates_benchwork" / "__init__.py").write_text(SIBLINGS)
    info = site / "shipmates_benchwork-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shipmates-benchwork\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[shipmates.agents]\nbenchwork = shipmates_benchwork:work\nbenchcpu = shipmates_benchwork:cpu\n"
    )
    (info / "RECORD").write_text("")


class Crew:
    """``serve`` processes started for one namespace, and the captain's proxy of one sibling."""

    def __init__(self, url: str, site: Path, home: Path) -> None:
        self.url, self.site, self.home = url, site, home
        self.procs: list[subprocess.Popen[bytes]] = []

    def serve(self, ns: str, name: str, **extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
        env.update(
            PYTHONPATH=os.pathsep.join([str(self.site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            SHIPMATES_HOME=str(self.home),
            SHIPMATES_PLUGINS="nats",
            SHIPMATES_AGENTS=name,
            **extra,
        )
        cmd = [sys.executable, "-m", "shipmates", "serve", "--nats", self.url, "--namespace", ns]
        self.procs.append(
            subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )

    def proxy(self, ns: str, name: str, replicas: int) -> Any:
        from shipmates_nats import NatsSettings, get_crew

        crew = get_crew(NatsSettings(url=self.url, namespace=ns))
        deadline = time.monotonic() + 60
        while True:
            view = crew.scan().get(name)
            if view is not None and len(view.instances) == replicas:
                return crew.proxies[name]
            if time.monotonic() > deadline:
                raise SystemExit(f"bench_routing: {replicas} replicas of {name} did not serve in 60 s")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _calls(proxy: Any, n: int, in_flight: int) -> tuple[list[float], list[str], float]:
    """Latencies, answers and the wall time of ``n`` calls with ``in_flight`` at a time."""
    gate = asyncio.Semaphore(in_flight)
    latencies: list[float] = []

    async def one(i: int) -> str:
        async with gate:
            t = time.perf_counter()
            answer = await proxy.ainvoke(f"q{i}")
            latencies.append(time.perf_counter() - t)
            return str(answer)

    start = time.perf_counter()
    answers = await asyncio.gather(*(one(i) for i in range(n)))
    return latencies, answers, time.perf_counter() - start


def routing(crew: Crew, calls: int, delay: float) -> dict[str, Any]:
    crew.serve("bench-healthy", "benchwork", BENCH_DELAY=str(delay))
    crew.serve("bench-mixed", "benchwork", BENCH_DELAY=str(delay))
    crew.serve("bench-mixed", "benchwork", BENCH_DELAY=str(delay * 10))
    healthy = crew.proxy("bench-healthy", "benchwork", 1)
    mixed = crew.proxy("bench-mixed", "benchwork", 2)
    asyncio.run(_calls(healthy, 20, 4))  # warm both connections
    base, _, _ = asyncio.run(_calls(healthy, calls, 4))
    lat, answers, _ = asyncio.run(_calls(mixed, calls, 4))
    slow_pid = str(crew.procs[-1].pid)
    share = 1 - Counter(a.split()[0] for a in answers)[slow_pid] / calls
    routes, mixed.routes = mixed.routes, []  # for reference: the queue group alone, no routing
    plain, plain_answers, _ = asyncio.run(_calls(mixed, calls, 4))
    mixed.routes = routes
    return {
        "calls": calls,
        "delay_ms": delay * 1e3,
        "healthy_share": round(share, 3),
        "healthy_only_p50_ms": round(statistics.median(base) * 1e3, 2),
        "mixed_p50_ms": round(statistics.median(lat) * 1e3, 2),
        "p50_ratio": round(statistics.median(lat) / statistics.median(base), 3),
        "queue_group_healthy_share": round(
            1 - Counter(a.split()[0] for a in plain_answers)[slow_pid] / calls, 3
        ),
        "queue_group_p50_ms": round(statistics.median(plain) * 1e3, 2),
    }


def scale(crew: Crew, calls: int) -> dict[str, Any]:
    crew.serve("bench-one", "benchcpu")
    one = crew.proxy("bench-one", "benchcpu", 1)
    crew.serve("bench-two", "benchcpu")
    crew.serve("bench-two", "benchcpu")
    two = crew.proxy("bench-two", "benchcpu", 2)
    asyncio.run(_calls(one, 4, 2))
    asyncio.run(_calls(two, 4, 2))
    rates: dict[str, list[float]] = {"one": [], "two": []}
    for _ in range(3):  # interleaved rounds (best of each: the machine is shared)
        for key, proxy in (("one", one), ("two", two)):
            _, answers, wall = asyncio.run(_calls(proxy, calls, 8))
            rates[key].append(len(answers) / wall)
    r1, r2 = max(rates["one"]), max(rates["two"])
    return {
        "calls": calls,
        "one_replica_rps": round(r1, 2),
        "two_replicas_rps": round(r2, 2),
        "speedup": round(r2 / r1, 3),
        "cores": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="routing,scale")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cpu-calls", type=int, default=80)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ["SHIPMATES_NATS_BREAKER_FAILURES"] = "1000000"
    from shipmates_nats import NatsServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    _write_site(tmp / "site")
    server = NatsServer().start()
    crew = Crew(server.url, tmp / "site", tmp / "home")
    data: dict[str, Any] = {}
    try:
        if "routing" in args.only:
            data["routing"] = routing(crew, args.calls, args.delay)
        if "scale" in args.only:
            data["scale"] = scale(crew, args.cpu_calls)
    finally:
        crew.stop()
        server.close()
    print(json.dumps(data) if args.json else json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
