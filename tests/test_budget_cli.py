"""Budgets on the command line: ``chat --max-tokens/--max-cost/--max-delegations`` and the
``SHIPMATES_MAX_*`` variables, validated, and one clear line when a budget is spent."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from shipmates import ModelResponse, SettingsError
from shipmates._settings import read_settings
from test_usage_cli import Counting, counting, run

__all__ = ["counting"]  # the fixture, used by name

ASK = ("chat", "--model", "counting", "--only", "helper", "--once", "hi")


def test_a_cost_budget_stops_the_turn_with_one_clear_line(
    counting: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    # $0.01 a call: the captain's call, then the helper's, reach $0.02 >= $0.015.
    status, out, err = run(capsys, *ASK, "--max-cost", "0.015", "--no-trace")
    assert status == 2 and out == ""
    assert err.strip().splitlines()[-1] == (
        "error: stopped: cost budget exhausted: $0.0200 spent of $0.0150 "
        "(max_cost_usd, --max-cost, SHIPMATES_MAX_COST)"
    )


def test_once_json_says_budget_exhausted(counting: Counting, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *ASK, "--json", "--max-delegations", "0")
    document = json.loads(out)
    assert status == 2 and document["status"] == "budget_exhausted"
    assert document["error"].startswith("stopped: delegation budget exhausted: 0 of 0 delegations used")
    (call,) = document["tool_calls"]
    assert call["tool"] == "helper" and call["status"] == "error"
    assert document["usage"]["total"]["model_calls"] == 1  # the refused delegation ended the run


def test_the_environment_sets_a_budget_and_flags_win(
    counting: Counting, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPMATES_MAX_TOKENS", "20")
    status, out, _ = run(capsys, *ASK, "--json")
    assert status == 2 and json.loads(out)["error"].startswith(
        "stopped: token budget exhausted: 24 tokens spent of 20"
    )
    status, out, _ = run(capsys, *ASK, "--json", "--max-tokens", "1000")
    assert status == 0 and json.loads(out)["status"] == "ok"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SHIPMATES_MAX_TOKENS", "0", "a whole number >= 1"),
        ("SHIPMATES_MAX_TOKENS", "many", "a whole number >= 1"),
        ("SHIPMATES_MAX_COST", "-1", "a number of US dollars > 0"),
        ("SHIPMATES_MAX_COST", "nan", "a number of US dollars > 0"),
        ("SHIPMATES_MAX_DELEGATIONS", "-1", "a whole number >= 0"),
    ],
)
def test_a_bad_variable_names_itself_and_the_range(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{name}='{value}' is not valid: expected {expected}"):
        read_settings({name: value})


def test_bad_flags_are_one_line_and_status_2(counting: Counting, capsys: pytest.CaptureFixture[str]) -> None:
    for flag, value, expected in (
        ("--max-cost", "0", "error: --max-cost=0.0 is not valid: expected a number of US dollars > 0"),
        ("--max-tokens", "0", "error: --max-tokens=0 is not valid: expected a whole number >= 1"),
        ("--max-delegations", "-2", "error: --max-delegations=-2 is not valid: expected a whole number >= 0"),
    ):
        status, out, err = run(capsys, *ASK, flag, value)
        assert status == 2 and out == "" and err.startswith(expected), err


def test_settings_read_all_three(monkeypatch: Any) -> None:
    settings = read_settings({"SHIPMATES_MAX_COST": "0.5", "SHIPMATES_MAX_DELEGATIONS": "0"}, max_tokens=100)
    assert (settings.max_tokens, settings.max_cost, settings.max_delegations) == (100, 0.5, 0)


def test_a_cost_budget_says_when_the_model_has_no_price(
    counting: Counting, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local model litellm cannot price: the budget would count nothing, silently.
    priced = counting.complete

    async def unpriced(messages: Any, tools: Any) -> ModelResponse:
        return dataclasses.replace(await priced(messages, tools), cost_usd=None)

    monkeypatch.setattr(counting, "complete", unpriced)
    status, out, err = run(capsys, *ASK, "--max-cost", "0.015", "--no-trace")
    assert status == 0 and out.strip() == "<<found x>>"
    assert "the cost budget counted nothing for 4 model call(s): no price is known for counting" in err
    assert "-o input_cost_per_token=" in err and "--max-tokens" in err
    status, _, err = run(capsys, *ASK, "--no-trace")  # no cost budget: nothing to say
    assert status == 0 and "warning" not in err
