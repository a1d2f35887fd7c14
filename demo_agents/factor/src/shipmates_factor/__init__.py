"""shipmates-factor: a sibling agent that factors integers into primes.

Installed, it registers the agent ``factor`` under the ``shipmates.agents`` entry-point
group; any shipmates captain discovers it and can delegate factorisation to it.
"""

from __future__ import annotations

import math

from shipmates import Agent, tool

__all__ = ["MAX_N", "build_agent", "factor_number", "prime_factors"]

MAX_N = 10**18
"""Largest accepted ``n``: well within what Pollard's rho factors in milliseconds."""

_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def _is_prime(n: int) -> bool:
    """Miller-Rabin, deterministic for n < 3.3e24 with these bases."""
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _SMALL_PRIMES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _find_divisor(n: int) -> int:
    """A non-trivial divisor of the odd composite ``n`` (Pollard's rho, Brent's variant)."""
    import random  # only what trial division by the small primes leaves gets here

    rng = random.Random(n)  # deterministic per n
    while True:
        y, c, m = rng.randrange(1, n), rng.randrange(1, n), 64
        g = r = q = 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
        if g == n:
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if g != n:
            return g


def prime_factors(n: int) -> list[int]:
    """The prime factors of ``n >= 2`` in ascending order, with multiplicity."""
    factors: list[int] = []
    for p in _SMALL_PRIMES:
        while n % p == 0:
            factors.append(p)
            n //= p
    stack = [n] if n > 1 else []
    while stack:
        m = stack.pop()
        if _is_prime(m):
            factors.append(m)
        else:
            d = _find_divisor(m)
            stack += [d, m // d]
    return sorted(factors)


def factor_number(n: int) -> str:
    """Factor the integer n into primes (prime factorisation), for example 60 -> "2, 2, 3, 5".

    Args:
        n: the whole number to factor, from 2 to 10**18.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"factor_number needs an integer n, got {n!r}")
    if n < 2:
        raise ValueError(f"factor_number needs n >= 2 (0 and 1 have no prime factorisation), got n={n}")
    if n > MAX_N:
        raise ValueError(f"factor_number needs n <= 10**18, got n={n}")
    return ", ".join(str(p) for p in prime_factors(n))


def build_agent() -> Agent:
    """The ``factor`` agent (the provider behind the ``shipmates.agents`` entry point)."""
    return Agent(
        name="factor",
        description=(
            "Factors a whole number into its prime factors (prime factorisation), "
            'for example factor 60 -> "2, 2, 3, 5".'
        ),
        instructions=(
            "You factor whole numbers into primes. Call the factor_number tool with the number n "
            "and never factor it yourself; answer with the factors it returns, in the same format "
            '(for example "2, 2, 3, 5"). If the tool reports an error, tell the user what it says.'
        ),
        tools=[tool(factor_number)],
    )
