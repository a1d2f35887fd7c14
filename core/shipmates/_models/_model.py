"""The model interface, in the OpenAI chat format as litellm speaks it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Messages = list[dict[str, Any]]
"""A conversation in the OpenAI chat format (``role``, ``content``, ``tool_calls``...)."""
Schemas = list[dict[str, Any]]
"""Tool schemas in the OpenAI format (``{"type": "function", "function": {...}}``)."""

DEFAULT_MODEL = "offline"
"""The model used when neither the agent nor ``SHIPMATES_MODEL`` names one."""


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass
class ModelResponse:
    """What a model returns for one completion: text, tool calls, or both."""

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    raw: Any = None
    """The backend's own response object, for debugging."""


@runtime_checkable
class Model(Protocol):
    """A chat model backend.

    ``messages`` and ``tools`` are in the OpenAI chat-completions format. When an agent has
    ``model_settings``, ``complete`` is called with the extra keyword ``settings=`` (a dict);
    without them it is called with two arguments, so models that never get settings may
    leave the keyword out.
    """

    model_id: str

    async def complete(
        self, messages: Messages, tools: Schemas, settings: dict[str, Any] | None = None
    ) -> ModelResponse:
        """Return the model's next message for ``messages``, given the callable ``tools``;
        ``settings`` are extra backend arguments (litellm: temperature, api_base, ...)."""
        ...
