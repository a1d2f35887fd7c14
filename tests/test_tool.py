"""@tool: names, descriptions and JSON-schema parameters from typed functions, and validation."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel
from shipmates import InvalidNameError, Tool, tool
from shipmates._run._tool import ToolArgumentsError


def test_bare_decorator_builds_name_description_and_schema() -> None:
    @tool
    def fibonacci(n: int, memo: bool = True) -> int:
        """Return the n-th Fibonacci number.

        Args:
            n: index in the sequence, from 0
            memo: reuse earlier results
        """
        return n

    assert isinstance(fibonacci, Tool)
    assert fibonacci.name == "fibonacci"
    assert fibonacci.description == "Return the n-th Fibonacci number."
    assert fibonacci.parameters == {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "description": "index in the sequence, from 0"},
            "memo": {"type": "boolean", "default": True, "description": "reuse earlier results"},
        },
        "required": ["n"],
    }
    assert fibonacci.schema == {
        "type": "function",
        "function": {
            "name": "fibonacci",
            "description": "Return the n-th Fibonacci number.",
            "parameters": fibonacci.parameters,
        },
    }
    assert not fibonacci.is_async and not fibonacci.is_delegation
    assert fibonacci(5) == 5  # still callable as the function


def test_decorator_with_options_and_async_function() -> None:
    @tool(name="lookup-city", description="Find a city.", timeout=3)
    async def find(city: str, country: Literal["fr", "de"] = "fr") -> str:
        """Ignored docstring."""
        return f"{city}/{country}"

    assert find.name == "lookup-city"
    assert find.description == "Find a city."
    assert find.timeout == 3
    assert find.is_async
    assert find.parameters["properties"]["country"]["enum"] == ["fr", "de"]
    assert asyncio.run(find("Paris")) == "Paris/fr"


def test_nested_pydantic_parameters_validate_to_instances() -> None:
    class Point(BaseModel):
        x: float
        y: float

    @tool
    def norm(p: Point) -> float:
        """Length of a vector."""
        return float((p.x**2 + p.y**2) ** 0.5)

    assert "$defs" in norm.parameters
    args, kwargs = norm.bind(norm.parse('{"p": {"x": 3, "y": "4"}}'))
    assert args == () and isinstance(kwargs["p"], Point) and kwargs["p"].y == 4.0
    assert norm(**kwargs) == 5.0


def test_parse_and_bind_errors_are_text_for_the_model() -> None:
    @tool
    def double(n: int) -> int:
        """Double n."""
        return 2 * n

    assert double.parse("") == {}
    assert double.bind({"n": "21"}) == ((), {"n": 21})
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        double.parse("{n: 1")
    with pytest.raises(ToolArgumentsError, match="must be a JSON object"):
        double.parse("[1, 2]")
    with pytest.raises(ToolArgumentsError) as info:
        double.bind({})
    assert str(info.value).startswith("error: invalid arguments for tool 'double': n: Field required")
    with pytest.raises(ToolArgumentsError, match=r"n: Input should be a valid integer.*\(got 'x'\)"):
        double.bind({"n": "x"})


def test_invalid_tool_name_is_rejected() -> None:
    with pytest.raises(InvalidNameError, match="invalid tool name 'has space'"):
        tool(lambda: None, name="has space")


def test_untyped_parameters_accept_anything() -> None:
    def echo(value):  # type: ignore[no-untyped-def]
        return value

    t = tool(echo)
    assert t.parameters == {"type": "object", "properties": {"value": {}}, "required": ["value"]}
    assert t.bind({"value": [1]}) == ((), {"value": [1]})


def test_docstring_sections_stay_out_of_the_description() -> None:
    @tool
    def convert(amount: float, currency: str = "EUR") -> str:
        """Convert money.

        Uses daily rates.

        Args:
            amount: how much, for example: 12.5
                in the source currency
            currency (str): target currency code

        Returns:
            The converted amount as text.
        """
        return f"{amount} {currency}"

    assert convert.description == "Convert money.\n\nUses daily rates."
    props = convert.parameters["properties"]
    assert props["amount"]["description"] == "how much, for example: 12.5 in the source currency"
    assert props["currency"]["description"] == "target currency code"
