"""Benchmark: streaming overhead, locally through delegation and remotely over NATS.

(a) Local: a 2,000-token answer streamed by ``mock_openai.py`` (loopback SSE), consumed as raw
    ``litellm.acompletion(stream=True)``, as ``Agent.stream`` of the agent whose model it is
    (level 0), and through a captain that delegates to that agent (level 1; the captain's model is
    scripted in-process, so the only model traffic is the sibling's stream). Time to first token
    and total time; goals: each delegation level adds <= 2 ms to the first token, level 1 total
    <= 1.1x raw.
(b) Remote: a served sibling (``SiblingServer`` in its own process) whose model emits text deltas
    stamped with ``time.monotonic_ns()`` every 2 ms; the captain reads them from the proxy's
    ``astream``. Against a raw nats-py publisher process stamping messages the same way, on the
    same server. Per-event latency p50; goal <= 1.25x raw.

Variants are interleaved per round; figures are medians over rounds.
Run: ``.venv/bin/python bench/bench_stream.py [--rounds 9] [--events 500] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import mock_openai  # noqa: E402

# ------------------------------------------------------------------------------ (a) local


class _Relay:
    """The captain's scripted model: call the sibling, then answer with what it said."""

    model_id = "scripted-captain"

    async def complete(self, messages: list[dict[str, Any]], tools: Any, settings: Any = None) -> Any:
        from shipmates import ModelResponse, ToolCall

        results = [m["content"] for m in messages if m["role"] == "tool"]
        if results:
            return ModelResponse(content=str(results[-1])[:20])
        return ModelResponse(tool_calls=[ToolCall(id="c1", name="writer", arguments='{"query": "write"}')])


async def _local(rounds: int) -> dict[str, Any]:
    import litellm
    from shipmates import Agent, TextDelta

    server, url = await mock_openai.start()
    settings = {"api_base": url, "api_key": "sk-bench"}
    writer = Agent("writer", "Writes.", model="openai/mock-writer", model_settings=settings)
    captain = Agent("captain", "Delegates.", model=_Relay())
    captain.absorb(writer)
    messages = [{"role": "user", "content": "write"}]

    async def raw() -> tuple[float, float]:
        start = time.perf_counter()
        first = 0.0
        stream = await litellm.acompletion(
            model="openai/mock-writer",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **settings,
        )
        async for chunk in stream:
            if not first and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
        return first, time.perf_counter() - start

    def through(agent: Any) -> Any:
        async def run() -> tuple[float, float]:
            start = time.perf_counter()
            first = 0.0
            async for event in agent.stream("write"):
                if not first and isinstance(event, TextDelta):
                    first = time.perf_counter() - start
            return first, time.perf_counter() - start

        return run

    variants = [
        ("raw litellm", raw),
        ("level 0 (agent)", through(writer)),
        ("level 1 (captain -> sibling)", through(captain)),
    ]
    for _, call in variants:  # warm-up
        await call()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for name, call in order:
            samples[name].append(await call())
    server.close()
    out: dict[str, Any] = {"rounds": rounds, "tokens": mock_openai.TOKENS, "variants": {}}
    for name, runs in samples.items():
        out["variants"][name] = {
            "ttft_ms": round(statistics.median(f for f, _ in runs) * 1000, 3),
            "total_ms": round(statistics.median(t for _, t in runs) * 1000, 3),
        }
    raw_s, l0_s, l1_s = (samples[name] for name, _ in variants)

    def paired(
        base: list[tuple[float, float]], other: list[tuple[float, float]], i: int, ratio: bool
    ) -> float:
        """The median over rounds of ``other`` against ``base`` within each round (same machine load)."""
        pairs = zip(base, other, strict=True)
        return statistics.median(b[i] / a[i] if ratio else b[i] - a[i] for a, b in pairs)

    out["ttft_added_level0_ms"] = round(paired(raw_s, l0_s, 0, False) * 1000, 3)
    out["ttft_added_level1_ms"] = round(paired(l0_s, l1_s, 0, False) * 1000, 3)
    out["total_ratio_level0"] = round(paired(raw_s, l0_s, 1, True), 3)
    out["total_ratio_level1"] = round(paired(raw_s, l1_s, 1, True), 3)
    return out


# ------------------------------------------------------------------------------ (b) remote

