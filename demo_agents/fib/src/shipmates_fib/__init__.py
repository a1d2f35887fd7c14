"""shipmates-fib: a sibling agent that computes Fibonacci numbers.

Installed, it registers the agent ``fib`` under the ``shipmates.agents`` entry-point group;
any shipmates captain discovers it and can delegate Fibonacci questions to it.
"""

from __future__ import annotations

from shipmates import Agent, tool

__all__ = ["MAX_N", "build_agent", "fibonacci"]

MAX_N = 20_000
"""Largest accepted ``n``: fib(20000) has 4180 digits, under Python's default limit of
4300 digits for turning an int into text."""


def fibonacci(n: int) -> int:
    """Compute fib(n), the n-th Fibonacci number: fib(0)=0, fib(1)=1, fib(8)=21.

    Args:
        n: the index in the Fibonacci sequence, from 0 to 20000.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"fibonacci needs an integer n, got {n!r}")
    if n < 0:
        raise ValueError(f"fibonacci needs n >= 0, got n={n}")
    if n > MAX_N:
        raise ValueError(f"fibonacci needs n <= {MAX_N} (the answer would be too long to print), got n={n}")
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def build_agent() -> Agent:
    """The ``fib`` agent (the provider behind the ``shipmates.agents`` entry point)."""
    return Agent(
        name="fib",
        description="Computes Fibonacci numbers: fib(n), the n-th Fibonacci number, for example fib(8) = 21.",
        instructions=(
            "You compute Fibonacci numbers. When asked for a Fibonacci number, call the fibonacci "
            "tool with the index n (fib(0) = 0, fib(1) = 1) and never compute it yourself; answer "
            "with the number it returns. For anything else, use the other tools you have (your "
            "crew) when one fits, and say plainly when none does."
        ),
        tools=[tool(fibonacci)],
    )
