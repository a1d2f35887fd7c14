"""Recovery under `shipmates up`: SIGKILL the only serving worker of a sibling and time until the
sibling answers a call again; the goal is at most that restart's backoff plus 1 s.

One loopback nats-server, one crew (``benchecho``, 1 replica, backoff 0.5 s doubling per crash,
heartbeat 0.5 s). Each round kills the worker that is serving, then calls the sibling every 20 ms
(a call to no replica fails at once) until one is answered. ``--json`` prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_nats import _write_sibling

BACKOFF = 0.5
CREW = """
[crew]
name = "bench"
nats = "{url}"
namespace = "benchup"

[restart]
backoff = {backoff}
backoff_max = 300
heartbeat = 0.5

[siblings.benchecho]
replicas = 1
"""


def _state(home: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((home / "state" / "crews" / "bench" / "state.json").read_text()))
    except (OSError, ValueError):
        return {"siblings": []}


def _serving(home: Path) -> list[int]:
    return [
        r["pid"] for s in _state(home)["siblings"] for r in s["replicas"] if r["state"] in ("serving", "busy")
    ]


def _until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_recovery: no {what} within {timeout:g}s")
        time.sleep(0.02)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ["SHIPMATES_NATS_BREAKER_FAILURES"] = "1000000"  # measure restarts, not the breaker
    from shipmates_nats import NatsServer, NatsSettings, get_crew

    tmp = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    site, home = tmp / "site", tmp / "home"
    site.mkdir()
    _write_sibling(site)
    server = NatsServer().start()
    crew_file = tmp / "bench.toml"
    crew_file.write_text(CREW.format(url=server.url, backoff=BACKOFF))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        SHIPMATES_HOME=str(home),
        SHIPMATES_PLUGINS="nats",
        SHIPMATES_AGENTS="benchecho",
    )
    up = subprocess.Popen(
        [sys.executable, "-m", "shipmates", "up", str(crew_file)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    recoveries: list[float] = []
    backoffs: list[float] = []
    try:
        remote = get_crew(NatsSettings(url=server.url, namespace="benchup"))
        _until(lambda: _serving(home), 60, "first worker")
        _until(lambda: "benchecho" in remote.scan(), 30, "discovery")
        echo = remote.proxies["benchecho"]
        echo.served_timeout = 1.0

        def answers() -> bool:
            try:
                return bool(echo.invoke("ping") == "ping")
            except Exception:
                return False

        for n in range(1, args.rounds + 1):
            victim = _until(lambda: _serving(home), 60, "serving worker")[0]
            _until(answers, 10, "answer before the kill")
            os.kill(victim, signal.SIGKILL)
            killed = time.perf_counter()
            _until(lambda: not answers(), 5, "failed call after the kill")
            _until(answers, 120, "answer after the kill")
            recoveries.append(time.perf_counter() - killed)
            backoffs.append(min(BACKOFF * 2 ** (n - 1), 300.0))
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        server.close()
    over = [r - b for r, b in zip(recoveries, backoffs, strict=True)]
    data = {
        "rounds": args.rounds,
        "recovery_s": [round(r, 3) for r in recoveries],
        "backoff_s": backoffs,
        "over_backoff_s": [round(o, 3) for o in over],
        "max_over_backoff_s": round(max(over), 3),
        "median_over_backoff_s": round(statistics.median(over), 3),
    }
    if args.json:
        print(json.dumps(data))
    else:
        for r, b in zip(recoveries, backoffs, strict=True):
            print(f"recovered in {r:.3f}s (backoff {b:g}s, {r - b:.3f}s over)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
