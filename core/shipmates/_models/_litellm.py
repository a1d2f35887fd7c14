"""The litellm backend: any litellm model string, imported only when first used."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import threading
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from .._errors import ModelError
from ._model import ModelResponse, ToolCall

_module: ModuleType | None = None
_lock = threading.Lock()
_preload: threading.Thread | None = None


def load() -> ModuleType:
    """Import litellm (once), with its cost map read locally so the import never hits the network."""
    global _module
    if _module is None:
        with _lock:
            if _module is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                try:
                    import litellm
                except ImportError as exc:
                    raise ModelError(
                        f"the litellm backend is not available ({exc}); install it with "
                        "'pip install litellm', or use the offline model (SHIPMATES_MODEL=offline)"
                    ) from exc
                litellm.suppress_debug_info = True
                _module = litellm
    return _module


def preload() -> threading.Thread:
    """Start importing litellm in a daemon thread (cheap to call again); returns the thread.

    The import takes seconds and holds the GIL most of that time, so whatever runs meanwhile
    is slowed down: the REPL calls this only once its prompt is drawn, and its first turn
    waits for the thread without blocking the event loop.
    """
    global _preload
    if _preload is None:

        def run() -> None:
            with contextlib.suppress(Exception):  # reported again, properly, on first use
                load()

        _preload = threading.Thread(target=run, name="shipmates-litellm-preload", daemon=True)
        _preload.start()
    return _preload


def is_loaded() -> bool:
    """True once litellm has been imported by this module."""
    return _module is not None


def _hint(model: str, exc: Exception, litellm: ModuleType) -> str:
    errors = litellm.exceptions
    text = str(exc)
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    lowered = text.lower()
    if isinstance(exc, errors.AuthenticationError) or "api key" in lowered or "api_key" in lowered:
        return (
            f"no valid API key for {provider}: set the provider's key in the environment (for example "
            f"{provider.upper()}_API_KEY), or use the offline model (SHIPMATES_MODEL=offline)"
        )
    if "llm provider not provided" in lowered or isinstance(exc, errors.LiteLLMUnknownProvider):
        return (
            "litellm does not know this model: use 'provider/model' (for example openai/gpt-4o-mini, "
            "ollama/llama3.1), see https://docs.litellm.ai/docs/providers, or a registered model "
            "such as 'offline'"
        )
    if isinstance(exc, errors.NotFoundError):
        return "the provider does not know this model: check the model name"
    if isinstance(exc, (errors.APIConnectionError, errors.Timeout)) or "connection" in lowered:
        return (
            "could not reach the model server: check that it is running and reachable (for ollama: "
            "'ollama serve'; or set api_base in the agent's model_settings), or use SHIPMATES_MODEL=offline"
        )
    if isinstance(exc, errors.RateLimitError):
        return "the provider is rate limiting: wait and try again"
    return "check the model name, its credentials and the network, or use SHIPMATES_MODEL=offline"


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return "{}"
    return json.dumps(arguments)  # some providers hand back parsed arguments


def to_response(raw: Any, cost_usd: float | None = None) -> ModelResponse:
    """Convert a litellm ``ModelResponse`` to shipmates' :class:`ModelResponse`; the cost is
    ``cost_usd``, else the one litellm computed for the call (None when it could not price it)."""
    message = raw.choices[0].message
    calls = [
        ToolCall(
            id=str(tc.id or f"call_{i}"),
            name=str(tc.function.name),
            arguments=_arguments_text(tc.function.arguments),
        )
        for i, tc in enumerate(getattr(message, "tool_calls", None) or ())
    ]
    usage = getattr(raw, "usage", None)
    if cost_usd is None:
        hidden = getattr(raw, "_hidden_params", None)
        known = hidden.get("response_cost") if isinstance(hidden, dict) else None
        cost_usd = float(known) if isinstance(known, (int, float)) else None
    return ModelResponse(
        content=message.content,
        tool_calls=calls,
        usage=usage.model_dump() if usage is not None and hasattr(usage, "model_dump") else None,
        raw=raw,
        cost_usd=cost_usd,
    )


_unpriced: set[str] = set()


def _cost(litellm: ModuleType, model_id: str, response: Any) -> float | None:
    """The cost of ``response`` from litellm's local cost map; None for a model it cannot price."""
    if model_id in _unpriced:
        return None
    try:
        return float(litellm.completion_cost(completion_response=response, model=model_id))
    except Exception:
        _unpriced.add(model_id)  # not in the cost map: do not pay for the lookup again
        return None


class LiteLLMModel:
    """A model reached through ``litellm.acompletion``; ``settings`` are passed through."""

    def __init__(self, model_id: str, **settings: Any) -> None:
        self.model_id = model_id
        self.settings = settings

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        settings: dict[str, Any] | None = None,
    ) -> ModelResponse:
        """One ``litellm.acompletion`` call; provider failures become :class:`ModelError`."""
        # A first call may race the REPL's background import: wait for it off the event loop.
        litellm = _module if _module is not None else await asyncio.to_thread(load)
        kwargs = {**self.settings, **(settings or {})}
        if tools:
            # litellm may rewrite schemas for a provider: never let it touch the shared ones.
            kwargs["tools"] = copy.deepcopy(tools)
        try:
            raw = await litellm.acompletion(
                model=self.model_id, messages=[dict(m) for m in messages], **kwargs
            )
        except Exception as exc:
            raise self._failed(exc, litellm) from exc
        return to_response(raw)

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        settings: dict[str, Any] | None = None,
    ) -> AsyncIterator[str | ModelResponse]:
        """One streamed ``litellm.acompletion``: text deltas as they arrive, then the response
        rebuilt from the chunks by ``litellm.stream_chunk_builder`` (tool calls and usage included).

        ``stream=False`` in the settings (for a provider that cannot stream) completes in one go.
        """
        kwargs = {**self.settings, **(settings or {})}
        if kwargs.get("stream") is False:
            response = await self.complete(messages, tools, settings)
            if response.content:
                yield response.content
            yield response
            return
        litellm = _module if _module is not None else await asyncio.to_thread(load)
        if tools:
            kwargs["tools"] = copy.deepcopy(tools)
        kwargs["stream"] = True
        kwargs.setdefault("stream_options", {"include_usage": True})
        sent = [dict(m) for m in messages]
        chunks: list[Any] = []
        try:
            stream = await litellm.acompletion(model=self.model_id, messages=sent, **kwargs)
            async for chunk in stream:
                chunks.append(chunk)
                choices = getattr(chunk, "choices", None)
                text = getattr(choices[0].delta, "content", None) if choices else None
                if text:
                    yield text
            raw = litellm.stream_chunk_builder(chunks, messages=sent)
        except Exception as exc:
            raise self._failed(exc, litellm) from exc
        if raw is None:
            raise ModelError(f"model '{self.model_id}' sent an empty stream: check the model server")
        yield to_response(raw, _cost(litellm, self.model_id, raw))

    def _failed(self, exc: Exception, litellm: ModuleType) -> ModelError:
        return ModelError(
            f"model '{self.model_id}' failed: {type(exc).__name__}: {str(exc)[:500]}. "
            f"{_hint(self.model_id, exc, litellm)}"
        )

    def __repr__(self) -> str:
        return f"<LiteLLMModel {self.model_id!r}>"
