"""Budgets: limits on the tokens, cost and delegations of a whole run tree.

A :class:`Budget` is the user's limits. A run given one opens a :class:`Spend` (what the tree has
used so far); the runs it reaches find it through the run/call link (``_stream.RunScope``) and
charge it, so every sibling draws from the same remaining budget. A remote call carries what is
left (:meth:`Budget.to_header`) and its replica runs under it (:func:`set_budget`).

A run with no budget makes no :class:`Spend`: the run loop checks one ``is None`` per turn.
"""

from __future__ import annotations

import math
import threading
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from .._errors import ShipmatesError


class BudgetExhausted(ShipmatesError):  # noqa: N818 - reads as an outcome, like MaxTurnsExceeded
    """A run's budget was spent; the message says what was exhausted, spent against the limit."""


@dataclass(frozen=True, slots=True)
class Budget:
    """Per-run limits over the whole delegation tree; None: no limit on that one.

    ``max_tokens``: input plus output tokens of every model call; ``max_cost_usd``: their cost
    from litellm's cost map (calls without a known price count nothing); ``max_delegations``:
    sibling calls, at any depth. A model call in flight may finish over the limit; no new model
    call or delegation starts once one is spent.
    """

    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_delegations: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_tokens", "max_delegations"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"Budget({name}=) must be a whole number >= 0 or None, got {value!r}")
        cost = self.max_cost_usd
        if cost is not None and (
            isinstance(cost, bool)
            or not isinstance(cost, (int, float))
            or not math.isfinite(cost)
            or cost < 0
        ):
            raise ValueError(f"Budget(max_cost_usd=) must be a number of dollars >= 0 or None, got {cost!r}")

    @property
    def unlimited(self) -> bool:
        return self.max_tokens is None and self.max_cost_usd is None and self.max_delegations is None

    def to_header(self) -> str:
        """This budget as one header value, e.g. ``tokens=900;cost_usd=0.25;delegations=2``."""
        parts = []
        if self.max_tokens is not None:
            parts.append(f"tokens={self.max_tokens}")
        if self.max_cost_usd is not None:
            parts.append(f"cost_usd={self.max_cost_usd!r}")
        if self.max_delegations is not None:
            parts.append(f"delegations={self.max_delegations}")
        return ";".join(parts)

    @classmethod
    def from_header(cls, text: str) -> Budget:
        """The budget :meth:`to_header` wrote; ValueError for anything else."""
        fields: dict[str, Any] = {}
        for part in filter(None, (x.strip() for x in text.split(";"))):
            key, _, value = part.partition("=")
            if key == "tokens":
                fields["max_tokens"] = int(value)
            elif key == "cost_usd":
                fields["max_cost_usd"] = float(value)
            elif key == "delegations":
                fields["max_delegations"] = int(value)
            else:
                raise ValueError(f"unknown budget field {key!r} in {text!r}")
        return cls(**fields)


