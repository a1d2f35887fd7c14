"""Built-in plugin: OpenTelemetry spans of every run, following the GenAI semantic conventions.

Loaded only when enabled (:func:`shipmates._settings.otel_enabled`: ``SHIPMATES_OTEL=1`` or an
``OTEL_EXPORTER_OTLP_*`` variable) and the ``shipmates[otel]`` extra is installed: otherwise this
module is never imported and runs pay nothing. It consumes the ``run_event`` hook:

- ``invoke_agent {agent}`` per agent run (a sibling's run under the captain's call span),
- ``execute_tool {tool}`` per tool call and delegation,
- ``chat {model}`` per model call, with ``gen_ai.usage.input_tokens`` / ``output_tokens``.

Spans go to the application's tracer provider when it set one, else to one made here that
exports over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``SHIPMATES_OTEL=console`` prints them
instead). A remote call carries the context of its ``execute_tool`` span in its headers
(:func:`inject`), and the serving replica continues it (:func:`attach`): one trace id across
machines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .._run._context import current_stack, parent_call_id
from .._run._stream_events import (
    ModelCallFinished,
    RunEvent,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
)
from .._settings import otel_exporter
from ._hookspecs import hookimpl

Key = tuple[tuple[str, ...], str | None]
"""A span's place: the agent's delegation path and the id of the call it works for (a run), or
the path of the agent that made a call and the call's id (a tool call)."""

_runs: dict[Key, Span] = {}
_calls: dict[Key, Span] = {}
_lock = threading.Lock()


def _setup() -> None:
    """A tracer provider with an exporter, unless the application set its own."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "shipmates"}))
    exporter: SpanExporter | None = None
    where = otel_exporter()
    if where == "console":
        exporter = ConsoleSpanExporter()
    elif where == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


_setup()


def _tracer() -> trace.Tracer:
    return trace.get_tracer("shipmates")


def _parent(span: Span | None) -> context.Context | None:
    return trace.set_span_in_context(span) if span is not None else None


@hookimpl
def run_event(event: RunEvent) -> None:
    if isinstance(event, ToolCallStarted):
        _call_started(event)
    elif isinstance(event, ToolCallFinished):
        _call_finished(event)
    elif isinstance(event, ModelCallFinished):
        _model_call(event)
    elif isinstance(event, RunStarted):
        _run_started(event)
    elif isinstance(event, RunFinished):
        _run_finished(event)


def _start(into: dict[Key, Span], key: Key, under: Key, name: str, attributes: dict[str, Any]) -> None:
    """Start span ``name`` under the span at ``under`` (a run's or a call's; none: the current
    context) and keep it at ``key`` until its end event."""
    with _lock:
        parent = (_calls if into is _runs else _runs).get(under)
    span = _tracer().start_span(name, context=_parent(parent), kind=SpanKind.INTERNAL, attributes=attributes)
    with _lock:
        into[key] = span


def _run_started(event: RunStarted) -> None:
    # A top-level run continues the current context: the application's span, or a remote caller's.
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": event.agent,
        "gen_ai.request.model": event.model,
    }
    under = (event.path[:-1], event.parent_call_id)
    _start(_runs, (event.path, event.parent_call_id), under, f"invoke_agent {event.agent}", attributes)


def _run_finished(event: RunFinished) -> None:
    with _lock:
        span = _runs.pop((event.path, event.parent_call_id), None)
    if span is None:
        return
    span.set_attribute("gen_ai.usage.input_tokens", event.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", event.usage.output_tokens)
    span.set_attribute("shipmates.run.status", event.status)
    if event.usage.cost_usd is not None:
        span.set_attribute("shipmates.usage.cost_usd", event.usage.cost_usd)
    if event.status in ("error", "cancelled", "budget_exhausted"):
        span.set_attribute("error.type", event.status)
        span.set_status(Status(StatusCode.ERROR, event.error or event.reason or event.status))
    span.end()


def _call_started(event: ToolCallStarted) -> None:
    call = event.call
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.agent.name": call.agent,
        "gen_ai.tool.name": call.tool,
        "gen_ai.tool.call.id": call.call_id,
        "gen_ai.tool.type": "agent" if call.is_delegation else "function",
    }
    under = (call.path, call.parent_call_id)
    _start(_calls, (call.path, call.call_id), under, f"execute_tool {call.tool}", attributes)


def _call_finished(event: ToolCallFinished) -> None:
    call = event.call
    with _lock:
        span = _calls.pop((call.path, call.call_id), None)
    if span is None:
        return
    if call.status != "ok":
        span.set_attribute("error.type", call.status)
        span.set_status(Status(StatusCode.ERROR, (call.error or call.status)[:500]))
    span.end()


def _model_call(event: ModelCallFinished) -> None:
    with _lock:
        run = _runs.get((event.path, event.parent_call_id))
    end = time.time_ns()
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.agent.name": event.agent,
        "gen_ai.request.model": event.model,
        "gen_ai.usage.input_tokens": event.usage.input_tokens,
        "gen_ai.usage.output_tokens": event.usage.output_tokens,
    }
    if "/" in event.model:
        attributes["gen_ai.provider.name"] = event.model.split("/", 1)[0]
    if event.usage.cost_usd is not None:
        attributes["shipmates.usage.cost_usd"] = event.usage.cost_usd
    span = _tracer().start_span(
        f"chat {event.model}",
        context=_parent(run),
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=end - int(event.duration * 1e9),
    )
    span.end(end_time=end)


# -- across processes -------------------------------------------------------------------------


def inject(headers: MutableMapping[str, str]) -> None:
    """Put the running call's trace context in ``headers`` (the standard propagator: W3C
    ``traceparent``, ``tracestate``, baggage)."""
    stack = current_stack()
    with _lock:
        span = _calls.get((stack[:-1], parent_call_id())) if stack else None
    propagate.inject(headers, context=_parent(span))


def attach(headers: Mapping[str, str]) -> Callable[[], None]:
    """Continue the trace in ``headers`` in this context; returns the function that ends it."""
    token = context.attach(propagate.extract(dict(headers)))
    return lambda: context.detach(token)
