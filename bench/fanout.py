"""Fan-out: 8 siblings, each sleeping 200 ms, all called in one model turn.

The scripted captain model asks for all 8 sibling tools in its first turn and answers with the
joined results once they are in. Variants:
  sync     siblings with a blocking invoke(str) (time.sleep): the loop must run them in threads
  async    siblings with async ainvoke(str) (asyncio.sleep): the loop must await them together
  gather   baseline: asyncio.gather of the 8 async sleeps, no framework

    python bench/fanout.py VARIANT [--runs N] [--width 8] [--sleep 0.2]

prints one JSON line: {"variant", "times": [...], "output"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any


class SyncSibling:
    def __init__(self, i: int, sleep: float) -> None:
        self.name = f"sleeper{i}"
        self.description = f"Sleeps then answers (sync sibling {i})."
        self._sleep = sleep

    def invoke(self, query: str) -> str:
        time.sleep(self._sleep)
        return self.name


class AsyncSibling:
    def __init__(self, i: int, sleep: float) -> None:
        self.name = f"sleeper{i}"
        self.description = f"Sleeps then answers (async sibling {i})."
        self._sleep = sleep

    async def ainvoke(self, query: str) -> str:
        await asyncio.sleep(self._sleep)
        return self.name


def build(variant: str, width: int, sleep: float) -> Any:
    from shipmates import Agent, ModelResponse, ToolCall

    class FanOutCaptain:
        model_id = "scripted-fanout"

        async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
            results = [m["content"] for m in messages if m.get("role") == "tool"]
            if results:
                return ModelResponse(content=",".join(sorted(results)), tool_calls=[])
            return ModelResponse(
                content=None,
                tool_calls=[
                    ToolCall(id=f"call_{i}", name=f"sleeper{i}", arguments=json.dumps({"query": "go"}))
                    for i in range(width)
                ],
            )

    captain = Agent(name="captain", description="fan-out captain", model=FanOutCaptain())
    cls = SyncSibling if variant == "sync" else AsyncSibling
    for i in range(width):
        captain.absorb(cls(i, sleep))
    return captain


async def measure(variant: str, runs: int, width: int, sleep: float) -> dict[str, Any]:
    times: list[float] = []
    output = ""
    if variant == "gather":
        sibs = [AsyncSibling(i, sleep) for i in range(width)]
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            output = ",".join(await asyncio.gather(*(s.ainvoke("go") for s in sibs)))
            times.append(time.perf_counter() - t0)
    else:
        captain = build(variant, width, sleep)
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            output = await captain.ainvoke("fan out")
            times.append(time.perf_counter() - t0)
    return {"variant": variant, "times": times[1:], "first": times[0], "output": output}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=["sync", "async", "gather"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=0.2)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.variant, args.runs, args.width, args.sleep))))


if __name__ == "__main__":
    main()