class Spend:
    """What a run tree has spent of its :class:`Budget` (any thread may charge it).

    ``parent``: the spend of an enclosing run with a budget of its own; a charge counts in both,
    so no nested budget lets a child overspend its parent.
    """

    __slots__ = ("_lock", "budget", "cost_usd", "delegations", "exhausted", "parent", "tokens")

    def __init__(self, budget: Budget, parent: Spend | None = None) -> None:
        self.budget = budget
        self.parent = parent
        self.tokens = 0
        self.cost_usd = 0.0
        self.delegations = 0
        self.exhausted: str | None = None
        """Why it is spent (what, spent against the limit), or None while some is left."""
        self._lock = threading.Lock()
        self._check()  # a remote caller may pass a budget that is already spent

    def charge(self, tokens: int, cost_usd: float | None) -> None:
        """Count one model call's (or a remote call's) tokens and cost, here and in the parents."""
        spend: Spend | None = self
        while spend is not None:
            with spend._lock:
                spend.tokens += tokens
                spend.cost_usd += cost_usd or 0.0
                spend._check()
            spend = spend.parent

    def _check(self) -> None:
        b = self.budget
        if self.exhausted is not None:
            return
        if b.max_tokens is not None and self.tokens >= b.max_tokens:
            self.exhausted = (
                f"token budget exhausted: {self.tokens:,} tokens spent of {b.max_tokens:,} "
                "(max_tokens, --max-tokens, SHIPMATES_MAX_TOKENS)"
            )
        elif b.max_cost_usd is not None and self.cost_usd >= b.max_cost_usd:
            self.exhausted = (
                f"cost budget exhausted: ${self.cost_usd:.4f} spent of ${b.max_cost_usd:.4f} "
                "(max_cost_usd, --max-cost, SHIPMATES_MAX_COST)"
            )

    def why_spent(self) -> str | None:
        """Why no new model call may start (this budget's or an enclosing one's), or None."""
        spend: Spend | None = self
        while spend is not None:
            if spend.exhausted is not None:
                return spend.exhausted
            spend = spend.parent
        return None

    def delegate(self) -> str | None:
        """Count one delegation, or return why it may not start (then the budget is spent)."""
        why = self.why_spent()
        if why is not None:
            return why
        taken: list[Spend] = []
        spend: Spend | None = self
        while spend is not None:
            with spend._lock:
                limit = spend.budget.max_delegations
                if limit is not None and spend.delegations >= limit:
                    spend.exhausted = (
                        f"delegation budget exhausted: {spend.delegations} of {limit} delegations "
                        "used (max_delegations, --max-delegations, SHIPMATES_MAX_DELEGATIONS)"
                    )
                    why = spend.exhausted
                else:
                    spend.delegations += 1
                    taken.append(spend)
            if why is not None:
                for s in taken:  # refused: it counts nowhere
                    with s._lock:
                        s.delegations -= 1
                return why
            spend = spend.parent
        return None

    def remaining(self) -> Budget:
        """What is left for the rest of the tree: the tightest of this budget and the enclosing ones."""
        tokens: int | None = None
        cost: float | None = None
        delegations: int | None = None
        spend: Spend | None = self
        while spend is not None:
            b = spend.budget
            if b.max_tokens is not None:
                left = max(b.max_tokens - spend.tokens, 0)
                tokens = left if tokens is None else min(tokens, left)
            if b.max_cost_usd is not None:
                left_usd = max(b.max_cost_usd - spend.cost_usd, 0.0)
                cost = left_usd if cost is None else min(cost, left_usd)
            if b.max_delegations is not None:
                left = max(b.max_delegations - spend.delegations, 0)
                delegations = left if delegations is None else min(delegations, left)
            spend = spend.parent
        return Budget(tokens, cost, delegations)


ambient: ContextVar[Spend | None] = ContextVar("shipmates_budget", default=None)
"""The spend a top-level run inherits when it has no caller: set by :func:`set_budget`."""


def set_budget(budget: Budget | None) -> Token[Spend | None]:
    """Run what this context starts under ``budget`` (a remote caller's remaining budget, None:
    none): the agent runs it starts draw from it. Undo with :func:`reset_budget`."""
    return ambient.set(Spend(budget, ambient.get()) if budget is not None else None)


def reset_budget(token: Token[Spend | None]) -> None:
    """Restore the budget :func:`set_budget` replaced."""
    ambient.reset(token)


def usage_tokens(usage: dict[str, Any] | None) -> int:
    """Input plus output tokens of an OpenAI-format ``usage`` dict (0 when not reported)."""
    if not usage:
        return 0
    total = 0
    for keys in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
        value = usage.get(keys[0], usage.get(keys[1]))
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            total += value
    return total


def budget_of(settings: Any) -> Budget | None:
    """The :class:`Budget` of a command's settings (``--max-tokens`` and the like), None when unset."""
    budget = Budget(settings.max_tokens, settings.max_cost, settings.max_delegations)
    return None if budget.unlimited else budget
