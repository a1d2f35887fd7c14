"""Run one local sibling for a remote caller: validate input, call it, bound time and size."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from shipmates import EndSession, Provenance, hookimpl
from shipmates.plugin import DEFAULT_TOOL_TIMEOUT, SiblingSpec, sibling_spec

from . import _protocol as p

current_traceparent: ContextVar[str | None] = ContextVar("shipmates_nats_traceparent", default=None)
"""The span a served call runs in, so nested remote calls continue the same trace."""

call_events: ContextVar[list[dict[str, Any]] | None] = ContextVar("shipmates_nats_events", default=None)
"""Tool calls made while serving the current request (filled by :class:`EventCollector`)."""


def _short(value: Any, limit: int = 200) -> Any:
    """``value`` itself when small (dicts stay dicts), else its text cut to ``limit``."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) <= limit:
        return value
    return text[: limit - 3] + "..."


class EventCollector:
    """A pluggy plugin for ``serve``: records the finished tool calls of each served request."""

    @hookimpl
    def tool_call_finished(self, event: Any) -> None:
        sink = call_events.get()
        if sink is None or len(sink) >= p.EVENTS_MAX:
            return
        sink.append(
            {
                "agent": event.agent,
                "tool": event.tool,
                "arguments": _short(event.arguments),
                "depth": event.depth,
                "path": list(event.path),
                "delegation": event.is_delegation,
                "status": event.status,
                "result": _short(event.result) if event.result is not None else None,
                "error": _short(event.error) if event.error is not None else None,
                "duration": event.duration,
            }
        )


def events_header(events: list[dict[str, Any]] | None) -> dict[str, str] | None:
    """The events as one header value, or None (none, or too large to be worth sending)."""
    if not events:
        return None
    text = json.dumps(events, separators=(",", ":"))
    return {p.H_EVENTS: text} if len(text) <= p.EVENTS_BYTES else None


class CallFailedError(Exception):
    """A served call failed; ``code`` and ``description`` go back in the micro error headers."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass
class Hosted:
    """A local sibling hosted on NATS, its contract read once (:func:`shipmates.plugin.sibling_spec`)."""

    sibling: Any
    provenance: Provenance
    card: dict[str, Any]
    spec: SiblingSpec = field(init=False)
    timeout: float = field(init=False)
    """The sibling's ``timeout``, else shipmates' default tool timeout."""
    plain: bool = field(init=False)
    """An async sibling without an input model: a plain-text body is its query as it is."""

    def __post_init__(self) -> None:
        self.spec = sibling_spec(self.sibling)
        self.timeout = self.default_timeout()
        self.plain = self.spec.is_async and self.spec.input_model is None

    @property
    def call(self) -> Callable[..., Any]:
        return self.spec.call

    @property
    def is_async(self) -> bool:
        return self.spec.is_async

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return f"sibling '{self.name}' ({self.provenance.describe()})"

    def default_timeout(self) -> float:
        return self.spec.timeout if self.spec.timeout is not None else DEFAULT_TOOL_TIMEOUT


def argument(h: Hosted, args: dict[str, Any]) -> Any:
    input_model = h.spec.input_model
    if input_model is not None:
        from pydantic import ValidationError

        try:
            return input_model.model_validate(args)
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
            raise CallFailedError(p.E_BAD_REQUEST, f"invalid input for {h.label}: {errors}") from None
    query = args.get("query")
    if not isinstance(query, str):
        raise CallFailedError(p.E_BAD_REQUEST, f'{h.label} takes {{"query": "..."}}, got {sorted(args)}')
    return query


async def _bounded(coro: Any, limit: float) -> Any:
    """``wait_for`` without its extra task where ``asyncio.timeout`` exists (3.11+)."""
    if _timeout is None:
        return await asyncio.wait_for(coro, limit)
    async with _timeout(limit):
        return await coro


_timeout = getattr(asyncio, "timeout", None)


async def call_hosted(
    h: Hosted, args: dict[str, Any], *, timeout: float | None, max_bytes: int, bounded: bool = True
) -> bytes:
    """Call the sibling and return its UTF-8 answer, or raise :class:`CallFailedError`.

    ``bounded=False`` leaves the timeout to the caller (serve's reaper: no timer per call).
    """
    arg = argument(h, args)
    limit = timeout if timeout and timeout > 0 else h.timeout
    try:
        work = h.call(arg) if h.is_async else asyncio.to_thread(h.call, arg)
        result = await (_bounded(work, limit) if bounded else work)
    except Exception as exc:
        raise call_failure(h, exc, limit) from None
    return answer_bytes(h, result, max_bytes)


def call_failure(h: Hosted, exc: Exception, limit: float) -> CallFailedError:
    """What a sibling's exception becomes for the remote caller."""
    if isinstance(exc, asyncio.TimeoutError):
        return CallFailedError(p.E_TIMEOUT, f"{h.label} did not answer within {limit:g}s")
    if isinstance(exc, EndSession):
        return CallFailedError(p.E_END_SESSION, exc.message)
    if isinstance(exc, CallFailedError):
        return exc
    return CallFailedError(p.E_FAILED, f"{h.label} raised {type(exc).__name__}: {exc}")


def answer_bytes(h: Hosted, result: Any, max_bytes: int) -> bytes:
    """The sibling's answer as UTF-8, or :class:`CallFailedError` when it is over the limit."""
    data = (result if isinstance(result, str) else str(result)).encode()
    if len(data) > max_bytes:
        raise CallFailedError(
            p.E_TOO_LARGE,
            f"{h.label} answered {len(data)} bytes, more than the limit of {max_bytes} bytes "
            "(SHIPMATES_NATS_MAX_BYTES on the serving side)",
        )
    return data
