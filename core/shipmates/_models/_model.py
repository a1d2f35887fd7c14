"""The model interface, in the OpenAI chat format as litellm speaks it."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
    """Token counts in the OpenAI format (``prompt_tokens``, ``completion_tokens``,
    ``prompt_tokens_details.cached_tokens``), when the backend reports them."""
    raw: Any = None
    """The backend's own response object, for debugging."""
    cost_usd: float | None = None
    """What the call cost in USD, when the backend knows (litellm: from its local cost map)."""


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


@runtime_checkable
class StreamingModel(Model, Protocol):
    """A :class:`Model` that can also stream: ``stream`` is an async iterator of text deltas
    (``str``) ending with the complete :class:`ModelResponse` (tool calls and usage included).

    ``stream`` is optional: a model with only ``complete`` is streamed as one chunk. Like
    ``complete``, it gets ``settings=`` only when there are some.
    """

    def stream(
        self, messages: Messages, tools: Schemas, settings: dict[str, Any] | None = None
    ) -> AsyncIterator[str | ModelResponse]:
        """Yield the text as it is generated, then the whole :class:`ModelResponse`."""
        ...


async def stream_model(
    model: Model, messages: Messages, tools: Schemas, settings: dict[str, Any] | None = None
) -> AsyncIterator[str | ModelResponse]:
    """Stream one completion from ``model``: its text deltas, then the checked :class:`ModelResponse`.

    A model without ``stream`` is completed in one go, its text yielded as one delta.
    """
    stream = getattr(model, "stream", None)
    if stream is None:
        response = await complete(model, messages, tools, settings)
        if response.content:
            yield response.content
        yield response
        return
    final: object = None
    async for chunk in stream(messages, tools, settings=settings) if settings else stream(messages, tools):
        if isinstance(chunk, str):
            if chunk:
                yield chunk
        else:
            final = chunk
    if final is None:
        from .._errors import ModelError

        raise ModelError(
            f"model {_backend(model)} ended its stream without a ModelResponse; its stream() must yield "
            "text deltas (str) and then the complete shipmates.ModelResponse: fix the backend, or "
            "choose another model with --model"
        )
    yield check_response(final, model)


def takes_settings(model: Model) -> bool:
    """Whether ``model.complete`` accepts ``settings=`` (a model may take only messages and tools)."""
    import inspect

    try:
        parameters = inspect.signature(model.complete).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "settings" or p.kind is p.VAR_KEYWORD for p in parameters)


async def complete(
    model: Model, messages: Messages, tools: Schemas, settings: dict[str, Any] | None = None
) -> ModelResponse:
    """``model.complete`` checked by :func:`check_response`.

    Settings go only when there are some, so models that take none need not accept the keyword.
    """
    if settings:
        response = await model.complete(messages, tools, settings=settings)
    else:
        response = await model.complete(messages, tools)
    return check_response(response, model)


def _backend(model: object) -> str:
    return f"{getattr(model, 'model_id', None)!r} ({type(model).__module__}.{type(model).__qualname__})"


def check_response(response: object, model: object) -> ModelResponse:
    """``response`` if it has the shape of a :class:`ModelResponse`, else a ``ModelError`` naming ``model``.

    What a backend returns is checked at the boundary, so a wrong type is reported as that
    backend's fault instead of surfacing later as an ``AttributeError`` in the run loop.
    """
    problem = _shape_problem(response)
    if problem is None:
        return response  # type: ignore[return-value]
    from .._errors import ModelError

    raise ModelError(
        f"model {_backend(model)} returned {problem}; its complete() must return a "
        "shipmates.ModelResponse (content: str or None, tool_calls: ToolCall objects with str id, "
        "name and JSON arguments): fix the backend, or choose another model with --model"
    )


def _shape_problem(response: object) -> str | None:
    if not isinstance(response, ModelResponse):
        return f"a {type(response).__name__} instead of a ModelResponse"
    if response.content is not None and not isinstance(response.content, str):
        return f"content of type {type(response.content).__name__}"
    if not isinstance(response.tool_calls, (list, tuple)):
        return f"tool_calls of type {type(response.tool_calls).__name__}"
    for call in response.tool_calls:
        if not isinstance(call, ToolCall):
            return f"a tool call of type {type(call).__name__}"
        if not isinstance(call.id, str) or not isinstance(call.name, str):
            return f"a tool call whose id or name is not a str ({call.id!r}, {call.name!r})"
        if not isinstance(call.arguments, (str, dict)) and call.arguments is not None:
            return f"tool call arguments of type {type(call.arguments).__name__}"
    return None
