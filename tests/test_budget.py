"""Budgets over the whole delegation tree: tokens, cost and delegations, one remaining budget
shared by every sibling the run reaches, and the distinct status ``budget_exhausted``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from shipmates import Agent, Budget, BudgetExhausted, RunFinished
from shipmates._run._budget import Spend, reset_budget, set_budget
from shipmates.plugin import current_budget, run_sync
from support import litellm_offline
from support.litellm_offline import custom_provider, delegating_handler

_no_openai_settings = litellm_offline._no_openai_settings
litellm_lib = litellm_offline.litellm_lib

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

# Runs go on shipmates' background loop (run_sync), as Agent.invoke does: litellm's logging worker
# stays on one loop, so the tests after these see no "event loop changed" warning on stderr.
TOKENS = {"captain": (1000, 100), "middle": (1000, 100), "leaf": (1000, 100)}
PRICE_IN, PRICE_OUT = 1e-6, 4e-6  # USD per token: each call above costs $0.0014


@pytest.fixture
def priced(litellm_lib: Any) -> Iterator[list[str]]:
    """litellm provider 'budgettest': model ``budgettest/NAME`` calls its first tool, then answers
    with the result; every call reports ``TOKENS[NAME]`` and is priced through litellm's cost map
    (``litellm.register_model``). Yields the names of the models called, in order."""
    calls: list[str] = []
    price = {"input_cost_per_token": PRICE_IN, "output_cost_per_token": PRICE_OUT, "mode": "chat"}
    litellm_lib.register_model(
        {f"budgettest/{n}": {**price, "litellm_provider": "budgettest"} for n in TOKENS}
    )
    yield from (
        calls
        for _ in custom_provider(litellm_lib, "budgettest", delegating_handler(litellm_lib, TOKENS, calls))
    )


def _tree(**captain: Any) -> Agent:
    settings = {"stream": False}
    leaf = Agent("leaf", "answers", model="budgettest/leaf", model_settings=settings)
    middle = Agent("middle", "asks leaf", model="budgettest/middle", tools=[leaf], model_settings=settings)
    return Agent("captain", model="budgettest/captain", tools=[middle], model_settings=settings, **captain)


def test_the_tree_without_a_budget_answers_and_is_priced(priced: list[str]) -> None:
    result = run_sync(_tree().arun("go"))
    assert result.status == "ok" and result.output == "[[[leaf says hi]]]"
    assert priced == ["captain", "middle", "leaf", "middle", "captain"]
    assert result.usage.cost_usd == pytest.approx(5 * 0.0014)


def test_a_cost_budget_spent_halfway_stops_the_whole_tree(priced: list[str]) -> None:
    # $0.0014 per call: the budget is spent by the second call (middle's first), so the leaf is
    # never called, middle stops, and the captain's model is not called again.
    result = run_sync(_tree().arun("go", budget=Budget(max_cost_usd=0.0025)))
    assert priced == ["captain", "middle"]
    assert result.status == "budget_exhausted"
    assert result.reason is not None and result.reason.startswith(
        "cost budget exhausted: $0.0028 spent of $0.0025"
    )
    assert result.usage.cost_usd == pytest.approx(0.0028)
    # middle's model saw nothing more; the captain's delegation ended with the budget as its error.
    (delegation,) = result.tool_calls
    assert delegation.status == "error" and "cost budget exhausted" in (delegation.error or "")
    assert "sibling 'middle' (code) stopped: agent 'middle'" in (delegation.error or "")


def test_the_stream_ends_with_budget_exhausted(priced: list[str]) -> None:
    async def events() -> list[Any]:
        return [e async for e in _tree().stream("go", budget=Budget(max_cost_usd=0.0025))]

    finished = [e for e in run_sync(events()) if isinstance(e, RunFinished)]
    assert [(e.agent, e.status) for e in finished] == [
        ("middle", "budget_exhausted"),
        ("captain", "budget_exhausted"),
    ]
    assert finished[-1].reason is not None and "cost budget exhausted" in finished[-1].reason


def test_a_token_budget_counts_every_sibling(priced: list[str]) -> None:
    # 1,100 tokens a call: three calls reach 3,300 >= 3,000; the leaf's answer was in flight and finished.
    result = run_sync(_tree().arun("go", budget=Budget(max_tokens=3000)))
    assert priced == ["captain", "middle", "leaf"]
    assert result.status == "budget_exhausted"
    assert result.reason == (
        "token budget exhausted: 3,300 tokens spent of 3,000 (max_tokens, --max-tokens, SHIPMATES_MAX_TOKENS)"
    )


def test_a_delegation_budget_refuses_the_delegation_over_the_limit(priced: list[str]) -> None:
    result = run_sync(_tree(budget=Budget(max_delegations=1)).arun("go"))  # Agent(budget=)
    assert priced == ["captain", "middle"]  # middle's delegation to leaf was refused
    assert result.status == "budget_exhausted"
    assert result.reason is not None and result.reason.startswith("delegation budget exhausted: 1 of 1")


def test_an_agent_sibling_raises_budget_exhausted_from_ainvoke(priced: list[str]) -> None:
    with pytest.raises(BudgetExhausted, match="agent 'captain': token budget exhausted"):
        run_sync(_tree(budget=Budget(max_tokens=1)).ainvoke("go"))
    assert priced == ["captain"]


def test_a_nested_budget_cannot_overspend_its_parent(priced: list[str]) -> None:
    parent = Spend(Budget(max_tokens=1000, max_delegations=5))
    child = Spend(Budget(max_tokens=10_000, max_cost_usd=1.0), parent)
    child.charge(400, 0.25)
    assert parent.tokens == 400 and child.remaining() == Budget(600, 0.75, 5)
    assert child.delegate() is None and parent.delegations == 1
    child.charge(600, None)
    assert child.why_spent() is not None and child.why_spent() == parent.exhausted
    assert child.delegate() == parent.exhausted and parent.delegations == 1


def test_the_remaining_budget_is_what_a_remote_call_sends(priced: list[str]) -> None:
    seen: list[Budget | None] = []

    def probe(query: str) -> str:
        """Records the budget a remote call would send."""
        seen.append(current_budget())
        return "ok"

    assert current_budget() is None
    captain = Agent("captain", model="budgettest/captain", tools=[probe], model_settings={"stream": False})
    run_sync(captain.arun("go", budget=Budget(max_tokens=5000, max_cost_usd=0.01, max_delegations=3)))
    (left,) = seen  # one model call ($0.0014, 1,100 tokens) before the tool ran; not a delegation
    assert (left.max_tokens, left.max_delegations) == (3900, 3) if left is not None else False
    assert left is not None and left.max_cost_usd == pytest.approx(0.0086)
    # and the replica's side: a run started under a caller's budget draws from it
    token = set_budget(Budget(max_tokens=1))
    try:
        result = run_sync(_tree().arun("go"))
    finally:
        reset_budget(token)
    assert result.status == "budget_exhausted" and priced[-1] == "captain"


def test_budget_values_and_header() -> None:
    budget = Budget(max_tokens=900, max_cost_usd=0.25, max_delegations=2)
    assert budget.to_header() == "tokens=900;cost_usd=0.25;delegations=2"
    assert Budget.from_header(budget.to_header()) == budget
    assert Budget.from_header("") == Budget() and Budget().unlimited
    with pytest.raises(ValueError, match="max_tokens"):
        Budget(max_tokens=-1)
    with pytest.raises(ValueError, match="max_cost_usd"):
        Budget(max_cost_usd=float("nan"))
    with pytest.raises(ValueError, match="unknown budget field"):
        Budget.from_header("dollars=3")
