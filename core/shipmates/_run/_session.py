"""Bounded multi-turn memory for an agent (what the REPL keeps between prompts)."""

from __future__ import annotations

from typing import Any


class Session:
    """The conversation so far, without the system prompt, bounded by messages and/or turns.

    Only completed runs are added (``Agent.arun`` adds them on success), so a failed or
    cancelled turn leaves the session as it was. Trimming drops whole turns, oldest first:
    an assistant tool-call message is never separated from its tool results. The newest
    turn is always kept, even when it alone exceeds ``max_messages``.
    """

    def __init__(self, *, max_messages: int | None = 200, max_turns: int | None = None) -> None:
        self.max_messages = max_messages
        self.max_turns = max_turns
        self._turns: list[list[dict[str, Any]]] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The remembered messages, oldest first (a new list)."""
        return [m for turn in self._turns for m in turn]

    @property
    def turns(self) -> int:
        """How many turns (user messages and what followed) are remembered."""
        return len(self._turns)

    def add(self, messages: list[dict[str, Any]]) -> None:
        """Remember one or more completed turns (each starts at a user message), then trim."""
        for message in messages:
            if message.get("role") == "user" or not self._turns:
                self._turns.append([])
            self._turns[-1].append(message)
        self._trim()

    def _trim(self) -> None:
        if self.max_turns is not None:
            while len(self._turns) > max(self.max_turns, 1):
                self._turns.pop(0)
        if self.max_messages is not None:
            total = sum(len(t) for t in self._turns)
            while len(self._turns) > 1 and total > self.max_messages:
                total -= len(self._turns.pop(0))

    def clear(self) -> None:
        """Forget everything."""
        self._turns.clear()

    def __len__(self) -> int:
        return sum(len(t) for t in self._turns)

    def __repr__(self) -> str:
        return f"<Session turns={self.turns} messages={len(self)}>"
