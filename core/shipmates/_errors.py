"""The shipmates error hierarchy: every error a user can act on derives from ShipmatesError."""

from __future__ import annotations


class ShipmatesError(Exception):
    """Base class of every error shipmates raises on purpose."""


class InvalidNameError(ShipmatesError):
    """A sibling or tool name that model APIs would reject."""


class AbsorbError(ShipmatesError):
    """A captain refused to absorb a sibling."""


class SelfAbsorptionError(AbsorbError):
    """A captain was asked to absorb itself (same object or same name)."""


class NameConflictError(AbsorbError):
    """The sibling's name is already taken by another tool or sibling of the captain."""


class NotASiblingError(AbsorbError):
    """The object does not satisfy the sibling contract (name, description, invoke/ainvoke)."""


class PluginLoadError(ShipmatesError):
    """An entry point or pluggy plugin could not be loaded (raised only in strict mode)."""


class ModelError(ShipmatesError):
    """A model backend failed, or a model name could not be resolved."""


class MaxTurnsExceeded(ShipmatesError):  # noqa: N818 - reads as an outcome, like StopIteration
    """The agent loop hit ``max_turns`` without a text answer.

    ``result`` holds the partial :class:`~shipmates.RunResult` (messages and tool calls so far).
    """

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result


class EndSession(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a tool to end the interactive session cleanly (history is saved).

    The agent loop never turns it into a tool error: it propagates through nested
    delegations to whoever runs the session (the REPL exits with status 0).
    """

    def __init__(self, message: str = "Goodbye.") -> None:
        super().__init__(message)
        self.message = message
