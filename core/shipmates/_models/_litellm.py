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
from ._chunks import Chunks
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


_KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}
_OPENAI_COMPATIBLE = frozenset(
    {"openai", "hosted_vllm", "lm_studio", "openai_like", "text-completion-openai"}
)
DETAIL_CHARS = 300
"""How much of litellm's own text follows shipmates' explanation of a failure (all of it with -v)."""


def _provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


def _has_key(provider: str, kwargs: dict[str, Any]) -> bool:
    """True when the call has a key, or goes to a server of the user's choice (which may need none)."""
    if kwargs.get("api_key") or kwargs.get("api_base") or any(k.startswith("mock_") for k in kwargs):
        return True
    upper = provider.upper()
    return any(os.environ.get(f"{upper}_{suffix}") for suffix in ("API_KEY", "API_BASE", "BASE_URL"))


def _where(model: str, api_base: object) -> str:
    """The URL the call went to, else the provider."""
    if isinstance(api_base, str) and api_base:
        return api_base
    provider = _provider(model)
    base = os.environ.get(f"{provider.upper()}_API_BASE")
    return base or f"{provider}'s API"


def _explain(model: str, api_base: object, timeout: float, exc: BaseException, litellm: ModuleType) -> str:
    """What failed, where, and the setting to change, in CLI terms."""
    errors = litellm.exceptions
    provider = _provider(model)
    where = _where(model, api_base)
    lowered = str(exc).lower()
    key_variable = _KEY_VARIABLES.get(provider, f"{provider.upper()}_API_KEY")
    if isinstance(exc, (TimeoutError, errors.Timeout)):
        return (
            f"model '{model}' at {where} did not answer within {timeout:g} s: check that the server "
            "is running and not overloaded, or allow longer with --model-timeout SECONDS "
            "(SHIPMATES_MODEL_TIMEOUT)"
        )
    if isinstance(exc, errors.AuthenticationError) or (
        ("api_key" in lowered or "api key" in lowered) and not isinstance(exc, errors.APIConnectionError)
    ):
        return (
            f"{where} refused the API key for {provider} (model '{model}'): set the right key in "
            f"{key_variable}, or name the variable that holds it with --api-key-env VAR"
        )
    if "llm provider not provided" in lowered or isinstance(exc, errors.LiteLLMUnknownProvider):
        return (
            f"litellm does not know the model '{model}': use --model provider/model (for example "
            "openai/gpt-4o-mini, ollama/llama3.1, or openai/NAME with --api-base URL for a local "
            "OpenAI-compatible server), or a registered model such as 'offline'"
        )
    if isinstance(exc, errors.NotFoundError):
        return (
            f"{where} does not know the model '{model}' (not found): check --model, and that --api-base "
            "points at the API root (it usually ends in /v1)"
        )
    if isinstance(exc, errors.RateLimitError):
        return f"{where} is rate limiting model '{model}': wait and try again"
    if isinstance(exc, (errors.BadRequestError, errors.UnsupportedParamsError)):
        return (
            f"{where} refused the request to model '{model}': check the options given with -o "
            "(SHIPMATES_MODEL_OPTIONS) and --model"
        )
    if isinstance(exc, errors.APIConnectionError) or "connection" in lowered:
        return (
            f"cannot reach model '{model}' at {where}: check that the server is running and the URL "
            "(--api-base URL, SHIPMATES_API_BASE or the alias's api_base), or use --model offline"
        )
    status = getattr(exc, "status_code", None)
    failed = f" with status {status}" if isinstance(status, int) else ""
    return (
        f"model '{model}' at {where} failed{failed}: check --model, --api-base and the server's log, "
        "or use --model offline"
    )


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
    """A model reached through ``litellm.acompletion``; ``settings`` are passed through, except
    ``api_key_env`` (the name of the variable holding the key, read at each call).

    Every call has a timeout (``timeout``, else the session's, else 120 s) for the answer to
    start, and at most the session's retries (litellm's ``num_retries``; the OpenAI client's own
    retries are off, so a silent server costs one timeout, not several).
    """

    def __init__(self, model_id: str, *, triage: bool = False, **settings: Any) -> None:
        self.model_id = model_id
        self.settings = settings
        self.triage = triage
        """Captains with siblings triage on this model (a config alias's ``triage = true``)."""

    def _kwargs(self, settings: dict[str, Any] | None) -> dict[str, Any]:
        from ._session import call_policy

        kwargs = {**self.settings, **(settings or {})}
        timeout, retries = call_policy()
        kwargs.setdefault("timeout", timeout)
        kwargs.setdefault("num_retries", retries)
        kwargs.setdefault("max_retries", 0)
        provider = _provider(self.model_id)
        key_variable = kwargs.pop("api_key_env", None)
        if key_variable and "api_key" not in kwargs:
            key = os.environ.get(key_variable, "").strip()
            if not key:
                raise ModelError(
                    f"no API key for {provider}: the variable {key_variable} (named by --api-key-env or "
                    "the alias's api_key_env) is not set or empty: export it, or name another variable"
                )
            kwargs["api_key"] = key
        elif "/" in self.model_id and provider in _KEY_VARIABLES and not _has_key(provider, kwargs):
            raise ModelError(
                f"no API key for {provider}: set {_KEY_VARIABLES[provider]} or --api-key-env VAR (the "
                f"variable holding the key), or use a local server with --api-base URL, or --model offline"
            )
        elif (
            kwargs.get("api_base")
            and "api_key" not in kwargs
            and provider in _OPENAI_COMPATIBLE
            and not os.environ.get("OPENAI_API_KEY")
        ):
            kwargs["api_key"] = "none"  # a local server needs no key, but the OpenAI client insists on one
        return kwargs

    async def _start(
        self, litellm: ModuleType, messages: list[dict[str, Any]], kwargs: dict[str, Any]
    ) -> Any:
        """``litellm.acompletion`` until the answer starts, retries included, within the timeout
        (plus a margin for litellm's own work)."""
        timeout = float(kwargs["timeout"])
        try:
            async with asyncio.timeout(timeout + 1 + timeout / 10):
                return await litellm.acompletion(model=self.model_id, messages=messages, **kwargs)
        except Exception as exc:
            raise self._failed(exc, litellm, kwargs) from exc

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        settings: dict[str, Any] | None = None,
    ) -> ModelResponse:
        """One ``litellm.acompletion`` call; provider failures become :class:`ModelError`."""
        # A first call may race the REPL's background import: wait for it off the event loop.
        litellm = _module if _module is not None else await asyncio.to_thread(load)
        kwargs = self._kwargs(settings)
        if tools:
            # litellm may rewrite schemas for a provider: never let it touch the shared ones.
            kwargs["tools"] = copy.deepcopy(tools)
        raw = await self._start(litellm, [dict(m) for m in messages], kwargs)
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
        if {**self.settings, **(settings or {})}.get("stream") is False:
            response = await self.complete(messages, tools, settings)
            if response.content:
                yield response.content
            yield response
            return
        litellm = _module if _module is not None else await asyncio.to_thread(load)
        kwargs = self._kwargs(settings)
        if tools:
            kwargs["tools"] = copy.deepcopy(tools)
        kwargs["stream"] = True
        kwargs.setdefault("stream_options", {"include_usage": True})
        sent = [dict(m) for m in messages]
        chunks = Chunks()
        stream = await self._start(litellm, sent, kwargs)
        try:
            async for chunk in stream:
                chunks.add(chunk)
                choices = getattr(chunk, "choices", None)
                text = getattr(choices[0].delta, "content", None) if choices else None
                if text:
                    yield text
            raw = litellm.stream_chunk_builder(chunks.chunks(), messages=sent)
        except Exception as exc:
            raise self._failed(exc, litellm, kwargs) from exc
        if raw is None:
            raise ModelError(
                f"model '{self.model_id}' at {_where(self.model_id, kwargs.get('api_base'))} sent an empty "
                "stream: check the model server, or -o stream=false"
            )
        yield to_response(raw, _cost(litellm, self.model_id, raw))

    def _failed(self, exc: BaseException, litellm: ModuleType, kwargs: dict[str, Any]) -> ModelError:
        """shipmates' explanation first, then litellm's own text (shortened unless -v)."""
        import logging

        explanation = _explain(self.model_id, kwargs.get("api_base"), float(kwargs["timeout"]), exc, litellm)
        detail = " ".join(str(exc).split()) or type(exc).__name__
        key = kwargs.get("api_key")
        if isinstance(key, str) and len(key) > 4:
            detail = detail.replace(key, "***")  # never echo a key, even one a provider quoted
        if not logging.getLogger("shipmates").isEnabledFor(logging.DEBUG) and len(detail) > DETAIL_CHARS:
            detail = detail[:DETAIL_CHARS] + "... (-v shows all)"
        return ModelError(f"{explanation} [{type(exc).__name__}: {detail}]")

    def __repr__(self) -> str:
        return f"<LiteLLMModel {self.model_id!r}>"
