"""Bounded multi-turn memory for an agent (what the REPL keeps between prompts)."""

from __future__ import annotations

from typing import Any

DEFAULT_MAX_CHARS = 2_000_000
"""The most text a :class:`Session` keeps by default (a long conversation, far below any RAM limit)."""


def _size(message: dict[str, Any]) -> int:
    """The characters a message holds: its text and its tool calls' arguments."""
    size = len(content) if isinstance(content := message.get("content"), str) else 0
    for call in message.get("tool_calls") or ():
        arguments = call.get("function", {}).get("arguments") if isinstance(call, dict) else None
        size += len(arguments) if isinstance(arguments, str) else 0
    return size


class Session:
    """The conversation so far, without the system prompt, bounded by messages, turns and size.

    Only completed runs are added (``Agent.arun`` adds them on success), so a failed or
    cancelled turn leaves the session as it was. Trimming drops whole turns, oldest first:
    an assistant tool-call message is never separated from its tool results. The newest
    turn is always kept, even when it alone exceeds ``max_messages`` or ``max_chars`` (a huge
    tool result is cut for the model by the run loop, so one turn stays bounded too).
    """

    def __init__(
        self,
        *,
        max_messages: int | None = 200,
        max_turns: int | None = None,
        max_chars: int | None = DEFAULT_MAX_CHARS,
    ) -> None:
        self.max_messages = max_messages
        self.max_turns = max_turns
        self.max_chars = max_chars
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
        if self.max_chars is not None:
            sizes = [sum(_size(m) for m in turn) for turn in self._turns]
            total = sum(sizes)
            while len(self._turns) > 1 and total > self.max_chars:
                self._turns.pop(0)
                total -= sizes.pop(0)

    def clear(self) -> None:
        """Forget everything."""
        self._turns.clear()

    def __len__(self) -> int:
        return sum(len(t) for t in self._turns)

    def __repr__(self) -> str:
        return f"<Session turns={self.turns} messages={len(self)}>"
