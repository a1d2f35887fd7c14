"""Every chat turn is logged; `--continue` and `--cid` resume a conversation; `--no-log` keeps none.

The model is a litellm custom provider that answers with every user message it was sent, so what
a resumed chat remembers is visible in its answer; `-s` shows in the system message it got.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shipmates._cli._main import main
from support import litellm_offline
from support.cli import run_cli
from support.litellm_offline import custom_provider

_no_openai_settings = litellm_offline._no_openai_settings
litellm_lib = litellm_offline.litellm_lib

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

SYSTEMS: list[str] = []


@pytest.fixture
def memo(litellm_lib: Any) -> Iterator[Any]:
    from litellm.llms.custom_llm import CustomLLM

    class Memo(CustomLLM):
        async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            SYSTEMS.extend(m["content"] for m in messages if m["role"] == "system")
            seen = " | ".join(m["content"] for m in messages if m["role"] == "user")
            message = {"role": "assistant", "content": f"seen: {seen}"}
            return litellm_lib.ModelResponse(choices=[{"message": message, "finish_reason": "stop"}])

    SYSTEMS.clear()
    yield from custom_provider(litellm_lib, "memo", Memo())


def chat(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status, out, err = run_cli(capsys, "chat", "--model", "memo/x", "--no-trace", *argv)
    return status, out.strip(), err


def logged(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    assert main(["logs", "--json", *argv]) == 0
    turns: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return turns


def test_turns_are_logged_and_a_chat_continues_where_it_left_off(
    memo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert chat(capsys, "--once", "first") == (0, "seen: first", "")
    status, out, err = chat(capsys, "--once", "second", "--continue")
    assert (status, out) == (0, "seen: first | second")
    assert "resuming conversation" in err and "(1 turns)" in err

    turns = logged(capsys, "-n", "0")
    assert [(t["prompt"], t["answer"]) for t in turns] == [
        ("first", "seen: first"),
        ("second", "seen: first | second"),
    ]
    assert turns[0]["conversation_id"] == turns[1]["conversation_id"]
    assert turns[0]["model"] == "memo/x" and turns[0]["captain"] == "captain"
    cid = turns[0]["conversation_id"]

    assert chat(capsys, "--once", "elsewhere")[1] == "seen: elsewhere"  # a new conversation
    assert chat(capsys, "--once", "third", "--cid", cid)[1] == "seen: first | second | third"
    assert [t["prompt"] for t in logged(capsys, "--cid", cid)] == ["first", "second", "third"]

    log = Path(os.environ["SHIPMATES_HOME"]) / "state" / "logs.db"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_no_log_records_nothing_and_a_bad_switch_is_a_clear_error(
    memo: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert chat(capsys, "--once", "secret plans", "--no-log")[0] == 0
    monkeypatch.setenv("SHIPMATES_LOG", "0")
    assert chat(capsys, "--once", "more plans")[0] == 0
    assert logged(capsys) == []

    monkeypatch.setenv("SHIPMATES_LOG", "sometimes")
    status, _, err = chat(capsys, "--once", "x")
    assert status == 2 and "SHIPMATES_LOG" in err and "Traceback" not in err


def test_resuming_what_does_not_exist_says_so(memo: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = chat(capsys, "--once", "x", "--continue")
    assert status == 2 and "no logged conversation yet" in err and "shipmates logs" in err
    status, _, err = chat(capsys, "--once", "x", "--cid", "nope")
    assert status == 2 and "no conversation 'nope'" in err


def test_a_failed_turn_is_logged_with_its_error(capsys: pytest.CaptureFixture[str], litellm_lib: Any) -> None:
    from litellm.llms.custom_llm import CustomLLM

    class Down(CustomLLM):
        async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the model server is down")

    for _ in custom_provider(litellm_lib, "down", Down()):
        status, _, _ = run_once(capsys, "hello", "--model", "down/x")
    assert status != 0
    (turn,) = logged(capsys)
    assert (
        turn["prompt"] == "hello" and turn["answer"] is None and "the model server is down" in turn["error"]
    )


def run_once(capsys: pytest.CaptureFixture[str], prompt: str, *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "chat", "--no-trace", "--once", prompt, *argv)


def test_system_sets_the_captains_instructions(memo: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert chat(capsys, "--once", "hi", "-s", "Answer like a pirate.")[0] == 0
    assert SYSTEMS == ["Answer like a pirate."]


@pytest.mark.parametrize("how", [["--triage"], ["env"]])
def test_triage_asks_the_model_which_siblings_a_request_needs_first(
    memo: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, how: list[str]
) -> None:
    monkeypatch.setenv("SHIPMATES_AGENTS", "fib,factor")  # the installed demo crew
    if how == ["env"]:
        monkeypatch.setenv("SHIPMATES_TRIAGE", "1")
        how = []
    status, out, _ = chat(capsys, "--once", "Translate 'good morning'.", *how)
    assert (status, out) == (0, "seen: Translate 'good morning'.")
    assert len(SYSTEMS) == 2 and SYSTEMS[0].startswith("You pick which crew members a request needs.")
    assert "- fib: Computes Fibonacci numbers" in SYSTEMS[0]  # the demo crew's roster


@pytest.mark.parametrize("flag", ["", "--no-triage"])
def test_no_triage_call_by_default_or_with_no_triage(
    memo: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    monkeypatch.setenv("SHIPMATES_AGENTS", "fib,factor")
    if flag:
        monkeypatch.setenv("SHIPMATES_TRIAGE", "1")  # the flag wins over the environment
    assert chat(capsys, "--once", "hi", *filter(None, [flag]))[0] == 0
    assert len(SYSTEMS) == 1 and not SYSTEMS[0].startswith("You pick")
