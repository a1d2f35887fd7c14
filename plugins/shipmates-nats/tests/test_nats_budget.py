"""A remote call carries what is left of the caller's budget, and `serve` runs the sibling under it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats_helpers import settings

pytestmark = [pytest.mark.nats, pytest.mark.slow]


def test_the_remaining_budget_travels_with_the_request(nats_server: Any, serve: Any) -> None:
    from shipmates import Agent, Budget, RunResult
    from shipmates.plugin import reset_budget, set_budget
    from shipmates_nats import RemoteCallError, get_crew

    serve(nats_server.url, "--namespace", "tb", agents="echo,calc")
    crew = get_crew(settings(nats_server.url, "tb"))
    crew.scan()
    proxies = {p.name: p for p, *_ in crew.siblings()}

    # No budget: no header, the replica runs under none.
    assert proxies["echo"].invoke("budget") == "None"

    # A captain's run: its delegation to echo is counted before the call, the rest crosses the wire.
    captain = Agent("captain", model="offline")
    captain.absorb(proxies["echo"])
    budget = Budget(max_tokens=500, max_cost_usd=0.25, max_delegations=3)
    result: RunResult = asyncio.run(captain.arun("echo: budget", budget=budget))
    assert "Budget(max_tokens=500, max_cost_usd=0.25, max_delegations=2)" in result.output, result.output

    # A spent budget: the served agent's run stops before its first model call, and says why.
    async def spent() -> str:
        token = set_budget(Budget(max_tokens=0))
        try:
            return str(await proxies["calc"].ainvoke("double 21"))
        finally:
            reset_budget(token)

    with pytest.raises(RemoteCallError, match="token budget exhausted: 0 tokens spent of 0"):
        asyncio.run(spent())
    assert "42" in proxies["calc"].invoke("double 21")  # the replica's own runs are not affected
