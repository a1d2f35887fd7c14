"""`shipmates mcp serve` against a minimal MCP SDK server with one equivalent tool.

Run inside an environment with shipmates, the fib demo sibling and the mcp SDK (bench/run.py uses
bench/.work/env-demo): prints one JSON object on its last line.

- start-up: wall time from spawning the server (over stdio, with the SDK's own client) until its
  `tools/list` answer arrives, `shipmates mcp serve --only fib` against `minimal`: an `MCPServer`
  script with one tool `fib(query)` that asks the same fib agent;
- per call: the median latency of sequential `tools/call fib` requests in one session, both
  servers answering from the same agent, so the difference is the serving layer.

Rounds are interleaved (shipmates, minimal, then minimal, shipmates, ...); ratios are paired.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MINIMAL = '''
from mcp.server.mcpserver import MCPServer
from shipmates_fib import build_agent

server = MCPServer("minimal")
agent = build_agent()


@server.tool()
async def fib(query: str) -> str:
    """Computes Fibonacci numbers."""
    return await agent.ainvoke(query)


server.run()
'''
QUERY = "fib 30"
ANSWER = "832040"


def servers(minimal: Path) -> dict[str, Any]:
    from mcp import StdioServerParameters

    env = dict(os.environ)
    shipmates = Path(sys.executable).with_name("shipmates")
    return {
        "shipmates": StdioServerParameters(
            command=str(shipmates), args=["mcp", "serve", "--only", "fib"], env=env
        ),
        "minimal": StdioServerParameters(command=sys.executable, args=[str(minimal)], env=env),
    }


async def startup(params: Any) -> float:
    from mcp import Client

    t0 = time.perf_counter()
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        elapsed = time.perf_counter() - t0
    assert [t.name for t in tools] == ["fib"], tools
    return elapsed


async def per_call(params: Any, calls: int) -> float:
    from mcp import Client

    async with Client(params) as client:
        for _ in range(5):  # warm-up
            await client.call_tool("fib", {"query": QUERY})
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            result = await client.call_tool("fib", {"query": QUERY})
            times.append(time.perf_counter() - t0)
            assert ANSWER in result.content[0].text, result
    return statistics.median(times)


def paired(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        minimal = Path(tmp) / "minimal_server.py"
        minimal.write_text(MINIMAL)
        params = servers(minimal)
        names = list(params)
        start: dict[str, list[float]] = {n: [] for n in names}
        call: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.rounds + 1):  # the first round warms caches and is dropped
            for name in names if r % 2 == 0 else names[::-1]:
                s = asyncio.run(startup(params[name]))
                c = asyncio.run(per_call(params[name], args.calls if r else 10))
                if r:
                    start[name].append(s)
                    call[name].append(c)
    out = {
        "rounds": args.rounds,
        "calls": args.calls,
        **{f"{n}_startup_s": statistics.median(start[n]) for n in names},
        **{f"{n}_call_s": statistics.median(call[n]) for n in names},
        "startup_ratio": paired(start["shipmates"], start["minimal"]),
        "call_ratio": paired(call["shipmates"], call["minimal"]),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
