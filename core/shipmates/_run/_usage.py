"""Usage: the tokens and cost of model calls, per call, per agent and for a whole delegation tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens and cost of one or more model calls; ``a + b`` adds them.

    ``cost_usd`` comes from litellm's local cost map; it is None when no call's cost was known,
    else the sum of the known ones (``calls_without_cost`` says how many were not priced).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens served from the provider's prompt cache (included in ``input_tokens``)."""
    cost_usd: float | None = None
    model_calls: int = 0
    calls_without_cost: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        if self.cost_usd is None:
            cost = other.cost_usd
        elif other.cost_usd is None:
            cost = self.cost_usd
        else:
            cost = self.cost_usd + other.cost_usd
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            cost,
            self.model_calls + other.model_calls,
            self.calls_without_cost + other.calls_without_cost,
        )

    @classmethod
    def of_call(cls, usage: dict[str, Any] | None, cost_usd: float | None) -> Usage:
        """The usage of one model call from its OpenAI-format ``usage`` dict (None: not reported)."""
        usage = usage or {}
        details = usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return cls(
            _count(usage.get("prompt_tokens", usage.get("input_tokens"))),
            _count(usage.get("completion_tokens", usage.get("output_tokens"))),
            _count(cached),
            cost_usd,
            1,
            0 if cost_usd is not None else 1,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields and ``total_tokens``."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
            "model_calls": self.model_calls,
            "calls_without_cost": self.calls_without_cost,
        }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


ZERO = Usage()


@dataclass(frozen=True, slots=True)
class AgentUsage:
    """One agent's share of a run: its ``own`` model calls and what it ``delegated`` (the model
    calls of every sibling below it), counted apart so nothing is counted twice."""

    own: Usage = ZERO
    delegated: Usage = ZERO

    @property
    def total(self) -> Usage:
        return self.own + self.delegated

    def as_dict(self) -> dict[str, Any]:
        own, delegated, total = self.own.as_dict(), self.delegated.as_dict(), self.total.as_dict()
        return {"own": own, "delegated": delegated, "total": total}


def add_by_agent(totals: dict[str, AgentUsage], more: dict[str, AgentUsage]) -> dict[str, AgentUsage]:
    """``totals`` with each agent's shares in ``more`` added (a session's runs, one after another)."""
    merged = dict(totals)
    for name, usage in more.items():
        known = merged.get(name)
        merged[name] = (
            usage if known is None else AgentUsage(known.own + usage.own, known.delegated + usage.delegated)
        )
    return merged


Ledger = list[tuple[tuple[str, ...], Any]]
"""The model calls of a run and of everything it delegated, as they happen (any thread may add):
each entry is the calling agent's whole delegation path with a :class:`Usage` or a raw
``(usage dict, cost)`` pair. Recording is a list append, a run's hot path; a
:class:`UsageSnapshot` adds the entries up when asked."""


class UsageSnapshot:
    """A :data:`Ledger`'s entries at one moment, added up on first use: :attr:`total` and
    :meth:`by_agent`; ``depth`` is the depth of the run's own agent (paths are read from there)."""

    __slots__ = ("_by_agent", "_entries", "_total", "depth")

    def __init__(self, entries: tuple[tuple[tuple[str, ...], Any], ...] = (), depth: int = 0) -> None:
        self._entries = entries
        self.depth = depth
        self._total: Usage | None = None
        self._by_agent: dict[str, AgentUsage] | None = None

    @property
    def total(self) -> Usage:
        if self._total is None:
            self._add_up()
        assert self._total is not None
        return self._total

    def by_agent(self) -> dict[str, AgentUsage]:
        if self._by_agent is None:
            self._add_up()
        assert self._by_agent is not None
        return dict(self._by_agent)

    def __repr__(self) -> str:
        return f"<UsageSnapshot {self.total!r}>"

    def _add_up(self) -> None:
        total = ZERO
        own: dict[str, Usage] = {}
        delegated: dict[str, Usage] = {}
        for path, raw in self._entries:
            usage = raw if isinstance(raw, Usage) else Usage.of_call(*raw)
            total += usage
            *above, agent = path[self.depth :]
            own[agent] = own.get(agent, ZERO) + usage
            for name in dict.fromkeys(above):
                if name != agent:
                    delegated[name] = delegated.get(name, ZERO) + usage
        names = dict.fromkeys([*own, *delegated])
        self._by_agent = {n: AgentUsage(own.get(n, ZERO), delegated.get(n, ZERO)) for n in names}
        self._total = total


EMPTY = UsageSnapshot()
