"""The user sees usage: ``chat --once --json``, ``--usage`` after each answer, ``/usage`` per sibling."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shipmates import ModelResponse, ToolCall, get_plugin_manager, hookimpl
from support.cli import run_cli as run

HELPER = """
from shipmates import Agent, tool


@tool
def lookup(query: str) -> str:
    '''Look something up.'''
    return "found " + query


def build_agent():
    return Agent("helper", "Helps.", tools=[lookup])
"""


class Counting:
    """Calls ``helper`` when the captain has it, else ``lookup`` when it has that, else answers
    with the last tool result; each call costs 10 tokens in, 2 out and $0.01."""

    model_id = "counting"

    def __init__(self, answer: str = "") -> None:
        self.answer = answer

    async def complete(self, messages: Any, tools: Any) -> ModelResponse:
        usage = {"prompt_tokens": 10, "completion_tokens": 2}
        last = messages[-1]
        if last["role"] == "tool":
            return ModelResponse(content=self.answer or f"<{last['content']}>", usage=usage, cost_usd=0.01)
        names = [t["function"]["name"] for t in tools]
        for name in ("helper", "lookup"):
            if name in names:
                call = ToolCall(f"call-{name}", name, json.dumps({"query": "x"}))
                return ModelResponse(tool_calls=[call], usage=usage, cost_usd=0.01)
        return ModelResponse(content="nothing to do", usage=usage, cost_usd=0.01)


@pytest.fixture
def counting(fake_site: Any, monkeypatch: pytest.MonkeyPatch) -> Counting:
    from shipmates._models import _registry

    model = Counting()

    class Models:
        @hookimpl
        def register_models(self, register: Any) -> None:
            register(model)

    get_plugin_manager().register(Models())
    _registry.reset_models()
    monkeypatch.delenv("SHIPMATES_MODEL", raising=False)
    fake_site.sibling("helper", code=HELPER)
    return model


def test_once_json_prints_output_status_usage_and_every_tool_call(
    counting: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "chat", "--model", "counting", "--only", "helper", "--once", "hi", "--json"
    )
    assert status == 0, err
    document = json.loads(out)  # one JSON object, nothing else on stdout
    assert document["output"] == "<<found x>>" and document["status"] == "ok"
    total = document["usage"]["total"]
    assert (total["input_tokens"], total["output_tokens"], total["model_calls"]) == (40, 8, 4)
    assert total["cost_usd"] == pytest.approx(0.04)
    agents = document["usage"]["agents"]
    assert agents["captain"]["own"]["model_calls"] == 2 and agents["captain"]["delegated"]["model_calls"] == 2
    assert agents["helper"]["own"]["model_calls"] == 2 and agents["helper"]["delegated"]["model_calls"] == 0
    calls = [
        (c["agent"], c["tool"], c["depth"], c["parent_call_id"], c["status"]) for c in document["tool_calls"]
    ]
    assert calls == [("helper", "lookup", 1, "call-helper", "ok"), ("captain", "helper", 0, None, "ok")]
    assert document["tool_calls"][0]["result"] == "found x"


def test_once_json_reports_an_error_as_json(
    counting: Counting, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(messages: Any, tools: Any) -> ModelResponse:
        from shipmates import ModelError

        raise ModelError("the model is down")

    monkeypatch.setattr(counting, "complete", down)
    status, out, _ = run(capsys, "chat", "--model", "counting", "--only", "helper", "--once", "hi", "--json")
    assert status == 2
    document = json.loads(out)
    assert (document["status"], document["error"], document["output"]) == ("error", "the model is down", "")


def test_once_json_is_safe_on_a_terminal(counting: Counting, capsys: pytest.CaptureFixture[str]) -> None:
    counting.answer = "\x1b[2J\x1b]0;owned\x07 cleared \u009b31m"
    status, out, _ = run(capsys, "chat", "--model", "counting", "--only", "helper", "--once", "hi", "--json")
    assert status == 0
    assert out.isascii() and "\x1b" not in out and "\x07" not in out
    assert json.loads(out)["output"] == counting.answer  # escaped, not lost


def test_json_needs_once(counting: Counting, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "chat", "--json", stdin="")
    assert (status, out) == (2, "")
    assert "--json needs --once" in err


def test_usage_flag_prints_one_line_after_each_answer(
    counting: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "chat", "--model", "counting", "--only", "helper", "--once", "hi", "--usage"
    )
    assert status == 0
    assert out.strip() == "<<found x>>"
    lines = [line for line in err.splitlines() if line.startswith("usage:")]
    assert lines == ["usage: 48 tokens (40 in; 8 out), 4 model calls, $0.0400"]

    status, out, err = run(
        capsys, "chat", "--model", "counting", "--only", "helper", "--usage", stdin="hi\nhi again\n"
    )
    assert status == 0
    assert len([line for line in err.splitlines() if line.startswith("usage:")]) == 2


def test_usage_command_shows_the_session_per_agent_own_and_delegated(
    counting: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "chat", "--model", "counting", "--only", "helper", stdin="/usage\nhi\nhi\n/usage\n"
    )
    assert status == 0, err
    first, rest = out.split("<<found x>>", 1)
    assert "no model calls yet in this session" in first
    table = rest.split("<<found x>>", 1)[1].strip().splitlines()
    assert table[0].split() == ["agent", "own", "delegated"]
    captain = next(line for line in table if line.startswith("captain"))
    helper = next(line for line in table if line.startswith("helper"))
    # Two turns: the captain's own 4 calls, the helper's 4 counted as delegated by the captain.
    assert "48 tokens (40 in; 8 out), 4 model calls, $0.0400  48 tokens" in captain
    assert helper.endswith("$0.0400  -")
    assert table[-1] == "session total: 96 tokens (80 in; 16 out), 8 model calls, $0.0800"
    assert "/usage" in run(capsys, "chat", stdin="/help\n")[1]
