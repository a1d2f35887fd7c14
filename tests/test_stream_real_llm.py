"""Opt-in: a streamed answer and its usage from a real local model (``../shared/llm/start``).

Runs only when the server started by ``eval "$(../shared/llm/start)"`` is up: it exports
``SHIPMATES_TEST_LLM_PID`` and ``OPENAI_API_BASE``; without them (the default suite, CI) it skips.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any
from urllib.parse import urlparse

import pytest
from shipmates import Agent, ModelCallFinished, RunFinished, TextDelta

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

# Read at import: the test isolation removes every SHIPMATES_* variable before each test.
_PID = os.environ.get("SHIPMATES_TEST_LLM_PID")


def _server() -> str:
    base = os.environ.get("OPENAI_API_BASE", "")
    if not _PID or not base:
        pytest.skip('no local test model: run eval "$(../shared/llm/start)" first (opt-in)')
    url = urlparse(base)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=1).close()
    except OSError:
        pytest.skip(f"the local test model at {base} does not answer")
    return base


def test_a_real_model_streams_its_answer_with_usage() -> None:
    base = _server()
    agent = Agent(
        "poet",
        instructions="Answer in one short sentence.",
        model="openai/qwen-1.5b",
        model_settings={"api_base": base, "max_tokens": 40, "temperature": 0},
    )

    async def run() -> list[Any]:
        return [event async for event in agent.stream("Name three colours of the rainbow.")]

    events = asyncio.run(run())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert isinstance(final, RunFinished) and final.status == "ok"
    assert len(deltas) > 1 and "".join(deltas) == final.output
    (call,) = [e for e in events if isinstance(e, ModelCallFinished)]
    assert call.usage.input_tokens > 0 and call.usage.output_tokens > 0
    assert final.usage == call.usage