SERVED = textwrap.dedent("""
    import asyncio, sys, time
    from shipmates import Agent, ModelResponse, Provenance
    from shipmates_nats import NatsSettings
    from shipmates_nats._serve import SiblingServer

    class Stamps:
        model_id = "stamps"
        async def complete(self, messages, tools, settings=None):
            return ModelResponse(content="")
        async def stream(self, messages, tools, settings=None):
            n = int(messages[-1]["content"])
            for _ in range(n):
                await asyncio.sleep(0.002)
                yield f"{time.monotonic_ns()} "
            yield ModelResponse(content="done")

    agent = Agent("stamps", "Stamps.", model=Stamps())
    server = SiblingServer([(agent, Provenance("local", "bench-stream", "1.0"))],
                           NatsSettings(url=sys.argv[1], namespace="bstream"), durable=False)
    asyncio.run(server.run(ready=lambda s: print("ready", flush=True)))
""")

RAW_PUBLISHER = textwrap.dedent("""
    import asyncio, sys, time
    import nats

    async def main():
        nc = await nats.connect(sys.argv[1])
        async def go(msg):
            n = int(msg.data)
            for _ in range(n):
                await asyncio.sleep(0.002)
                await nc.publish(msg.reply, str(time.monotonic_ns()).encode())
            await nc.publish(msg.reply, b"end")
        await nc.subscribe("bstream.raw", cb=go)
        await nc.flush()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


async def _remote(url: str, crew: Any, rounds: int, events: int) -> dict[str, Any]:
    import nats
    from shipmates import TextDelta
    from shipmates_nats._remote import LOCAL_AFTER

    proxy = crew.proxies["stamps"]
    nc = await nats.connect(url)

    async def shipmates_side() -> list[float]:
        lat = []
        async for event in proxy.astream(str(events)):
            if isinstance(event, TextDelta) and event.text.strip().isdigit():
                lat.append((time.monotonic_ns() - int(event.text)) / 1e6)
        return lat

    async def raw_side() -> list[float]:
        lat = []
        inbox = nc.new_inbox()
        done = asyncio.Event()

        async def got(msg: Any) -> None:
            if msg.data == b"end":
                done.set()
            else:
                lat.append((time.monotonic_ns() - int(msg.data)) / 1e6)

        sub = await nc.subscribe(inbox, cb=got)
        await nc.publish("bstream.raw", str(events).encode(), reply=inbox)
        await done.wait()
        await sub.unsubscribe()
        return lat

    variants = [("raw nats-py", raw_side), ("shipmates", shipmates_side)]
    for _, call in variants:
        await call()
    for _ in range(LOCAL_AFTER):  # as a REPL's loop: calls then use a connection of this loop
        async for _event in proxy.astream("1"):
            pass
    p50s: dict[str, list[float]] = {name: [] for name, _ in variants}
    p99s: dict[str, list[float]] = {name: [] for name, _ in variants}
    for r in range(rounds):
        for name, call in variants if r % 2 == 0 else variants[::-1]:
            lat = sorted(await call())
            p50s[name].append(statistics.median(lat))
            p99s[name].append(lat[int(len(lat) * 0.99) - 1])
    await nc.close()
    out: dict[str, Any] = {"rounds": rounds, "events": events, "variants": {}}
    for name, _ in variants:
        out["variants"][name] = {
            "p50_ms": round(statistics.median(p50s[name]), 4),
            "p99_ms": round(statistics.median(p99s[name]), 4),
        }
    v = out["variants"]
    out["p50_ratio"] = round(v["shipmates"]["p50_ms"] / v["raw nats-py"]["p50_ms"], 3)
    return out


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ready"):
            return
        if not line and proc.poll() is not None:
            raise RuntimeError("a benchmark process exited before it was ready")
    raise RuntimeError("a benchmark process was not ready within 60 s")


def run(rounds: int = 9, events: int = 500, only: str = "") -> dict[str, Any]:
    from shipmates_nats import NatsServer, NatsSettings
    from shipmates_nats._remote import RemoteCrew

    result: dict[str, Any] = {}
    if only != "remote":
        result["local"] = asyncio.run(_local(rounds))
    if only == "local":
        return result
    server = NatsServer(jetstream=False).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPMATES_")}
    env["PYTHONUNBUFFERED"] = "1"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, server.url], stdout=subprocess.PIPE, text=True, env=env)
        for code in (SERVED, RAW_PUBLISHER)
    ]
    try:
        for proc in procs:
            _wait_ready(proc)
        crew = RemoteCrew(NatsSettings(url=server.url, namespace="bstream")).connect()
        crew.scan()
        result["remote"] = asyncio.run(_remote(server.url, crew, rounds, events))
        crew.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        server.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--events", type=int, default=500, help="events per remote round")
    parser.add_argument("--only", choices=("local", "remote"), default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.rounds, args.events, args.only)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
