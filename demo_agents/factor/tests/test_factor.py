"""Tests of the factor demo sibling: the tool, the provider and a turn on the offline router."""

from __future__ import annotations

import asyncio
import math

import pytest
import shipmates
from importlib_metadata import entry_points
from shipmates_factor import MAX_N, build_agent, factor_number, prime_factors


@pytest.mark.parametrize(
    ("n", "expected"),
    [(2, "2"), (3, "3"), (4, "2, 2"), (12, "2, 2, 3"), (60, "2, 2, 3, 5"), (97, "97"), (1001, "7, 11, 13")],
)
def test_factor_number_values(n: int, expected: str) -> None:
    assert factor_number(n) == expected


@pytest.mark.parametrize(
    "n",
    [
        2**61 - 1,  # a Mersenne prime
        999_999_937 * 999_999_929,  # two 9-digit primes: Pollard's rho territory
        2**10 * 3**5 * 1_000_003,
        10**18,
        600851475143,
    ],
)
def test_prime_factors_of_large_numbers(n: int) -> None:
    factors = prime_factors(n)
    assert math.prod(factors) == n
    assert factors == sorted(factors)
    assert all(len(prime_factors(p)) == 1 for p in set(factors))


@pytest.mark.parametrize("n", [-5, 0, 1])
def test_factor_number_rejects_n_below_two(n: int) -> None:
    with pytest.raises(ValueError, match="n >= 2"):
        factor_number(n)


def test_factor_number_rejects_too_large() -> None:
    with pytest.raises(ValueError, match="n <= 10"):
        factor_number(MAX_N + 1)


def test_provider_builds_a_sibling_named_factor() -> None:
    agent = build_agent()
    assert isinstance(agent, shipmates.Agent)
    assert shipmates.is_sibling(agent)
    assert agent.name == "factor"
    assert [t.name for t in agent.tools] == ["factor_number"]


def test_tool_schema_is_what_a_model_needs() -> None:
    [tool] = build_agent().tools
    function = tool.schema["function"]
    assert function["name"] == "factor_number"
    assert "prime" in function["description"]
    parameters = function["parameters"]
    assert parameters["required"] == ["n"]
    assert parameters["properties"]["n"]["type"] == "integer"
    assert "number" in parameters["properties"]["n"]["description"]


def test_offline_turn_uses_the_factor_number_tool() -> None:
    result = asyncio.run(build_agent().arun("factor 60"))
    assert result.status == "ok"
    assert "2, 2, 3, 5" in result.output
    [call] = result.tool_calls
    assert call.tool == "factor_number"
    assert call.arguments == {"n": 60}


def test_offline_invoke_answers() -> None:
    assert "7, 11, 13" in build_agent().invoke("factor 1001")


def test_n_of_one_comes_back_as_a_tool_error_not_an_exception() -> None:
    result = asyncio.run(build_agent().arun("factor 1"))
    [call] = result.tool_calls
    assert call.status == "error"
    assert "n >= 2" in (call.error or "")


def test_entry_point_points_at_the_provider() -> None:
    eps = entry_points(group="shipmates.agents", name="factor")
    if not eps:
        pytest.skip("shipmates-factor is not installed (pip install -e demo_agents/factor)")
    [ep] = list(eps)
    assert ep.value == "shipmates_factor:build_agent"
    assert ep.dist is not None and ep.dist.name == "shipmates-factor"
