"""Fuzz: thousands of generated model responses through Agent.arun, zero uncaught exceptions.

Every response a backend can produce (deeply nested, wrong-typed, huge, unicode arguments,
duplicate ids, unknown tools, shapes that are not a ModelResponse at all) ends as a RunResult
or, for a response of the wrong shape, a ModelError naming the backend.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from shipmates import Agent, ModelError, ModelResponse, RunResult, ToolCall, tool

CASES = 2_400
SEED = 20261201


@tool
def echo(text: str) -> str:
    """Echo text."""
    return text


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


class Sibling:
    name = "helper"
    description = "A sibling that answers anything"

    def invoke(self, query: str) -> str:
        return f"helped: {query[:20]}"


def _arguments(rng: random.Random) -> Any:
    kind = rng.randrange(12)
    if kind == 0:
        depth = rng.choice([10, 63, 65, 500, 5_000, 100_000])
        return '{"text": ' + "[" * depth + "]" * depth + "}"
    if kind == 1:
        return json.dumps({"text": "x" * rng.choice([10, 100_000, 1_200_000])})
    if kind == 2:
        return json.dumps({"a": rng.choice([1, "2", 2.5, None, [], {}, True]), "b": rng.randrange(10)})
    if kind == 3:
        return rng.choice(["", "null", "3", "[1, 2]", '"text"', "{", "{'a': 1}", "\x00", "NaN"])
    if kind == 4:
        return json.dumps({"text": "".join(chr(rng.randrange(0x20, 0x10FFFF)) for _ in range(20))})
    if kind == 5:
        return {"text": "already parsed"}
    if kind == 6:
        return json.dumps({"query": "\x1b]0;title\x07" + "q" * rng.randrange(50)})
    if kind == 7:
        return json.dumps({"unexpected": {"deep": [[[[1]]]]}})
    if kind == 8:
        return None
    if kind == 9:
        return json.dumps({"text": "\ud800" if rng.random() < 0.5 else "ok"}, ensure_ascii=True)
    if kind == 10:
        return json.dumps({"a": 10**400, "b": -(10**400)})
    return json.dumps({"text": "fine", "a": 1, "b": 2, "query": "hello"})


def _tool_call(rng: random.Random, index: int, ids: list[str]) -> Any:
    call_id = rng.choice(ids) if ids and rng.random() < 0.3 else f"c{index}"  # duplicate ids
    ids.append(call_id)
    name = rng.choice(["echo", "add", "helper", "missing", "", "ñame", "helper"])
    if rng.random() < 0.03:  # wrong types inside a tool call
        return rng.choice([ToolCall(call_id, 42, "{}"), ToolCall(7, "echo", "{}"), {"id": "x"}])  # type: ignore[arg-type]
    return ToolCall(call_id, name, _arguments(rng))


def _response(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.04:  # not a ModelResponse at all
        return rng.choice([None, {"content": "hi"}, "text", 42, ["a"]])
    if roll < 0.08:
        return ModelResponse(content=rng.choice([42, b"bytes", ["x"]]))  # type: ignore[arg-type]
    if roll < 0.1:
        return ModelResponse(content=None, tool_calls=rng.choice([None, "echo", {"a": 1}]))  # type: ignore[arg-type]
    ids: list[str] = []
    calls = [_tool_call(rng, i, ids) for i in range(rng.randrange(0, 4))]
    content = rng.choice([None, "", "thinking", "ü" * rng.randrange(3), "\x1b[2J"])
    return ModelResponse(content=content, tool_calls=calls)


class Fuzzed:
    model_id = "fuzzed"

    def __init__(self, rng: random.Random) -> None:
        self.script = [_response(rng) for _ in range(rng.randrange(1, 4))]

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **_: Any) -> Any:
        return self.script.pop(0) if self.script else ModelResponse(content="done")


async def _run_all() -> tuple[dict[str, int], list[str]]:
    rng = random.Random(SEED)
    outcomes = {"ok": 0, "max_turns": 0, "model_error": 0}
    unexpected: list[str] = []
    for case in range(CASES):
        model = Fuzzed(rng)
        agent = Agent("fuzz", tools=[echo, add, Sibling()], model=model, max_turns=3)  # type: ignore[arg-type]
        try:
            result = await agent.arun("go")
        except ModelError:
            outcomes["model_error"] += 1
            continue
        except BaseException as exc:  # what this test hunts for
            unexpected.append(f"case {case}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        assert isinstance(result, RunResult)
        outcomes[result.status] += 1
    return outcomes, unexpected


def test_generated_model_responses_never_escape_the_run_loop() -> None:
    outcomes, unexpected = asyncio.run(_run_all())
    assert unexpected == []
    assert sum(outcomes.values()) == CASES
    assert outcomes["ok"] > CASES // 2 and outcomes["model_error"] > 50  # the generator reaches both
