"""Delegation overhead: captain -> absorbed sibling -> answer, with a scripted model.

One script for every framework, so no model library is in the timed path:
  captain, first call: call the sibling's tool with the user's text;
  sibling: answer "pong" at once;
  captain, once a tool result is in its messages: answer with that result.
That is 3 model calls and 1 delegation per run. Each framework uses its own idiom:
  shipmates      Agent + captain.absorb(sibling)                    (runs in the shipmates env)
  openai-agents  Agent + sibling.as_tool(...), Runner.run, tracing off  (runs in the peers env)
  smolagents     ToolCallingAgent with managed_agents=[sibling]       (runs in the peers env)
  direct         a plain Python call of the sibling function           (any env)

    python bench/delegation.py VARIANT [--runs N] [--warmup N]

prints one JSON line: {"variant", "times": [seconds per run], "output", "versions"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

QUERY = "ping"
ANSWER = "pong"
TOOL = "helper"
DESCRIPTION = "Answers ping with pong."


def sibling_function(query: str) -> str:
    return ANSWER


# ----------------------------------------------------------------------------- shipmates
def shipmates_runner() -> tuple[Callable[[], Any], dict[str, str]]:
    import shipmates
    from shipmates import Agent, ModelResponse, ToolCall

    class Captain:
        model_id = "scripted-captain"

        async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
            for m in messages:
                if m.get("role") == "tool":
                    return ModelResponse(content=m["content"], tool_calls=[])
            return ModelResponse(
                content=None,
                tool_calls=[ToolCall(id="call_1", name=TOOL, arguments=json.dumps({"query": QUERY}))],
            )

    class Sibling:
        model_id = "scripted-sibling"

        async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
            return ModelResponse(content=ANSWER, tool_calls=[])

    captain = Agent(name="captain", description="bench captain", model=Captain())
    sibling = Agent(name=TOOL, description=DESCRIPTION, model=Sibling())
    captain.absorb(sibling)

    async def run() -> str:
        return await captain.ainvoke(QUERY)

    return run, {"shipmates": shipmates.__version__}


# ----------------------------------------------------------------------------- openai-agents
def openai_agents_runner() -> tuple[Callable[[], Any], dict[str, str]]:
    import agents
    from agents import Agent, ModelResponse, Runner, Usage, set_tracing_disabled
    from agents.models.interface import Model
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    set_tracing_disabled(True)  # the fastest configuration; nothing is exported anyway

    def text(t: str) -> ModelResponse:
        msg = ResponseOutputMessage(
            id="msg_1",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(text=t, type="output_text", annotations=[])],
        )
        return ModelResponse(output=[msg], usage=Usage(), response_id=None)

    class Scripted(Model):
        def __init__(self, role: str) -> None:
            self.role = role

        async def get_response(
            self,
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,  # type: ignore[no-untyped-def]
            handoffs,
            tracing,
            *,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
        ):
            if self.role == "sibling":
                return text(ANSWER)
            if not isinstance(input, str):
                for item in input:
                    if isinstance(item, dict) and item.get("type") == "function_call_output":
                        return text(str(item["output"]))
            call = ResponseFunctionToolCall(
                id="fc_1",
                call_id="call_1",
                type="function_call",
                name=TOOL,
                arguments=json.dumps({"input": QUERY}),
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # not used
            raise NotImplementedError

    sibling = Agent(name=TOOL, instructions=DESCRIPTION, model=Scripted("sibling"))
    captain = Agent(
        name="captain",
        instructions="bench captain",
        model=Scripted("captain"),
        tools=[sibling.as_tool(tool_name=TOOL, tool_description=DESCRIPTION)],
    )

    async def run() -> str:
        result = await Runner.run(captain, QUERY)
        return str(result.final_output)

    from importlib.metadata import version

    return run, {
        "openai-agents": version("openai-agents"),
        "openai": version("openai"),
        "agents_mod": agents.__name__,
    }


# ----------------------------------------------------------------------------- smolagents
def smolagents_runner() -> tuple[Callable[[], Any], dict[str, str]]:
    from importlib.metadata import version

    from smolagents import ToolCallingAgent
    from smolagents.models import (
        ChatMessage,
        ChatMessageToolCall,
        ChatMessageToolCallFunction,
        MessageRole,
        Model,
    )
    from smolagents.monitoring import LogLevel

    def call(name: str, args: dict[str, Any]) -> ChatMessage:
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content=None,
            tool_calls=[
                ChatMessageToolCall(
                    id="call_1",
                    type="function",
                    function=ChatMessageToolCallFunction(name=name, arguments=args),
                )
            ],
        )

    def has_tool_result(messages: list[Any]) -> str | None:
        for m in messages:
            role = m.role if hasattr(m, "role") else m.get("role")
            if str(getattr(role, "value", role)) == MessageRole.TOOL_RESPONSE.value:
                content = m.content if hasattr(m, "content") else m.get("content")
                return str(content)
        return None

    class Scripted(Model):
        def __init__(self, role: str) -> None:
            super().__init__(model_id=f"scripted-{role}")
            self.role = role

        def generate(
            self,
            messages,
            stop_sequences=None,
            response_format=None,  # type: ignore[no-untyped-def]
            tools_to_call_from=None,
            **kwargs,
        ):
            if self.role == "sibling":
                return call("final_answer", {"answer": ANSWER})
            result = has_tool_result(messages)
            if result is not None:
                return call("final_answer", {"answer": result})
            return call(TOOL, {"task": QUERY})

    sibling = ToolCallingAgent(
        tools=[],
        model=Scripted("sibling"),
        name=TOOL,
        description=DESCRIPTION,
        verbosity_level=LogLevel.OFF,
        max_steps=3,
    )
    captain = ToolCallingAgent(
        tools=[],
        model=Scripted("captain"),
        managed_agents=[sibling],
        verbosity_level=LogLevel.OFF,
        max_steps=3,
    )

    def run() -> str:
        return str(captain.run(QUERY))

    return run, {"smolagents": version("smolagents")}


# ----------------------------------------------------------------------------- direct
def direct_runner() -> tuple[Callable[[], Any], dict[str, str]]:
    def run() -> str:
        return sibling_function(QUERY)

    return run, {}


RUNNERS = {
    "shipmates": shipmates_runner,
    "openai-agents": openai_agents_runner,
    "smolagents": smolagents_runner,
    "direct": direct_runner,
}


def measure(variant: str, runs: int, warmup: int) -> dict[str, Any]:
    run, versions = RUNNERS[variant]()
    times: list[float] = []
    output = ""
    if asyncio.iscoroutinefunction(run):

        async def main() -> str:
            out = ""
            for i in range(warmup + runs):
                t0 = time.perf_counter()
                out = await run()
                dt = time.perf_counter() - t0
                if i >= warmup:
                    times.append(dt)
            return out

        output = asyncio.run(main())
    else:
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            output = run()
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt)
    return {"variant": variant, "times": times, "output": output, "versions": versions}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=sorted(RUNNERS))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.variant, args.runs, args.warmup)))


if __name__ == "__main__":
    main()
